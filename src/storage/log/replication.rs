//! What replication does to a partition log: the leader epochs it records (the
//! checkpoint of `epochs.rs`, assigned when this replica takes the lead and as a
//! follower's batches of newer epochs arrive), a follower's appends of the leader's
//! batches as they were stored, the truncations a leader change asks for
//! (KIP-101/279: whole batches, never below what the leader has), and the
//! high-watermark checkpoint a restarted replica starts from.
//!
//! Invariants: after every operation here the epoch checkpoint names no epoch starting
//! at or past the log end, and the producer state describes exactly the batches the
//! log holds.

use std::fs;
use std::path::Path;

use super::{AppendInfo, PartitionLog};
use crate::storage::batch::{self, BatchHeader};
use crate::storage::segment::{self, Segment};
use crate::storage::StorageError;

/// The high watermark checkpoint in a partition directory.
pub const HW_CHECKPOINT_FILE: &str = "high-watermark";

pub(super) fn read_hw_checkpoint(dir: &Path) -> i64 {
    fs::read_to_string(dir.join(HW_CHECKPOINT_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

impl PartitionLog {
    /// Brings the epoch checkpoint in line with the log as recovered: epochs past the
    /// log end are forgotten, newer epochs in the tail are added; a log without a
    /// checkpoint (written before there was one) has its epochs read off every batch.
    pub(super) fn recover_epochs(&mut self, tail: &[BatchHeader]) -> Result<(), StorageError> {
        let end = self.log_end_offset();
        self.epochs.truncate_from_end(end)?;
        let headers = if self.epochs.is_empty() && end > self.log_start_offset {
            self.all_headers()?
        } else {
            tail.to_vec()
        };
        for h in &headers {
            if h.leader_epoch > self.epochs.latest_epoch() {
                self.epochs.assign(h.leader_epoch, h.base_offset)?;
            }
        }
        Ok(())
    }

    /// Every batch header of the log, oldest first (a header-only scan).
    pub(super) fn all_headers(&self) -> Result<Vec<BatchHeader>, StorageError> {
        let mut out = Vec::new();
        for seg in self.segments.values() {
            let file = seg.file();
            out.extend(segment::scan_file(&file, 0, seg.size(), false)?.headers);
        }
        Ok(out)
    }

    /// This replica leads from now on in `epoch`: batches appended are stamped with
    /// it, and the epoch starts at the log end (KIP-101). Never lowered: an older
    /// epoch is ignored.
    pub fn become_leader(&mut self, epoch: i32) -> Result<(), StorageError> {
        if epoch < self.leader_epoch {
            return Ok(());
        }
        self.leader_epoch = epoch;
        self.epochs.assign(epoch, self.log_end_offset())?;
        Ok(())
    }

    /// The newest leader epoch of the log's batches (a follower's `LastFetchedEpoch`),
    /// or -1 for an empty log.
    pub fn latest_epoch(&self) -> i32 {
        self.epochs.latest_epoch()
    }

    /// Where `epoch` starts here, if it does (a leader's own epoch: where followers
    /// must have caught up to before rejoining the ISR).
    pub fn epoch_start_offset(&self, epoch: i32) -> Option<i64> {
        self.epochs.start_offset_of(epoch)
    }

    /// Kafka's `endOffsetForEpoch`: the largest epoch at or below `epoch` this log
    /// has, and where it ends (see `EpochCache::end_offset_for`).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The high watermark of the last checkpoint (clamped to the log), for a replica
    /// that starts again.
    pub fn checkpointed_high_watermark(&self) -> i64 {
        self.checkpointed_hw
    }

    /// Records the high watermark in `high-watermark` when it moved since the last
    /// checkpoint (written to a temporary file and renamed).
    pub fn checkpoint_high_watermark(&mut self, hw: i64) -> Result<(), StorageError> {
        if hw == self.checkpointed_hw {
            return Ok(());
        }
        crate::storage::epochs::write_atomically(
            &self.dir.join(HW_CHECKPOINT_FILE),
            &format!("{hw}\n"),
        )?;
        self.checkpointed_hw = hw;
        Ok(())
    }

    /// A follower's append: batches as the leader stored them — offsets, leader epochs
    /// and timestamps kept, nothing re-stamped — starting exactly at the log end.
    /// Newer epochs in them are added to the epoch checkpoint; the producer state
    /// follows, so idempotence holds when this replica leads later.
    pub fn append_replicated(
        &mut self,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if self.released {
            return Err(StorageError::Deleted);
        }
        let headers = batch::validate_batches(&bytes)?;
        let mut expected = self.log_end_offset();
        for (_, h) in &headers {
            if h.base_offset != expected || h.last_offset_delta < 0 {
                return Err(StorageError::NotContiguous {
                    expected,
                    got: h.base_offset,
                });
            }
            expected = h.last_offset() + 1;
        }
        let Some((_, first)) = headers.first() else {
            return Err(StorageError::EmptyAppend);
        };
        let base_offset = first.base_offset;
        self.maybe_roll(bytes.len() as u64, now_ms)?;
        for (_, h) in &headers {
            if h.leader_epoch > self.epochs.latest_epoch() {
                self.epochs.assign(h.leader_epoch, h.base_offset)?;
            }
        }
        if let Err(e) = self.active_mut().append(&bytes, &headers) {
            // Nothing was written: no epoch may start past the log end.
            let end = self.log_end_offset();
            let _ = self.epochs.truncate_from_end(end);
            return Err(e.into());
        }
        let mut records = 0i64;
        for (_, h) in &headers {
            self.producers.record(h);
            records += h.last_offset_delta as i64 + 1;
        }
        self.appended(base_offset, records, -1)
    }

    /// A follower's truncation after a leader change (KIP-101/279): removes every batch
    /// that ends at or past `offset` (a batch is kept or removed whole), so the log end
    /// becomes at most `offset`. Epochs starting past the new end are forgotten and the
    /// producer state is read again from the batches that remain.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset() {
            // Nothing to cut, but an epoch that starts there wrote nothing here.
            self.epochs.truncate_from_end(offset)?;
            return Ok(());
        }
        if offset <= self.log_start_offset {
            let start = self.log_start_offset;
            return self.truncate_fully_and_start_at(start);
        }
        tracing::info!(dir = %self.dir.display(), from = self.log_end_offset(), to = offset, "truncating the log to the leader's");
        let doomed: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        for base in doomed {
            self.segments.remove(&base).expect("present").delete()?;
        }
        let (&base, seg) = self
            .segments
            .iter()
            .next_back()
            .expect("a segment below offset");
        if let Some(position) = seg.locate(offset)? {
            let file = seg.file();
            let (index, time_index) = seg.index_paths();
            drop(self.segments.remove(&base));
            file.set_len(position)?;
            file.sync_all()?;
            drop(file);
            // Rebuilt by the scan that reopening with `verify` does.
            let _ = fs::remove_file(index);
            let _ = fs::remove_file(time_index);
            let seg = self.reopen_rewritten(base)?;
            self.segments.insert(base, seg);
        }
        let end = self.log_end_offset();
        self.epochs.truncate_from_end(end)?;
        self.producers.clear();
        for h in self.all_headers()? {
            self.producers.record(&h);
        }
        self.checkpointed_hw = self.checkpointed_hw.min(end);
        Ok(())
    }

    /// Empties the log and starts it again at `offset` (a follower whose log lies
    /// wholly before the leader's log start, or that shares nothing with it).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        tracing::info!(dir = %self.dir.display(), offset, "emptying the log to start again at the leader's offset");
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            self.segments.remove(&base).expect("present").delete()?;
        }
        let seg = Segment::create(
            &self.dir,
            offset,
            self.config.segment_index_bytes,
            self.config.index_interval_bytes,
        )?;
        self.segments.insert(offset, seg);
        self.log_start_offset = offset;
        self.producers.clear();
        self.epochs.clear()?;
        self.unflushed_messages = 0;
        self.checkpointed_hw = offset;
        Ok(())
    }
}
