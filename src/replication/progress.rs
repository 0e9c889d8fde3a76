//! What a partition's leader knows of its followers, and what it decides from that —
//! the high watermark, which ISR members fell behind, which followers may rejoin —
//! as pure functions of that knowledge and a clock passed in (decide, then act:
//! `replica.rs` acts, `isr.rs` proposes the changes). Kafka's rules, as written:
//!
//! - a follower's log end is what it asked to fetch from (its fetch offset); unknown
//!   (-1) until its first fetch in this leader epoch;
//! - a follower is caught up at a fetch that asks for the leader's log end, or for at
//!   least the log end the leader had at its previous fetch (Kafka's
//!   `lastCaughtUpTimeMs`); an ISR member not caught up for `replica.lag.time.max.ms`
//!   leaves the ISR;
//! - the high watermark is the smallest log end over the ISR, and does not move while
//!   the ISR is smaller than `min.insync.replicas` (KIP-966) or a member's log end is
//!   unknown; it never moves backwards (the caller keeps the larger);
//! - a follower rejoins the ISR only when its log end is at or past both the high
//!   watermark and the start of the leader's current epoch (KIP-966's rejoin rule).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// -1 until the follower's first fetch in this epoch.
    pub log_end: i64,
    pub last_caught_up_ms: i64,
    /// The leader's log end when this follower last fetched, and when.
    last_fetch_leader_end: i64,
    last_fetch_ms: i64,
}

/// The leader's view of every other replica of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderProgress {
    followers: BTreeMap<i32, FollowerProgress>,
}

impl LeaderProgress {
    /// A new leader: every follower unknown, and caught up as of now, so that each gets
    /// a full `replica.lag.time.max.ms` to fetch before it can be dropped from the ISR.
    pub fn new(replicas: &[i32], leader: i32, now_ms: i64) -> LeaderProgress {
        LeaderProgress {
            followers: replicas
                .iter()
                .filter(|r| **r != leader)
                .map(|r| {
                    (
                        *r,
                        FollowerProgress {
                            log_end: -1,
                            last_caught_up_ms: now_ms,
                            last_fetch_leader_end: -1,
                            last_fetch_ms: now_ms,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Replicas added to the assignment get a fresh entry; removed ones are forgotten.
    pub fn set_replicas(&mut self, replicas: &[i32], leader: i32, now_ms: i64) {
        self.followers.retain(|id, _| replicas.contains(id));
        for r in replicas.iter().filter(|r| **r != leader) {
            self.followers.entry(*r).or_insert(FollowerProgress {
                log_end: -1,
                last_caught_up_ms: now_ms,
                last_fetch_leader_end: -1,
                last_fetch_ms: now_ms,
            });
        }
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    /// A fetch from `follower` at `fetch_offset` while the leader's log ends at
    /// `leader_end`. Returns false for a node that is not a follower of this partition.
    pub fn on_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&follower) else {
            return false;
        };
        if fetch_offset >= leader_end {
            f.last_caught_up_ms = now_ms;
        } else if f.last_fetch_leader_end >= 0 && fetch_offset >= f.last_fetch_leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end = fetch_offset;
        f.last_fetch_leader_end = leader_end;
        f.last_fetch_ms = now_ms;
        true
    }

    /// The high watermark the ISR allows, or None while it may not move.
    pub fn high_watermark(
        &self,
        isr: &[i32],
        leader: i32,
        leader_end: i64,
        min_isr: usize,
    ) -> Option<i64> {
        if isr.len() < min_isr.max(1) || !isr.contains(&leader) {
            return None;
        }
        let mut hw = leader_end;
        for member in isr.iter().filter(|m| **m != leader) {
            let end = self.followers.get(member).map_or(-1, |f| f.log_end);
            if end < 0 {
                return None;
            }
            hw = hw.min(end);
        }
        Some(hw)
    }

    /// ISR members (never the leader) not caught up for longer than `lag_max_ms`.
    pub fn lagging(&self, isr: &[i32], leader: i32, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        isr.iter()
            .copied()
            .filter(|m| *m != leader)
            .filter(|m| {
                self.followers
                    .get(m)
                    .is_some_and(|f| now_ms.saturating_sub(f.last_caught_up_ms) > lag_max_ms)
            })
            .collect()
    }

    /// Followers outside the ISR whose log end has reached both the high watermark and
    /// the start of the leader's epoch.
    pub fn ready_to_join(&self, isr: &[i32], hw: i64, epoch_start: i64) -> Vec<i32> {
        self.followers
            .iter()
            .filter(|(id, f)| {
                !isr.contains(id) && f.log_end >= 0 && f.log_end >= hw && f.log_end >= epoch_start
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The ISR after dropping `out` and adding `join`, in replica order, never empty and
/// never without the leader.
pub fn next_isr(replicas: &[i32], isr: &[i32], leader: i32, out: &[i32], join: &[i32]) -> Vec<i32> {
    replicas
        .iter()
        .copied()
        .filter(|r| *r == leader || (isr.contains(r) && !out.contains(r)) || join.contains(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_the_smallest_isr_log_end_and_waits_for_every_member() {
        let mut p = LeaderProgress::new(&[1, 2, 3], 1, 0);
        // Followers unknown in the new epoch: it does not move.
        assert_eq!(p.high_watermark(&[1, 2, 3], 1, 10, 2), None);
        p.on_fetch(2, 10, 10, 5);
        assert_eq!(p.high_watermark(&[1, 2, 3], 1, 10, 2), None);
        p.on_fetch(3, 7, 10, 5);
        assert_eq!(p.high_watermark(&[1, 2, 3], 1, 10, 2), Some(7));
        // Node 3 out of the ISR: the two others decide.
        assert_eq!(p.high_watermark(&[1, 2], 1, 10, 2), Some(10));
        // KIP-966: below min.insync.replicas it does not move at all.
        assert_eq!(p.high_watermark(&[1], 1, 10, 2), None);
        assert_eq!(p.high_watermark(&[1], 1, 10, 1), Some(10));
    }

    #[test]
    fn a_follower_that_stops_catching_up_lags_after_the_lag_time() {
        let mut p = LeaderProgress::new(&[1, 2, 3], 1, 0);
        p.on_fetch(2, 0, 0, 1_000);
        p.on_fetch(3, 0, 0, 1_000);
        // The leader moves on; node 2 keeps up, node 3 fetches an old offset only.
        p.on_fetch(2, 0, 50, 2_000);
        p.on_fetch(2, 50, 90, 3_000);
        p.on_fetch(3, 0, 90, 3_000);
        assert_eq!(p.lagging(&[1, 2, 3], 1, 3_000, 30_000), Vec::<i32>::new());
        // Node 2 reached the end the leader had at its previous fetch: caught up as of
        // that fetch. Node 3 last caught up at 1 000.
        assert_eq!(p.follower(2).unwrap().last_caught_up_ms, 2_000);
        assert_eq!(p.lagging(&[1, 2, 3], 1, 31_500, 30_000), vec![3]);
        // The leader itself is never lagging; a node outside the ISR is not "dropped".
        assert_eq!(p.lagging(&[1, 2], 1, 99_000, 30_000), vec![2]);
    }

    #[test]
    fn a_follower_rejoins_only_past_the_high_watermark_and_the_epoch_start() {
        let mut p = LeaderProgress::new(&[1, 2, 3], 1, 0);
        p.on_fetch(3, 40, 60, 10);
        assert_eq!(p.ready_to_join(&[1, 2], 50, 30), Vec::<i32>::new());
        p.on_fetch(3, 55, 60, 20);
        assert_eq!(p.ready_to_join(&[1, 2], 50, 58), Vec::<i32>::new());
        assert_eq!(p.ready_to_join(&[1, 2], 50, 30), vec![3]);
        assert_eq!(next_isr(&[1, 2, 3], &[1, 2], 1, &[], &[3]), vec![1, 2, 3]);
        assert_eq!(
            next_isr(&[3, 1, 2], &[3, 1, 2], 1, &[3, 1], &[]),
            vec![1, 2]
        );
        // A fetch from a node that is not a replica changes nothing.
        assert!(!p.on_fetch(9, 0, 60, 30));
    }
}
