//! Ordered acknowledgement per consumed partition. Batches of one partition are
//! numbered as they are fetched; workers finish them in any order; the offset that may
//! be committed is the one after the last batch of an unbroken run of finished
//! batches. So a commit never passes an event some output has not acknowledged, even
//! with several workers (`pipeline.workers`) — Logstash's at-least-once rule.
//!
//! Commits go through the input's group session, as a member of the current
//! generation. A partition leaves the set when the group takes it away (after one
//! last commit): batches of it still in flight then go uncommitted, and the
//! partition's next owner reads them again (at least once, never lost).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::group_session::GroupSession;
use crate::client::access::TopicAccess;

pub struct PartitionProgress {
    pub topic: String,
    pub partition: i32,
    pub session: Arc<GroupSession>,
    /// Where the partition is read from (the pipeline views ask it for the log end).
    pub access: Arc<dyn TopicAccess>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The sequence number the next fetched batch gets.
    next_seq: u64,
    /// The first batch not yet finished.
    first_unfinished: u64,
    /// Finished batches after a gap: seq → next offset.
    finished: BTreeMap<u64, i64>,
    /// Everything before this offset is delivered.
    delivered: Option<i64>,
    /// The last offset committed to the group.
    committed: Option<i64>,
    /// The next offset the input will fetch.
    position: i64,
    /// Where consumption started (what lag counts from before the first commit).
    start: i64,
}

/// Every partition a pipeline consumes now, and the group sessions of its inputs.
#[derive(Default)]
pub struct Progress {
    partitions: Mutex<Vec<Arc<PartitionProgress>>>,
    sessions: Mutex<Vec<Arc<GroupSession>>>,
}

pub type ProgressSet = Arc<Progress>;

/// A partition's place in the set, held by the task that reads it: dropped with the
/// task (the group took the partition away, or the pipeline stopped), it takes the
/// partition out, so nothing commits it any more.
pub struct Registration {
    set: ProgressSet,
    progress: Arc<PartitionProgress>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.set
            .partitions
            .lock()
            .retain(|p| !Arc::ptr_eq(p, &self.progress));
    }
}

impl Progress {
    /// Adds a partition for as long as the returned registration lives.
    pub fn add(self: &Arc<Self>, p: Arc<PartitionProgress>) -> Registration {
        self.partitions.lock().push(p.clone());
        Registration {
            set: self.clone(),
            progress: p,
        }
    }

    pub fn partitions(&self) -> Vec<Arc<PartitionProgress>> {
        self.partitions.lock().clone()
    }

    /// The partitions `session`'s input reads.
    pub fn partitions_of(&self, session: &Arc<GroupSession>) -> Vec<Arc<PartitionProgress>> {
        self.partitions
            .lock()
            .iter()
            .filter(|p| Arc::ptr_eq(&p.session, session))
            .cloned()
            .collect()
    }

    pub fn add_session(&self, s: Arc<GroupSession>) {
        self.sessions.lock().push(s);
    }

    /// Every input leaves its group (after the last commit, at pipeline stop).
    pub async fn leave_groups(&self) {
        let sessions: Vec<_> = self.sessions.lock().clone();
        for s in sessions {
            s.leave().await;
        }
    }
}

impl PartitionProgress {
    pub fn new(
        session: Arc<GroupSession>,
        access: Arc<dyn TopicAccess>,
        topic: &str,
        partition: i32,
        start: i64,
        committed: Option<i64>,
    ) -> PartitionProgress {
        PartitionProgress {
            topic: topic.to_string(),
            partition,
            session,
            access,
            state: Mutex::new(State {
                position: start,
                start,
                committed,
                // Without a committed offset, the start (the reset position) is due:
                // committed at once, a partition that moves to another member before
                // anything is delivered is read from here, not reset again past what
                // arrived meanwhile (as the Java consumer commits its position).
                delivered: committed.is_none().then_some(start),
                ..State::default()
            }),
        }
    }

    /// Numbers a batch that ends before `next_offset`; the input's position moves on.
    pub fn next_batch(&self, next_offset: i64) -> u64 {
        let mut s = self.state.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.position = next_offset;
        seq
    }

    /// Records that the input jumped (offset reset) to `offset`.
    pub fn reset_position(&self, offset: i64) {
        let mut s = self.state.lock();
        s.position = offset;
        if s.committed.is_none() {
            s.start = offset;
        }
        if s.first_unfinished == s.next_seq {
            // Nothing in flight: the new position is what is delivered.
            s.delivered = Some(offset);
        }
    }

    /// A batch is held by every output.
    pub fn finish(&self, seq: u64, next_offset: i64) {
        let mut s = self.state.lock();
        s.finished.insert(seq, next_offset);
        loop {
            let first = s.first_unfinished;
            let Some(next) = s.finished.remove(&first) else {
                break;
            };
            s.delivered = Some(next);
            s.first_unfinished += 1;
        }
    }

    /// The offset to commit, if it moved since the last commit.
    pub fn to_commit(&self) -> Option<i64> {
        let s = self.state.lock();
        s.delivered.filter(|d| Some(*d) != s.committed)
    }

    pub fn committed(&self, offset: i64) {
        self.state.lock().committed = Some(offset);
    }

    /// (next offset to fetch, last committed offset)
    pub fn positions(&self) -> (i64, Option<i64>) {
        let s = self.state.lock();
        (s.position, s.committed)
    }

    /// The offset lag counts from: the last commit, or where consumption started.
    pub fn delivered_floor(&self) -> i64 {
        let s = self.state.lock();
        s.committed.unwrap_or(s.start)
    }
}

/// Commits every partition whose delivered offset moved, one request per group
/// session; failures are logged and retried at the next call.
pub async fn commit_all(set: &ProgressSet) {
    commit(&set.partitions()).await
}

/// Partitions with an offset to commit.
type Due = Vec<(Arc<PartitionProgress>, i64)>;

/// Commits the moved offsets of `parts`.
pub async fn commit(parts: &[Arc<PartitionProgress>]) {
    let mut by_session: Vec<(Arc<GroupSession>, Due)> = Vec::new();
    for p in parts {
        let Some(offset) = p.to_commit() else {
            continue;
        };
        match by_session
            .iter_mut()
            .find(|(s, _)| Arc::ptr_eq(s, &p.session))
        {
            Some((_, due)) => due.push((p.clone(), offset)),
            None => by_session.push((p.session.clone(), vec![(p.clone(), offset)])),
        }
    }
    for (session, due) in by_session {
        let offsets: Vec<_> = due
            .iter()
            .map(|(p, o)| (p.topic.clone(), p.partition, *o))
            .collect();
        match session.commit(&offsets).await {
            Ok(()) => {
                for (p, o) in due {
                    p.committed(o)
                }
            }
            Err(e) => {
                tracing::warn!(group = %session.group, error = %e, "cannot commit pipeline offsets; will retry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_an_unbroken_run_of_finished_batches() {
        let p = PartitionProgress::new(
            GroupSession::new("x:1", "g"),
            Arc::new(crate::client::remote::RemoteAccess::new("x:1")),
            "t",
            0,
            0,
            None,
        );
        assert_eq!(
            p.to_commit(),
            Some(0),
            "without a committed offset the start position is due first"
        );
        p.committed(0);
        let (a, b, c) = (p.next_batch(10), p.next_batch(20), p.next_batch(30));
        p.finish(b, 20);
        assert_eq!(p.to_commit(), None, "batch 0 is still out");
        p.finish(a, 10);
        assert_eq!(p.to_commit(), Some(20));
        p.committed(20);
        assert_eq!(p.to_commit(), None);
        p.finish(c, 30);
        assert_eq!(p.to_commit(), Some(30));
    }
}
