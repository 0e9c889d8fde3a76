// Ships events with the npm `lumberjack-client` (a Lumberjack v2 client written by
// others, with zlib compression) from several connections, then stays alive until
// killed so that its sockets can drain. Usage:
//   node ship.js HOST PORT CONNECTIONS EVENTS_PER_CONNECTION
// Event i of connection c: {"id": "c-i", "message": ..., "fields": {"log_topic": ...}}
// where every third event has no fields (it goes to the fallback topic).
const LumberjackClient = require('lumberjack-client')

const [host, port, connections, perConnection] = process.argv.slice(2)
for (let c = 0; c < Number(connections); c++) {
  // Events logged before the connection is up are queued and sent as one window.
  const client = new LumberjackClient({ host, port: Number(port) })
  for (let i = 0; i < Number(perConnection); i++) {
    const event = { id: `${c}-${i}`, message: `event ${i} from connection ${c} ` + 'x'.repeat(i % 200) }
    if (i % 3 !== 0) event.fields = { log_topic: c % 2 === 0 ? 'web' : 'app' }
    client.log(event)
  }
}
process.stdout.write('queued\n')
setInterval(() => {}, 1000)
