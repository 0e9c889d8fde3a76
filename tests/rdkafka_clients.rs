//! librdkafka (through the `rdkafka` crate) against the real binary: every compression
//! codec, keys, headers, 1 MiB values, idempotence, and the admin APIs.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use common::Server;

fn producer(bootstrap: &str, compression: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", compression)
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "3000000")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin")
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let res = admin(bootstrap)
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(res[0].is_ok(), "{:?}", res[0]);
}

/// Consumed record: (partition, offset, key, value, headers).
type Got = (i32, i64, Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);

fn consume_all(bootstrap: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Got> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rdkafka-test")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "4000000")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(msg) = consumer.poll(Duration::from_millis(500)) {
            let m = msg.expect("consume error");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                m.partition(),
                m.offset(),
                m.key().map(|k| k.to_vec()),
                m.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_round_trips_keys_values_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&server.kafka, &topic, 3, &[]).await;
        let p = producer(&server.kafka, codec);
        let n = 300;
        let mut sends = Vec::new();
        for i in 0..n {
            let key = format!("key-{}", i % 17);
            let value = format!("{codec} value {i} {}", "x".repeat(i % 50));
            let headers = OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(&i.to_string()),
            });
            let record = FutureRecord::to(&topic)
                .key(&key)
                .payload(&value)
                .headers(headers);
            sends.push(p.send_result(record).map_err(|e| e.0).expect("enqueue"));
        }
        for s in sends {
            s.await.expect("not cancelled").expect("delivered");
        }
        let got = consume_all(&server.kafka, &topic, 3, n);
        assert_eq!(got.len(), n, "codec {codec}");
        let mut seen = vec![false; n];
        let mut partition_of_key: HashMap<Vec<u8>, i32> = HashMap::new();
        let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
        for (partition, offset, key, value, headers) in got {
            let (_, seq) = headers
                .iter()
                .find(|(k, _)| k == "seq")
                .expect("seq header");
            let i: usize = String::from_utf8(seq.clone()).unwrap().parse().unwrap();
            assert!(!seen[i], "record {i} delivered twice ({codec})");
            seen[i] = true;
            assert_eq!(key.as_deref(), Some(format!("key-{}", i % 17).as_bytes()));
            assert_eq!(
                value,
                format!("{codec} value {i} {}", "x".repeat(i % 50)).into_bytes()
            );
            // Same key, same partition; offsets increase within a partition.
            assert_eq!(
                *partition_of_key.entry(key.unwrap()).or_insert(partition),
                partition
            );
            if let Some(prev) = last_offset.insert(partition, offset) {
                assert!(offset > prev);
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_values_with_a_raised_max_message_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    create_topic(&server.kafka, "big", 1, &[("max.message.bytes", "3000000")]).await;
    let p = producer(&server.kafka, "none");
    let values: Vec<Vec<u8>> = (0..4u32)
        .map(|i| {
            (0..1024 * 1024u32)
                .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8)
                .collect()
        })
        .collect();
    for v in &values {
        p.send(
            FutureRecord::<(), _>::to("big").payload(v),
            Duration::from_secs(10),
        )
        .await
        .expect("delivery");
    }
    let got = consume_all(&server.kafka, "big", 1, values.len());
    let got_values: Vec<Vec<u8>> = got.into_iter().map(|g| g.3).collect();
    assert_eq!(got_values, values);

    // Without the raised limit the same value is refused with MESSAGE_TOO_LARGE.
    create_topic(&server.kafka, "small-limit", 1, &[]).await;
    let err = p
        .send(
            FutureRecord::<(), _>::to("small-limit").payload(&values[0]),
            Duration::from_secs(10),
        )
        .await
        .expect_err("too large must fail");
    assert!(
        format!("{:?}", err.0).contains("MessageSizeTooLarge"),
        "{:?}",
        err.0
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_gets_dense_offsets_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    create_topic(&server.kafka, "idem", 1, &[]).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("batch.num.messages", "50")
        .create()
        .unwrap();
    let sends: Vec<_> = (0..2000)
        .map(|i| {
            p.send_result(FutureRecord::<(), _>::to("idem").payload(&format!("{i}")))
                .unwrap()
        })
        .collect();
    let mut offsets = Vec::new();
    for s in sends {
        let (_, offset) = s.await.unwrap().expect("delivered");
        offsets.push(offset);
    }
    let expected: Vec<i64> = (0..2000).collect();
    assert_eq!(offsets, expected, "offsets must be dense and in send order");
    p.flush(Duration::from_secs(5)).unwrap();
    let got = consume_all(&server.kafka, "idem", 1, 2000);
    let values: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.3.clone()).unwrap())
        .collect();
    let want: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    assert_eq!(values, want);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_apis_create_describe_grow_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let a = admin(&server.kafka);
    let opts = AdminOptions::new();
    create_topic(&server.kafka, "adm", 2, &[("retention.ms", "3600000")]).await;

    // Duplicate creation and an impossible replication factor are refused.
    let dup = a
        .create_topics(
            &[NewTopic::new("adm", 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert!(
        format!("{:?}", dup[0]).contains("TopicAlreadyExists"),
        "{:?}",
        dup[0]
    );
    let rf = a
        .create_topics(
            &[NewTopic::new("rf3", 1, TopicReplication::Fixed(3))],
            &opts,
        )
        .await
        .unwrap();
    assert!(
        format!("{:?}", rf[0]).contains("InvalidReplicationFactor"),
        "{:?}",
        rf[0]
    );

    let described = a
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let res = described[0].as_ref().expect("describe");
    let retention = res.get("retention.ms").expect("retention.ms entry");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert!(!retention.is_default);
    assert_eq!(
        res.get("segment.bytes")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("1073741824")
    );

    let grown = a
        .create_partitions(&[NewPartitions::new("adm", 5)], &opts)
        .await
        .unwrap();
    assert!(grown[0].is_ok(), "{:?}", grown[0]);
    let shrink = a
        .create_partitions(&[NewPartitions::new("adm", 2)], &opts)
        .await
        .unwrap();
    assert!(shrink[0].is_err());
    let md = a
        .inner()
        .fetch_metadata(Some("adm"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);

    let deleted = a.delete_topics(&["adm"], &opts).await.unwrap();
    assert!(deleted[0].is_ok());
    let md = a
        .inner()
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap();
    assert!(md.topics().iter().all(|t| t.name() != "adm"));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_broker_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    create_topic(
        &server.kafka,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    create_topic(&server.kafka, "ct", 1, &[]).await;
    let p = producer(&server.kafka, "lz4");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for topic in ["lat", "ct"] {
        p.send(
            FutureRecord::<(), _>::to(topic)
                .payload("x")
                .timestamp(1_000),
            Duration::from_secs(10),
        )
        .await
        .expect("delivery");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("group.id", "ts")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lat", 0, Offset::Beginning)
        .unwrap();
    tpl.add_partition_offset("ct", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut stamps = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stamps.len() < 2 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.unwrap();
            stamps.insert(m.topic().to_string(), m.timestamp());
        }
    }
    match stamps["lat"] {
        rdkafka::Timestamp::LogAppendTime(t) => assert!(t >= before, "broker time {t} < {before}"),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
    assert_eq!(stamps["ct"], rdkafka::Timestamp::CreateTime(1_000));
    server.stop();
}
