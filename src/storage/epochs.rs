//! The leader-epoch checkpoint of one partition (KIP-101, KIP-279): for every leader
//! epoch that wrote to the log, the first offset it wrote — kept in memory and in
//! `leader-epoch-checkpoint` in the partition directory, in Kafka's text format
//! (a version line `0`, a count line, then `epoch start_offset` per line).
//!
//! It answers "where does epoch E end?" (`end_offset_for`), which is how a follower
//! that was led by a deposed leader finds the point where its log and the new leader's
//! part ways, and truncates there — never to its high watermark.
//!
//! Invariants: epochs and start offsets both strictly increase along the entries
//! (`assign` removes what would break that, as Kafka's `LeaderEpochFileCache` does);
//! every change is written to a temporary file and renamed over the checkpoint before
//! `assign`/`truncate_from_end` return, so a crash leaves the old or the new list.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// "No such epoch" / "no such offset", as Kafka's `UNDEFINED_EPOCH(_OFFSET)`.
pub const UNDEFINED: i64 = -1;

#[derive(Debug)]
pub struct EpochCache {
    path: PathBuf,
    /// (epoch, start offset), both strictly increasing.
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// Loads the checkpoint of the partition in `dir`; a missing or unreadable file is
    /// an empty cache (with a log line when unreadable: the log rebuilds it).
    pub fn open(dir: &Path) -> EpochCache {
        let path = dir.join(CHECKPOINT_FILE);
        let entries = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).unwrap_or_else(|| {
                tracing::warn!(file = %path.display(), "unreadable leader-epoch checkpoint: rebuilt from the log");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        EpochCache { path, entries }
    }

    /// Whether a checkpoint file was there to load.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The newest epoch, or -1.
    pub fn latest_epoch(&self) -> i32 {
        self.entries.last().map_or(-1, |e| e.0)
    }

    /// The first offset of `epoch`, if it wrote (or leads) here.
    pub fn start_offset_of(&self, epoch: i32) -> Option<i64> {
        self.entries.iter().find(|e| e.0 == epoch).map(|e| e.1)
    }

    /// Records that `epoch` starts at `start_offset`. An epoch already the newest is
    /// kept as it is; entries that would break the ordering (an epoch at or above it,
    /// or a start at or past its start) are removed first. Returns whether it changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<bool> {
        if epoch < 0 || start_offset < 0 {
            return Ok(false);
        }
        if let Some(&(e, s)) = self.entries.last() {
            if e == epoch && s <= start_offset {
                return Ok(false);
            }
        }
        let before = self.entries.clone();
        self.entries
            .retain(|(e, s)| *e < epoch && *s < start_offset);
        self.entries.push((epoch, start_offset));
        if let Err(e) = self.persist() {
            self.entries = before;
            return Err(e);
        }
        Ok(true)
    }

    /// Forgets the epochs that start at or past `end_offset` (the log was truncated
    /// there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|(_, s)| *s < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Forgets everything (the log was emptied and starts over).
    pub fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.persist()
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `epoch` that this log
    /// knows, and the offset where it ends (the start of the next epoch, or `log_end`
    /// for the newest). `(-1, -1)` when `epoch` is newer than every epoch here or
    /// nothing is known.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        if epoch < 0 || self.entries.is_empty() {
            return (-1, UNDEFINED);
        }
        if self.latest_epoch() == epoch {
            return (epoch, log_end);
        }
        let Some(higher) = self.entries.iter().position(|(e, _)| *e > epoch) else {
            // Newer than the newest epoch here.
            return (-1, UNDEFINED);
        };
        let end = self.entries[higher].1;
        if higher == 0 {
            // Older than every epoch here: it ends where the first known one starts.
            (epoch, end)
        } else {
            (self.entries[higher - 1].0, end)
        }
    }

    fn persist(&self) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (e, s) in &self.entries {
            text.push_str(&format!("{e} {s}\n"));
        }
        write_atomically(&self.path, &text)
    }
}

/// Writes a small checkpoint file: to `<path>.tmp`, fsync'd, then renamed over `path`,
/// so a crash or a full disk leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = fs::File::create(&tmp).and_then(|f| {
        io::Write::write_all(&mut &f, text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)
}

fn parse(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(10_000));
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let e: i32 = parts.next()?.parse().ok()?;
        let s: i64 = parts.next()?.parse().ok()?;
        if entries.last().is_some_and(|&(le, ls)| le >= e || ls > s) {
            return None;
        }
        entries.push((e, s));
    }
    (entries.len() == count).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kafkas_rules_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::open(dir.path());
        assert_eq!(c.end_offset_for(0, 10), (-1, UNDEFINED));
        c.assign(1, 0).unwrap();
        c.assign(1, 5).unwrap(); // the same epoch again: kept as it was
        c.assign(3, 10).unwrap();
        c.assign(4, 25).unwrap();
        assert_eq!(c.entries(), &[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(4, 40), (4, 40));
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        // Epoch 2 never wrote here: the largest below it is 1, which ends at 10.
        assert_eq!(c.end_offset_for(2, 40), (1, 10));
        assert_eq!(c.end_offset_for(0, 40), (0, 0));
        assert_eq!(c.end_offset_for(7, 40), (-1, UNDEFINED));
        let again = EpochCache::open(dir.path());
        assert_eq!(again.entries(), c.entries());
    }

    #[test]
    fn assign_and_truncate_keep_the_entries_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::open(dir.path());
        c.assign(1, 0).unwrap();
        c.assign(2, 10).unwrap();
        // Epoch 2 wrote nothing before epoch 3 took over at the same offset.
        c.assign(3, 10).unwrap();
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        c.truncate_from_end(10).unwrap();
        assert_eq!(c.entries(), &[(1, 0)]);
        assert_eq!(EpochCache::open(dir.path()).entries(), &[(1, 0)]);
        // A corrupt checkpoint is an empty cache, not an error.
        fs::write(dir.path().join(CHECKPOINT_FILE), "0\n2\n5 3\n4 9\n").unwrap();
        assert!(EpochCache::open(dir.path()).is_empty());
    }
}
