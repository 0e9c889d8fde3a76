//! One partition's replica on this node: its log and what the cluster metadata says about
//! it (leader, leader epoch, replicas, ISR). Every append and every consumer read of a
//! partition goes through here, never through a bare log lock from another room, so the
//! rules below live in one place.
//!
//! Invariants:
//! - only the leader appends client records (`append`, `append_batches` refuse with
//!   `NotLeader` otherwise);
//! - a consumer read never returns records at or past the high watermark, and the high
//!   watermark never moves backwards while this replica leads;
//! - the leader state changes only through `set_leadership`, whose epoch never goes down,
//!   and never while an append is in flight (appends hold the leadership for reading);
//! - batches appended while leading carry the partition's leader epoch.
//!
//! Lock order: the leadership, then the log.
//!
//! Today every partition has one copy, so the high watermark is the log end; follower
//! fetching moves it to the minimum log end of the ISR (DESIGN.md, Cluster).

use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use thiserror::Error;

use crate::storage::batch::BatchHeader;
use crate::storage::config::LogConfig;
use crate::storage::log::{AppendInfo, PartitionLog, ReadPlan};
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum ReplicaError {
    #[error("this node is not the leader of the partition (leader {leader})")]
    NotLeader { leader: i32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the metadata says about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's node id, or -1 while the partition has none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Leadership {
    /// Before the metadata image has named a leader: nobody leads, any epoch is newer.
    pub fn unknown() -> Leadership {
        Leadership {
            leader: -1,
            leader_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
        }
    }

    /// The partition of a cluster of one: this node leads, alone, in epoch 0.
    pub fn sole(node: i32) -> Leadership {
        Leadership {
            leader: node,
            leader_epoch: 0,
            replicas: vec![node],
            isr: vec![node],
        }
    }
}

/// Offsets a reader sees: the first offset kept, the high watermark and the log end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
}

/// Size figures for the admin API and metrics.
#[derive(Debug, Clone, Copy)]
pub struct LogStats {
    pub offsets: Offsets,
    pub size_bytes: u64,
    pub segments: usize,
}

pub struct Replica {
    pub index: i32,
    /// This node's id, to tell whether it leads.
    local_node: i32,
    log: Mutex<PartitionLog>,
    leadership: RwLock<Leadership>,
}

impl Replica {
    pub fn new(index: i32, local_node: i32, log: PartitionLog, leadership: Leadership) -> Replica {
        Replica {
            index,
            local_node,
            log: Mutex::new(log),
            leadership: RwLock::new(leadership),
        }
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.read().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leadership.read().leader == self.local_node
    }

    /// Takes what newer metadata says. An older epoch than the one held is ignored, so
    /// metadata applied out of order cannot bring back a deposed leader. Leading, the
    /// log stamps the partition's leader epoch on every batch it appends.
    pub fn set_leadership(&self, next: Leadership) {
        let mut held = self.leadership.write();
        if next.leader_epoch >= held.leader_epoch {
            if next.leader == self.local_node && next.leader_epoch >= 0 {
                self.log.lock().set_leader_epoch(next.leader_epoch);
            }
            *held = next;
        }
    }

    /// The leadership, held for the length of an append: a change of leader waits for
    /// the appends in flight, so none lands after this node stopped leading.
    fn lead(&self) -> Result<parking_lot::RwLockReadGuard<'_, Leadership>, ReplicaError> {
        let l = self.leadership.read();
        if l.leader == self.local_node {
            Ok(l)
        } else {
            Err(ReplicaError::NotLeader { leader: l.leader })
        }
    }

    /// Reads the topic configuration the log runs on.
    pub fn config<R>(&self, f: impl FnOnce(&LogConfig) -> R) -> R {
        f(self.log.lock().config())
    }

    /// Appends a validated client batch (see `PartitionLog::append`).
    pub fn append(
        &self,
        bytes: BytesMut,
        headers: Vec<(usize, BatchHeader)>,
        now_ms: i64,
    ) -> Result<AppendInfo, ReplicaError> {
        let _leading = self.lead()?;
        Ok(self.log.lock().append(bytes, headers, now_ms)?)
    }

    /// Appends batches the broker built itself (ingest, group records).
    pub fn append_batches(&self, bytes: BytesMut, now_ms: i64) -> Result<AppendInfo, ReplicaError> {
        let _leading = self.lead()?;
        Ok(self.log.lock().append_batches(bytes, now_ms)?)
    }

    pub fn offsets(&self) -> Offsets {
        let log = self.log.lock();
        Offsets {
            log_start: log.log_start_offset(),
            high_watermark: log.log_end_offset(),
            log_end: log.log_end_offset(),
        }
    }

    pub fn stats(&self) -> LogStats {
        let log = self.log.lock();
        LogStats {
            offsets: Offsets {
                log_start: log.log_start_offset(),
                high_watermark: log.log_end_offset(),
                log_end: log.log_end_offset(),
            },
            size_bytes: log.size_bytes(),
            segments: log.segment_count(),
        }
    }

    /// A consumer's read from `offset`: at most `max_bytes` (at least one batch),
    /// never past the high watermark. Also the offsets as they were at the read.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> (Result<Option<ReadPlan>, StorageError>, Offsets) {
        let log = self.log.lock();
        let offsets = Offsets {
            log_start: log.log_start_offset(),
            high_watermark: log.log_end_offset(),
            log_end: log.log_end_offset(),
        };
        (log.read(offset, max_bytes), offsets)
    }

    /// Read-only access to the log for lookups that move nothing (ListOffsets by time).
    pub fn inspect<R>(&self, f: impl FnOnce(&PartitionLog) -> R) -> R {
        f(&self.log.lock())
    }

    /// Maintenance the broker's clock drives on every replica, leader or not: flushes,
    /// retention, compaction, closing. Never an append.
    pub fn maintain<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_record() -> BytesMut {
        crate::protocol::records::encode_batch(
            vec![(None, Some(bytes::Bytes::from_static(b"x")))],
            0,
            kafka_protocol::records::Compression::None,
        )
        .unwrap()
    }

    #[test]
    fn only_the_leader_appends_and_its_batches_carry_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), true).unwrap();
        let r = Replica::new(0, 2, log, Leadership::unknown());
        assert!(matches!(
            r.append_batches(one_record(), 0),
            Err(ReplicaError::NotLeader { leader: -1 })
        ));
        let leads = |leader, epoch| Leadership {
            leader,
            leader_epoch: epoch,
            replicas: vec![1, 2],
            isr: vec![1, 2],
        };
        r.set_leadership(leads(2, 3));
        r.append_batches(one_record(), 0).unwrap();
        let (plan, _) = r.read(0, 1 << 20);
        let bytes = plan.unwrap().unwrap().read().unwrap();
        let h = crate::storage::batch::BatchHeader::parse(&bytes).unwrap();
        assert_eq!(h.leader_epoch, 3);
        // Metadata older than what is held changes nothing; newer moves leadership.
        r.set_leadership(leads(1, 2));
        assert!(r.is_leader());
        r.set_leadership(leads(1, 4));
        assert!(!r.is_leader());
        assert!(r.append_batches(one_record(), 0).is_err());
    }
}
