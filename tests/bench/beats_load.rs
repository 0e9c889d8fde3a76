//! Beats ingest benchmark: Lumberjack v2 clients (implemented here with the protocol's
//! own frames: window, zlib-compressed JSON frames, ack) send 500-byte JSON events in
//! compressed windows of 2048 to a release build, waiting for each window's ack before
//! the next, as Filebeat does without pipelining. Reports events/s and MB/s of event
//! JSON, and checks every event landed in the topic.
//!
//! Run: `cargo bench --bench beats_load` (optionally `-- CONNECTIONS WINDOWS_PER_CONNECTION`).

use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

#[path = "common.rs"]
mod common;

const WINDOW: usize = 2048;
const EVENT_BYTES: usize = 500;

/// One compressed window: `2W` + `2C` holding 2048 `2J` frames (sequence 1..=2048).
fn window_bytes() -> Vec<u8> {
    let mut events = Vec::with_capacity(WINDOW);
    for i in 0..WINDOW {
        let head = format!(
            r#"{{"@timestamp":"2026-11-22T10:00:00.000Z","fields":{{"log_topic":"bench"}},"seq":{i},"message":""#
        );
        let pad = EVENT_BYTES - head.len() - 2;
        let event = format!(
            "{head}{}\"}}",
            "GET /index.html HTTP/1.1 200 ".repeat(20)[..pad].to_string()
        );
        assert_eq!(event.len(), EVENT_BYTES);
        events.push(event);
    }
    common::lumberjack_window(&events)
}

fn main() {
    let (connections, windows) = common::two_args((4, 100));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bench.toml");
    std::fs::write(&cfg, "beats_topic = \"bench\"\n").unwrap();
    let served = common::serve(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let (beats, http, mut child) = (served.beats, served.http, served.child);
    let payload = window_bytes();
    // Warm up: one window creates the topic.
    let mut s = TcpStream::connect(&beats).unwrap();
    s.write_all(&payload).unwrap();
    common::wait_ack(&mut s, WINDOW as u32);
    let start = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (beats, payload) = (beats.clone(), payload.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&beats).unwrap();
                s.set_nodelay(true).unwrap();
                for _ in 0..windows {
                    s.write_all(&payload).unwrap();
                    common::wait_ack(&mut s, WINDOW as u32);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let events = connections * windows * WINDOW;
    // Every acknowledged event is in the topic.
    let json = common::get_json(&http, "/topics");
    let end = json["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bench")
        .unwrap()["partitions"][0]["log_end_offset"]
        .as_i64()
        .unwrap();
    assert_eq!(
        end as usize,
        events + WINDOW,
        "every acknowledged event stored"
    );
    println!("logbridge Beats benchmark: {connections} connections x {windows} windows x {WINDOW} events of {EVENT_BYTES} B, zlib level 3, 1 window in flight per connection");
    println!(
        "{events} events in {secs:.2} s: {:.0} events/s, {:.1} MB/s of event JSON; peak RSS {:.0} MiB",
        events as f64 / secs,
        (events * EVENT_BYTES) as f64 / 1e6 / secs,
        common::rss_mib(child.id())
    );
    let _ = child.kill();
    let _ = child.wait();
}
