// Ships the JSON events read from stdin (one per line) with the npm
// `lumberjack-client`, as Filebeat's output.logstash would, then stays alive until
// killed so that its socket can drain. Usage: node ship_stdin.js HOST PORT < events
const LumberjackClient = require('lumberjack-client')
const readline = require('readline')

const [host, port] = process.argv.slice(2)
const client = new LumberjackClient({ host, port: Number(port) })
const lines = readline.createInterface({ input: process.stdin })
let n = 0
lines.on('line', (line) => {
  if (line.trim()) {
    client.log(JSON.parse(line))
    n++
  }
})
lines.on('close', () => process.stdout.write(`queued ${n}\n`))
setInterval(() => {}, 1000)
