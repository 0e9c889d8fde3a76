//! Ordered acknowledgement per consumed partition. Batches of one partition are
//! numbered as they are fetched; workers finish them in any order; the offset that may
//! be committed is the one after the last batch of an unbroken run of finished
//! batches. So a commit never passes an event some output has not acknowledged, even
//! with several workers (`pipeline.workers`) — Logstash's at-least-once rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::access::TopicAccess;

pub struct PartitionProgress {
    pub group: String,
    pub topic: String,
    pub partition: i32,
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

/// Every partition a pipeline consumes.
pub type ProgressSet = Arc<Mutex<Vec<Arc<PartitionProgress>>>>;

impl PartitionProgress {
    pub fn new(
        group: &str,
        topic: &str,
        partition: i32,
        access: Arc<dyn TopicAccess>,
        start: i64,
        committed: Option<i64>,
    ) -> PartitionProgress {
        PartitionProgress {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            access,
            state: Mutex::new(State {
                position: start,
                start,
                committed,
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

/// Commits every partition whose delivered offset moved; failures are logged and
/// retried at the next call.
pub async fn commit_all(set: &ProgressSet) {
    let parts: Vec<_> = set.lock().clone();
    for p in parts {
        let due = p.to_commit();
        if let Some(offset) = due {
            match p
                .access
                .commit(&p.group, &p.topic, vec![(p.partition, offset)])
                .await
            {
                Ok(()) => p.committed(offset),
                Err(e) => {
                    tracing::warn!(group = %p.group, topic = %p.topic, partition = p.partition, error = %e, "cannot commit pipeline offsets; will retry")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::remote::RemoteAccess;

    #[test]
    fn commits_only_an_unbroken_run_of_finished_batches() {
        let p = PartitionProgress::new("g", "t", 0, Arc::new(RemoteAccess::new("x:1")), 0, None);
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
