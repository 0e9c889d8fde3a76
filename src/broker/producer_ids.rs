//! Hands out producer ids for InitProducerId, unique across restarts: ids are reserved
//! in blocks whose upper bound is persisted (fsync'd) before any id of the block is used
//! — in a cluster of one on this data directory, in a cluster by the metadata quorum.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Ids reserved at a time, here and from the metadata quorum.
pub const BLOCK: i64 = 1000;

/// A block of ids the metadata quorum handed this node (held in memory: after a
/// restart the node asks for a new block, so no id is ever handed out twice).
#[derive(Default)]
pub struct BlockCache {
    /// (next id to hand out, end of the block)
    state: Mutex<(i64, i64)>,
}

impl BlockCache {
    pub fn take(&self) -> Option<i64> {
        let mut st = self.state.lock();
        (st.0 < st.1).then(|| {
            st.0 += 1;
            st.0 - 1
        })
    }

    pub fn refill(&self, first: i64, count: i64) {
        *self.state.lock() = (first, first.saturating_add(count));
    }
}

pub struct ProducerIdAllocator {
    path: PathBuf,
    /// (next id to hand out, first id of the next unreserved block)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    pub fn open(meta_dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(meta_dir)?;
        let path = meta_dir.join("producer_ids");
        let reserved_until = match fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            path,
            state: Mutex::new((reserved_until, reserved_until)),
        })
    }

    fn persist(&self, until: i64) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, until.to_string())?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &self.path)
    }

    pub fn next(&self) -> io::Result<i64> {
        let mut st = self.state.lock();
        if st.0 >= st.1 {
            let until = st.1 + BLOCK;
            self.persist(until)?;
            st.1 = until;
        }
        let id = st.0;
        st.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::ProducerIdAllocator::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = super::ProducerIdAllocator::open(dir.path()).unwrap();
        assert!(b.next().unwrap() > 2);
    }
}
