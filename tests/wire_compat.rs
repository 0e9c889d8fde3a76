//! Wire details checked with raw requests against the real binary, where a client's
//! own behaviour would hide them: Fetch's response-wide limit across partitions
//! (KIP-74), the per-record errors of a refused batch (KIP-467), and timestamp lookups
//! and old-format fetches inside one batch whose records are 10^12 ms apart.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record};
use logbridge::client::{encode_batch, KafkaClient};
use logbridge::protocol::records::plain_record;

use common::{produce_raw, Server};

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.into()))
}

async fn produce_to(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> ProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    match client
        .send(ApiKey::Produce, 9, RequestKind::Produce(req))
        .await
        .unwrap()
    {
        ResponseKind::Produce(r) => r,
        _ => panic!("wrong response"),
    }
}

async fn fetch(
    client: &mut KafkaClient,
    version: i16,
    topic: &str,
    partitions: &[i32],
    max_bytes: i32,
) -> FetchResponse {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1_048_576)
                    })
                    .collect(),
            )]);
    match client
        .send(ApiKey::Fetch, version, RequestKind::Fetch(req))
        .await
        .unwrap()
    {
        ResponseKind::Fetch(r) => r,
        _ => panic!("wrong response"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_keeps_to_max_bytes_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("max.message.bytes".to_string(), (4 << 20).to_string());
    client.create_topic("kip74", 3, 1, &configs).await.unwrap();
    // One 600 KB batch in each of the first two partitions, a 1.5 MB one in the third.
    let batch = |size: usize| {
        encode_batch(
            vec![(None, Some(Bytes::from(vec![b'x'; size])))],
            1,
            Compression::None,
        )
        .unwrap()
        .freeze()
    };
    for (p, size) in [(0, 600_000), (1, 600_000), (2, 1_500_000)] {
        let r = produce_to(&mut client, "kip74", p, batch(size)).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let sizes = |r: &FetchResponse| -> Vec<usize> {
        r.responses[0]
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
            .collect()
    };
    // 1,000,000 bytes asked for: the first partition's batch fits, the second would
    // pass the limit and is not sent, nor is the third.
    let r = fetch(&mut client, 11, "kip74", &[0, 1, 2], 1_000_000).await;
    let got = sizes(&r);
    assert!(got[0] > 0 && got[1] == 0 && got[2] == 0, "{got:?}");
    assert!(got.iter().sum::<usize>() <= 1_000_000);
    // The first non-empty partition's first batch may pass the limit, alone.
    let r = fetch(&mut client, 11, "kip74", &[2, 0, 1], 1_000_000).await;
    let got = sizes(&r);
    assert!(got[0] > 1_000_000 && got[1] == 0 && got[2] == 0, "{got:?}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_are_listed_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    client.create_topic("keys", 1, 1, &configs).await.unwrap();
    let records = vec![
        (
            Some(Bytes::from_static(b"k0")),
            Some(Bytes::from_static(b"a")),
        ),
        (None, Some(Bytes::from_static(b"b"))),
        (
            Some(Bytes::from_static(b"k2")),
            Some(Bytes::from_static(b"c")),
        ),
        (None, Some(Bytes::from_static(b"d"))),
    ];
    let r = produce_to(
        &mut client,
        "keys",
        0,
        encode_batch(records, 1, Compression::Zstd)
            .unwrap()
            .freeze(),
    )
    .await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 3]);
    assert!(
        p.error_message
            .as_deref()
            .is_some_and(|m| m.contains("2 record errors")),
        "{:?}",
        p.error_message
    );
    assert_eq!(
        client.list_offset("keys", 0, -1).await.unwrap(),
        0,
        "nothing was appended"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_10_to_the_12_ms_apart_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    client
        .create_topic("spread", 1, 1, &BTreeMap::new())
        .await
        .unwrap();
    let stamps = [1_000i64, 1_000_000_001_000, 2_000_000_001_000];
    let records: Vec<Record> = stamps
        .iter()
        .enumerate()
        .map(|(i, ts)| plain_record(i as i64, *ts, None, Some(Bytes::from(format!("r{i}")))))
        .collect();
    let mut records = records;
    let mut batch = bytes::BytesMut::new();
    logbridge::protocol::records::encode_plain_batch(&mut batch, &mut records, Compression::None)
        .unwrap();
    assert_eq!(produce_raw(&mut client, "spread", batch.freeze()).await, 0);
    // ListOffsets v1 by timestamp lands on the right record of the one batch.
    for (target, want) in [(500, 0), (1_000_000_000_000, 1), (1_500_000_000_000, 2)] {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("spread"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(target)])]);
        let r = match client
            .send(ApiKey::ListOffsets, 1, RequestKind::ListOffsets(req))
            .await
            .unwrap()
        {
            ResponseKind::ListOffsets(r) => r,
            _ => panic!("wrong response"),
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, want), "timestamp {target}");
        assert_eq!(p.timestamp, stamps[want as usize]);
    }
    // An old-format fetch (v1, magic 0) of the same batch returns all three records.
    let r = fetch(&mut client, 1, "spread", &[0], 1 << 20).await;
    let mut set = r.responses[0].partitions[0].records.clone().unwrap();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut set).unwrap();
    let values: Vec<_> = sets
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        values,
        vec![Bytes::from("r0"), Bytes::from("r1"), Bytes::from("r2")]
    );
    server.stop();
}
