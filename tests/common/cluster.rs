//! A cluster of logbridge processes on loopback for the multi-node tests: nodes started
//! with one voter list, bounded waits on `/health` and `/cluster`, kills and restarts,
//! and the rdkafka helpers the tests share (topics, placement, keyed produce, group
//! reads).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{write_config, Server};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A broker session short enough for the test to wait out (Kafka's default is 9 s).
pub const SESSION_MS: u64 = 3000;

pub struct Cluster {
    pub nodes: Vec<Option<Server>>,
    pub voters: String,
    pub cluster_ports: Vec<u16>,
    pub dir: tempfile::TempDir,
    /// Settings every node's configuration file ends with.
    pub extra_config: String,
    /// Arguments every node is started with besides the cluster's.
    pub extra_args: Vec<String>,
}

/// A free port below the kernel's ephemeral range, so that no listener bound to port
/// 0 (a node's Kafka or HTTP listener, here or in a test running beside this one) can
/// take it between now and the node binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    let start = 20_000 + (std::process::id() % 4000) as u16;
    loop {
        let p = start + NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(p < low, "no free port below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

pub fn start_node(dir: &Path, id: usize, voters: &str, cluster_port: u16) -> Server {
    start_node_with(dir, id, voters, cluster_port, "", &[])
}

/// As `start_node`, with `extra_config` (`{id}` stands for the node id) appended to
/// the node's configuration and `extra_args` on its command line.
pub fn start_node_with(
    dir: &Path,
    id: usize,
    voters: &str,
    cluster_port: u16,
    extra_config: &str,
    extra_args: &[String],
) -> Server {
    let data = dir.join(format!("n{id}"));
    std::fs::create_dir_all(&data).unwrap();
    let config = write_config(
        dir,
        &format!("n{id}.toml"),
        &format!(
            "broker_session_timeout_ms = {SESSION_MS}\nbroker_heartbeat_interval_ms = 500\noffsets_topic_num_partitions = 6\n{}",
            extra_config.replace("{id}", &id.to_string())
        ),
    );
    let (id, cluster_listen) = (id.to_string(), format!("127.0.0.1:{cluster_port}"));
    let mut args = vec![
        "--config",
        &config,
        "--node-id",
        &id,
        "--voters",
        voters,
        "--cluster-listen",
        &cluster_listen,
    ];
    args.extend(extra_args.iter().map(String::as_str));
    Server::start(&data, &args)
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, "", &[])
    }

    /// `n` nodes, each started as `start_node_with` says.
    pub fn start_with(n: usize, extra_config: &str, extra_args: &[String]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let voters = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| {
                Some(start_node_with(
                    dir.path(),
                    i + 1,
                    &voters,
                    cluster_ports[i],
                    extra_config,
                    extra_args,
                ))
            })
            .collect();
        let c = Cluster {
            nodes,
            voters,
            cluster_ports,
            dir,
            extra_config: extra_config.to_string(),
            extra_args: extra_args.to_vec(),
        };
        for id in 1..=n {
            c.await_healthy(id);
        }
        c
    }

    pub fn node(&self, id: usize) -> &Server {
        self.nodes[id - 1].as_ref().expect("node is running")
    }

    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|s| s.kafka.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until `/health` on node `id` answers 200 (joined and registered).
    pub fn await_healthy(&self, id: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.node(id).http_get("/health").0 == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "node {id} never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn status(&self, id: usize) -> serde_json::Value {
        let (code, body) = self.node(id).http_get("/cluster");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls node `id`'s `/cluster` until `done` holds (bounded).
    pub fn await_status(
        &self,
        id: usize,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status(id);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "node {id}: {what} never happened: {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn raft_leader(&self, id: usize) -> usize {
        let s = self.await_status(id, "a raft leader", |s| {
            s["quorum"]["raft_leader"].is_number()
        });
        s["quorum"]["raft_leader"].as_u64().unwrap() as usize
    }

    pub fn kill(&mut self, id: usize) {
        self.nodes[id - 1].take().expect("running").kill();
    }

    pub fn restart(&mut self, id: usize) {
        assert!(self.nodes[id - 1].is_none());
        self.nodes[id - 1] = Some(start_node_with(
            self.dir.path(),
            id,
            &self.voters,
            self.cluster_ports[id - 1],
            &self.extra_config,
            &self.extra_args,
        ));
        self.await_healthy(id);
    }
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create_replicated_topic(bootstrap, name, partitions, 1, &[]).await
}

pub async fn create_replicated_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(
        name,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(bootstrap)
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Partition → (leader, replicas, ISR), as the node at `bootstrap` answers Metadata.
pub fn placement(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            (
                p.id(),
                (p.leader(), p.replicas().to_vec(), p.isr().to_vec()),
            )
        })
        .collect()
}

/// Partition → leader, as the node at `bootstrap` answers Metadata.
pub fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    placement(bootstrap, topic)
        .into_iter()
        .map(|(p, (leader, _, _))| (p, leader))
        .collect()
}

/// Reads every partition of `topic` from the start through a group, until `count`
/// values came (bounded), then commits.
pub fn consume_all(bootstrap: &str, group: &str, topic: &str, count: usize) -> Vec<String> {
    consume_until(bootstrap, group, topic, |read| read.len() >= count)
}

/// As `consume_all`, until `done` holds for what was read (bounded).
pub fn consume_until(
    bootstrap: &str,
    group: &str,
    topic: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&out) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(e)) => eprintln!("consume: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    out
}

pub async fn produce_keyed(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let key = format!("{prefix}-k{i}");
            let value = format!("{prefix}-{i}");
            let producer = producer.clone();
            let topic = topic.to_string();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        })
        .collect();
    for r in futures_util::future::join_all(sends).await {
        r.expect("acknowledged");
    }
}
