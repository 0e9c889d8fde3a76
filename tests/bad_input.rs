//! Bad input from the network: each case gets the protocol's error code or a closed
//! connection, and the broker keeps serving a client that was connected all along.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use logbridge::client::{encode_batch, KafkaClient};

use common::{produce_raw, Server};

/// Writes raw bytes and reports whether the server closed the connection (EOF) without
/// sending anything back.
fn send_raw_expect_close(addr: &str, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

fn frame(api: i16, version: i16, correlation: i32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let len = 2 + 2 + 4 + 2 + body.len();
    v.extend((len as i32).to_be_bytes());
    v.extend(api.to_be_bytes());
    v.extend(version.to_be_bytes());
    v.extend(correlation.to_be_bytes());
    v.extend((-1i16).to_be_bytes()); // null client id
    v.extend(body);
    v
}

fn batch(values: &[&'static [u8]]) -> BytesMut {
    let records = values
        .iter()
        .map(|v| (None, Some(Bytes::from_static(v))))
        .collect();
    encode_batch(records, 1, Compression::None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // A well-behaved client, connected throughout.
    let mut good = KafkaClient::connect(&server.kafka).await.unwrap();
    good.create_topic("bad", 1, 1, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        good.produce(
            "bad",
            0,
            vec![(None, Some(Bytes::from_static(b"before")))],
            Compression::None
        )
        .await
        .unwrap(),
        0
    );

    // Garbage, a truncated frame, an oversized or negative size prefix, an unknown API key.
    send_raw_expect_close(&server.kafka, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut truncated = frame(18, 3, 1, &[]);
    truncated[3] = 100; // claims 100 bytes, then the client goes away
    {
        let mut s = TcpStream::connect(&server.kafka).unwrap();
        s.write_all(&truncated).unwrap();
    }
    send_raw_expect_close(&server.kafka, &(200 * 1024 * 1024i32).to_be_bytes());
    send_raw_expect_close(&server.kafka, &(-5i32).to_be_bytes());
    send_raw_expect_close(&server.kafka, &frame(999, 0, 7, &[0, 0, 0, 0]));
    // A Produce request whose topic array claims two billion elements.
    let mut huge_array = Vec::new();
    huge_array.extend((-1i16).to_be_bytes()); // transactional id
    huge_array.extend(1i16.to_be_bytes()); // acks
    huge_array.extend(1000i32.to_be_bytes()); // timeout
    huge_array.extend(i32::MAX.to_be_bytes()); // topic count
    send_raw_expect_close(&server.kafka, &frame(0, 3, 8, &huge_array));

    // ApiVersions at a version we do not know: UNSUPPORTED_VERSION in a v0 response.
    {
        let mut s = TcpStream::connect(&server.kafka).unwrap();
        s.write_all(&frame(18, 99, 42, &[])).unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        assert_eq!(
            i32::from_be_bytes(body[0..4].try_into().unwrap()),
            42,
            "correlation id"
        );
        assert_eq!(
            i16::from_be_bytes(body[4..6].try_into().unwrap()),
            35,
            "UNSUPPORTED_VERSION"
        );
    }

    // A batch with a wrong CRC: CORRUPT_MESSAGE, nothing appended.
    let mut corrupt = batch(&[b"x", b"y"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let mut raw = KafkaClient::connect(&server.kafka).await.unwrap();
    assert_eq!(produce_raw(&mut raw, "bad", corrupt.freeze()).await, 2);
    // A batch over max.message.bytes: MESSAGE_TOO_LARGE.
    let big: &'static [u8] = Box::leak(vec![7u8; 1_100_000].into_boxed_slice());
    assert_eq!(
        produce_raw(&mut raw, "bad", batch(&[big]).freeze()).await,
        10
    );
    // Random bytes where records belong: CORRUPT_MESSAGE.
    assert_eq!(
        produce_raw(
            &mut raw,
            "bad",
            Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 2, 0, 0])
        )
        .await,
        2
    );
    // Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
    assert_eq!(
        produce_raw(&mut raw, "no-such-topic", batch(&[b"z"]).freeze()).await,
        3
    );
    // Transactions do not exist: a transaction coordinator lookup gets the
    // non-retriable TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying so, and
    // the connection stays usable.
    let fc = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("tx"))
        .with_key_type(1);
    match raw
        .send(ApiKey::FindCoordinator, 2, RequestKind::FindCoordinator(fc))
        .await
        .unwrap()
    {
        ResponseKind::FindCoordinator(r) => {
            assert_eq!(r.error_code, 53);
            assert!(r
                .error_message
                .as_deref()
                .is_some_and(|m| m.contains("not supported")));
        }
        _ => panic!("wrong response"),
    }
    // A JoinGroup with no protocols: INCONSISTENT_GROUP_PROTOCOL, not a stuck group.
    let jg = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    match raw
        .send(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(jg))
        .await
        .unwrap()
    {
        ResponseKind::JoinGroup(r) => assert_eq!(r.error_code, 23),
        _ => panic!("wrong response"),
    }
    // A heartbeat from a member nobody knows: UNKNOWN_MEMBER_ID.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id(7)
        .with_member_id(StrBytes::from_static_str("ghost"));
    match raw
        .send(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(hb))
        .await
        .unwrap()
    {
        ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, 25),
        _ => panic!("wrong response"),
    }
    // A commit for a topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION.
    let err = raw
        .commit_standalone("g", "no-such-topic", &[(0, 5)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownTopicOrPartition"), "{err}");
    // A join with 4 MiB of member metadata is carried faithfully, not a crash.
    let big_meta = Bytes::from(vec![9u8; 4 << 20]);
    let jg = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("big")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("custom"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("p"))
                .with_metadata(big_meta.clone()),
        ]);
    match raw
        .send(ApiKey::JoinGroup, 3, RequestKind::JoinGroup(jg))
        .await
        .unwrap()
    {
        ResponseKind::JoinGroup(r) => {
            assert_eq!(r.error_code, 0);
            assert_eq!(
                r.members[0].metadata, big_meta,
                "the leader sees the metadata as sent"
            );
        }
        _ => panic!("wrong response"),
    }
    // Fetch beyond the log end: OFFSET_OUT_OF_RANGE.
    let mut positions = BTreeMap::new();
    positions.insert(0, 1000);
    let err = raw.fetch("bad", &positions, 0).await.unwrap_err();
    assert!(err.to_string().contains("OffsetOutOfRange"), "{err}");

    // The good client never noticed; nothing bad was appended.
    assert_eq!(
        good.produce(
            "bad",
            0,
            vec![(None, Some(Bytes::from_static(b"after")))],
            Compression::None
        )
        .await
        .unwrap(),
        1
    );
    let mut from = BTreeMap::new();
    from.insert(0, 0);
    let got = good.fetch("bad", &from, 100).await.unwrap();
    let values: Vec<_> = got
        .iter()
        .map(|r| r.record.value.clone().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![Bytes::from_static(b"before"), Bytes::from_static(b"after")]
    );
    server.stop();
}

#[test]
fn silent_and_stalled_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("idle.toml");
    std::fs::write(&cfg, "connections_max_idle_ms = 300\n").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // Connects and never sends anything: closed after the idle time.
    send_raw_expect_close(&server.kafka, &[]);
    // Sends a size and half a frame, then stalls: closed too.
    let mut partial = frame(18, 3, 1, &[0; 16]);
    partial.truncate(10);
    send_raw_expect_close(&server.kafka, &partial);
    // A request after a pause shorter than the idle time is still answered.
    let mut s = TcpStream::connect(&server.kafka).unwrap();
    s.write_all(&frame(18, 0, 5, &[])).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    server.stop();
}
