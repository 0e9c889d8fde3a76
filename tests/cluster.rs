//! Three logbridge processes on loopback form one cluster on their Raft metadata quorum:
//! every node answers the same metadata, clients follow leaders, groups commit through
//! the coordinator node, and the quorum survives the death of its leader. Each test
//! starts its own nodes and kills them when it ends; every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{write_config, Server};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

/// A broker session short enough for the test to wait out (Kafka's default is 9 s).
const SESSION_MS: u64 = 3000;

struct Cluster {
    nodes: Vec<Option<Server>>,
    voters: String,
    cluster_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

/// A free port below the kernel's ephemeral range, so that no listener bound to port
/// 0 (a node's Kafka or HTTP listener, here or in a test running beside this one) can
/// take it between now and the node binding it.
fn free_port() -> u16 {
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

fn start_node(dir: &Path, id: usize, voters: &str, cluster_port: u16) -> Server {
    let data = dir.join(format!("n{id}"));
    std::fs::create_dir_all(&data).unwrap();
    let config = write_config(
        dir,
        &format!("n{id}.toml"),
        &format!(
            "broker_session_timeout_ms = {SESSION_MS}\nbroker_heartbeat_interval_ms = 500\noffsets_topic_num_partitions = 6\n"
        ),
    );
    Server::start(
        &data,
        &[
            "--config",
            &config,
            "--node-id",
            &id.to_string(),
            "--voters",
            voters,
            "--cluster-listen",
            &format!("127.0.0.1:{cluster_port}"),
        ],
    )
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let voters = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| Some(start_node(dir.path(), i + 1, &voters, cluster_ports[i])))
            .collect();
        let c = Cluster {
            nodes,
            voters,
            cluster_ports,
            dir,
        };
        for id in 1..=n {
            c.await_healthy(id);
        }
        c
    }

    fn node(&self, id: usize) -> &Server {
        self.nodes[id - 1].as_ref().expect("node is running")
    }

    fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|s| s.kafka.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until `/health` on node `id` answers 200 (joined and registered).
    fn await_healthy(&self, id: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.node(id).http_get("/health").0 == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "node {id} never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status(&self, id: usize) -> serde_json::Value {
        let (code, body) = self.node(id).http_get("/cluster");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls node `id`'s `/cluster` until `done` holds (bounded).
    fn await_status(
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

    fn raft_leader(&self, id: usize) -> usize {
        let s = self.await_status(id, "a raft leader", |s| {
            s["quorum"]["raft_leader"].is_number()
        });
        s["quorum"]["raft_leader"].as_u64().unwrap() as usize
    }

    fn kill(&mut self, id: usize) {
        self.nodes[id - 1].take().expect("running").kill();
    }

    fn restart(&mut self, id: usize) {
        assert!(self.nodes[id - 1].is_none());
        self.nodes[id - 1] = Some(start_node(
            self.dir.path(),
            id,
            &self.voters,
            self.cluster_ports[id - 1],
        ));
        self.await_healthy(id);
    }
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create_replicated_topic(bootstrap, name, partitions, 1, &[]).await
}

async fn create_replicated_topic(
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
fn placement(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
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
fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
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
        .map(|p| (p.id(), p.leader()))
        .collect()
}

/// Reads every partition of `topic` from the start through a group, until `count`
/// values came (bounded), then commits.
fn consume_all(bootstrap: &str, group: &str, topic: &str, count: usize) -> Vec<String> {
    consume_until(bootstrap, group, topic, |read| read.len() >= count)
}

/// As `consume_all`, until `done` holds for what was read (bounded).
fn consume_until(
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

async fn produce_keyed(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_answer_one_metadata_and_serve_their_own_partitions() {
    let cluster = Cluster::start(3);
    create_topic(&cluster.node(1).kafka, "spread", 6).await;
    // Every node tells the same leaders, spread over all three brokers.
    let seen: Vec<_> = (1..=3)
        .map(|i| leaders(&cluster.node(i).kafka, "spread"))
        .collect();
    assert_eq!(seen[0].len(), 6);
    assert!(seen.iter().all(|l| *l == seen[0]), "{seen:?}");
    let by: BTreeSet<i32> = seen[0].values().copied().collect();
    assert_eq!(by, BTreeSet::from([1, 2, 3]));
    let status = cluster.status(2);
    assert_eq!(status["brokers"].as_array().unwrap().len(), 3);
    assert!(status["offline"].as_array().unwrap().is_empty());
    // The operator's view of the same.
    let out = common::logbridge_cmd()
        .args(["cluster", "status", "--http", &cluster.node(2).http])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let leader = status["quorum"]["raft_leader"].as_u64().unwrap();
    assert!(
        text.contains(&format!("metadata leader {leader} (term ")),
        "{text}"
    );
    assert_eq!(text.matches("\talive\t").count(), 3, "{text}");
    assert!(text.contains("Partitions without a leader: none"), "{text}");

    // A client bootstrapped anywhere reaches each partition's leader.
    produce_keyed(&cluster.node(3).kafka, "spread", "a", 600).await;
    let read = consume_all(&cluster.node(2).kafka, "g-spread", "spread", 600);
    let distinct: BTreeSet<_> = read.iter().collect();
    assert_eq!((read.len(), distinct.len()), (600, 600));

    // The committed offsets live on the group's coordinator: any node finds them.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.node(1).kafka.as_str())
        .set("group.id", "g-spread")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition("spread", p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(-1))
        .sum();
    assert_eq!(total, 600, "{committed:?}");
    // The operator's group commands find the coordinator from any node.
    for node in 1..=3 {
        let kafka = &cluster.node(node).kafka;
        let list = common::cli_stdout(&common::cli(&["groups", "list"], kafka, None));
        assert!(list.contains("g-spread"), "{list}");
        let text = common::cli_stdout(&common::cli(
            &["groups", "describe", "g-spread"],
            kafka,
            None,
        ));
        let current: i64 = text
            .lines()
            .filter(|l| l.starts_with("spread\t"))
            .map(|l| l.split('\t').nth(2).unwrap().parse::<i64>().unwrap())
            .sum();
        assert_eq!(current, 600, "{text}");
    }

    // A node that does not lead a partition refuses to take its records.
    let (partition, leader) = seen[0].iter().next().map(|(p, l)| (*p, *l)).unwrap();
    assert_eq!(partition, 0);
    let other = if leader == 1 { 2 } else { 1 };
    let mut raw = logbridge::client::KafkaClient::connect(&cluster.node(other).kafka)
        .await
        .unwrap();
    let records = logbridge::protocol::records::encode_batch(
        vec![(None, Some(bytes::Bytes::from_static(b"x")))],
        0,
        kafka_protocol::records::Compression::None,
    )
    .unwrap()
    .freeze();
    assert_eq!(
        common::produce_raw(&mut raw, "spread", records).await,
        6,
        "NOT_LEADER_OR_FOLLOWER from node {other}"
    );

    // The command line follows leaders too: keyed lines in through node 3 land on
    // every partition, and a consumer bootstrapped at node 1 reads them all back.
    let input: String = (0..60).map(|i| format!("cli-k{i}:cli-{i}\n")).collect();
    let produce = common::cli(
        &["produce", "--topic", "spread", "--key-separator", ":"],
        &cluster.node(3).kafka,
        Some(&input),
    );
    common::cli_stdout(&produce);
    let lines = common::cli_stdout(&common::cli(
        &[
            "consume",
            "--topic",
            "spread",
            "--from-beginning",
            "--max-messages",
            "660",
            "--timeout-ms",
            "20000",
        ],
        &cluster.node(1).kafka,
        None,
    ));
    assert_eq!(lines.lines().filter(|l| l.starts_with("cli-")).count(), 60);
    assert_eq!(lines.lines().count(), 660);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quorum_outlives_its_leader_and_a_returning_node_leads_its_partitions_again() {
    let mut cluster = Cluster::start(3);
    create_topic(&cluster.node(1).kafka, "survive", 3).await;
    produce_keyed(&cluster.bootstrap(), "survive", "before", 300).await;

    let dead = cluster.raft_leader(1);
    let alive: Vec<usize> = (1..=3).filter(|i| *i != dead).collect();
    let dead_partitions: Vec<i32> = leaders(&cluster.node(alive[0]).kafka, "survive")
        .into_iter()
        .filter(|(_, l)| *l == dead as i32)
        .map(|(p, _)| p)
        .collect();
    assert!(!dead_partitions.is_empty());
    cluster.kill(dead);

    // The two others elect a new metadata leader and take changes.
    let started = Instant::now();
    create_topic(&cluster.node(alive[0]).kafka, "after", 2).await;
    let new_leader = cluster.raft_leader(alive[1]);
    assert!(alive.contains(&new_leader), "new leader {new_leader}");
    eprintln!(
        "metadata change committed {:?} after the leader's death",
        started.elapsed()
    );

    // The silent broker is fenced after its session; its partitions have no leader
    // (one copy each: no other replica may take over).
    let s = cluster.await_status(alive[1], "fencing", |s| {
        s["brokers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == dead as u64 && b["state"] == "fenced")
    });
    let offline: BTreeSet<i64> = s["offline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == "survive")
        .map(|p| p["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(offline, dead_partitions.iter().map(|p| *p as i64).collect());

    // Back again: it registers anew, is unfenced, leads its partitions, and every
    // acknowledged record is still there.
    cluster.restart(dead);
    cluster.await_status(alive[0], "the returning node leading again", |s| {
        s["offline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["topic"] != "survive")
    });
    let l = leaders(&cluster.node(dead).kafka, "survive");
    assert!(dead_partitions.iter().all(|p| l[p] == dead as i32), "{l:?}");
    let read = consume_all(&cluster.bootstrap(), "g-survive", "survive", 300);
    let distinct: BTreeSet<_> = read.iter().collect();
    assert_eq!(distinct.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_ids_are_unique_across_the_cluster() {
    use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, RequestKind, ResponseKind};
    let cluster = Cluster::start(3);
    let mut ids = BTreeSet::new();
    for round in 0..2 {
        for node in 1..=3 {
            let mut c = logbridge::client::KafkaClient::connect(&cluster.node(node).kafka)
                .await
                .unwrap();
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1);
            match c
                .send(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req))
                .await
                .unwrap()
            {
                ResponseKind::InitProducerId(r) => {
                    assert_eq!(r.error_code, 0, "round {round} node {node}");
                    assert!(
                        ids.insert(r.producer_id.0),
                        "id {} handed out twice",
                        r.producer_id.0
                    );
                }
                _ => panic!("wrong response"),
            }
        }
    }
    assert_eq!(ids.len(), 6);
}

#[test]
fn named_listeners_advertise_the_address_of_the_listener_a_client_came_in_on() {
    let dir = tempfile::tempdir().unwrap();
    let (internal, external) = (free_port(), free_port());
    let config = write_config(
        dir.path(),
        "listeners.toml",
        &format!(
            "listeners = \"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}\"\n\
             advertised_listeners = \"INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}\"\n"
        ),
    );
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    assert_eq!(server.kafka, format!("127.0.0.1:{internal}"));
    let brokers = |bootstrap: String| -> Vec<(String, i32)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .unwrap();
        let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
        md.brokers()
            .iter()
            .map(|b| (b.host().to_string(), b.port()))
            .collect()
    };
    assert_eq!(
        brokers(format!("127.0.0.1:{internal}")),
        vec![("127.0.0.1".to_string(), internal as i32)]
    );
    assert_eq!(
        brokers(format!("127.0.0.1:{external}")),
        vec![("localhost".to_string(), external as i32)]
    );
}

#[test]
fn without_a_majority_no_change_is_made_and_health_says_joining() {
    let mut cluster = Cluster::start(3);
    cluster.kill(2);
    cluster.kill(3);
    let lone = cluster.node(1);
    let started = Instant::now();
    let out = common::cli(&["topics", "create", "nomajority"], &lone.kafka, None);
    assert!(
        !out.status.success(),
        "a topic was created without a majority"
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("RequestTimedOut"), "{err}");
    eprintln!("refused after {:?}", started.elapsed());
    // Its /health no longer says ready: it has no metadata leader it can reach.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = lone.http_get("/health");
        if code == 503 {
            assert!(body.contains("\"joining\""), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still healthy without a majority"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing changed while the majority was missing.
    let (_, body) = lone.http_get("/cluster");
    assert!(!body.contains("nomajority"), "{body}");
    // A majority again: the change goes through (or the refused proposal, which
    // stayed in a cut-off leader's log, took effect once a majority was back, as a
    // timed-out Kafka request may).
    cluster.restart(2);
    cluster.await_healthy(1);
    let out = common::cli(
        &["topics", "create", "nomajority"],
        &cluster.node(1).kafka,
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() || err.contains("TopicAlreadyExists"),
        "{err}"
    );
    assert_eq!(leaders(&cluster.node(1).kafka, "nomajority").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_ingest_on_any_node_appends_through_each_partitions_leader() {
    let cluster = Cluster::start(3);
    create_topic(&cluster.node(2).kafka, "docs", 3).await;
    // Keyed by _id: each document goes to its key's partition, two thirds of which
    // node 1 does not lead.
    let mut body = String::new();
    for i in 0..300 {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"docs\",\"_id\":\"d{i}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    let (code, answer) = cluster.node(1).http_post("/_bulk", &body);
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["errors"], false, "{answer}");
    let led_by_1 = leaders(&cluster.node(1).kafka, "docs")
        .values()
        .filter(|l| **l == 1)
        .count();
    assert_eq!(led_by_1, 1, "one partition per node");
    let read = consume_all(&cluster.node(3).kafka, "g-docs", "docs", 300);
    let distinct: BTreeSet<_> = read.iter().collect();
    assert_eq!(distinct.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_voters_joins_as_a_broker_only() {
    let mut cluster = Cluster::start(3);
    let port = free_port();
    cluster.nodes.push(Some(start_node(
        cluster.dir.path(),
        4,
        &cluster.voters,
        port,
    )));
    cluster.cluster_ports.push(port);
    cluster.await_healthy(4);
    let status = cluster.await_status(1, "broker 4 registered", |s| {
        s["brokers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == 4 && b["state"] == "alive")
    });
    // It follows the metadata log but does not vote.
    assert_eq!(status["quorum"]["voters"], serde_json::json!([1, 2, 3]));
    create_topic(&cluster.node(4).kafka, "four", 4).await;
    let l = leaders(&cluster.node(4).kafka, "four");
    assert!(l.values().any(|b| *b == 4), "{l:?}");
    produce_keyed(&cluster.node(4).kafka, "four", "f", 200).await;
    let read = consume_all(&cluster.node(1).kafka, "g-four", "four", 200);
    assert_eq!(read.iter().collect::<BTreeSet<_>>().len(), 200);
}

/// A batch of one record, as a raw Produce carries it.
fn one_record() -> bytes::Bytes {
    logbridge::protocol::records::encode_batch(
        vec![(None, Some(bytes::Bytes::from_static(b"x")))],
        0,
        kafka_protocol::records::Compression::None,
    )
    .unwrap()
    .freeze()
}

/// One record to partition `partition` with acks=all: the error code.
async fn produce_one_acks_all(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    value: &str,
) -> Result<(), String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "3000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(value),
            Duration::from_secs(5),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_partition_fails_over_without_losing_an_acknowledged_record() {
    let mut cluster = Cluster::start(3);
    create_replicated_topic(&cluster.node(1).kafka, "rep", 3, 3, &[]).await;
    let before = placement(&cluster.node(2).kafka, "rep");
    for (p, (leader, replicas, isr)) in &before {
        assert_eq!(replicas.len(), 3, "partition {p}");
        assert_eq!(isr.len(), 3, "partition {p}");
        assert!(isr.contains(leader));
    }
    // The operator sees it as kafka-topics.sh prints it, and the safer default.
    let described = common::cli_stdout(&common::cli(
        &["topics", "describe", "rep"],
        &cluster.node(3).kafka,
        None,
    ));
    assert!(described.contains("Partition: 0\tLeader: "), "{described}");
    assert!(
        described
            .lines()
            .filter(|l| l.contains("\tReplicas: ") && l.matches(',').count() == 4)
            .count()
            == 3,
        "{described}"
    );
    // Without a replication factor: the default, 3 copies, and min.insync.replicas 2.
    common::cli_stdout(&common::cli(
        &["topics", "create", "rep-default"],
        &cluster.node(2).kafka,
        None,
    ));
    let default = placement(&cluster.node(1).kafka, "rep-default");
    assert_eq!(default[&0].1.len(), 3, "{default:?}");
    let described = common::cli_stdout(&common::cli(
        &["topics", "describe", "rep-default"],
        &cluster.node(1).kafka,
        None,
    ));
    assert!(
        described.contains("ReplicationFactor: 3\tConfigs: min.insync.replicas=2"),
        "{described}"
    );
    produce_keyed(&cluster.bootstrap(), "rep", "before", 300).await;
    // Groups work from the start (the offsets topic, replicated three times too, is
    // created at the first group's request once three brokers are up, as in Kafka).
    assert_eq!(
        consume_all(&cluster.bootstrap(), "g-rep-0", "rep", 300).len(),
        300
    );

    // The leader of partition 0 dies: an ISR member takes over once it is fenced, and
    // the first acks=all produce to the partition succeeds on the new leader.
    let dead = before[&0].0 as usize;
    cluster.kill(dead);
    let started = Instant::now();
    let alive: Vec<usize> = (1..=3).filter(|i| *i != dead).collect();
    let survivors = alive
        .iter()
        .map(|i| cluster.node(*i).kafka.clone())
        .collect::<Vec<_>>()
        .join(",");
    let mut attempts = 0;
    loop {
        attempts += 1;
        match produce_one_acks_all(&survivors, "rep", 0, &format!("failover-{attempts}")).await {
            Ok(()) => break,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(40),
                "no acks=all produce after {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    eprintln!(
        "first acks=all produce to partition 0 acknowledged {:?} after its leader's death",
        started.elapsed()
    );
    let after = placement(&survivors, "rep");
    assert_ne!(after[&0].0, dead as i32);
    assert!(
        !after[&0].2.contains(&(dead as i32)),
        "the dead node left the ISR: {after:?}"
    );
    produce_keyed(&survivors, "rep", "during", 300).await;

    // Every acknowledged record is there on the survivors.
    let acked = |n: usize| {
        move |read: &[String]| {
            read.iter()
                .filter(|v| !v.starts_with("failover-"))
                .collect::<BTreeSet<_>>()
                .len()
                >= n
        }
    };
    let read = consume_until(&survivors, "g-rep-1", "rep", acked(600));
    let distinct: BTreeSet<_> = read
        .iter()
        .filter(|v| !v.starts_with("failover-"))
        .collect();
    assert_eq!(distinct.len(), 600);

    // The dead node comes back, catches up and rejoins every ISR; then another node
    // dies and the returned one serves what it missed while it was down.
    cluster.restart(dead);
    cluster.await_status(alive[0], "every ISR full again", |s| {
        s["under_replicated"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["topic"] != "rep")
    });
    let full = placement(&cluster.node(dead).kafka, "rep");
    assert!(full.values().all(|(_, _, isr)| isr.len() == 3), "{full:?}");
    cluster.kill(alive[0]);
    let remaining = [dead, alive[1]]
        .iter()
        .map(|i| cluster.node(*i).kafka.clone())
        .collect::<Vec<_>>()
        .join(",");
    produce_keyed(&remaining, "rep", "after", 100).await;
    let read = consume_until(&remaining, "g-rep-2", "rep", acked(700));
    let distinct: BTreeSet<_> = read
        .iter()
        .filter(|v| !v.starts_with("failover-"))
        .collect();
    assert_eq!(distinct.len(), 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_is_refused_while_the_isr_is_below_min_insync_replicas() {
    let mut cluster = Cluster::start(3);
    create_replicated_topic(
        &cluster.node(1).kafka,
        "strict",
        1,
        2,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let (leader, replicas, _) = placement(&cluster.node(1).kafka, "strict")[&0].clone();
    let follower = *replicas.iter().find(|r| **r != leader).unwrap() as usize;
    let leader = leader as usize;
    let mut raw = logbridge::client::KafkaClient::connect(&cluster.node(leader).kafka)
        .await
        .unwrap();
    assert_eq!(
        common::produce_raw_acks(&mut raw, "strict", one_record(), -1).await,
        0
    );
    cluster.kill(follower);
    // Once the follower is fenced it leaves the ISR, and acks=all is refused before
    // anything is written; acks=1 is still taken.
    let other = (1..=3).find(|i| *i != leader && *i != follower).unwrap();
    cluster.await_status(other, "the ISR shrinking", |s| {
        s["under_min_isr"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["topic"] == "strict")
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let code = common::produce_raw_acks(&mut raw, "strict", one_record(), -1).await;
        if code == 19 {
            break; // NOT_ENOUGH_REPLICAS
        }
        assert!(Instant::now() < deadline, "acks=all still answered {code}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        common::produce_raw_acks(&mut raw, "strict", one_record(), 1).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_acks_all_is_never_acknowledged() {
    let mut cluster = Cluster::start(3);
    create_replicated_topic(&cluster.node(1).kafka, "lonely", 1, 3, &[]).await;
    let leader = placement(&cluster.node(1).kafka, "lonely")[&0].0 as usize;
    let mut raw = logbridge::client::KafkaClient::connect(&cluster.node(leader).kafka)
        .await
        .unwrap();
    assert_eq!(
        common::produce_raw_acks(&mut raw, "lonely", one_record(), -1).await,
        0
    );
    // Both followers die: no majority fences them, so they stay in the ISR, and the
    // leader cannot have the record replicated — it is never acknowledged.
    for other in (1..=3).filter(|i| *i != leader) {
        cluster.kill(other);
    }
    let code = common::produce_raw_acks(&mut raw, "lonely", one_record(), -1).await;
    assert!(
        code == 7 || code == 19,
        "acks=all without a majority answered {code} (REQUEST_TIMED_OUT or NOT_ENOUGH_REPLICAS expected)"
    );
}
