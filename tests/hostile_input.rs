//! Input built to exhaust the broker, against the real binary: batch headers that lie,
//! decompression bombs (bytes and record counts), a Beats frame of millions of tiny
//! events, trickled and oversized frames on every listener, a flood of idle HTTP
//! connections at a 1024-descriptor limit, and an oversized `_bulk` document. Each gets
//! its protocol's answer or a closed connection, within stated memory and time.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use logbridge::client::{encode_batch, KafkaClient};

use common::{produce_raw, write_config, Server};

const INVALID_RECORD: i16 = 87;
const MESSAGE_TOO_LARGE: i16 = 10;

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A v2 batch around `records` (a records section, compressed with `codec`), CRC
/// filled in; the header fields are the caller's to make lie.
fn batch_v2(codec: i16, last_offset_delta: i32, count: i32, records: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(61 + records.len());
    b.extend(0i64.to_be_bytes());
    b.extend(((49 + records.len()) as i32).to_be_bytes());
    b.extend((-1i32).to_be_bytes());
    b.push(2);
    b.extend([0u8; 4]); // CRC, below
    b.extend(codec.to_be_bytes());
    b.extend(last_offset_delta.to_be_bytes());
    b.extend(1_000i64.to_be_bytes());
    b.extend(1_000i64.to_be_bytes());
    b.extend((-1i64).to_be_bytes());
    b.extend((-1i16).to_be_bytes());
    b.extend((-1i32).to_be_bytes());
    b.extend(count.to_be_bytes());
    b.extend(records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// A zstd frame of `prefix` then `zeros` zero bytes, made of one raw block and RLE
/// blocks (each up to 128 KiB): 256 MiB of zeros in about 8 KB, as a compressor makes it.
fn zstd_prefix_then_zeros(prefix: &[u8], zeros: usize) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, size: usize, last: bool) {
        let h = last as u32 | (kind << 1) | ((size as u32) << 3);
        out.extend(&h.to_le_bytes()[..3]);
    }
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]; // magic; no size; 128 KiB window
    block(&mut out, 0, prefix.len(), zeros == 0);
    out.extend(prefix);
    let mut left = zeros;
    while left > 0 {
        let n = left.min(128 * 1024);
        left -= n;
        block(&mut out, 1, n, left == 0);
        out.push(0);
    }
    out
}

/// One record whose value is `len` zero bytes, as a zstd bomb: every byte after the
/// value's length prefix is zero (the header count, 0, included).
fn zero_record_bomb(len: usize) -> Bytes {
    let mut tail = vec![0x00, 0x00, 0x00, 0x01]; // attributes, ts delta, offset delta, null key
    zigzag(len as i64, &mut tail);
    let body_len = tail.len() + len + 1;
    let mut prefix = Vec::new();
    zigzag(body_len as i64, &mut prefix);
    prefix.extend(tail);
    batch_v2(4, 0, 1, &zstd_prefix_then_zeros(&prefix, len + 1))
}

#[test]
fn the_hand_made_zstd_frame_is_real_zstd() {
    let frame = zstd_prefix_then_zeros(b"abc", 300_000);
    let plain = zstd::decode_all(&frame[..]).unwrap();
    assert_eq!(plain.len(), 300_003);
    assert_eq!(&plain[..3], b"abc");
    assert!(plain[3..].iter().all(|b| *b == 0));
}

/// A batch of one uncompressed record.
fn one_record(value: &'static [u8]) -> Bytes {
    encode_batch(
        vec![(None, Some(Bytes::from_static(value)))],
        1,
        Compression::None,
    )
    .unwrap()
    .freeze()
}

async fn log_end(client: &mut KafkaClient, topic: &str) -> i64 {
    client.list_offset(topic, 0, -1).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_headers_and_decompression_bombs_are_refused_or_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("max.message.bytes".to_string(), (16 << 20).to_string());
    client
        .create_topic("hostile", 1, 1, &configs)
        .await
        .unwrap();
    let one = one_record(b"ok");
    assert_eq!(produce_raw(&mut client, "hostile", one.clone()).await, 0);

    // Headers that lie about their records: INVALID_RECORD, and the log end stays.
    let records = &one[61..];
    for (delta, count) in [(i32::MAX, 1), (i32::MAX - 1, 1), (-1, 0), (0, 0), (2, 3)] {
        let code = produce_raw(&mut client, "hostile", batch_v2(0, delta, count, records)).await;
        assert_eq!(
            code, INVALID_RECORD,
            "lastOffsetDelta {delta}, count {count}"
        );
    }
    assert_eq!(
        log_end(&mut client, "hostile").await,
        1,
        "nothing moved the log end"
    );

    // 256 MiB of zeros in an 8 KB zstd batch: over max_uncompressed_batch_bytes.
    let bomb = zero_record_bomb(256 << 20);
    assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
    assert_eq!(
        produce_raw(&mut client, "hostile", bomb).await,
        MESSAGE_TOO_LARGE
    );

    // Three million empty records in one zstd batch, under the bound: stored, and a
    // Fetch v3 (down-conversion to magic 1) asking for 1 MiB gets at most that.
    let n = 3_000_000usize;
    let mut section = Vec::with_capacity(n * 8);
    let mut body = Vec::with_capacity(16);
    for i in 0..n {
        body.clear();
        body.extend([0x00, 0x00]);
        zigzag(i as i64, &mut body);
        body.extend([0x01, 0x00, 0x00]); // null key, empty value, no headers
        zigzag(body.len() as i64, &mut section);
        section.extend_from_slice(&body);
    }
    let packed = zstd::encode_all(&section[..], 1).unwrap();
    let many = batch_v2(4, n as i32 - 1, n as i32, &packed);
    assert_eq!(produce_raw(&mut client, "hostile", many).await, 0);
    assert_eq!(log_end(&mut client, "hostile").await, 1 + n as i64);
    let topic_id = TopicName(StrBytes::from_static_str("hostile"));
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(1)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = match client
        .send(ApiKey::Fetch, 3, RequestKind::Fetch(fetch))
        .await
        .unwrap()
    {
        ResponseKind::Fetch(r) => r,
        _ => panic!("wrong response"),
    };
    let records = resp.responses[0].partitions[0].records.clone().unwrap();
    assert!(!records.is_empty(), "old clients still read the batch");
    assert!(
        records.len() <= 1 << 20,
        "down-converted {} bytes for a 1 MiB fetch",
        records.len()
    );
    let (_, peak) = server.memory_kib();
    assert!(peak < 400 * 1024, "peak RSS {} MiB", peak / 1024);
    server.stop();
}

/// Sends one Lumberjack window announcing 10^9 events whose single compressed frame
/// inflates to five million tiny events; returns once the server has closed.
fn beats_bomb(addr: &str, payload: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"2W").unwrap();
    s.write_all(&1_000_000_000u32.to_be_bytes()).unwrap();
    s.write_all(b"2C").unwrap();
    s.write_all(&(payload.len() as u32).to_be_bytes()).unwrap();
    let _ = s.write_all(payload);
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {} // keep-alive acks while it works
        }
    }
}

#[test]
fn a_beats_frame_of_millions_of_tiny_events_is_bounded_and_memory_returns() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut inner = BytesMut::with_capacity(60 << 20);
    // The same frame five million times (sequence numbers are not checked for order):
    // about 60 MB inflated, a few hundred KB compressed.
    for _ in 0..5_000_000u32 {
        logbridge::beats::frame::encode_json(1, b"{}", &mut inner);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&inner).unwrap();
    let payload = z.finish().unwrap();
    drop(inner);
    assert!(
        payload.len() < 1 << 20,
        "{} bytes compressed",
        payload.len()
    );
    // Three shippers at once.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| beats_bomb(&server.beats, &payload));
        }
    });
    let (_, peak) = server.memory_kib();
    assert!(peak < 400 * 1024, "peak RSS {} MiB", peak / 1024);
    std::thread::sleep(Duration::from_secs(3));
    let (rss, _) = server.memory_kib();
    assert!(
        rss < 200 * 1024,
        "RSS {} MiB three seconds after the shippers left",
        rss / 1024
    );
    server.stop();
}

/// Whether the server closes `s` within `within` (a read returns end-of-file or reset).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_and_oversized_frames_are_timed_and_budgeted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "frames.toml",
        "request_frame_timeout_ms = 1500\nqueued_max_request_bytes = 157286400\n\
         http_header_read_timeout_ms = 1000\nhttp_request_timeout_ms = 3000\n",
    );
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);

    // Kafka: three bytes of a size prefix, then nothing. Idle connections may stay ten
    // minutes; a started frame gets its frame timeout.
    let started = Instant::now();
    let mut s = TcpStream::connect(&server.kafka).unwrap();
    s.write_all(&[0, 0, 0]).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Kafka: eight clients each announce a 100 MiB request and send 1 MiB of it. The
    // budget's large pool (112.5 MiB of 150) admits one at a time; memory stays
    // bounded, and each is closed when its frame times out.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&server.kafka).unwrap();
        s.write_all(&(100i32 << 20).to_be_bytes()).unwrap();
        s.write_all(&vec![7u8; 1 << 20]).unwrap();
        slow.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    let (rss, _) = server.memory_kib();
    assert!(
        rss < 300 * 1024,
        "RSS {} MiB with 8 x 100 MiB frames announced",
        rss / 1024
    );
    // Small requests have a pool of their own: while the large frames hold the rest of
    // the budget, a client's metadata and produce go through at once.
    let started = Instant::now();
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    client
        .create_topic("after", 1, 1, &BTreeMap::new())
        .await
        .unwrap();
    let one = one_record(b"x");
    assert_eq!(produce_raw(&mut client, "after", one.clone()).await, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(30)),
            "a stalled 100 MiB frame is closed"
        );
    }
    assert_eq!(
        produce_raw(&mut client, "after", one).await,
        0,
        "and after they are gone"
    );

    // Beats: one byte a second keeps the inactivity timer (60 s) from firing; the frame
    // timer does not care.
    let started = Instant::now();
    let mut s = TcpStream::connect(&server.beats).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let frame = b"2J\0\0\0\x01\0\0\0\x10{\"a\":\"bcdefghij\"}";
    let mut closed = false;
    for b in frame.iter() {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(900)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled beats frame is closed");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // HTTP: a 200 MiB Content-Length is refused before any body; slow headers and slow
    // bodies are cut off.
    let started = Instant::now();
    let mut s = TcpStream::connect(&server.http).unwrap();
    write!(s, "POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 209715200\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"413");
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut s = TcpStream::connect(&server.http).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost").unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "slow headers are closed"
    );
    let mut s = TcpStream::connect(&server.http).unwrap();
    write!(
        s,
        "POST /ingest/t HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"a\":"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"408", "a body that never ends times out");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_flood_at_1024_descriptors_starves_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "flood.toml",
        "http_header_read_timeout_ms = 1000\n",
    );
    let server = Server::start_with(&dir.path().join("data"), &["--config", &config], |cmd| {
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let mut flood = Vec::new();
    for _ in 0..1100 {
        if let Ok(s) =
            TcpStream::connect_timeout(&server.http.parse().unwrap(), Duration::from_secs(2))
        {
            flood.push(s);
        }
    }
    // More than the server can hold at once: the cap, then the kernel's backlog, then
    // the header timeout turning idle connections over.
    assert!(flood.len() >= 300, "{} flood connections", flood.len());
    // Kafka is untouched by the HTTP flood.
    let mut client = KafkaClient::connect(&server.kafka).await.unwrap();
    client
        .create_topic("during-flood", 1, 1, &BTreeMap::new())
        .await
        .unwrap();
    let one = one_record(b"x");
    assert_eq!(produce_raw(&mut client, "during-flood", one).await, 0);
    // /health answers once the idle connections ahead of it have timed out.
    let started = Instant::now();
    let (status, _) = server.http_get("/health");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    drop(flood);
    server.stop();
}

#[test]
fn an_oversized_bulk_document_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let big = format!("{{\"message\":\"{}\"}}", "x".repeat(2 << 20));
    let body = format!(
        "{{\"index\":{{\"_index\":\"docs\"}}}}\n{{\"n\":1}}\n{{\"index\":{{\"_index\":\"docs\"}}}}\n{big}\n{{\"index\":{{\"_index\":\"docs\"}}}}\n{{\"n\":3}}\n"
    );
    let mut s = TcpStream::connect(&server.http).unwrap();
    write!(
        s,
        "POST /_bulk HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(v["errors"], true);
    assert_eq!(v["items"][0]["index"]["status"], 201);
    assert_eq!(v["items"][1]["index"]["status"], 413, "{}", v["items"][1]);
    assert_eq!(
        v["items"][1]["index"]["error"]["type"],
        "content_too_long_exception"
    );
    let reason = v["items"][1]["index"]["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("max.message.bytes"), "{reason}");
    assert_eq!(v["items"][2]["index"]["status"], 201);
    let got = common::read_values(&server.kafka, "docs", 2);
    let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec!["{\"n\":1}", "{\"n\":3}"]);
    server.stop();
}
