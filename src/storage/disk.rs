//! How full the data directory's file system is (`statvfs`), and what that means:
//! `ok`, `low` (under `disk_low_free_bytes` free) or `full` (under `FULL_BELOW_BYTES`
//! free for the broker, where appends start failing with ENOSPC).
//!
//! Only a reading: nothing here refuses writes. What a full disk does to each write
//! (refused and rolled back, nothing acknowledged) is the segment's and the registry's
//! business; this tells operators it is coming.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Free space below which the disk counts as full: less than one index chunk and a
/// typical batch.
pub const FULL_BELOW_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer may still use.
    pub free_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskState {
    Ok,
    Low,
    Full,
}

impl DiskState {
    pub fn of(space: DiskSpace, low_below: u64) -> DiskState {
        if space.free_bytes < FULL_BELOW_BYTES {
            DiskState::Full
        } else if space.free_bytes < low_below {
            DiskState::Low
        } else {
            DiskState::Ok
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DiskState::Ok => "ok",
            DiskState::Low => "low",
            DiskState::Full => "full",
        }
    }
}

/// The space on the file system holding `dir`.
pub fn space(dir: &Path) -> io::Result<DiskSpace> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: statvfs fills a struct we own from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let block = st.f_frsize as u64;
    Ok(DiskSpace {
        free_bytes: (st.f_bavail as u64).saturating_mul(block),
        total_bytes: (st.f_blocks as u64).saturating_mul(block),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_thresholds() {
        let s = |free| DiskSpace {
            free_bytes: free,
            total_bytes: 1 << 40,
        };
        assert_eq!(DiskState::of(s(10 << 30), 1 << 30), DiskState::Ok);
        assert_eq!(DiskState::of(s(100 << 20), 1 << 30), DiskState::Low);
        assert_eq!(DiskState::of(s(1000), 1 << 30), DiskState::Full);
        let here = space(Path::new(".")).unwrap();
        assert!(here.total_bytes > 0 && here.free_bytes <= here.total_bytes);
    }
}
