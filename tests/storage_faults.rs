//! Storage faults with the real binary and librdkafka: a disk that fills up (a small
//! tmpfs this test mounts — the data directory and the server's log both live on it),
//! two processes on one data directory, and clients writing to internal topics.
//!
//! What must hold on a full disk: appends are refused (KAFKA_STORAGE_ERROR) and nothing
//! refused is ever read; every acknowledged record stays readable to the end of the
//! partition, live, after a clean restart and after kill -9; deleting a topic and
//! retention give space back on the full disk; the server starts, stops and logs there;
//! `/health` answers 200 and says the disk is full.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::{read_values, write_config, Server};

/// A tmpfs of a fixed size mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None (and a message saying why the test is skipped) where mounting is not allowed.
    fn mount(mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin")
}

async fn create_topic(bootstrap: &str, name: &str, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let res = admin(bootstrap)
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{:?}", res[0]);
}

/// A producer that reports every refusal at once (no retries), acks=1.
fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("retries", "0")
        .set("enable.idempotence", "false")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Sends values in rounds of 64 until `stop_after_failures` rounds in a row were all
/// refused, or `max` were sent. Returns the acknowledged (offset, value) pairs and the
/// error codes of the refusals.
async fn produce_until_full(
    p: &FutureProducer,
    topic: &str,
    tag: &str,
    max: usize,
    timestamp: Option<i64>,
) -> (Vec<(i64, String)>, Vec<RDKafkaErrorCode>) {
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut failed_rounds = 0;
    let mut sent = 0;
    while sent < max && failed_rounds < 3 {
        let values: Vec<String> = (sent..sent + 64)
            .map(|i| format!("{tag}-{i:06}-{}", "x".repeat(4000)))
            .collect();
        sent += values.len();
        let sends = values.iter().map(|v| {
            let mut r = FutureRecord::<(), _>::to(topic).payload(v);
            if let Some(ts) = timestamp {
                r = r.timestamp(ts);
            }
            p.send(r, Duration::from_secs(30))
        });
        let results = futures_util::future::join_all(sends).await;
        let mut round_ok = 0;
        for (v, r) in values.iter().zip(results) {
            match r {
                Ok((_, offset)) => {
                    acked.push((offset, v.clone()));
                    round_ok += 1;
                }
                Err((KafkaError::MessageProduction(code), _)) => refused.push(code),
                Err((e, _)) => panic!("unexpected produce error: {e}"),
            }
        }
        failed_rounds = if round_ok == 0 { failed_rounds + 1 } else { 0 };
    }
    acked.sort();
    (acked, refused)
}

fn health(server: &Server) -> serde_json::Value {
    let (status, body) = server.http_get("/health");
    assert_eq!(status, 200, "/health answers 200 whatever the disk: {body}");
    serde_json::from_str(&body).unwrap()
}

fn free_bytes(server: &Server) -> u64 {
    health(server)["disk"]["free_bytes"].as_u64().unwrap()
}

/// Starts the server with its log (stderr) in a file on the same small disk.
fn start_on(fs: &Tmpfs, config: &str) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(fs.path().join("logbridge.log"))
        .unwrap();
    Server::start_with(&fs.path().join("data"), &["--config", config], |cmd| {
        cmd.stderr(Stdio::from(log)).env("RUST_LOG", "info");
    })
}

fn assert_reads_exactly(server: &Server, topic: &str, acked: &[(i64, String)]) {
    let got = read_values(&server.kafka, topic, acked.len());
    assert_eq!(
        got.len(),
        acked.len(),
        "every acknowledged record, and nothing else, is read"
    );
    assert!(
        got == acked,
        "the records read are the acknowledged ones, at their offsets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount(40) else { return };
    let outside = tempfile::tempdir().unwrap();
    // Retention is checked only at start here, so that the second server below runs it
    // on a full disk.
    let config = write_config(
        outside.path(),
        "full.toml",
        "retention_check_interval_ms = 3600000\ndisk_low_free_bytes = 8388608\ndisk_check_interval_ms = 200\n",
    );
    let server = start_on(&fs, &config);
    assert_eq!(health(&server)["disk"]["state"], "ok");
    let small_segments = [("segment.bytes", "1048576"), ("index.interval.bytes", "1")];
    create_topic(
        &server.kafka,
        "aging",
        &[("segment.bytes", "262144"), ("retention.ms", "3600000")],
    )
    .await;
    create_topic(&server.kafka, "doomed", &small_segments).await;
    create_topic(&server.kafka, "full", &small_segments).await;
    let p = producer(&server.kafka);
    // Two hours old: past the retention of "aging" as soon as retention runs.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 2 * 3_600_000;
    let (aging, _) = produce_until_full(&p, "aging", "aging", 1024, Some(old)).await;
    assert_eq!(aging.len(), 1024);
    let (doomed, _) = produce_until_full(&p, "doomed", "doomed", 1024, None).await;
    assert_eq!(doomed.len(), 1024);

    // Fill the disk.
    let (mut acked, refused) = produce_until_full(&p, "full", "a", 100_000, None).await;
    assert!(acked.len() > 1000, "{} records fit", acked.len());
    assert!(!refused.is_empty(), "the disk filled up");
    assert!(
        refused
            .iter()
            .all(|c| *c == RDKafkaErrorCode::KafkaStorageError),
        "refusals are KAFKA_STORAGE_ERROR: {:?}",
        refused.iter().take(3).collect::<Vec<_>>()
    );
    let h = health(&server);
    assert_eq!(h["disk"]["state"], "full", "{h}");
    let (_, metrics) = server.http_get("/metrics");
    assert!(metrics.contains("logbridge_disk_full 1"), "{metrics}");
    assert!(metrics.contains("logbridge_disk_low 1"));
    // Everything acknowledged is readable to the end of the partition, nothing else.
    assert_reads_exactly(&server, "full", &acked);

    // Deleting a topic on the full disk gives its space back at once.
    let before = free_bytes(&server);
    let res = admin(&server.kafka)
        .delete_topics(&["doomed"], &AdminOptions::new())
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{:?}", res[0]);
    let freed = free_bytes(&server) - before;
    assert!(
        freed > 3 << 20,
        "deleting 4 MiB of records freed {freed} bytes"
    );
    // Appends resume when space is back, and fill it again.
    let (more, refused) = produce_until_full(&p, "full", "b", 100_000, None).await;
    assert!(
        more.len() > 500 && !refused.is_empty(),
        "{} more before full again",
        more.len()
    );
    acked.extend(more);
    acked.sort();
    assert_reads_exactly(&server, "full", &acked);

    // A clean stop on the full disk, and a start there: retention (run at start) frees
    // the expired segments of "aging" without any space to work in.
    server.stop();
    let server = start_on(&fs, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let aged_out = loop {
        let (_, topics) = server.http_get("/topics");
        let topics: serde_json::Value = serde_json::from_str(&topics).unwrap();
        let aging = topics["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "aging")
            .unwrap()
            .clone();
        let start = aging["partitions"][0]["log_start_offset"].as_i64().unwrap();
        if start > 0 || Instant::now() > deadline {
            break start;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        aged_out > 900,
        "retention on a full disk deleted segments up to {aged_out}"
    );
    assert!(free_bytes(&server) > 3 << 20, "and gave their space back");
    assert_reads_exactly(&server, "full", &acked);

    // kill -9 and restart: still every acknowledged record, nothing half-written.
    server.kill();
    let server = start_on(&fs, &config);
    assert_reads_exactly(&server, "full", &acked);
    // The warning went out while there was room to write it; lines written on the full
    // disk were dropped, and the server carried on (it answered above).
    let log = std::fs::read_to_string(fs.path().join("logbridge.log")).unwrap();
    assert!(log.contains("disk space is low"), "the low disk was logged");
    server.stop();
}

#[test]
fn a_second_server_on_one_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let first = Server::start(&data, &[]);
    let second = common::logbridge_cmd()
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args([
            "--kafka-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--beats-listen",
            "",
        ])
        .arg("--pipelines")
        .arg(data.join("no-pipelines"))
        .stdout(Stdio::null())
        .output()
        .expect("run a second serve");
    assert!(!second.status.success(), "the second serve must not start");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let pid = first.child.id().to_string();
    assert!(
        stderr.contains("in use") && stderr.contains(&pid),
        "the error names the process holding the directory: {stderr}"
    );
    // The first is unharmed.
    assert_eq!(first.http_get("/health").0, 200);
    first.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_write_internal_topics_by_any_door() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    // Kafka produce: INVALID_TOPIC_EXCEPTION.
    let p = producer(&server.kafka);
    let r = p
        .send(
            FutureRecord::<(), _>::to("__consumer_offsets").payload("forged commit"),
            Duration::from_secs(10),
        )
        .await;
    match r {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidTopic)
        }
        other => panic!("produce to __consumer_offsets: {other:?}"),
    }
    // Deleting it is refused too.
    let res = admin(&server.kafka)
        .delete_topics(&["__consumer_offsets"], &AdminOptions::new())
        .await
        .unwrap();
    assert!(res[0].is_err(), "{:?}", res[0]);
    // HTTP: /ingest refuses the topic, _bulk refuses the item and stores the other.
    let (status, body) = server.http_post("/ingest/__consumer_offsets", "{\"a\":1}\n");
    assert_eq!(status, 400, "{body}");
    let bulk = "{\"index\":{\"_index\":\"__consumer_offsets\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"fine\"}}\n{\"b\":2}\n";
    let (status, body) = server.http_post("/_bulk", bulk);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"][0]["index"]["status"], 400, "{v}");
    assert_eq!(v["items"][1]["index"]["status"], 201, "{v}");
    // Nothing reached the offsets topic: every group offset is as it was (none).
    let mut client = logbridge::client::KafkaClient::connect(&server.kafka)
        .await
        .unwrap();
    for p in 0..50 {
        let end = client
            .list_offset("__consumer_offsets", p, -1)
            .await
            .unwrap();
        assert_eq!(end, 0, "__consumer_offsets-{p} stayed empty");
    }
    server.stop();
}
