//! The exclusive lock on a data directory: `<data>/.lock`, held with `flock` for the
//! life of the process that opened the directory, holding that process's id.
//!
//! Invariant: at most one process has a data directory open. A second `serve` on the
//! same directory fails at once, naming the process that holds it, instead of both
//! appending different records at the same offsets. The lock goes with the process
//! (the kernel drops it on exit, however the process ends), so a crash never leaves a
//! stale lock; the file itself is left in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "data directory {dir} is in use by another logbridge (process {holder}, lock file {lock})"
    )]
    InUse {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock data directory {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `dir` (which must exist) without waiting.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_err(err));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "unknown".to_string(),
                pid => pid.to_string(),
            };
            return Err(LockError::InUse {
                dir: dir.to_path_buf(),
                lock: path,
                holder,
            });
        }
        // Ours now: record who holds it (best effort — a full disk must not stop a
        // start, and the lock itself is what protects the directory).
        let pid = std::process::id().to_string();
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(pid.as_bytes()));
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        match DataDirLock::acquire(dir.path()) {
            Err(LockError::InUse { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
