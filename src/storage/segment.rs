//! One log segment: `<base offset, 20 digits>.log` holding whole v2 batches back to
//! back, plus its `.index` and `.timeindex`.
//!
//! Invariants: the log file holds only whole, CRC-valid batches with strictly
//! increasing offsets (recovery cuts anything else off the tail); `size` is the number
//! of bytes readers may see and the position the next batch is written at; index
//! entries never point past `size`. An append that fails leaves `size` and the file
//! as they were (see `append`). Reads use positional reads on a shared handle, so a
//! reader never blocks a writer for longer than the index lookup.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::index::{OffsetIndex, TimeIndex};

/// Where in a segment a read should start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub position: u64,
    pub base_offset: i64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// What a scan of a segment's log file found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Bytes of whole valid batches from the start of the file.
    pub valid_len: u64,
    /// Offset after the last valid batch, if any batch was found.
    pub next_offset: Option<i64>,
    pub max_timestamp: i64,
    pub headers: Vec<BatchHeader>,
}

pub struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    size: u64,
    /// Offset one past the last record in this segment (== base_offset when empty).
    next_offset: i64,
    max_timestamp: i64,
    created_ms: i64,
    index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index: u64,
    index_interval: u64,
}

impl Segment {
    /// Creates a new, empty segment.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_max_bytes: usize,
        index_interval: u64,
    ) -> io::Result<Segment> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)?;
        file.set_len(0)?;
        let index = OffsetIndex::open(
            &dir.join(file_name(base_offset, "index")),
            0,
            index_max_bytes,
        )?;
        let time_index = TimeIndex::open(
            &dir.join(file_name(base_offset, "timeindex")),
            0,
            index_max_bytes,
        )?;
        Ok(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            created_ms: now_ms(),
            index,
            time_index,
            bytes_since_index: 0,
            index_interval,
        })
    }

    /// Opens an existing segment. When `verify` is set (the tail segment after an
    /// unclean stop), every batch's CRC is checked, the file is truncated after the
    /// last valid batch, and the indexes are rebuilt. Otherwise sealed indexes are
    /// trusted when consistent and rebuilt from a header-only scan when not.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_max_bytes: usize,
        index_interval: u64,
        verify: bool,
    ) -> io::Result<(Segment, ScanResult)> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let file_len = file.metadata()?.len();
        let created_ms = file
            .metadata()?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or_else(now_ms);
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let idx_entries = fs::metadata(&index_path)
            .map(|m| m.len() as usize / OffsetIndex::ENTRY_LEN)
            .unwrap_or(0);
        let ts_entries = fs::metadata(&time_path)
            .map(|m| m.len() as usize / TimeIndex::ENTRY_LEN)
            .unwrap_or(0);

        let mut index = OffsetIndex::open(
            &index_path,
            if verify { 0 } else { idx_entries },
            index_max_bytes.max(idx_entries * 8),
        )?;
        let mut time_index = TimeIndex::open(
            &time_path,
            if verify { 0 } else { ts_entries },
            index_max_bytes.max(ts_entries * 12),
        )?;
        // A sealed segment with a sane index only needs its tail after the last index
        // entry read; anything else is scanned (and, with `verify`, CRC-checked) whole.
        let trusted = !verify
            && !index.is_empty()
            && index.is_consistent(file_len)
            && time_index.is_consistent();
        let scan_from = if trusted {
            index.entry_at(index.len() - 1).1 as u64
        } else {
            0
        };
        let mut scan = scan_file(&file, scan_from, file_len, verify)?;
        if trusted {
            if let Some(t) = time_index.last_timestamp() {
                scan.max_timestamp = scan.max_timestamp.max(t);
            }
        } else {
            index.clear();
            time_index.clear();
        }
        if scan.valid_len < file_len {
            tracing::warn!(
                segment = %log_path.display(),
                valid = scan.valid_len,
                file_len,
                "truncating torn or corrupt tail of segment"
            );
            file.set_len(scan.valid_len)?;
            file.sync_all()?;
            index.truncate_to_position(scan.valid_len as u32);
        }
        let mut seg = Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: scan.valid_len,
            next_offset: scan.next_offset.unwrap_or(base_offset),
            max_timestamp: scan.max_timestamp,
            created_ms,
            index,
            time_index,
            bytes_since_index: 0,
            index_interval,
        };
        if !trusted {
            let mut pos = 0u64;
            let mut max_ts = -1i64;
            for h in &scan.headers {
                max_ts = max_ts.max(h.max_timestamp);
                seg.index_batch(h.base_offset, pos, max_ts, h.total_len() as u64);
                pos += h.total_len() as u64;
            }
        }
        Ok((seg, scan))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    pub fn indexes_full(&self) -> bool {
        self.index.is_full() || self.time_index.is_full()
    }

    /// The largest timestamp this segment can be aged by: its newest record, or its
    /// file time when it holds none with a timestamp.
    pub fn retention_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            self.max_timestamp
        } else {
            self.created_ms
        }
    }

    fn index_batch(&mut self, base_offset: i64, position: u64, max_ts_so_far: i64, len: u64) {
        if self.index.is_empty() || self.bytes_since_index >= self.index_interval {
            let rel = (base_offset - self.base_offset) as u32;
            self.index.append(rel, position as u32);
            self.time_index.maybe_append(max_ts_so_far, rel);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
    }

    /// Appends already-validated, offset-stamped batches. `headers` describe them in order.
    ///
    /// All or nothing: index space is claimed first, and a failed or short write of the
    /// log (ENOSPC, EIO) is cut back off the file before the error is returned, so the
    /// next append starts at the same position and nothing half-written is ever read
    /// or survives a restart. Writes go to an explicit position (not O_APPEND): even if
    /// the cut itself fails, the next append overwrites the leftover bytes, and
    /// recovery trims whatever lies past the last whole batch.
    pub fn append(&mut self, bytes: &[u8], headers: &[(usize, BatchHeader)]) -> io::Result<()> {
        self.index.reserve(headers.len())?;
        self.time_index.reserve(headers.len())?;
        if let Err(e) = self.file.write_all_at(bytes, self.size) {
            if let Err(cut) = self.file.set_len(self.size) {
                tracing::error!(segment = %self.log_path.display(), error = %cut, "cannot cut a failed append off the segment; the next append overwrites it");
            }
            return Err(e);
        }
        let start = self.size;
        for (pos, h) in headers {
            self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
            let max_ts = self.max_timestamp;
            self.index_batch(
                h.base_offset,
                start + *pos as u64,
                max_ts,
                h.total_len() as u64,
            );
            self.next_offset = h.last_offset() + 1;
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Finds the file position of the first batch that contains `offset` or starts after it.
    /// Returns None if `offset` is at or past the segment's end.
    pub fn locate(&self, offset: i64) -> io::Result<Option<u64>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let rel = (offset - self.base_offset).max(0) as u32;
        let mut pos = self.index.lookup(rel) as u64;
        let mut hdr = [0u8; HEADER_LEN];
        while pos < self.size {
            self.file.read_exact_at(&mut hdr, pos)?;
            let h = BatchHeader::parse(&hdr).map_err(io::Error::other)?;
            if h.last_offset() >= offset {
                return Ok(Some(pos));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Finds the first batch whose max timestamp is >= `timestamp`; returns its base offset.
    pub fn find_timestamp(&self, timestamp: i64) -> io::Result<Option<i64>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let rel = self.time_index.lookup(timestamp);
        let mut pos = self.index.lookup(rel) as u64;
        let mut hdr = [0u8; HEADER_LEN];
        while pos < self.size {
            self.file.read_exact_at(&mut hdr, pos)?;
            let h = BatchHeader::parse(&hdr).map_err(io::Error::other)?;
            if h.max_timestamp >= timestamp {
                return Ok(Some(h.base_offset));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()?;
        self.index.flush()?;
        self.time_index.flush()
    }

    /// Flushes and trims the indexes: the segment will not be appended to again.
    pub fn seal(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.index.seal()?;
        self.time_index.seal()
    }

    /// Paths of the offset index and time index files.
    pub fn index_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        )
    }

    /// Removes the segment's files.
    pub fn delete(self) -> io::Result<()> {
        let idx = self.index.path().to_path_buf();
        let tidx = self.time_index.path().to_path_buf();
        drop(self.index);
        drop(self.time_index);
        fs::remove_file(&self.log_path)?;
        let _ = fs::remove_file(idx);
        let _ = fs::remove_file(tidx);
        Ok(())
    }
}

/// Scans a log file batch by batch from `start` (a batch boundary). With `verify`, each batch's CRC is checked and the
/// scan stops at the first invalid or incomplete batch; without, only framing is checked.
pub fn scan_file(file: &File, start: u64, file_len: u64, verify: bool) -> io::Result<ScanResult> {
    let mut result = ScanResult {
        max_timestamp: -1,
        ..Default::default()
    };
    let mut pos = start;
    let mut buf = Vec::new();
    let mut hdr = [0u8; HEADER_LEN];
    let mut expected_next: Option<i64> = None;
    while pos + HEADER_LEN as u64 <= file_len {
        file.read_exact_at(&mut hdr, pos)?;
        let h = match BatchHeader::parse(&hdr) {
            Ok(h) => h,
            Err(_) => break,
        };
        if h.magic != 2 || (h.batch_length as usize) < HEADER_LEN - batch::LOG_OVERHEAD {
            break;
        }
        let total = h.total_len() as u64;
        if pos + total > file_len {
            break;
        }
        if expected_next.is_some_and(|n| h.base_offset < n) {
            break;
        }
        if verify {
            buf.resize(total as usize, 0);
            file.read_exact_at(&mut buf, pos)?;
            if batch::validate_batch(&buf).is_err() {
                break;
            }
        }
        result.headers.push(h);
        result.max_timestamp = result.max_timestamp.max(h.max_timestamp);
        expected_next = Some(h.last_offset() + 1);
        pos += total;
    }
    result.valid_len = pos;
    result.next_offset = expected_next;
    Ok(result)
}
