//! One partition's replica on this node: its log and what the cluster metadata says about
//! it (leader, leader epoch, replicas, ISR), the high watermark, and — while it leads —
//! what it knows of its followers (`progress.rs`). Every append and every read of a
//! partition goes through here, never through a bare log lock from another room, so the
//! rules below live in one place.
//!
//! Invariants:
//! - only the leader appends client records (`append`, `append_batches` refuse with
//!   `NotLeader` otherwise); only a follower appends replicated batches;
//! - a consumer read never returns records at or past the high watermark; while this
//!   replica leads, the high watermark never moves backwards and is at most the
//!   smallest log end of the ISR (`progress.rs` decides it); a follower's is the
//!   leader's, capped at its own log end;
//! - the leader state changes only through `set_leadership`, whose epochs never go
//!   down, and never while an append is in flight (appends hold the leadership for
//!   reading); a new leader starts its epoch at its log end in the epoch checkpoint;
//! - a follower fetch is answered only in the leader's own epoch: an older
//!   `CurrentLeaderEpoch` is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH; one
//!   whose last fetched epoch ends earlier here is told where (`DivergingEpoch`).
//!
//! Lock order: the leadership, then the leader state, then the log; the leadership is
//! never locked twice by one thread (parking_lot's fair lock would deadlock a second
//! read behind a waiting `set_leadership`).
//!
//! A cluster of one is a replica that leads alone in epoch 0: its high watermark is its
//! log end after every append.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use thiserror::Error;
use tokio::sync::watch;

use super::progress::{next_isr, LeaderProgress};
use crate::storage::batch::BatchHeader;
use crate::storage::config::LogConfig;
use crate::storage::log::{AppendInfo, PartitionLog, ReadPlan};
use crate::storage::segment::now_ms;
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum ReplicaError {
    #[error("this node is not the leader of the partition (leader {leader})")]
    NotLeader { leader: i32 },
    #[error("leader epoch {asked} is older than the current {current}")]
    FencedLeaderEpoch { asked: i32, current: i32 },
    #[error("leader epoch {asked} is newer than this replica knows ({current})")]
    UnknownLeaderEpoch { asked: i32, current: i32 },
    #[error("the in-sync replicas ({isr}) are fewer than min.insync.replicas ({min})")]
    NotEnoughReplicas { isr: usize, min: usize },
    #[error("written, but the in-sync replicas fell below min.insync.replicas ({min}) before it was replicated")]
    NotEnoughReplicasAfterAppend { min: usize },
    #[error("not replicated to the in-sync replicas within {0:?}")]
    ReplicationTimeout(Duration),
    #[error(
        "an answer from leader {leader} in epoch {epoch}, which this replica no longer follows"
    )]
    StaleLeader { leader: i32, epoch: i32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the metadata says about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's node id, or -1 while the partition has none.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Grows at every change of leader or ISR.
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Leadership {
    /// Before the metadata image has named a leader: nobody leads, any epoch is newer.
    pub fn unknown() -> Leadership {
        Leadership {
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
        }
    }

    /// The partition of a cluster of one: this node leads, alone, in epoch 0.
    pub fn sole(node: i32) -> Leadership {
        Leadership {
            leader: node,
            leader_epoch: 0,
            partition_epoch: 0,
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

/// What waiting `acks=all` produces watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    high_watermark: i64,
    leading: bool,
    leader_epoch: i32,
    isr: usize,
}

/// The leader's answer to a follower's fetch.
#[derive(Debug)]
pub enum FollowerRead {
    /// The follower's last fetched epoch ends at `end_offset` here (or is unknown,
    /// -1/-1): it truncates before fetching again.
    Diverging {
        epoch: i32,
        end_offset: i64,
        offsets: Offsets,
    },
    /// Batches from the fetch offset up to the log end (not the high watermark).
    Records {
        plan: Option<ReadPlan>,
        offsets: Offsets,
        /// The follower's fetch moved the high watermark: long polls may wake.
        high_watermark_moved: bool,
    },
}

/// An ISR change the leader proposes (KIP-497's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

/// How long a proposed ISR change may stay unanswered before it is proposed again.
const ISR_PROPOSAL_RETRY_MS: i64 = 5_000;

#[derive(Default)]
struct LeaderState {
    progress: LeaderProgress,
    /// The partition epoch an ISR change was proposed at, and when.
    pending_isr: Option<(i32, i64)>,
    /// Followers proposed to join the ISR, until the image answers: they count for the
    /// high watermark from the proposal on.
    joining: Vec<i32>,
}

pub struct Replica {
    pub index: i32,
    /// This node's id, to tell whether it leads.
    local_node: i32,
    log: Mutex<PartitionLog>,
    leadership: RwLock<Leadership>,
    /// Some while this replica leads.
    leader_state: Mutex<Option<LeaderState>>,
    high_watermark: AtomicI64,
    min_isr: AtomicUsize,
    progress: watch::Sender<Progress>,
}

impl Replica {
    pub fn new(index: i32, local_node: i32, log: PartitionLog, leadership: Leadership) -> Replica {
        let min_isr = log.config().min_insync_replicas;
        let sole = leadership.leader == local_node && leadership.isr == [local_node];
        let hw = if sole {
            log.log_end_offset()
        } else {
            log.checkpointed_high_watermark()
        };
        let leading = leadership.leader == local_node;
        let progress = Progress {
            high_watermark: hw,
            leading,
            leader_epoch: leadership.leader_epoch,
            isr: leadership.isr.len(),
        };
        let replica = Replica {
            index,
            local_node,
            log: Mutex::new(log),
            leadership: RwLock::new(Leadership::unknown()),
            leader_state: Mutex::new(None),
            high_watermark: AtomicI64::new(hw),
            min_isr: AtomicUsize::new(min_isr),
            progress: watch::Sender::new(progress),
        };
        replica.set_leadership(leadership);
        replica
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.read().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leadership.read().leader == self.local_node
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::SeqCst)
    }

    fn publish(&self, l: &Leadership) {
        self.progress.send_if_modified(|held| {
            // Read under the channel's lock: of two publishes racing, the later one
            // carries the newer high watermark.
            let p = Progress {
                high_watermark: self.high_watermark(),
                leading: l.leader == self.local_node,
                leader_epoch: l.leader_epoch,
                isr: l.isr.len(),
            };
            let changed = *held != p;
            *held = p;
            changed
        });
    }

    /// Takes what newer metadata says. An older epoch than the one held is ignored, so
    /// metadata applied out of order cannot bring back a deposed leader. Taking over
    /// the lead starts the epoch at the log end and forgets what an earlier term knew
    /// of the followers: each must fetch again before the high watermark moves.
    pub fn set_leadership(&self, next: Leadership) {
        let mut held = self.leadership.write();
        if (next.leader_epoch, next.partition_epoch) < (held.leader_epoch, held.partition_epoch) {
            return;
        }
        let leads = next.leader == self.local_node && next.leader_epoch >= 0;
        let was_leading = held.leader == self.local_node && held.leader_epoch == next.leader_epoch;
        let now = now_ms();
        {
            let mut state = self.leader_state.lock();
            if leads && !was_leading {
                if let Err(e) = self.log.lock().become_leader(next.leader_epoch) {
                    tracing::error!(partition = self.index, error = %e, "cannot record the new leader epoch");
                }
                *state = Some(LeaderState {
                    progress: LeaderProgress::new(&next.replicas, self.local_node, now),
                    pending_isr: None,
                    joining: Vec::new(),
                });
            } else if leads {
                if let Some(s) = state.as_mut() {
                    s.progress
                        .set_replicas(&next.replicas, self.local_node, now);
                    if next.partition_epoch != held.partition_epoch {
                        // The quorum answered (or moved on): the committed ISR stands.
                        s.joining.clear();
                    }
                }
            } else {
                *state = None;
            }
        }
        *held = next;
        if leads {
            let end = self.log.lock().log_end_offset();
            self.advance_high_watermark(&held, end);
        }
        self.publish(&held);
    }

    /// The node is stopping: it takes no append from now on, and produces waiting for
    /// their ISR are told it does not lead (their records may or may not be kept by
    /// the next leader, as after any leader change).
    pub fn stop_leading(&self) {
        let mut held = self.leadership.write();
        if held.leader == self.local_node {
            held.leader = -1;
            *self.leader_state.lock() = None;
            self.publish(&held);
        }
    }

    /// Moves the high watermark as the ISR allows, never backwards; true when it moved.
    /// Followers whose joining is proposed but not yet committed count already (Kafka's
    /// "maximal ISR"): a member the quorum may elect must hold what is acknowledged.
    fn advance_high_watermark(&self, l: &Leadership, leader_end: i64) -> bool {
        let min_isr = self.min_isr.load(Ordering::Relaxed);
        let candidate = {
            let state = self.leader_state.lock();
            match state.as_ref() {
                Some(s) if l.isr.len() >= min_isr => {
                    let mut members = l.isr.clone();
                    members.extend(s.joining.iter().filter(|j| !l.isr.contains(j)));
                    s.progress
                        .high_watermark(&members, self.local_node, leader_end, min_isr)
                }
                _ => None,
            }
        };
        match candidate {
            Some(hw) if self.high_watermark.fetch_max(hw, Ordering::SeqCst) < hw => {
                self.publish(l);
                true
            }
            _ => false,
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

    /// Before an `acks=all` append: the ISR must hold `min.insync.replicas` members.
    pub fn check_enough_replicas(&self) -> Result<(), ReplicaError> {
        let l = self.lead()?;
        let min = self.min_isr.load(Ordering::Relaxed);
        if l.isr.len() < min {
            return Err(ReplicaError::NotEnoughReplicas {
                isr: l.isr.len(),
                min,
            });
        }
        Ok(())
    }

    /// Appends a validated client batch (see `PartitionLog::append`).
    pub fn append(
        &self,
        bytes: BytesMut,
        headers: Vec<(usize, BatchHeader)>,
        now_ms: i64,
    ) -> Result<AppendInfo, ReplicaError> {
        let leading = self.lead()?;
        let (info, end) = {
            let mut log = self.log.lock();
            let info = log.append(bytes, headers, now_ms)?;
            (info, log.log_end_offset())
        };
        self.advance_high_watermark(&leading, end);
        Ok(info)
    }

    /// Appends batches the broker built itself (ingest, group records).
    pub fn append_batches(&self, bytes: BytesMut, now_ms: i64) -> Result<AppendInfo, ReplicaError> {
        let leading = self.lead()?;
        let (info, end) = {
            let mut log = self.log.lock();
            let info = log.append_batches(bytes, now_ms)?;
            (info, log.log_end_offset())
        };
        self.advance_high_watermark(&leading, end);
        Ok(info)
    }

    /// The leader epoch an append made now would be stamped with (for `await_replicated`).
    pub fn leader_epoch(&self) -> i32 {
        self.leadership.read().leader_epoch
    }

    /// Whether records up to `end`, appended in `epoch`, are held by the ISR now (this
    /// node still leading in that epoch, its high watermark past them).
    pub fn is_replicated(&self, end: i64, epoch: i32) -> bool {
        let l = self.leadership.read();
        l.leader == self.local_node && l.leader_epoch == epoch && self.high_watermark() >= end
    }

    /// Waits until the high watermark reaches `end` (an `acks=all` append is then held
    /// by every ISR member), at most `timeout`. Fails at once when this replica stops
    /// leading in `epoch` or the ISR falls below `min.insync.replicas`.
    pub async fn await_replicated(
        &self,
        end: i64,
        epoch: i32,
        timeout: Duration,
    ) -> Result<(), ReplicaError> {
        let min = self.min_isr.load(Ordering::Relaxed);
        let mut rx = self.progress.subscribe();
        // Replicated only while this node still leads in the epoch the records were
        // written in: a high watermark reached after losing the lead (as a follower,
        // possibly over other records) says nothing about them.
        let replicated =
            |p: &Progress| p.leading && p.leader_epoch == epoch && p.high_watermark >= end;
        let done =
            |p: &Progress| replicated(p) || !p.leading || p.leader_epoch != epoch || p.isr < min;
        let outcome = match tokio::time::timeout(timeout, rx.wait_for(done)).await {
            Err(_) => return Err(ReplicaError::ReplicationTimeout(timeout)),
            Ok(Err(_)) => return Err(ReplicaError::NotLeader { leader: -1 }),
            Ok(Ok(p)) => *p,
        };
        if replicated(&outcome) {
            Ok(())
        } else if !outcome.leading || outcome.leader_epoch != epoch {
            Err(ReplicaError::NotLeader {
                leader: self.leadership.read().leader,
            })
        } else {
            Err(ReplicaError::NotEnoughReplicasAfterAppend { min })
        }
    }

    pub fn offsets(&self) -> Offsets {
        let log = self.log.lock();
        Offsets {
            log_start: log.log_start_offset(),
            high_watermark: self.high_watermark().min(log.log_end_offset()),
            log_end: log.log_end_offset(),
        }
    }

    pub fn stats(&self) -> LogStats {
        let log = self.log.lock();
        LogStats {
            offsets: Offsets {
                log_start: log.log_start_offset(),
                high_watermark: self.high_watermark().min(log.log_end_offset()),
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
        let hw = self.high_watermark();
        let log = self.log.lock();
        let offsets = Offsets {
            log_start: log.log_start_offset(),
            high_watermark: hw.min(log.log_end_offset()),
            log_end: log.log_end_offset(),
        };
        (
            log.read_until(offset, max_bytes, offsets.high_watermark),
            offsets,
        )
    }

    /// A read to the log end, past the high watermark: for the group coordinator
    /// loading `__consumer_offsets` as it takes the partition over (Kafka loads to
    /// the log end too).
    pub fn read_to_log_end(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<ReadPlan>, StorageError> {
        self.log.lock().read(offset, max_bytes)
    }

    /// The leader's side of a follower's fetch (see the module's invariants).
    pub fn read_for_follower(
        &self,
        follower: i32,
        current_leader_epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_bytes: u64,
    ) -> Result<FollowerRead, ReplicaError> {
        let l = self.lead()?;
        if follower == self.local_node || !l.replicas.contains(&follower) {
            // Only a follower of this partition reads past the high watermark.
            return Err(ReplicaError::NotLeader { leader: l.leader });
        }
        if current_leader_epoch >= 0 && current_leader_epoch < l.leader_epoch {
            return Err(ReplicaError::FencedLeaderEpoch {
                asked: current_leader_epoch,
                current: l.leader_epoch,
            });
        }
        if current_leader_epoch > l.leader_epoch {
            return Err(ReplicaError::UnknownLeaderEpoch {
                asked: current_leader_epoch,
                current: l.leader_epoch,
            });
        }
        let (plan, leader_end, log_start) = {
            let log = self.log.lock();
            let leader_end = log.log_end_offset();
            let log_start = log.log_start_offset();
            let offsets = Offsets {
                log_start,
                high_watermark: self.high_watermark().min(leader_end),
                log_end: leader_end,
            };
            if last_fetched_epoch >= 0 {
                let (epoch, end_offset) = log.end_offset_for_epoch(last_fetched_epoch);
                if epoch < 0 {
                    // This leader's own epoch is always in its checkpoint, so an epoch
                    // newer than every one here came from no leader it follows.
                    return Err(ReplicaError::UnknownLeaderEpoch {
                        asked: last_fetched_epoch,
                        current: l.leader_epoch,
                    });
                }
                if epoch < last_fetched_epoch || end_offset < fetch_offset {
                    return Ok(FollowerRead::Diverging {
                        epoch,
                        end_offset,
                        offsets,
                    });
                }
            }
            (log.read(fetch_offset, max_bytes)?, leader_end, log_start)
        };
        let known = self.leader_state.lock().as_mut().is_some_and(|s| {
            s.progress
                .on_fetch(follower, fetch_offset, leader_end, now_ms())
        });
        let moved = known && self.advance_high_watermark(&l, leader_end);
        Ok(FollowerRead::Records {
            plan,
            offsets: Offsets {
                log_start,
                high_watermark: self.high_watermark().min(leader_end),
                log_end: leader_end,
            },
            high_watermark_moved: moved,
        })
    }

    /// The leadership, held for reading, if this replica still follows `from` (leader,
    /// epoch): what a fetch answer from that leader may change.
    fn following(
        &self,
        from: (i32, i32),
    ) -> Result<parking_lot::RwLockReadGuard<'_, Leadership>, ReplicaError> {
        let l = self.leadership.read();
        if l.leader == self.local_node || (l.leader, l.leader_epoch) != from {
            return Err(ReplicaError::StaleLeader {
                leader: from.0,
                epoch: from.1,
            });
        }
        Ok(l)
    }

    /// Where a follower fetches from: its log end and the epoch of its last batch.
    pub fn fetch_position(&self) -> (i64, i32, i64) {
        let log = self.log.lock();
        (
            log.log_end_offset(),
            log.latest_epoch(),
            log.log_start_offset(),
        )
    }

    /// A follower's append of batches fetched from the leader, and the leader's high
    /// watermark, which this replica takes up to its own log end.
    pub fn append_replicated(
        &self,
        bytes: &[u8],
        leader_high_watermark: i64,
        from: (i32, i32),
    ) -> Result<AppendInfo, ReplicaError> {
        let _following = self.following(from)?;
        let mut log = self.log.lock();
        let info = log.append_replicated(bytes, now_ms())?;
        self.follow_high_watermark(&log, leader_high_watermark);
        Ok(info)
    }

    /// A follower takes the leader's high watermark, capped at its own log end.
    pub fn update_follower_high_watermark(
        &self,
        leader_high_watermark: i64,
        from: (i32, i32),
    ) -> Result<(), ReplicaError> {
        let _following = self.following(from)?;
        let log = self.log.lock();
        self.follow_high_watermark(&log, leader_high_watermark);
        Ok(())
    }

    /// Called with the leadership held for reading and seen not to be this node's
    /// (never read again here: a second read lock behind a waiting writer deadlocks).
    fn follow_high_watermark(&self, log: &PartitionLog, leader_hw: i64) {
        let hw = leader_hw
            .min(log.log_end_offset())
            .max(log.log_start_offset());
        self.high_watermark.store(hw, Ordering::SeqCst);
    }

    /// A follower's truncation after the leader answered `DivergingEpoch { epoch,
    /// end_offset }` (KIP-279): to the smaller of the leader's end of that epoch and
    /// this log's end of it — never a cut to the high watermark. Where this log does
    /// not have the leader's epoch, it cuts to the end of the largest epoch below it and
    /// asks again, as Kafka's fetcher does.
    pub fn truncate_diverging(
        &self,
        epoch: i32,
        end_offset: i64,
        from: (i32, i32),
    ) -> Result<(), ReplicaError> {
        let _following = self.following(from)?;
        let mut log = self.log.lock();
        let (mine, my_end) = log.end_offset_for_epoch(epoch);
        let to = if mine < 0 {
            end_offset
        } else if mine == epoch {
            my_end.min(end_offset)
        } else {
            my_end
        };
        log.truncate_to(to)?;
        let hw = self.high_watermark().min(log.log_end_offset());
        self.high_watermark.store(hw, Ordering::SeqCst);
        Ok(())
    }

    /// A follower whose fetch offset lies before the leader's log start: start again
    /// there.
    pub fn restart_at(&self, leader_log_start: i64, from: (i32, i32)) -> Result<(), ReplicaError> {
        let _following = self.following(from)?;
        let mut log = self.log.lock();
        log.truncate_fully_and_start_at(leader_log_start)?;
        self.high_watermark
            .store(leader_log_start, Ordering::SeqCst);
        Ok(())
    }

    /// On the leader: the ISR change to propose now, if any — members that lag by more
    /// than `lag_max_ms` leave, followers that caught up (and whose broker `live` says
    /// is unfenced) join. One change in flight at a time.
    pub fn isr_change(&self, lag_max_ms: i64, live: impl Fn(i32) -> bool) -> Option<IsrChange> {
        let l = self.leadership.read();
        if l.leader != self.local_node {
            return None;
        }
        let epoch_start = self
            .log
            .lock()
            .epoch_start_offset(l.leader_epoch)
            .unwrap_or(0);
        let now = now_ms();
        let hw = self.high_watermark();
        let mut state = self.leader_state.lock();
        let s = state.as_mut()?;
        if let Some((at_epoch, at_ms)) = s.pending_isr {
            if at_epoch == l.partition_epoch && now - at_ms < ISR_PROPOSAL_RETRY_MS {
                return None;
            }
        }
        let out = s.progress.lagging(&l.isr, self.local_node, now, lag_max_ms);
        let join: Vec<i32> = s
            .progress
            .ready_to_join(&l.isr, hw, epoch_start)
            .into_iter()
            .filter(|id| live(*id))
            .collect();
        if out.is_empty() && join.is_empty() {
            return None;
        }
        s.pending_isr = Some((l.partition_epoch, now));
        s.joining = join.clone();
        Some(IsrChange {
            leader_epoch: l.leader_epoch,
            partition_epoch: l.partition_epoch,
            isr: next_isr(&l.replicas, &l.isr, self.local_node, &out, &join),
        })
    }

    /// Read-only access to the log for lookups that move nothing (ListOffsets by time).
    pub fn inspect<R>(&self, f: impl FnOnce(&PartitionLog) -> R) -> R {
        f(&self.log.lock())
    }

    /// Records the high watermark in the partition's checkpoint, so a restarted replica
    /// starts from it.
    pub fn checkpoint_high_watermark(&self) -> Result<(), StorageError> {
        let hw = self.high_watermark();
        let mut log = self.log.lock();
        let hw = hw.clamp(log.log_start_offset(), log.log_end_offset());
        log.checkpoint_high_watermark(hw)
    }

    /// Maintenance the broker's clock drives on every replica, leader or not: flushes,
    /// retention, compaction, closing. Never an append.
    pub fn maintain<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.lock())
    }
}

#[cfg(test)]
mod tests;
