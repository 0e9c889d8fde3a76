//! The log of one topic partition: an ordered set of segments under
//! `<data>/<topic>-<partition>/`, the producer state, and the flush and retention policy.
//!
//! Invariants:
//! - offsets are dense and increasing: every appended batch gets `base offset == log end
//!   offset` and the log end offset moves to one past its last record;
//! - only the newest segment is written to; older segments are sealed;
//! - `log_start_offset <= log_end_offset`, and both only move forward, except by a
//!   follower's truncation (`truncate_to`, `truncate_fully_and_start_at`) after a
//!   leader change, or recovery;
//! - the leader-epoch checkpoint (`epochs.rs`) names, for every epoch in the log, the
//!   offset of its first batch: leaders assign their epoch at the log end when they take
//!   over, followers as batches of a newer epoch arrive, truncation forgets the rest;
//! - readers are given file handles and byte ranges under the partition lock and read
//!   outside it, and never see bytes past the size recorded at that moment.
//!
//! What replication does to a log — leader epochs, a follower's appends, truncation,
//! the high-watermark checkpoint — lives in `log/replication.rs`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchHeader};
use super::config::LogConfig;
use super::epochs::EpochCache;
use super::producer_state::{ProducerStateTable, SequenceCheck};
use super::segment::{self, Segment};
use super::StorageError;

mod replication;
use replication::read_hw_checkpoint;
pub use replication::HW_CHECKPOINT_FILE;

/// Result of an append.
#[derive(Debug, Clone)]
pub struct AppendInfo {
    /// Offset given to the first record (for a duplicate: the offset it got first time).
    pub base_offset: i64,
    pub log_start_offset: i64,
    pub duplicate: bool,
    /// The segment file written to, so that callers can fsync outside the partition lock.
    pub file: Option<Arc<File>>,
    pub records: i64,
    /// The broker time stamped on the batch for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
}

/// A byte range of one segment file to read without holding the partition lock.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Arc<File>,
    position: u64,
    /// Bytes readable from `position` to the end of the segment as it was when planned.
    available: u64,
    max_bytes: u64,
}

impl ReadPlan {
    /// Reads whole batches, at most `max_bytes` of them — and, as the first read of a
    /// fetch (Kafka's KIP-74 rule), at least the first batch, however large, so a
    /// consumer can make progress.
    pub fn read(&self) -> io::Result<Bytes> {
        self.read_within(true)
    }

    /// As `read`; with `min_one` false a first batch over `max_bytes` is not returned
    /// (nothing is): only the first non-empty partition of a fetch may pass the limits.
    pub fn read_within(&self, min_one: bool) -> io::Result<Bytes> {
        let want = self
            .available
            .min(self.max_bytes.max(batch::HEADER_LEN as u64)) as usize;
        let mut buf = BytesMut::zeroed(want);
        self.file.read_exact_at(&mut buf, self.position)?;
        let whole = batch::whole_batches_prefix(&buf);
        if whole > 0 {
            buf.truncate(whole);
            return Ok(buf.freeze());
        }
        if !min_one {
            return Ok(Bytes::new());
        }
        // The first batch alone is larger than max_bytes: return it whole.
        let first = batch::BatchHeader::parse(&buf).map_err(io::Error::other)?;
        let len = (first.total_len() as u64).min(self.available) as usize;
        let mut big = BytesMut::zeroed(len);
        self.file.read_exact_at(&mut big, self.position)?;
        Ok(big.freeze())
    }
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    producers: ProducerStateTable,
    unflushed_messages: i64,
    last_flush_ms: i64,
    leader_epoch: i32,
    /// Where each leader epoch starts (KIP-101).
    epochs: EpochCache,
    /// The high watermark last checkpointed (`high-watermark` in the directory): where
    /// a restarted replica starts its high watermark from.
    checkpointed_hw: i64,
    /// Newest sealed segment the last compaction covered (compacted topics only).
    compacted_through: Option<i64>,
    /// Set when the topic is deleted (`release`): appends are refused.
    released: bool,
    /// Offsets at or past this (the replica's high watermark) may still be truncated:
    /// retention and compaction leave the segments holding them alone, as Kafka's do.
    clean_limit: i64,
}

impl PartitionLog {
    /// Opens or creates the partition directory. When `clean` is false the newest segment
    /// is CRC-verified and its torn tail truncated.
    pub fn open(dir: &Path, config: LogConfig, clean: bool) -> Result<PartitionLog, StorageError> {
        fs::create_dir_all(dir)?;
        let mut bases: Vec<i64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().to_string();
            if name.ends_with(".cleaned") {
                // A compaction that did not finish: the original segment is intact.
                let _ = fs::remove_file(dir.join(&name));
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            }
        }
        bases.sort_unstable();
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments: BTreeMap::new(),
            log_start_offset: 0,
            producers: ProducerStateTable::default(),
            unflushed_messages: 0,
            last_flush_ms: segment::now_ms(),
            leader_epoch: 0,
            epochs: EpochCache::open(dir),
            checkpointed_hw: read_hw_checkpoint(dir),
            compacted_through: None,
            released: false,
            clean_limit: i64::MAX,
        };
        let mut tail_headers = Vec::new();
        let count = bases.len();
        for (i, base) in bases.into_iter().enumerate() {
            let is_tail = i + 1 == count;
            let (seg, scan) = Segment::open(
                dir,
                base,
                log.config.segment_index_bytes,
                log.config.index_interval_bytes,
                is_tail && !clean,
            )?;
            // Rebuild producer state from what the scan saw (the tail segment after an
            // unclean stop is scanned whole; that covers the five most recent batches of
            // every producer still writing).
            for h in &scan.headers {
                log.producers.record(h);
            }
            if is_tail {
                tail_headers = scan.headers;
            }
            log.segments.insert(base, seg);
        }
        if log.segments.is_empty() {
            let seg = Segment::create(
                dir,
                0,
                log.config.segment_index_bytes,
                log.config.index_interval_bytes,
            )?;
            log.segments.insert(0, seg);
        }
        log.log_start_offset = *log.segments.keys().next().expect("one segment");
        log.recover_epochs(&tail_headers)?;
        log.leader_epoch = log.epochs.latest_epoch().max(0);
        let (start, end) = (log.log_start_offset, log.log_end_offset());
        log.checkpointed_hw = log.checkpointed_hw.clamp(start, end);
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Validates `bytes` as whole v2 batches and appends them (see `append`): for
    /// batches the appliance builds itself.
    pub fn append_batches(
        &mut self,
        bytes: BytesMut,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let headers = batch::validate_batches(&bytes)?;
        self.append(bytes, headers, now_ms)
    }

    /// Appends validated batches (see `batch::validate_batches`), assigning offsets and
    /// the leader epoch in place. Idempotent-producer retries are acknowledged with their
    /// first offsets and not written again.
    pub fn append(
        &mut self,
        mut bytes: BytesMut,
        headers: Vec<(usize, BatchHeader)>,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if headers.is_empty() {
            return Err(StorageError::EmptyAppend);
        }
        if self.released {
            return Err(StorageError::Deleted);
        }
        for (_, h) in &headers {
            match self.producers.check(h) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { base_offset } if headers.len() == 1 => {
                    return Ok(AppendInfo {
                        base_offset,
                        log_start_offset: self.log_start_offset,
                        duplicate: true,
                        file: None,
                        records: 0,
                        log_append_time_ms: -1,
                    });
                }
                SequenceCheck::Duplicate { .. } => return Err(StorageError::DuplicateInMultiBatch),
                SequenceCheck::FencedEpoch => return Err(StorageError::ProducerFenced),
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(StorageError::OutOfOrderSequence { expected, got })
                }
            }
        }
        self.maybe_roll(bytes.len() as u64, now_ms)?;
        let base_offset = self.log_end_offset();
        if self.epochs.latest_epoch() != self.leader_epoch {
            self.epochs.assign(self.leader_epoch, base_offset)?;
        }
        let mut next = base_offset;
        let mut stamped = Vec::with_capacity(headers.len());
        let mut records = 0i64;
        let log_append_time = self.config.message_timestamp_type == "LogAppendTime";
        for (pos, mut h) in headers {
            batch::set_base_offset(&mut bytes[pos..], next);
            batch::set_leader_epoch(&mut bytes[pos..], self.leader_epoch);
            if log_append_time {
                batch::set_log_append_time(&mut bytes[pos..], now_ms)
                    .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
                h.max_timestamp = now_ms;
                h.attributes |= 0x08;
            }
            h.base_offset = next;
            h.leader_epoch = self.leader_epoch;
            next = h.last_offset() + 1;
            records += h.last_offset_delta as i64 + 1;
            stamped.push((pos, h));
        }
        self.active_mut().append(&bytes, &stamped)?;
        for (_, h) in &stamped {
            self.producers.record(h);
        }
        let log_append_time_ms = if log_append_time { now_ms } else { -1 };
        self.appended(base_offset, records, log_append_time_ms)
    }

    /// After `records` were written from `base_offset`: `flush.messages` applied, and
    /// what an append reports.
    fn appended(
        &mut self,
        base_offset: i64,
        records: i64,
        log_append_time_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.unflushed_messages += records;
        let file = self.active().file();
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            log_start_offset: self.log_start_offset,
            duplicate: false,
            file: Some(file),
            records,
            log_append_time_ms,
        })
    }

    fn maybe_roll(&mut self, incoming: u64, now_ms: i64) -> Result<(), StorageError> {
        let seg_bytes = self.config.segment_bytes;
        let seg_ms = self.config.segment_ms;
        let active = self.active();
        let full = active.size() + incoming > seg_bytes
            || active.indexes_full()
            || active.size() + incoming > u32::MAX as u64;
        let old = now_ms - active.created_ms() >= seg_ms - roll_jitter(active, &self.config);
        if !active.is_empty() && (full || old) {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self) -> Result<(), StorageError> {
        let next = self.log_end_offset();
        self.active_mut().seal()?;
        let seg = Segment::create(
            &self.dir,
            next,
            self.config.segment_index_bytes,
            self.config.index_interval_bytes,
        )?;
        self.segments.insert(next, seg);
        Ok(())
    }

    /// Plans a read of whole batches starting with the one that holds `offset`.
    /// `Ok(None)` means `offset` is the log end offset (nothing to read yet).
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<ReadPlan>, StorageError> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: leo,
            });
        }
        if offset == leo {
            return Ok(None);
        }
        for (_, seg) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            if let Some(position) = seg.locate(offset)? {
                return Ok(Some(ReadPlan {
                    file: seg.file(),
                    position,
                    available: seg.size() - position,
                    max_bytes,
                }));
            }
        }
        Ok(None)
    }

    /// As `read`, but nothing at or past `limit` (a consumer's read stops at the high
    /// watermark): an offset at or past it reads nothing yet.
    pub fn read_until(
        &self,
        offset: i64,
        max_bytes: u64,
        limit: i64,
    ) -> Result<Option<ReadPlan>, StorageError> {
        let leo = self.log_end_offset();
        if limit >= leo {
            return self.read(offset, max_bytes);
        }
        if offset >= limit && offset >= self.log_start_offset && offset <= leo {
            return Ok(None);
        }
        let Some(mut plan) = self.read(offset, max_bytes)? else {
            return Ok(None);
        };
        // The batch holding `limit` and everything after it stay unread: that bounds
        // the plan when `limit` lies in the segment the plan reads.
        if let Some((_, seg)) = self.segments.range(..=limit).next_back() {
            if Arc::ptr_eq(&seg.file(), &plan.file) {
                if let Some(end) = seg.locate(limit)? {
                    plan.available = end.saturating_sub(plan.position);
                    if plan.available == 0 {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(plan))
    }

    /// The first offset whose batch has a timestamp >= `timestamp`, with that batch's max timestamp.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>, StorageError> {
        for seg in self.segments.values() {
            if let Some(off) = seg.find_timestamp(timestamp)? {
                return Ok(Some(off.max(self.log_start_offset)));
            }
        }
        Ok(None)
    }

    /// Largest timestamp in the log (ListOffsets MAX_TIMESTAMP), with its batch's base offset.
    pub fn max_timestamp(&self) -> i64 {
        self.segments
            .values()
            .map(|s| s.max_timestamp())
            .max()
            .unwrap_or(-1)
    }

    /// fsyncs the active segment and its indexes.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.active().flush()?;
        self.unflushed_messages = 0;
        self.last_flush_ms = segment::now_ms();
        Ok(())
    }

    /// Retention and compaction touch only segments wholly below `limit` (the replica's
    /// high watermark): what lies above it may still be truncated by a new leader.
    pub fn set_clean_limit(&mut self, limit: i64) {
        self.clean_limit = limit;
    }

    /// Whether the sealed segment at `base` lies wholly below the clean limit (the
    /// next segment starts at or below it).
    fn below_clean_limit(&self, base: i64) -> bool {
        self.segments
            .range(base + 1..)
            .next()
            .is_some_and(|(next, _)| *next <= self.clean_limit)
    }

    /// Flushes if `flush.ms` has passed with unflushed messages.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, StorageError> {
        if self.unflushed_messages > 0
            && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms
        {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Deletes whole segments past `retention.ms` or beyond `retention.bytes`, oldest first.
    /// The active segment is rolled when it alone has expired, so an idle topic still
    /// ages out. Returns the number of segments deleted.
    ///
    /// Works on a full disk: sealed segments are deleted before anything is created, and
    /// the roll (an empty file) is only attempted after them; deletion writes nothing.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        if !self.config.deletes() {
            return Ok(0);
        }
        let mut deleted = self.delete_expired_segments(now_ms)?;
        let retention_ms = self.config.retention_ms;
        let active = self.active();
        if retention_ms >= 0
            && !active.is_empty()
            && now_ms - active.retention_timestamp() > retention_ms
        {
            match self.roll() {
                Ok(()) => deleted += self.delete_expired_segments(now_ms)?,
                Err(e) if deleted > 0 => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "retention: cannot roll the expired active segment")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Deletes sealed segments from the oldest while they are past `retention.ms` or
    /// beyond `retention.bytes`; the log start offset follows.
    fn delete_expired_segments(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        let retention_ms = self.config.retention_ms;
        let retention_bytes = self.config.retention_bytes;
        let mut deleted = 0;
        let mut total = self.size_bytes() as i64;
        while self.segments.len() > 1 {
            let (&base, seg) = self.segments.iter().next().expect("non-empty");
            if !self.below_clean_limit(base) {
                break;
            }
            let too_old = retention_ms >= 0 && now_ms - seg.retention_timestamp() > retention_ms;
            let too_big = retention_bytes >= 0 && total - seg.size() as i64 >= retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            let seg = self.segments.remove(&base).expect("present");
            total -= seg.size() as i64;
            tracing::info!(dir = %self.dir.display(), base, "retention: deleting segment");
            self.log_start_offset = self
                .log_start_offset
                .max(*self.segments.keys().next().expect("non-empty"));
            seg.delete()?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The sealed segments the log cleaner may rewrite now: from the oldest, up to the
    /// first that holds a record younger than `min.compaction.lag.ms`.
    pub fn cleanable_segments(&self, now_ms: i64) -> Vec<i64> {
        let lag = self.config.min_compaction_lag_ms;
        let sealed = self.sealed_segments();
        sealed
            .into_iter()
            .take_while(|base| {
                let seg = &self.segments[base];
                self.below_clean_limit(*base)
                    && (seg.is_empty() || now_ms.saturating_sub(seg.retention_timestamp()) >= lag)
            })
            .collect()
    }

    /// Whether a compacted log is due for cleaning, as Kafka's cleaner decides: the
    /// cleanable segments no compaction has covered yet hold at least
    /// `min.cleanable.dirty.ratio` of the cleanable bytes, or one of them has waited
    /// longer than `max.compaction.lag.ms`.
    pub fn needs_compaction(&self, now_ms: i64) -> bool {
        if !self.config.compacts() {
            return false;
        }
        let cleanable = self.cleanable_segments(now_ms);
        let dirty: Vec<&i64> = cleanable
            .iter()
            .filter(|b| Some(**b) > self.compacted_through)
            .collect();
        let Some(oldest_dirty) = dirty.first() else {
            return false;
        };
        let size = |b: &i64| self.segments[b].size() as f64;
        let total: f64 = cleanable.iter().map(size).sum();
        let dirty_bytes: f64 = dirty.iter().map(|b| size(b)).sum();
        let ratio_due = total > 0.0 && dirty_bytes / total >= self.config.min_cleanable_dirty_ratio;
        let overdue = now_ms.saturating_sub(self.segments[*oldest_dirty].retention_timestamp())
            > self.config.max_compaction_lag_ms;
        ratio_due || overdue
    }

    /// Records that segments up to `through` (a base offset) have been compacted.
    pub fn mark_compacted(&mut self, through: i64) {
        self.compacted_through = Some(through);
    }

    /// Base offsets of the sealed segments (all but the active one), oldest first.
    pub fn sealed_segments(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.segments.keys().copied().collect();
        v.pop();
        v
    }

    /// Every batch of one segment as stored, with its max timestamp.
    pub fn segment_bytes(&self, base: i64) -> Result<(Bytes, i64), StorageError> {
        let seg = self
            .segments
            .get(&base)
            .ok_or(StorageError::OffsetOutOfRange {
                offset: base,
                start: self.log_start_offset,
                end: self.log_end_offset(),
            })?;
        let mut buf = BytesMut::zeroed(seg.size() as usize);
        seg.file().read_exact_at(&mut buf, 0)?;
        Ok((buf.freeze(), seg.max_timestamp()))
    }

    /// Replaces a sealed segment's contents with `bytes` (whole batches whose offsets lie
    /// within the segment), or removes the segment when `bytes` is empty. Crash-safe: the
    /// new contents are written and fsync'd under a `.cleaned` name, then renamed over
    /// the old file; the indexes are rebuilt from the new file.
    pub fn replace_segment(&mut self, base: i64, bytes: &[u8]) -> Result<(), StorageError> {
        let is_active = self.segments.keys().next_back() == Some(&base);
        if is_active || !self.segments.contains_key(&base) {
            return Ok(());
        }
        if bytes.is_empty() && base != self.log_start_offset {
            self.segments.remove(&base).expect("present").delete()?;
            return Ok(());
        }
        let cleaned = self
            .dir
            .join(format!("{}.cleaned", segment::file_name(base, "log")));
        // Written in full before the old segment is touched: on a full disk the
        // compaction fails and the segment stays as it was.
        let written = fs::File::create(&cleaned).and_then(|mut f| {
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&cleaned);
            return Err(e.into());
        }
        let old = self.segments.remove(&base).expect("present");
        let (index, time_index) = old.index_paths();
        drop(old);
        let _ = fs::remove_file(index);
        let _ = fs::remove_file(time_index);
        fs::rename(&cleaned, self.dir.join(segment::file_name(base, "log")))?;
        fs::File::open(&self.dir)?.sync_all()?;
        let mut seg = self.reopen_rewritten(base)?;
        seg.seal()?;
        self.segments.insert(base, seg);
        Ok(())
    }

    /// Opens segment `base` again after its file was rewritten in place (compacted or
    /// truncated): its indexes, removed beforehand, are rebuilt by the verifying scan.
    pub(crate) fn reopen_rewritten(&self, base: i64) -> Result<Segment, StorageError> {
        let (seg, _) = Segment::open(
            &self.dir,
            base,
            self.config.segment_index_bytes,
            self.config.index_interval_bytes,
            true,
        )?;
        Ok(seg)
    }

    /// Flushes and seals indexes for a clean shutdown.
    pub fn close(&mut self) -> Result<(), StorageError> {
        self.active_mut().seal()?;
        Ok(())
    }

    /// Gives back the space of a partition whose topic is being deleted, at once: every
    /// segment file is cut to nothing (other handles on it — a read in flight — then
    /// read nothing, and the blocks are free without waiting for them to close), and
    /// the log refuses appends from now on. The directory is removed by the caller.
    pub fn release(&mut self) {
        self.released = true;
        for seg in self.segments.values() {
            if let Err(e) = seg.file().set_len(0) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot truncate a deleted segment");
            }
        }
    }

    /// Removes the partition's directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}

/// How much earlier than `segment.ms` this segment rolls: a spread over
/// `segment.jitter.ms` that is fixed per segment (derived from its base offset and
/// creation time), so segments created together do not all roll at once.
fn roll_jitter(segment: &Segment, config: &LogConfig) -> i64 {
    let range = config.segment_jitter_ms.min(config.segment_ms);
    if range <= 0 {
        return 0;
    }
    // splitmix64 of the segment's identity: a spread, not a secret.
    let mut z = (segment.base_offset as u64) ^ (segment.created_ms() as u64).rotate_left(32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % range as u64) as i64
}
