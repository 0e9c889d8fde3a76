//! Pipeline benchmark: nginx access lines in a topic → a pipeline of grok
//! (COMBINEDAPACHELOG) + date + mutate → the `null` output. The lines are produced
//! first (librdkafka, into a server without pipelines), then the appliance restarts
//! with the pipeline, and the benchmark measures the time and the process's CPU time
//! (user + system, from /proc) until `/pipelines` reports every event delivered.
//! Events/s per core is events / CPU seconds.
//!
//! Run: `cargo bench --bench pipeline_load` (optionally `-- EVENTS WORKERS`).

#[path = "common.rs"]
mod common;

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PARTITIONS: usize = 2;

fn access_line(i: usize) -> String {
    const PATHS: [&str; 5] = [
        "/index.html",
        "/api/v1/items?page=2&sort=desc",
        "/static/js/app.3f9a1c.js",
        "/downloads/product_1",
        "/login",
    ];
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Debian APT-HTTP/1.3 (2.6.1)",
        "curl/8.5.0",
    ];
    format!(
        "{}.{}.{}.{} - - [22/Nov/2026:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"https://example.com/\" \"{}\"",
        10 + i % 200,
        i % 251,
        (i / 7) % 253,
        1 + i % 250,
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60,
        if i % 5 == 0 { "POST" } else { "GET" },
        PATHS[i % PATHS.len()],
        [200, 200, 200, 304, 404][i % 5],
        (i * 37) % 50_000,
        AGENTS[i % AGENTS.len()],
    )
}

fn main() {
    let (events, workers) = common::two_args((2_000_000, 0));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // 1. The topic, filled by librdkafka.
    let served = common::serve(&data, &["--beats-listen", ""]);
    let mut child = served.child;
    std::process::Command::new(common::binary())
        .args([
            "topics",
            "create",
            "nginx",
            "--partitions",
            &PARTITIONS.to_string(),
            "--bootstrap-server",
            &served.kafka,
        ])
        .status()
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &served.kafka)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut bytes = 0usize;
    for i in 0..events {
        let line = access_line(i);
        bytes += line.len();
        let key = i.to_string();
        loop {
            match producer.send(BaseRecord::to("nginx").key(&key).payload(&line)) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    // SIGTERM, so the first server shuts down cleanly before the second starts.
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();

    // 2. The pipeline over it.
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(
        pipelines.join("bench.conf"),
        r#"input { kafka { topics => ["nginx"] auto_offset_reset => "earliest" consumer_threads => 2 } }
filter {
  grok { match => { "message" => "%{COMBINEDAPACHELOG}" } }
  date { match => ["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"] }
  mutate {
    remove_field => ["timestamp"]
    lowercase => ["[http][request][method]"]
    add_field => { "[event][dataset]" => "nginx.access" }
  }
}
output { null {} }
"#,
    )
    .unwrap();
    let workers_arg = workers.to_string();
    let mut extra = vec![
        "--beats-listen",
        "",
        "--pipelines",
        pipelines.to_str().unwrap(),
    ];
    if workers > 0 {
        extra.extend(["--pipeline-workers", &workers_arg]);
    }
    let served = common::serve(&data, &extra);
    let pid = served.child.id();
    let (start, cpu0) = (Instant::now(), common::cpu_seconds(pid));
    let out = loop {
        let view = common::get_json(&served.http, "/pipelines");
        let out = view["pipelines"][0]["events"]["out"].as_u64().unwrap_or(0) as usize;
        if out >= events {
            break out;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds(pid) - cpu0;
    let view = common::get_json(&served.http, "/pipelines");
    let grok = &view["pipelines"][0]["filters"][0];
    assert_eq!(grok["events_in"].as_u64(), Some(events as u64));
    let tagged = view["pipelines"][0]["filters"][1]["events_in"].as_u64();
    assert_eq!(tagged, Some(events as u64), "every event reached date");
    assert_eq!(out, events);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("logbridge pipeline benchmark: {events} nginx access lines ({:.0} B average) in {PARTITIONS} partitions, kafka input (in-process) → grok COMBINEDAPACHELOG + date + mutate → null; workers {}, {cores} cores",
        bytes as f64 / events as f64, if workers == 0 { cores } else { workers });
    println!(
        "{events} events in {secs:.2} s: {:.0} events/s; CPU {cpu:.2} s ({:.2} cores busy): {:.0} events/s per core; peak RSS {:.0} MiB",
        events as f64 / secs,
        cpu / secs,
        events as f64 / cpu,
        common::rss_mib(pid)
    );
    let mut child = served.child;
    let _ = child.kill();
    let _ = child.wait();
}
