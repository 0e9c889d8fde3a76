//! Replication benchmark: three logbridge nodes on this machine, one partition with
//! three copies, librdkafka producing 1 KiB records with `acks=all` — beside one node
//! with `acks=1` (the single-node figure) in the same run — and the failover time with
//! the default timeouts: from `kill -9` of a partition's leader to the first `acks=all`
//! produce the new leader acknowledges.
//!
//! Run: `cargo bench --bench cluster_load` (optionally `-- RECORDS FAILOVERS`, default
//! 1,000,000 records and 3 failovers). The three nodes and the client share this
//! machine's cores: the CPU each process used is printed so the figure can be read
//! per core.

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use common::LatencyContext;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    served: common::Served,
    id: usize,
}

/// Starts nodes `1..=n` of one cluster (default session and heartbeat timeouts).
fn start_cluster(dir: &std::path::Path, n: usize) -> Vec<Node> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    *VOTERS.lock().unwrap() = voters.clone();
    (1..=n).map(|id| serve_node(dir, id, &voters)).collect()
}

/// Starts node `id` of the cluster of `voters` on `dir/n<id>` (its cluster address is
/// its entry in `voters`).
fn serve_node(dir: &std::path::Path, id: usize, voters: &str) -> Node {
    let cluster = voters
        .split(',')
        .find_map(|v| v.strip_prefix(&format!("{id}@")))
        .expect("a voter")
        .to_string();
    let served = common::serve(
        &dir.join(format!("n{id}")),
        &[
            "--beats-listen",
            "",
            "--node-id",
            &id.to_string(),
            "--voters",
            voters,
            "--cluster-listen",
            &cluster,
        ],
    );
    Node { served, id }
}

fn await_healthy(nodes: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in nodes {
        loop {
            use std::io::{Read, Write};
            let ok = std::net::TcpStream::connect(&n.served.http)
                .and_then(|mut c| {
                    write!(c, "GET /health HTTP/1.0\r\n\r\n")?;
                    let mut s = String::new();
                    c.read_to_string(&mut s)?;
                    Ok(s.starts_with("HTTP/1.0 200") || s.starts_with("HTTP/1.1 200"))
                })
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} never became healthy",
                n.id
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn create_topic(bootstrap: &str, name: &str, rf: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(name, 1, TopicReplication::Fixed(rf))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Produces `records` × `size` bytes; returns (seconds, p50 ms, p99 ms).
fn produce(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    records: usize,
    size: usize,
) -> (f64, f64, f64) {
    let ctx = LatencyContext::with_capacity(records);
    let producer: BaseProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
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
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(600)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    let mut lat = producer.context().latencies_us.lock().unwrap().clone();
    assert_eq!(lat.len(), records, "every record acknowledged");
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    (secs, pct(0.50), pct(0.99))
}

fn leader_of(bootstrap: &str, topic: &str) -> i32 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()[0].partitions()[0].leader()
}

/// From `kill -9` of the partition's leader to the first acks=all produce acknowledged;
/// also when a survivor's `/cluster` first showed the dead broker fenced (the part of
/// the time the session timeout sets).
fn failover(nodes: &mut Vec<Node>, topic: &str) -> (Duration, Option<Duration>, i32) {
    let bootstrap = nodes
        .iter()
        .map(|n| n.served.kafka.clone())
        .collect::<Vec<_>>()
        .join(",");
    let leader = leader_of(&bootstrap, topic);
    let at = nodes.iter().position(|n| n.id as i32 == leader).unwrap();
    let mut dead = nodes.remove(at);
    let survivors = nodes
        .iter()
        .map(|n| n.served.kafka.clone())
        .collect::<Vec<_>>()
        .join(",");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &survivors)
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    // Connected and with metadata before the kill, as a running producer is.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let _ = dead.served.child.kill();
    let _ = dead.served.child.wait();
    let killed = Instant::now();
    let http = nodes[0].served.http.clone();
    let fenced = std::thread::spawn(move || {
        while killed.elapsed() < Duration::from_secs(60) {
            let s = common::get_json(&http, "/cluster");
            let gone = s["brokers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["id"] == leader as i64 && b["state"] == "fenced");
            if gone {
                return Some(killed.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    });
    producer
        .send::<(), _>(BaseRecord::to(topic).payload(b"after the kill"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer
        .flush(Duration::from_secs(60))
        .expect("acknowledged after failover");
    (killed.elapsed(), fenced.join().unwrap(), leader)
}

fn main() {
    let (records, failovers) = common::two_args((1_000_000, 3));
    let size = 1024;
    println!(
        "logbridge replication benchmark: librdkafka {}, {records} × {size} B, one partition, no compression",
        rdkafka::util::get_rdkafka_version().1
    );
    println!("| setup | acks | rec/s | MB/s | p50 ms | p99 ms | CPU s per node | client CPU s |");
    println!("|---|---|---|---|---|---|---|---|");
    let me = std::process::id();

    let dir = tempfile::tempdir().expect("tempdir");
    let single = common::serve(&dir.path().join("single"), &["--beats-listen", ""]);
    let client_before = common::cpu_seconds(me);
    let (secs, p50, p99) = produce(&single.kafka, "bench", "1", records, size);
    let cpu = common::cpu_seconds(single.child.id());
    println!(
        "| 1 node | 1 | {:.0} | {:.1} | {p50:.2} | {p99:.2} | {cpu:.1} | {:.1} |",
        records as f64 / secs,
        (records * size) as f64 / 1e6 / secs,
        common::cpu_seconds(me) - client_before
    );
    let mut single = single;
    let _ = single.child.kill();
    let _ = single.child.wait();

    let dir = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(dir.path(), 3);
    await_healthy(&nodes);
    let bootstrap = nodes
        .iter()
        .map(|n| n.served.kafka.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&bootstrap, "bench", 3);
    let before: Vec<f64> = nodes
        .iter()
        .map(|n| common::cpu_seconds(n.served.child.id()))
        .collect();
    let client_before = common::cpu_seconds(me);
    let (secs, p50, p99) = produce(&bootstrap, "bench", "all", records, size);
    let cpu: Vec<String> = nodes
        .iter()
        .zip(&before)
        .map(|(n, b)| format!("{:.1}", common::cpu_seconds(n.served.child.id()) - b))
        .collect();
    println!(
        "| 3 nodes, RF 3 | all | {:.0} | {:.1} | {p50:.2} | {p99:.2} | {} | {:.1} |",
        records as f64 / secs,
        (records * size) as f64 / 1e6 / secs,
        cpu.join(" / "),
        common::cpu_seconds(me) - client_before
    );

    println!();
    println!(
        "failover with the default timeouts (broker_session_timeout_ms 9000, heartbeat 2000):"
    );
    for round in 0..failovers {
        let topic = format!("failover-{round}");
        create_topic(&bootstrap, &topic, 3);
        let (took, fenced, leader) = failover(&mut nodes, &topic);
        println!(
            "  round {}: leader {leader} killed; fenced (a new leader named) after {}, first acks=all produce acknowledged after {:.2} s",
            round + 1,
            fenced.map_or("-".to_string(), |f| format!("{:.2} s", f.as_secs_f64())),
            took.as_secs_f64()
        );
        // Bring the killed node back for the next round.
        let restarted = restart(dir.path(), leader as usize);
        nodes.push(restarted);
        nodes.sort_by_key(|n| n.id);
        await_healthy(&nodes);
    }
    for mut n in nodes {
        let _ = n.served.child.kill();
        let _ = n.served.child.wait();
    }
}

/// Starts node `id` again on its data directory and cluster address.
fn restart(dir: &std::path::Path, id: usize) -> Node {
    let voters = VOTERS.lock().unwrap().clone();
    serve_node(dir, id, &voters)
}

/// The voters of the cluster `start_cluster` started.
static VOTERS: Mutex<String> = Mutex::new(String::new());
