//! End-to-end benchmark: Lumberjack clients (the protocol's frames, as in beats_load)
//! ship 500-byte nginx access events → the Beats listener → the `nginx` topic → a
//! pipeline of grok (COMBINEDAPACHELOG) + date + mutate → the elasticsearch output →
//! `_bulk` into a server in this benchmark that answers every document as created and
//! discards it (a stand-in for Elasticsearch, which cannot be installed here). Reports
//! events/s from the first window sent to the last document received, and the
//! appliance's CPU time and peak resident memory.
//!
//! Run: `cargo bench --bench es_load` (optionally `-- CONNECTIONS WINDOWS_PER_CONNECTION`).

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WINDOW: usize = 2048;
const EVENT_BYTES: usize = 500;

/// Window `w`: 2048 distinct events of exactly 500 bytes of JSON, zlib level 3.
fn window_bytes(w: usize) -> Vec<u8> {
    let mut events = Vec::with_capacity(WINDOW);
    for i in 0..WINDOW {
        let n = w * WINDOW + i;
        let head = format!(
            r#"{{"fields":{{"log_topic":"nginx"}},"tags":["access"],"host":{{"name":"web-{}"}},"message":"{}.{}.{}.{} - - [22/Nov/2026:10:{:02}:{:02} +0000] \"GET /api/v1/items/{n} HTTP/1.1\" 200 {} \"https://example.com/list\" \"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"#,
            n % 8,
            10 + n % 200,
            n % 251,
            (n / 7) % 253,
            1 + n % 250,
            (n / 60) % 60,
            n % 60,
            n % 50_000,
        );
        let pad = EVENT_BYTES - head.len() - 3;
        let event = format!("{head}{}\\\"\"}}", " ".repeat(pad - 1));
        assert_eq!(event.len(), EVENT_BYTES, "{event}");
        events.push(event);
    }
    common::lumberjack_window(&events)
}

/// The discarding `_bulk` server: answers each action line with a 201 item.
fn discard_server(received: Arc<AtomicU64>) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/_bulk",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let received = received.clone();
                        async move {
                            // index actions: an action line and a document line each.
                            let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
                            let docs = lines / 2;
                            received.fetch_add(docs as u64, Ordering::Relaxed);
                            let item = r#"{"index":{"_index":"x","_id":"y","status":201,"result":"created"}}"#;
                            let mut out = String::with_capacity(40 + docs * (item.len() + 1));
                            out.push_str(r#"{"took":1,"errors":false,"items":["#);
                            for k in 0..docs {
                                if k > 0 {
                                    out.push(',');
                                }
                                out.push_str(item);
                            }
                            out.push_str("]}");
                            ([("content-type", "application/json")], out)
                        }
                    }),
                )
                .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

fn main() {
    let (connections, windows) = common::two_args((4, 25));
    let received = Arc::new(AtomicU64::new(0));
    let es = discard_server(received.clone());
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(
        pipelines.join("nginx.conf"),
        format!(
            r#"input {{ kafka {{ topics => ["nginx"] auto_offset_reset => "earliest" codec => json consumer_threads => 2 }} }}
filter {{
  grok {{ match => {{ "message" => "%{{COMBINEDAPACHELOG}}" }} }}
  date {{ match => ["timestamp", "dd/MMM/yyyy:HH:mm:ss Z"] }}
  mutate {{ remove_field => ["timestamp"] lowercase => ["[http][request][method]"] }}
}}
output {{ elasticsearch {{ hosts => ["{es}"] index => "nginx_access-%{{+YYYY.MM.dd}}" }} }}
"#
        ),
    )
    .unwrap();
    let cfg = dir.path().join("bench.toml");
    std::fs::write(&cfg, "num_partitions = 2\n").unwrap();
    let served = common::serve(
        &dir.path().join("data"),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--pipelines",
            pipelines.to_str().unwrap(),
        ],
    );
    let pid = served.child.id();
    let payloads: Vec<Vec<u8>> = (0..connections * windows).map(window_bytes).collect();
    let payloads = Arc::new(payloads);
    // Warm-up: one window creates the topic and goes all the way through, so that the
    // measurement does not include the input discovering the new topic (it looks for
    // topics every few seconds).
    let mut s = TcpStream::connect(&served.beats).unwrap();
    s.write_all(&window_bytes(connections * windows)).unwrap();
    common::wait_ack(&mut s, WINDOW as u32);
    while received.load(Ordering::Relaxed) < WINDOW as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    received.store(0, Ordering::Relaxed);
    let (start, cpu0) = (Instant::now(), common::cpu_seconds(pid));
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let (beats, payloads) = (served.beats.clone(), payloads.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&beats).unwrap();
                s.set_nodelay(true).unwrap();
                for w in 0..windows {
                    s.write_all(&payloads[c * windows + w]).unwrap();
                    common::wait_ack(&mut s, WINDOW as u32);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let shipped = start.elapsed().as_secs_f64();
    let events = (connections * windows * WINDOW) as u64;
    while received.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds(pid) - cpu0;
    let view = common::get_json(&served.http, "/pipelines");
    let grok = &view["pipelines"][0]["filters"][0];
    assert_eq!(grok["events_in"].as_u64(), Some(events + WINDOW as u64));
    assert_eq!(grok["failures"].as_u64(), Some(0), "every line parsed");
    assert_eq!(
        received.load(Ordering::Relaxed),
        events,
        "each document once"
    );
    println!("logbridge end-to-end benchmark: {connections} Lumberjack connections x {windows} windows x {WINDOW} events of {EVENT_BYTES} B (zlib 3) -> Beats -> topic nginx (2 partitions) -> grok COMBINEDAPACHELOG + date + mutate -> elasticsearch output -> discarding _bulk server");
    println!(
        "{events} events in {secs:.2} s ({shipped:.2} s to ship): {:.0} events/s end to end; appliance CPU {cpu:.2} s ({:.2} cores busy), peak RSS {:.0} MiB",
        events as f64 / secs,
        cpu / secs,
        common::rss_mib(pid)
    );
    let mut child = served.child;
    let _ = child.kill();
    let _ = child.wait();
}
