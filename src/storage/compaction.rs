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
//! Scheduling is Kafka's (`PartitionLog::needs_compaction`): `min.cleanable.dirty.ratio`,
//! `min.compaction.lag.ms` (records younger than it are left alone) and
//! `max.compaction.lag.ms` (measured from a segment's newest record, where Kafka takes
//! the first dirty record's: a segment may wait up to its own span longer). Not done
//! yet: merging small segments — a run rewrites every
//! cleanable segment, which is fine for the offsets topic's size.

use std::collections::HashMap;

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record};

use super::batch;
use super::log::PartitionLog;
use super::records;
use super::StorageError;
use crate::protocol::records::encode_plain_batch;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments: usize,
    pub records_before: usize,
    pub records_after: usize,
}

/// The records of `bytes`, batch by batch (control batches left out).
fn decode_batches(
    bytes: &Bytes,
    max_uncompressed: usize,
) -> Result<Vec<Vec<Record>>, StorageError> {
    let mut batches: Vec<Vec<Record>> = Vec::new();
    let mut current_base = None;
    records::walk(bytes, max_uncompressed, |header, section, view| {
        if header.is_control() {
            return ControlFlow::Continue(());
        }
        if current_base != Some(header.base_offset) {
            current_base = Some(header.base_offset);
            batches.push(Vec::new());
        }
        let (offset, timestamp) = records::offset_and_timestamp(header, &view);
        let record = records::to_record(header, section, &view, offset, timestamp);
        batches.last_mut().expect("pushed above").push(record);
        ControlFlow::Continue(())
    })
    .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
    Ok(batches)
}

/// Compacts the cleanable segments of `log` (sealed, and older than
/// `min.compaction.lag.ms`; see `PartitionLog::cleanable_segments`). Batches are
/// decompressed within `max_uncompressed` bytes each.
pub fn compact(
    log: &mut PartitionLog,
    now_ms: i64,
    max_uncompressed: usize,
) -> Result<CompactionStats, StorageError> {
    let sealed = log.cleanable_segments(now_ms);
    let Some(&through) = sealed.last() else {
        return Ok(CompactionStats::default());
    };
    // The newest offset of every key, over the whole log (the active segment included).
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    let mut from = log.log_start_offset();
    while let Some(plan) = log.read(from, 8 * 1024 * 1024)? {
        let bytes = plan.read()?;
        let mut next = from;
        records::walk(&bytes, max_uncompressed, |header, _, view| {
            let (offset, _) = records::offset_and_timestamp(header, &view);
            if let Some(k) = view.key {
                // Copied: a slice would keep the whole read buffer alive.
                latest.insert(Bytes::copy_from_slice(k), offset);
            }
            next = next.max(offset + 1);
            ControlFlow::Continue(())
        })
        .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        // A batch of control records only still moves the read on.
        if let Some(last) = batch::validate_batches(&bytes)
            .ok()
            .and_then(|v| v.last().map(|(_, h)| h.last_offset()))
        {
            next = next.max(last + 1);
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
        for records in decode_batches(&bytes, max_uncompressed)? {
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
    log.mark_compacted(through);
    Ok(stats)
}
