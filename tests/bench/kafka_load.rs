//! Throughput and latency benchmark: librdkafka (the `rdkafka` crate) as the load
//! generator against a release build of logbridge on this machine.
//!
//! Run: `cargo bench --bench kafka_load` (optionally `-- RECORDS_100B RECORDS_1K`).
//! For each record size it produces with acks=1 and reports records/s, MB/s and the
//! p50/p99 of produce latency (enqueue to delivery report, as the application sees it),
//! then consumes everything from the beginning and reports the same rates (consumer
//! tuned for throughput: see the queue settings below). Finally it
//! writes the same number of bytes with `dd conv=fdatasync` in the same data directory
//! for a sequential-write baseline and prints the ratio. Last, it measures produce
//! latency below saturation (10,000 records/s), where queueing in the client does not
//! dominate.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use common::LatencyContext;

struct Figures {
    records: usize,
    size: usize,
    produce_secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    consume_secs: f64,
}

fn run(bootstrap: &str, topic: &str, records: usize, size: usize) -> Figures {
    let ctx = LatencyContext::with_capacity(records);
    let producer: BaseProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2000000")
        .set("compression.type", "none")
        .create_with_context(ctx)
        .expect("producer");
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let start = Instant::now();
    for _ in 0..records {
        let mut record =
            BaseRecord::with_opaque_to(topic, Box::new(Instant::now())).payload(&payload[..]);
        loop {
            match producer.send::<(), _>(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    // Queue full: serve delivery reports, then retry.
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    let produce_secs = start.elapsed().as_secs_f64();
    let mut lat = producer.context().latencies_us.lock().unwrap().clone();
    assert_eq!(lat.len(), records, "every record acknowledged");
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        // librdkafka pauses fetching for fetch.queue.backoff.ms (default 1 s) whenever
        // its local queue holds more than queued.min.messages; with 100-byte records
        // that measures the client's idle time, not the broker.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut seen = 0usize;
    let mut bytes = 0usize;
    while seen < records {
        if let Some(m) = consumer.poll(Duration::from_secs(10)) {
            let m = m.expect("consume");
            bytes += m.payload().map(|p| p.len()).unwrap_or(0);
            seen += 1;
        } else {
            panic!("consumer stalled at {seen}/{records}");
        }
    }
    let consume_secs = start.elapsed().as_secs_f64();
    assert_eq!(bytes, records * size);
    Figures {
        records,
        size,
        produce_secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        consume_secs,
    }
}

/// Produce latency below saturation: `records` 100-byte records at `rate` per second,
/// linger.ms=0, acks=1. Returns (p50 ms, p99 ms) from enqueue to delivery report.
fn paced_latency(bootstrap: &str, topic: &str, records: usize, rate: u64) -> (f64, f64) {
    let ctx = LatencyContext::with_capacity(records);
    let producer: BaseProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "0")
        .create_with_context(ctx)
        .expect("producer");
    let payload = [b'p'; 100];
    let start = Instant::now();
    for i in 0..records {
        let due = start + Duration::from_micros(i as u64 * 1_000_000 / rate);
        while Instant::now() < due {
            producer.poll(Duration::from_micros(100));
        }
        producer
            .send::<(), _>(
                BaseRecord::with_opaque_to(topic, Box::new(Instant::now())).payload(&payload[..]),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let mut lat = producer.context().latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    (pct(0.50), pct(0.99))
}

fn dd_mb_per_s(dir: &std::path::Path, bytes: usize) -> f64 {
    let mb = bytes.div_ceil(1 << 20).max(1);
    let out = dir.join("dd.bin");
    let start = Instant::now();
    let status = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", out.display()))
        .arg("bs=1M")
        .arg(format!("count={mb}"))
        .arg("conv=fdatasync")
        .stderr(Stdio::null())
        .status()
        .expect("dd");
    assert!(status.success());
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(out);
    mb as f64 * 1.048576 / secs
}

fn main() {
    let (small, large) = common::two_args((5_000_000, 1_000_000));
    let dir = tempfile::tempdir().expect("tempdir");
    let served = common::serve(&dir.path().join("data"), &["--beats-listen", ""]);
    let (kafka, mut child) = (served.kafka, served.child);

    println!(
        "logbridge benchmark: librdkafka {} producer/consumer, 1 partition, acks=1, no compression",
        rdkafka::util::get_rdkafka_version().1
    );
    println!("| records | size | produce rec/s | produce MB/s | p50 ms | p99 ms | consume rec/s | consume MB/s | dd MB/s | produce/dd |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, (records, size)) in [(small, 100usize), (large, 1024usize)]
        .into_iter()
        .enumerate()
    {
        let f = run(&kafka, &format!("bench-{i}"), records, size);
        let bytes = f.records * f.size;
        let produce_mb = bytes as f64 / 1e6 / f.produce_secs;
        let consume_mb = bytes as f64 / 1e6 / f.consume_secs;
        let dd = dd_mb_per_s(dir.path(), bytes);
        println!(
            "| {} | {} B | {:.0} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} | {:.2} |",
            f.records,
            f.size,
            f.records as f64 / f.produce_secs,
            produce_mb,
            f.p50_ms,
            f.p99_ms,
            f.records as f64 / f.consume_secs,
            consume_mb,
            dd,
            produce_mb / dd
        );
    }
    let (p50, p99) = paced_latency(&kafka, "bench-latency", 20_000, 10_000);
    println!();
    println!("produce latency at 10,000 rec/s (100 B, linger.ms=0, acks=1): p50 {p50:.2} ms, p99 {p99:.2} ms");
    let _ = child.kill();
    let _ = child.wait();
}
