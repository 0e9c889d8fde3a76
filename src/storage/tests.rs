//! Storage tests: the partition log against an in-memory model, crash cuts at every
//! byte of the tail, restarts, retention and rolling.

use std::collections::BTreeMap;
use std::fs::OpenOptions;

use bytes::BytesMut;

use super::batch::{self, validate_batches};
use super::config::LogConfig;
use super::log::PartitionLog;
use super::records::DEFAULT_MAX_UNCOMPRESSED_BATCH_BYTES as MAX_UNCOMPRESSED;

/// A valid batch of `count` records whose body is `fill` repeated `body` times.
fn make_batch(count: i32, ts: i64, body: usize, fill: u8) -> Vec<u8> {
    let batch_length = (batch::HEADER_LEN - batch::LOG_OVERHEAD + body) as i32;
    let mut b = vec![fill; batch::HEADER_LEN + body];
    b[0..8].copy_from_slice(&0i64.to_be_bytes());
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    b[12..16].copy_from_slice(&0i32.to_be_bytes());
    b[16] = 2;
    b[21..23].copy_from_slice(&0i16.to_be_bytes());
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn append(log: &mut PartitionLog, b: Vec<u8>, now: i64) -> i64 {
    log.append_batches(BytesMut::from(&b[..]), now)
        .unwrap()
        .base_offset
}

fn small_config(segment_bytes: u64) -> LogConfig {
    let mut o = BTreeMap::new();
    o.insert("segment.bytes".to_string(), segment_bytes.to_string());
    o.insert("index.interval.bytes".to_string(), "100".to_string());
    LogConfig::from_map(&BTreeMap::new(), &o).unwrap()
}

/// Reads every record offset range from `from`, following batches across segments.
fn read_all(log: &PartitionLog, mut from: i64) -> Vec<(i64, i64, u8)> {
    let mut out = Vec::new();
    while let Some(plan) = log.read(from, 1 << 20).unwrap() {
        let bytes = plan.read().unwrap();
        for (pos, h) in validate_batches(&bytes).unwrap() {
            out.push((
                h.base_offset,
                h.last_offset(),
                bytes[pos + batch::HEADER_LEN],
            ));
            from = h.last_offset() + 1;
        }
    }
    out
}

#[test]
fn appends_get_dense_offsets_and_read_back_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(1000), false).unwrap();
    // Model: list of (base, last, fill).
    let mut model = Vec::new();
    let mut next = 0i64;
    for i in 0..200u32 {
        let count = (i % 7 + 1) as i32;
        let body = (i as usize * 13) % 150 + 1;
        let fill = (i % 251) as u8;
        let base = append(&mut log, make_batch(count, 1000 + i as i64, body, fill), 0);
        assert_eq!(base, next);
        model.push((base, base + count as i64 - 1, fill));
        next += count as i64;
    }
    assert_eq!(log.log_end_offset(), next);
    assert!(log.segment_count() > 5, "small segments should have rolled");
    assert_eq!(read_all(&log, 0), model);
    // Reading from the middle of a batch starts at the batch that holds it.
    let mid = model[50];
    assert_eq!(read_all(&log, mid.0 + (mid.1 - mid.0) / 2)[0], mid);
    assert!(log.read(next + 1, 100).is_err());
    assert!(log.read(next, 100).unwrap().is_none());
    // Timestamps: batch i has ts 1000+i.
    assert_eq!(log.offset_for_timestamp(1100).unwrap(), Some(model[100].0));
    assert_eq!(log.offset_for_timestamp(5000).unwrap(), None);
}

#[test]
fn clean_and_unclean_reopen_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Vec::new();
    {
        let mut log = PartitionLog::open(dir.path(), small_config(4000), false).unwrap();
        for i in 0..50 {
            let b = append(&mut log, make_batch(3, i, 40, i as u8), 0);
            model.push((b, b + 2, i as u8));
        }
        log.close().unwrap();
    }
    {
        let mut log = PartitionLog::open(dir.path(), small_config(4000), true).unwrap();
        assert_eq!(read_all(&log, 0), model);
        let b = append(&mut log, make_batch(1, 99, 10, 99), 0);
        model.push((b, b, 99));
        // dropped without close: an unclean stop
    }
    let log = PartitionLog::open(dir.path(), small_config(4000), false).unwrap();
    assert_eq!(read_all(&log, 0), model);
    assert_eq!(log.log_end_offset(), 151);
}

#[test]
fn a_cut_at_every_byte_of_the_tail_recovers_to_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<u8>> = (0..3).map(|i| make_batch(2, i, 30, i as u8)).collect();
    let total: usize = batches.iter().map(|b| b.len()).sum();
    for cut in 0..=total {
        let d = dir.path().join(format!("cut{cut}"));
        {
            let mut log = PartitionLog::open(&d, LogConfig::default(), false).unwrap();
            for b in &batches {
                append(&mut log, b.clone(), 0);
            }
        }
        let f = OpenOptions::new()
            .write(true)
            .open(d.join("00000000000000000000.log"))
            .unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let mut log = PartitionLog::open(&d, LogConfig::default(), false).unwrap();
        let whole = {
            let mut acc = 0;
            let mut n = 0;
            for b in &batches {
                if acc + b.len() <= cut {
                    acc += b.len();
                    n += 1;
                }
            }
            n
        };
        assert_eq!(log.log_end_offset(), whole * 2, "cut at {cut}");
        assert_eq!(read_all(&log, 0).len() as i64, whole);
        // The log keeps working after recovery.
        assert_eq!(append(&mut log, make_batch(1, 9, 5, 7), 0), whole * 2);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn a_corrupt_byte_in_the_tail_truncates_from_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    {
        let mut log = PartitionLog::open(dir.path(), LogConfig::default(), false).unwrap();
        for i in 0..4 {
            let b = make_batch(1, i, 20, 1);
            sizes.push(b.len());
            append(&mut log, b, 0);
        }
    }
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let third_start = sizes[0] + sizes[1];
    bytes[third_start + 70] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), false).unwrap();
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn retention_by_bytes_and_time_deletes_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = BTreeMap::new();
    o.insert("segment.bytes".to_string(), "500".to_string());
    o.insert("retention.bytes".to_string(), "1000".to_string());
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig::from_map(&BTreeMap::new(), &o).unwrap(),
        false,
    )
    .unwrap();
    for i in 0..40 {
        append(&mut log, make_batch(1, i, 100, 0), 0);
    }
    // Nothing at or past the high watermark (the clean limit) is deleted: a replica's
    // segments above it may still be truncated and fetched again.
    log.set_clean_limit(log.sealed_segments()[1]);
    assert_eq!(
        log.enforce_retention(0).unwrap(),
        1,
        "only the segment wholly below the limit"
    );
    log.set_clean_limit(i64::MAX);
    let before = log.segment_count();
    let deleted = log.enforce_retention(0).unwrap();
    assert!(deleted > 0 && log.segment_count() == before - deleted);
    assert!(log.size_bytes() <= 1000 + 500);
    assert!(log.log_start_offset() > 0);
    assert!(
        log.read(0, 100).is_err(),
        "deleted offsets are out of range"
    );
    assert_eq!(log.log_end_offset(), 40);

    // Time: everything older than retention.ms goes, including an expired active segment.
    let mut o = BTreeMap::new();
    o.insert("retention.ms".to_string(), "1000".to_string());
    log.set_config(LogConfig::from_map(&BTreeMap::new(), &o).unwrap());
    log.enforce_retention(10_000).unwrap();
    assert_eq!(log.log_start_offset(), 40);
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(40, 100).unwrap().is_none());
}

#[test]
fn oversized_first_batch_is_returned_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), false).unwrap();
    append(&mut log, make_batch(1, 0, 5000, 3), 0);
    append(&mut log, make_batch(1, 0, 10, 4), 0);
    let bytes = log.read(0, 100).unwrap().unwrap().read().unwrap();
    let batches = validate_batches(&bytes).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].1.record_count, 1);
}

#[test]
fn segment_ms_rolls_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = BTreeMap::new();
    o.insert("segment.ms".to_string(), "1000".to_string());
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig::from_map(&BTreeMap::new(), &o).unwrap(),
        false,
    )
    .unwrap();
    append(&mut log, make_batch(1, 0, 10, 0), super::segment::now_ms());
    append(
        &mut log,
        make_batch(1, 0, 10, 0),
        super::segment::now_ms() + 5000,
    );
    assert_eq!(log.segment_count(), 2);
}

fn keyed_batch(pairs: &[(&str, Option<&str>)], ts: i64) -> Vec<u8> {
    let records = pairs
        .iter()
        .map(|(k, v)| {
            (
                Some(bytes::Bytes::from(k.to_string())),
                v.map(|v| bytes::Bytes::from(v.to_string())),
            )
        })
        .collect();
    crate::protocol::records::encode_batch(records, ts, kafka_protocol::records::Compression::None)
        .unwrap()
        .to_vec()
}

/// (offset, key, value) of every record readable from the log start.
fn read_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while let Some(plan) = log.read(from, 1 << 20).unwrap() {
        let bytes = plan.read().unwrap();
        for (o, k, v) in super::records::decode_records(&bytes, MAX_UNCOMPRESSED).unwrap() {
            out.push((
                o,
                String::from_utf8(k.unwrap().to_vec()).unwrap(),
                v.map(|v| String::from_utf8(v.to_vec()).unwrap()),
            ));
            from = o + 1;
        }
    }
    out
}

#[test]
fn compaction_keeps_the_newest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = BTreeMap::new();
    o.insert("segment.bytes".to_string(), "200".to_string());
    o.insert("cleanup.policy".to_string(), "compact".to_string());
    o.insert("delete.retention.ms".to_string(), "1000".to_string());
    let config = LogConfig::from_map(&BTreeMap::new(), &o).unwrap();
    let mut log = PartitionLog::open(dir.path(), config.clone(), false).unwrap();
    let now = 1_000_000;
    // a:0 b:1 | a:2 c:3 | b:4 (tombstone for c at 5) | a:6 ...
    for (i, pairs) in [
        vec![("a", Some("a0")), ("b", Some("b1"))],
        vec![("a", Some("a2")), ("c", Some("c3"))],
        vec![("b", Some("b4")), ("c", None)],
        vec![("a", Some("a6"))],
        vec![("d", Some("d7"))],
    ]
    .into_iter()
    .enumerate()
    {
        append(&mut log, keyed_batch(&pairs, now + i as i64), now);
    }
    assert!(log.segment_count() >= 3, "small segments rolled");
    let before = read_records(&log);
    assert_eq!(before.len(), 8);

    // Tombstones are kept while younger than delete.retention.ms.
    let stats = super::compaction::compact(&mut log, now + 10, MAX_UNCOMPRESSED).unwrap();
    assert!(stats.records_after < stats.records_before);
    let after = read_records(&log);
    let newest: Vec<_> = after
        .iter()
        .map(|(o, k, v)| (*o, k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        newest,
        vec![
            (4, "b", Some("b4")),
            (5, "c", None),
            (6, "a", Some("a6")),
            (7, "d", Some("d7"))
        ]
    );
    // Later: the tombstone goes too; offsets never change; the log end stays.
    super::compaction::compact(&mut log, now + 1_000_000, MAX_UNCOMPRESSED).unwrap();
    let later: Vec<i64> = read_records(&log).iter().map(|r| r.0).collect();
    assert_eq!(later, vec![4, 6, 7]);
    assert_eq!(log.log_end_offset(), 8);
    // Appends continue, and a reopened log reads the same.
    append(&mut log, keyed_batch(&[("e", Some("e8"))], now), now);
    drop(log);
    let log = PartitionLog::open(dir.path(), config, false).unwrap();
    let reopened: Vec<i64> = read_records(&log).iter().map(|r| r.0).collect();
    assert_eq!(reopened, vec![4, 6, 7, 8]);
}

#[test]
fn the_cleaner_waits_for_the_lag_and_the_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = BTreeMap::new();
    o.insert("segment.bytes".to_string(), "200".to_string());
    o.insert("cleanup.policy".to_string(), "compact".to_string());
    o.insert("min.compaction.lag.ms".to_string(), "60000".to_string());
    o.insert("min.cleanable.dirty.ratio".to_string(), "0.5".to_string());
    o.insert("max.compaction.lag.ms".to_string(), "600000".to_string());
    let config = LogConfig::from_map(&BTreeMap::new(), &o).unwrap();
    let mut log = PartitionLog::open(dir.path(), config, false).unwrap();
    let t0 = 1_000_000;
    for i in 0..6 {
        let key = format!("k{}", i % 2);
        append(
            &mut log,
            keyed_batch(&[(key.as_str(), Some("v"))], t0 + i),
            t0,
        );
    }
    assert!(log.segment_count() >= 3);
    // Younger than min.compaction.lag.ms: nothing is cleanable yet.
    assert!(log.cleanable_segments(t0 + 1_000).is_empty());
    assert!(!log.needs_compaction(t0 + 1_000));
    // Past the lag, and everything is dirty: due.
    let later = t0 + 120_000;
    assert!(log.needs_compaction(later));
    let stats = super::compaction::compact(&mut log, later, MAX_UNCOMPRESSED).unwrap();
    assert!(stats.segments > 0);
    // Nothing dirty left: not due, however long it waits, until new segments seal.
    assert!(!log.needs_compaction(later + 10_000_000));
}

/// A follower's log: truncation at every batch boundary of a log spread over several
/// segments keeps exactly the batches below the cut, appends continue at the new end,
/// and the epochs and the cut survive a reopen — clean or not.
#[test]
fn truncation_keeps_whole_batches_below_the_cut_across_segments_and_restarts() {
    for cut in 0..=12i64 {
        for clean in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = PartitionLog::open(dir.path(), small_config(400), true).unwrap();
            // Batches of two records: offsets 0-1, 2-3, …, 10-11; epochs 0, then 1 from 6.
            for i in 0..6u8 {
                if i == 3 {
                    log.become_leader(1).unwrap();
                }
                append(&mut log, make_batch(2, 1000, 100, i), 1000);
            }
            assert!(log.segment_count() > 2, "the cuts must cross segments");
            assert_eq!(log.end_offset_for_epoch(0), (0, 6));
            log.truncate_to(cut).unwrap();
            // A cut inside a batch removes the whole batch.
            let kept_end = (cut / 2) * 2;
            assert_eq!(log.log_end_offset(), kept_end, "cut {cut}");
            let expect: Vec<(i64, i64, u8)> = (0..kept_end / 2)
                .map(|i| (i * 2, i * 2 + 1, i as u8))
                .collect();
            assert_eq!(read_all(&log, 0), expect, "cut {cut}");
            assert_eq!(
                log.latest_epoch(),
                if kept_end > 6 {
                    1
                } else if kept_end > 0 {
                    0
                } else {
                    -1
                }
            );
            if !clean {
                drop(log);
                log = PartitionLog::open(dir.path(), small_config(400), false).unwrap();
            } else {
                log.close().unwrap();
                drop(log);
                log = PartitionLog::open(dir.path(), small_config(400), true).unwrap();
            }
            assert_eq!(log.log_end_offset(), kept_end, "cut {cut} after a reopen");
            assert_eq!(read_all(&log, 0), expect);
            // A replicated batch continues exactly at the end, with its epoch kept.
            let mut next = make_batch(2, 1000, 100, 9);
            batch::set_base_offset(&mut next, kept_end);
            batch::set_leader_epoch(&mut next, 4);
            let crc = crc32c::crc32c(&next[21..]);
            next[17..21].copy_from_slice(&crc.to_be_bytes());
            log.append_replicated(&next, 1000).unwrap();
            assert_eq!(log.end_offset_for_epoch(4), (4, kept_end + 2));
            assert_eq!(log.latest_epoch(), 4);
            // One that does not continue the log is refused.
            assert!(log.append_replicated(&next, 1000).is_err());
        }
    }
}
