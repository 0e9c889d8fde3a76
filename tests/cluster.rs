//! Three logbridge processes on loopback form one cluster on their Raft metadata quorum:
//! every node answers the same metadata, clients follow leaders, groups commit through
//! the coordinator node, and the quorum survives the death of its leader. Each test
//! starts its own nodes and kills them when it ends; every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::{write_config, Server};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

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
