//! Log compaction for `cleanup.policy=compact` topics (`__consumer_offsets` first of
//! all): in the sealed segments, only the newest record of every key survives, and
//! tombstones (null values) survive only for `delete.retention.ms` after their segment.
//!
//! Invariants: offsets never change — kept records keep their offsets, leaving gaps
//! that readers skip; the active segment is never touched, so the newest record of a
//! key, wherever it is, is never removed; a compaction interrupted by a crash leaves
//! the original segment (see `PartitionLog::replace_segment`). Records without a key
//! are kept. Idempotent-producer and transactional metadata is not carried into
//! rewritten batches: compacted topics here are written by the appliance itself.
//!
//! Not done yet: merging small segments, and Kafka's dirty-ratio scheduling — every
//! run rewrites all sealed segments, which is fine for the offsets topic's size.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::log::PartitionLog;
use super::StorageError;
use crate::protocol::records::encode_plain_batch;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments: usize,
    pub records_before: usize,
    pub records_after: usize,
}

fn decode_all(mut bytes: Bytes) -> Result<Vec<Vec<Record>>, StorageError> {
    let mut batches = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        batches.push(set.records);
    }
    Ok(batches)
}

/// Compacts every sealed segment of `log`.
pub fn compact(log: &mut PartitionLog, now_ms: i64) -> Result<CompactionStats, StorageError> {
    let sealed = log.sealed_segments();
    if sealed.is_empty() {
        return Ok(CompactionStats::default());
    }
    // The newest offset of every key, over the whole log (the active segment included).
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    let mut from = log.log_start_offset();
    while let Some(plan) = log.read(from, 8 * 1024 * 1024)? {
        let bytes = plan.read()?;
        let mut next = from;
        for records in decode_all(bytes)? {
            for r in records {
                if let Some(k) = &r.key {
                    latest.insert(k.clone(), r.offset);
                }
                next = next.max(r.offset + 1);
            }
        }
        if next == from {
            break;
        }
        from = next;
    }
    let delete_retention = log.config().delete_retention_ms;
    let mut stats = CompactionStats::default();
    for base in sealed {
        let (bytes, max_ts) = log.segment_bytes(base)?;
        let drop_tombstones = now_ms - max_ts > delete_retention;
        let mut out = BytesMut::new();
        for records in decode_all(bytes)? {
            stats.records_before += records.len();
            let mut kept: Vec<Record> = records
                .into_iter()
                .filter(|r| !r.control)
                .filter(|r| match &r.key {
                    None => true,
                    Some(k) => {
                        latest.get(k) == Some(&r.offset) && !(r.value.is_none() && drop_tombstones)
                    }
                })
                .collect();
            if kept.is_empty() {
                continue;
            }
            stats.records_after += kept.len();
            encode_plain_batch(&mut out, &mut kept, Compression::None)
                .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        }
        log.replace_segment(base, &out)?;
        stats.segments += 1;
    }
    log.mark_compacted();
    Ok(stats)
}
