//! Starts the real `logbridge` binary for integration tests and waits for its ready line.
#![allow(dead_code)]

pub mod cluster;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub kafka: String,
    pub http: String,
    pub beats: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts `logbridge serve` on ephemeral ports with `data_dir`, plus extra args.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with(data_dir, extra, |_| {})
    }

    /// As `start`, with a last say over the command (where stderr goes, limits).
    pub fn start_with(
        data_dir: &Path,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_logbridge"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--kafka-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--beats-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            // The repository's ./pipelines must not run inside every test server.
            .args(if extra.contains(&"--pipelines") {
                vec![]
            } else {
                vec!["--pipelines".into(), data_dir.join("no-pipelines")]
            })
            .env(
                "RUST_LOG",
                std::env::var("LOGBRIDGE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("start logbridge");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if line.starts_with("logbridge ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("logbridge did not report ready");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_string))
                .expect("address in ready line")
        };
        Server {
            child,
            kafka: field("kafka"),
            http: field("http"),
            beats: field("beats"),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(pid, 15) };
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "logbridge exited with {status}");
    }

    /// SIGKILL: an unclean stop.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// The server's resident memory now and at its peak, in KiB (VmRSS, VmHWM).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .expect("memory field")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// POSTs an NDJSON `body` and returns the status and the response body.
    pub fn http_post(&self, path: &str, body: &str) -> (u16, String) {
        self.http_exchange(&format!(
            "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        self.http_exchange(&format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"))
    }

    /// Sends one HTTP/1.0 request and reads the answer to the end.
    fn http_exchange(&self, request: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.http).expect("connect http");
        s.write_all(request.as_bytes()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let status = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Runs a client command against `bootstrap`, with `stdin` as its input (or none).
pub fn cli(args: &[&str], bootstrap: &str, stdin: Option<&str>) -> Output {
    let mut cmd = logbridge_cmd();
    cmd.args(args)
        .args(["--bootstrap-server", bootstrap])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A command's stdout, once it is known to have succeeded (its stderr otherwise).
pub fn cli_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn logbridge_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logbridge"))
}

/// Writes an appliance config file next to `dir` and returns its path as a string.
pub fn write_config(dir: &Path, name: &str, toml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, toml).expect("write config");
    path.to_string_lossy().into_owned()
}

/// Reads partition 0 of `topic` from the beginning with librdkafka until the end of
/// the partition, once at least `expected_at_least` records came: (offset, value).
pub fn read_values(bootstrap: &str, topic: &str, expected_at_least: usize) -> Vec<(i64, String)> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "read-values")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            // End of partition: everything readable has been read.
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_)))
                if out.len() >= expected_at_least =>
            {
                break
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consume error: {e}"),
        }
    }
    out
}

/// Produces `records` (the bytes of a Produce request's records field) to partition 0
/// of `topic` with a raw Produce v9, acks=1, and returns the partition's error code.
pub async fn produce_raw(
    client: &mut logbridge::client::KafkaClient,
    topic: &str,
    records: bytes::Bytes,
) -> i16 {
    produce_raw_acks(client, topic, records, 1).await
}

/// As `produce_raw`, with the given `acks`.
pub async fn produce_raw_acks(
    client: &mut logbridge::client::KafkaClient,
    topic: &str,
    records: bytes::Bytes,
    acks: i16,
) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestKind, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    match client
        .send(ApiKey::Produce, 9, RequestKind::Produce(req))
        .await
        .unwrap()
    {
        ResponseKind::Produce(r) => r.responses[0].partition_responses[0].error_code,
        _ => panic!("wrong response"),
    }
}
