//! Shared by the benchmarks: start a release `logbridge serve` and read its ready line.

// Each benchmark uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Served {
    pub child: Child,
    pub kafka: String,
    pub http: String,
    pub beats: String,
}

/// The binary under test: this build's, or `LOGBRIDGE_BENCH_BIN` (to compare another
/// build in the same session, e.g. before and after a change).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("LOGBRIDGE_BENCH_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_logbridge").into())
}

/// Starts `logbridge serve` on `data_dir` with ephemeral ports (unless `extra` names
/// them) and waits for its ready line.
pub fn serve(data_dir: &Path, extra: &[&str]) -> Served {
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    for (flag, default) in [
        ("--kafka-listen", "127.0.0.1:0"),
        ("--http-listen", "127.0.0.1:0"),
        ("--beats-listen", "127.0.0.1:0"),
        ("--pipelines", ""),
    ] {
        if !extra.contains(&flag) {
            args.push(flag.into());
            args.push(if flag == "--pipelines" {
                data_dir.join("no-pipelines").display().to_string()
            } else {
                default.into()
            });
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(binary())
        .args(&args)
        .env(
            "RUST_LOG",
            std::env::var("LOGBRIDGE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("start logbridge");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in ready line {line:?}"))
    };
    Served {
        kafka: field("kafka"),
        http: field("http"),
        beats: field("beats"),
        child,
    }
}

/// The benchmark's two numeric arguments (`cargo bench --bench NAME -- A B`), each
/// its default when absent; other arguments (cargo's own `--bench`) are skipped.
pub fn two_args(defaults: (usize, usize)) -> (usize, usize) {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    (
        args.first().copied().unwrap_or(defaults.0),
        args.get(1).copied().unwrap_or(defaults.1),
    )
}

/// GET a JSON document from the HTTP listener.
pub fn get_json(http: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut body = String::new();
    let mut c = std::net::TcpStream::connect(http).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    c.read_to_string(&mut body).unwrap();
    serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// One compressed Lumberjack v2 window: `2W` + `2C` (zlib level 3) holding one `2J`
/// frame per event, sequence numbers 1..=n.
pub fn lumberjack_window(events: &[String]) -> Vec<u8> {
    use std::io::Write;
    let mut frames = Vec::new();
    for (i, event) in events.iter().enumerate() {
        frames.extend_from_slice(b"2J");
        frames.extend_from_slice(&(i as u32 + 1).to_be_bytes());
        frames.extend_from_slice(&(event.len() as u32).to_be_bytes());
        frames.extend_from_slice(event.as_bytes());
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
    z.write_all(&frames).unwrap();
    let compressed = z.finish().unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(b"2W");
    out.extend_from_slice(&(events.len() as u32).to_be_bytes());
    out.extend_from_slice(b"2C");
    out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// Reads Lumberjack acks until the one for sequence `last` (earlier ones and the
/// zero keep-alives are skipped).
pub fn wait_ack(s: &mut std::net::TcpStream, last: u32) {
    use std::io::Read;
    let mut ack = [0u8; 6];
    loop {
        s.read_exact(&mut ack).expect("ack");
        assert_eq!(&ack[..2], b"2A");
        if u32::from_be_bytes(ack[2..].try_into().unwrap()) == last {
            return;
        }
    }
}

/// Produce latency as the application sees it: each record carries the instant it was
/// enqueued, and its delivery report records the time since (a failed delivery ends
/// the benchmark).
pub struct LatencyContext {
    pub latencies_us: std::sync::Mutex<Vec<u32>>,
}

impl LatencyContext {
    pub fn with_capacity(records: usize) -> LatencyContext {
        LatencyContext {
            latencies_us: std::sync::Mutex::new(Vec::with_capacity(records)),
        }
    }
}

impl rdkafka::ClientContext for LatencyContext {}

impl rdkafka::producer::ProducerContext for LatencyContext {
    type DeliveryOpaque = Box<std::time::Instant>;
    fn delivery(
        &self,
        result: &rdkafka::producer::DeliveryResult<'_>,
        sent_at: Box<std::time::Instant>,
    ) {
        if let Err((e, _)) = result {
            panic!("delivery failed: {e}");
        }
        self.latencies_us
            .lock()
            .unwrap()
            .push(sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
}
