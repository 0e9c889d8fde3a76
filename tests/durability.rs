//! Durability with real clients: restarts keep every acknowledged record, `kill -9`
//! in the middle of a produce loop loses nothing that was acknowledged under the
//! fsync-before-ack policy, a torn segment tail is cut off at restart, and retention
//! deletes old segments.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use common::{read_values, Server};

fn produce_sync(bootstrap: &str, topic: &str, values: impl Iterator<Item = String>) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    for v in values {
        p.send(BaseRecord::<(), _>::to(topic).payload(&v))
            .map_err(|e| e.0)
            .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn clean_restart_keeps_every_record_and_topic_config() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let status = common::logbridge_cmd()
        .args([
            "topics",
            "create",
            "keep",
            "--partitions",
            "1",
            "--config",
            "retention.ms=123456789",
            "--bootstrap-server",
            &server.kafka,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    produce_sync(&server.kafka, "keep", (0..500).map(|i| format!("v{i}")));
    server.stop();
    assert!(dir.path().join(".clean_shutdown").exists());

    let server = Server::start(dir.path(), &[]);
    let got = read_values(&server.kafka, "keep", 500);
    assert_eq!(got.len(), 500);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (o, v))| *o == i as i64 && *v == format!("v{i}")));
    let out = common::logbridge_cmd()
        .args([
            "topics",
            "describe",
            "keep",
            "--bootstrap-server",
            &server.kafka,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("retention.ms=123456789"), "{text}");
    // New appends continue after the recovered end.
    produce_sync(&server.kafka, "keep", std::iter::once("after".to_string()));
    assert_eq!(
        read_values(&server.kafka, "keep", 501).last().unwrap(),
        &(500, "after".to_string())
    );
    server.stop();
}

#[test]
fn kill_9_during_produce_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--fsync-before-ack"]);
    let bootstrap = server.kafka.clone();
    // Create the topic first so the producer's records all go to one partition.
    produce_sync(&bootstrap, "crash", std::iter::once("seed".to_string()));

    let acked = Arc::new(AtomicI64::new(-1));
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let acked = acked.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            // One record at a time with acks=all: each acknowledgement is a promise.
            let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("message.timeout.ms", "3000")
                .set("linger.ms", "0")
                .create()
                .unwrap();
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let value = format!("rec-{i}");
                if p.send(BaseRecord::<(), _>::to("crash").payload(&value))
                    .is_err()
                {
                    break;
                }
                if p.flush(Duration::from_secs(3)).is_err() || p.in_flight_count() > 0 {
                    break;
                }
                acked.store(i, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    // Kill once a good number of records have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 300 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    server.kill();
    stop.store(true, Ordering::SeqCst);
    producer_thread.join().unwrap();
    let last_acked = acked.load(Ordering::SeqCst);
    assert!(
        last_acked >= 300,
        "producer made too little progress: {last_acked}"
    );

    let server = Server::start(dir.path(), &[]);
    let got = read_values(&server.kafka, "crash", last_acked as usize + 2);
    let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values[0], "seed");
    for i in 0..=last_acked {
        assert_eq!(
            values.get(i as usize + 1).copied(),
            Some(format!("rec-{i}").as_str()),
            "acknowledged record {i} lost"
        );
    }
    server.stop();
}

#[test]
fn torn_tail_is_truncated_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    produce_sync(&server.kafka, "torn", (0..10).map(|i| format!("{i}")));
    produce_sync(&server.kafka, "torn", std::iter::once("last".to_string()));
    server.kill();
    let seg = dir.path().join("torn-0").join("00000000000000000000.log");
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut the last batch in half, as a crash in the middle of a write would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 20)
        .unwrap();

    let server = Server::start(dir.path(), &[]);
    let got = read_values(&server.kafka, "torn", 10);
    let values: Vec<String> = got.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    // The torn batch's offset is reused by the next append.
    produce_sync(&server.kafka, "torn", std::iter::once("again".to_string()));
    assert_eq!(
        read_values(&server.kafka, "torn", 11).last().unwrap(),
        &(10, "again".to_string())
    );
    server.stop();
}

#[test]
fn retention_deletes_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("logbridge.toml");
    std::fs::write(&cfg, "retention_check_interval_ms = 100\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let status = common::logbridge_cmd()
        .args([
            "topics",
            "create",
            "short",
            "--config",
            "retention.ms=1000",
            "--config",
            "segment.bytes=1024",
            "--bootstrap-server",
            &server.kafka,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    for chunk in 0..10 {
        produce_sync(
            &server.kafka,
            "short",
            (chunk * 20..chunk * 20 + 20).map(|i| format!("record number {i} with some padding")),
        );
    }
    let segments = || {
        std::fs::read_dir(data.join("short-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    assert!(segments() > 1);
    // Records carry the producer's timestamps (now); after retention.ms they expire and
    // the retention check removes every old segment and moves the log start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let start_offset = || -> i64 {
        let (_, body) = server.http_get("/topics");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "short")
            .unwrap()["partitions"][0]["log_start_offset"]
            .as_i64()
            .unwrap()
    };
    while start_offset() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(start_offset(), 200);
    assert_eq!(segments(), 1);
    server.stop();
}
