//! Sparse, memory-mapped segment indexes: the offset index (relative offset → file
//! position, 8-byte entries) and the time index (max timestamp → relative offset,
//! 12-byte entries), the same shapes as Kafka's `.index` and `.timeindex`.
//!
//! Invariants: entries are appended in increasing order of both key and value; an
//! index file is sized (sparse) to its maximum while its segment is active and trimmed
//! to its entries when the segment is sealed, so a sealed index's length is always a
//! whole number of entries. No entry is written into a page of the map before disk
//! blocks are allocated for it (`reserve`, in `ALLOCATION_CHUNK`s): writing a sparse
//! page of a shared map on a full file system raises SIGBUS instead of returning
//! ENOSPC, so the space is claimed with `fallocate` first, where a full disk is an
//! error the append can refuse. An index is a hint: a missing, short or out-of-order
//! index is rebuilt from the log, never trusted over it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// One memory-mapped index file of fixed-width entries.
struct MappedIndex {
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entry_len: usize,
    entries: usize,
    capacity: usize,
    /// Bytes from the start of the file known to have disk blocks behind them.
    allocated: usize,
}

/// How much index space one `fallocate` claims: 64 KiB is 8,192 offset-index entries,
/// about 32 MiB of log at the default `index.interval.bytes`.
const ALLOCATION_CHUNK: usize = 64 * 1024;

impl MappedIndex {
    /// Opens (or creates) an index, keeping the first `entries` entries and room for `max_bytes`.
    fn open(path: &Path, entry_len: usize, entries: usize, max_bytes: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let capacity = (max_bytes / entry_len).max(entries).max(1);
        file.set_len((capacity * entry_len) as u64)?;
        // SAFETY: the file is owned by this index for its lifetime; nothing else in
        // the process maps or truncates it while the map is alive.
        let mmap = unsafe { MmapMut::map_mut(&file)? };
        Ok(MappedIndex {
            path: path.to_path_buf(),
            file,
            mmap: Some(mmap),
            entry_len,
            entries,
            capacity,
            // Nothing is trusted to have blocks: a file left unsealed by a crash may be
            // a sparse hole of its full size. `fallocate` over blocks that exist is
            // free, so the first reservation claims from the start.
            allocated: 0,
        })
    }

    /// Makes sure the next `more` entries (as many as fit) have disk blocks, so that
    /// writing them cannot fault. Fails with the file system's error (ENOSPC) instead.
    fn reserve(&mut self, more: usize) -> io::Result<()> {
        let want = (self.entries + more).min(self.capacity) * self.entry_len;
        if want <= self.allocated {
            return Ok(());
        }
        let upto = (want.div_ceil(ALLOCATION_CHUNK) * ALLOCATION_CHUNK)
            .min(self.capacity * self.entry_len);
        // SAFETY: fallocate on a descriptor we own, inside the file's current length.
        let rc = unsafe {
            libc::posix_fallocate(
                self.file.as_raw_fd(),
                self.allocated as libc::off_t,
                (upto - self.allocated) as libc::off_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        self.allocated = upto;
        Ok(())
    }

    fn entry(&self, i: usize) -> &[u8] {
        let m = self.mmap.as_ref().expect("index mapped");
        &m[i * self.entry_len..(i + 1) * self.entry_len]
    }

    fn push(&mut self, bytes: &[u8]) -> bool {
        if self.entries >= self.capacity {
            return false;
        }
        if (self.entries + 1) * self.entry_len > self.allocated && self.reserve(1).is_err() {
            // Callers reserve before appending; an entry that cannot get a block is
            // left out (the index is a hint) rather than written into a hole.
            return false;
        }
        let at = self.entries * self.entry_len;
        let m = self.mmap.as_mut().expect("index mapped");
        m[at..at + self.entry_len].copy_from_slice(bytes);
        self.entries += 1;
        true
    }

    fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    fn flush(&self) -> io::Result<()> {
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        Ok(())
    }

    /// Drops the map and trims the file to its entries (the segment is sealed).
    fn seal(&mut self) -> io::Result<()> {
        self.flush()?;
        self.mmap = None;
        self.file.set_len((self.entries * self.entry_len) as u64)?;
        self.capacity = self.entries;
        self.allocated = self.entries * self.entry_len;
        if self.entries > 0 {
            // SAFETY: as in `open`.
            self.mmap = Some(unsafe { MmapMut::map_mut(&self.file)? });
        }
        Ok(())
    }

    /// Binary search for the last entry whose key (from `key`) is <= target.
    fn floor(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        if self.entries == 0 {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Relative offset → byte position in the segment's log file.
pub struct OffsetIndex {
    inner: MappedIndex,
}

impl OffsetIndex {
    pub const ENTRY_LEN: usize = 8;

    /// Opens the index at `path` trusting `entries` existing entries.
    pub fn open(path: &Path, entries: usize, max_bytes: usize) -> io::Result<Self> {
        Ok(OffsetIndex {
            inner: MappedIndex::open(path, Self::ENTRY_LEN, entries, max_bytes)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn len(&self) -> usize {
        self.inner.entries
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries == 0
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    pub fn entry_at(&self, i: usize) -> (u32, u32) {
        let e = self.inner.entry(i);
        (u32_at(e, 0), u32_at(e, 4))
    }

    /// Claims disk blocks for `more` entries ahead of appending them.
    pub fn reserve(&mut self, more: usize) -> io::Result<()> {
        self.inner.reserve(more)
    }

    /// Appends an entry; returns false if the index is full (the segment must roll).
    pub fn append(&mut self, relative_offset: u32, position: u32) -> bool {
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&relative_offset.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.inner.push(&e)
    }

    /// Position of the last indexed batch starting at or before `relative_offset`.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        match self
            .inner
            .floor(relative_offset as i64, |e| u32_at(e, 0) as i64)
        {
            Some(i) => self.entry_at(i).1,
            None => 0,
        }
    }

    /// Keeps only entries pointing below `position` (after a log truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = (0..self.len())
            .take_while(|&i| self.entry_at(i).1 < position)
            .count();
        self.inner.truncate_entries(keep);
    }

    /// Checks entries are strictly increasing and inside the log; false means rebuild.
    pub fn is_consistent(&self, log_len: u64) -> bool {
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..self.len() {
            let (o, p) = self.entry_at(i);
            if p as u64 >= log_len {
                return false;
            }
            if let Some((po, pp)) = prev {
                if o <= po || p <= pp {
                    return false;
                }
            }
            prev = Some((o, p));
        }
        true
    }

    pub fn clear(&mut self) {
        self.inner.truncate_entries(0);
    }

    pub fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn seal(&mut self) -> io::Result<()> {
        self.inner.seal()
    }
}

/// Max timestamp seen so far → relative offset of the batch that holds it.
pub struct TimeIndex {
    inner: MappedIndex,
}

impl TimeIndex {
    pub const ENTRY_LEN: usize = 12;

    pub fn open(path: &Path, entries: usize, max_bytes: usize) -> io::Result<Self> {
        Ok(TimeIndex {
            inner: MappedIndex::open(path, Self::ENTRY_LEN, entries, max_bytes)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn len(&self) -> usize {
        self.inner.entries
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries == 0
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    pub fn entry_at(&self, i: usize) -> (i64, u32) {
        let e = self.inner.entry(i);
        (
            i64::from_be_bytes(e[..8].try_into().expect("8 bytes")),
            u32_at(e, 8),
        )
    }

    /// Claims disk blocks for `more` entries ahead of appending them.
    pub fn reserve(&mut self, more: usize) -> io::Result<()> {
        self.inner.reserve(more)
    }

    /// The largest timestamp indexed, if any.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.len().checked_sub(1).map(|i| self.entry_at(i).0)
    }

    /// Appends an entry if `timestamp` is larger than the last one indexed.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) -> bool {
        if self.last_timestamp().is_some_and(|t| timestamp <= t) {
            return true;
        }
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.inner.push(&e)
    }

    /// Relative offset of the first batch whose max timestamp may be >= `timestamp`:
    /// the entry before the first entry with timestamp >= target (a lower bound to scan from).
    pub fn lookup(&self, timestamp: i64) -> u32 {
        match self.inner.floor(timestamp - 1, |e| {
            i64::from_be_bytes(e[..8].try_into().expect("8 bytes"))
        }) {
            Some(i) => self.entry_at(i).1,
            None => 0,
        }
    }

    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = (0..self.len())
            .take_while(|&i| self.entry_at(i).1 < relative_offset)
            .count();
        self.inner.truncate_entries(keep);
    }

    pub fn is_consistent(&self) -> bool {
        (1..self.len()).all(|i| {
            let (t0, o0) = self.entry_at(i - 1);
            let (t1, o1) = self.entry_at(i);
            t1 > t0 && o1 >= o0
        })
    }

    pub fn clear(&mut self) {
        self.inner.truncate_entries(0);
    }

    pub fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn seal(&mut self) -> io::Result<()> {
        self.inner.seal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_lookup_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, 0, 1024).unwrap();
        assert_eq!(idx.lookup(5), 0);
        for (o, pos) in [(0, 0), (10, 4096), (20, 8192)] {
            assert!(idx.append(o, pos));
        }
        assert_eq!(idx.lookup(0), 0);
        assert_eq!(idx.lookup(15), 4096);
        assert_eq!(idx.lookup(25), 8192);
        idx.seal().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
        let again = OffsetIndex::open(&p, 3, 24).unwrap();
        assert_eq!(again.lookup(12), 4096);
        assert!(again.is_consistent(10_000));
        assert!(!again.is_consistent(8000));
    }

    #[test]
    fn full_index_refuses_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::open(&dir.path().join("i"), 0, 16).unwrap();
        assert!(idx.append(1, 1));
        assert!(idx.append(2, 2));
        assert!(idx.is_full());
        assert!(!idx.append(3, 3));
    }

    #[test]
    fn time_index_only_grows_and_finds_lower_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("t"), 0, 1200).unwrap();
        idx.maybe_append(100, 0);
        idx.maybe_append(90, 5); // not larger: ignored
        idx.maybe_append(200, 10);
        idx.maybe_append(300, 20);
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(150), 0);
        assert_eq!(idx.lookup(200), 0);
        assert_eq!(idx.lookup(201), 10);
        assert_eq!(idx.lookup(1000), 20);
        idx.truncate_to_offset(10);
        assert_eq!(idx.len(), 1);
    }
}
