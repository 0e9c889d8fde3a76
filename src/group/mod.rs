//! Consumer groups: the group coordinator. This node coordinates every group.
//!
//! `group.rs` is the membership state machine (pure); `offsets.rs` the committed
//! offsets on `__consumer_offsets` and `metadata_record.rs` the group metadata records
//! beside them. This file owns what those must not: the lock
//! around all groups, the channels that park JoinGroup and SyncGroup requests until
//! their rebalance completes, and the clock (`tick`, driven by the broker's
//! maintenance loop) that expires members and offsets.
//!
//! Invariants: a parked request is answered exactly once — by an effect of the state
//! machine, or with an error when it is replaced by a newer request of the same member
//! or the coordinator shuts down; committed offsets are durable before they are
//! acknowledged; each group's membership is recorded after every change worth
//! recording (a completed rebalance, emptying, a static member replaced) and restored
//! at start, as Kafka's coordinator loads its groups after a failover.

pub mod consumer_protocol;
pub mod group;
pub mod metadata_record;
pub mod offsets;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use group::{code, Effect, Group, GroupLimits, JoinOutcome, JoinRequest, State, SyncOutcome};
use offsets::{Committed, OffsetStore, OffsetsError};

use crate::storage::segment::now_ms;

/// Settings of the coordinator (Kafka's `group.*` and `offsets.*` broker configs).
#[derive(Debug, Clone, Copy)]
pub struct CoordinatorConfig {
    pub limits: GroupLimits,
    /// Kafka's `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// Kafka's `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, Group>,
    joins: HashMap<(String, String), oneshot::Sender<JoinOutcome>>,
    syncs: HashMap<(String, String), oneshot::Sender<SyncOutcome>>,
    /// The fingerprint of each group's last metadata record (`record_fingerprint`), so
    /// each state worth recording is written once.
    recorded: HashMap<String, u64>,
}

impl Inner {
    fn apply(&mut self, group: &str, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Join(member, outcome) => {
                    if let Some(tx) = self.joins.remove(&(group.to_string(), member)) {
                        let _ = tx.send(outcome);
                    }
                }
                Effect::Sync(member, outcome) => {
                    if let Some(tx) = self.syncs.remove(&(group.to_string(), member)) {
                        let _ = tx.send(outcome);
                    }
                }
            }
        }
    }
}

/// A summary of one group for DescribeGroups, ListGroups and the CLI/HTTP views.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    inner: Mutex<Inner>,
    pub offsets: OffsetStore,
}

/// Why an offset commit was refused for a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitRefused(pub i16);

impl GroupCoordinator {
    /// The coordinator, with the groups `offsets` found metadata records for.
    pub fn new(config: CoordinatorConfig, offsets: OffsetStore) -> Arc<GroupCoordinator> {
        let mut inner = Inner::default();
        let now = now_ms();
        for (id, stored) in offsets.take_stored_groups() {
            let g = Group::restore(&id, &stored, now);
            if let Some(mark) = g.record_fingerprint() {
                inner.recorded.insert(id.clone(), mark);
            }
            inner.groups.insert(id, g);
        }
        Arc::new(GroupCoordinator {
            config,
            inner: Mutex::new(inner),
            offsets,
        })
    }

    /// This node became the leader of partition `index` of the offsets topic, so the
    /// coordinator of its groups: their committed offsets and metadata are read again
    /// from the log (which replication kept up to date here), and the groups restored
    /// as after a restart — what an earlier term of this node held for them is
    /// replaced. Waiting joins and syncs of those groups are left to time out.
    pub fn take_over_partition(&self, index: i32) -> Result<(), OffsetsError> {
        let stored = self.offsets.reload_partition(index)?;
        let count = self.offsets.partition_count();
        let now = now_ms();
        let mut inner = self.inner.lock();
        inner
            .groups
            .retain(|id, _| crate::group::offsets::partition_for_group(id, count) != index);
        inner
            .recorded
            .retain(|id, _| crate::group::offsets::partition_for_group(id, count) != index);
        for (id, stored) in stored {
            let g = Group::restore(&id, &stored, now);
            if let Some(mark) = g.record_fingerprint() {
                inner.recorded.insert(id.clone(), mark);
            }
            inner.groups.insert(id, g);
        }
        Ok(())
    }

    /// This node no longer leads partition `index` of the offsets topic: the groups of
    /// that partition and their offsets are dropped here (the new coordinator has
    /// them), so nothing here expires or records them in a log it cannot write.
    pub fn release_partition(&self, index: i32) {
        let count = self.offsets.partition_count();
        let ours = |id: &str| crate::group::offsets::partition_for_group(id, count) == index;
        self.offsets.forget_partition(index);
        let mut inner = self.inner.lock();
        inner.groups.retain(|id, _| !ours(id));
        inner.recorded.retain(|id, _| !ours(id));
    }

    /// Writes the group's metadata record when its state is one Kafka records and it
    /// has changed since the last record (after a rebalance completes; when it
    /// empties; when a static member is replaced). The append goes to the page cache
    /// (fsync'd only under `fsync_before_ack`) with the coordinator's lock held, which
    /// keeps records in the order of the changes.
    fn record_group(&self, inner: &mut Inner, group_id: &str) {
        let Some(g) = inner.groups.get(group_id) else {
            return;
        };
        let Some(mark) = g.record_fingerprint() else {
            return;
        };
        if inner.recorded.get(group_id) == Some(&mark) {
            return;
        }
        let Some(stored) = g.to_stored(now_ms()) else {
            return;
        };
        // Marked written even when the write fails: the record informs tools and the
        // next start, and a failure that repeats (a full disk, a group too large for
        // one record) is logged once per change rather than on every tick.
        inner.recorded.insert(group_id.to_string(), mark);
        if let Err(e) = self.offsets.write_group(group_id, Some(&stored)) {
            tracing::error!(group = group_id, error = %e, "cannot record group metadata");
        }
    }

    /// Writes a group's metadata tombstone (the group is gone).
    fn forget_group(&self, inner: &mut Inner, group_id: &str) {
        if inner.recorded.remove(group_id).is_some() {
            if let Err(e) = self.offsets.write_group(group_id, None) {
                tracing::error!(group = group_id, error = %e, "cannot remove group metadata");
            }
        }
    }

    /// JoinGroup: answered at once, or parked until the rebalance completes.
    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinOutcome {
        if group_id.is_empty() {
            return JoinOutcome::error(code::INVALID_GROUP_ID, &req.member_id);
        }
        let wait = Duration::from_millis(
            req.rebalance_timeout_ms.max(req.session_timeout_ms).max(0) as u64 + 5_000,
        );
        let rx = {
            let mut inner = self.inner.lock();
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            let (member_id, immediate, effects) =
                group.join(now_ms(), req.clone(), &self.config.limits);
            inner.apply(group_id, effects);
            self.record_group(&mut inner, group_id);
            if let Some(out) = immediate {
                return out;
            }
            let (tx, rx) = oneshot::channel();
            // A retried join replaces (and thereby answers) the older parked one.
            inner.joins.insert((group_id.to_string(), member_id), tx);
            rx
        };
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(out)) => out,
            Ok(Err(_)) => JoinOutcome::error(code::REBALANCE_IN_PROGRESS, &req.member_id),
            Err(_) => JoinOutcome::error(code::REBALANCE_IN_PROGRESS, &req.member_id),
        }
    }

    /// SyncGroup: the leader's call distributes assignments; followers wait for it.
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let (rx, session_timeout_ms) = {
            let mut inner = self.inner.lock();
            let Some(group) = inner.groups.get_mut(group_id) else {
                return SyncOutcome::error(code::UNKNOWN_MEMBER_ID);
            };
            let (immediate, effects) =
                group.sync(now_ms(), member_id, instance_id, generation, assignments);
            let timeout = group
                .members
                .get(member_id)
                .map(|m| m.session_timeout_ms)
                .unwrap_or(0);
            inner.apply(group_id, effects);
            self.record_group(&mut inner, group_id);
            if let Some(out) = immediate {
                return out;
            }
            let (tx, rx) = oneshot::channel();
            inner
                .syncs
                .insert((group_id.to_string(), member_id.to_string()), tx);
            (rx, timeout)
        };
        match tokio::time::timeout(
            Duration::from_millis(session_timeout_ms.max(0) as u64 + 5_000),
            rx,
        )
        .await
        {
            Ok(Ok(out)) => out,
            _ => SyncOutcome::error(code::REBALANCE_IN_PROGRESS),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
    ) -> i16 {
        let mut inner = self.inner.lock();
        match inner.groups.get_mut(group_id) {
            Some(g) => g.heartbeat(now_ms(), member_id, instance_id, generation),
            None => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup for one member; returns its error code.
    pub fn leave(&self, group_id: &str, member_id: &str, instance_id: &Option<String>) -> i16 {
        let mut inner = self.inner.lock();
        let Some(g) = inner.groups.get_mut(group_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        let (err, effects) = g.leave(now_ms(), member_id, instance_id, &self.config.limits);
        if err == code::NONE {
            tracing::info!(
                group = group_id,
                member = member_id,
                "member left the group"
            );
        }
        inner.apply(group_id, effects);
        self.record_group(&mut inner, group_id);
        err
    }

    /// Expires silent members, completes overdue rebalances, drops empty groups that
    /// have no offsets, and expires offsets of empty groups.
    pub fn tick(&self) {
        let now = now_ms();
        let mut empty_groups = Vec::new();
        {
            let mut inner = self.inner.lock();
            let ids: Vec<String> = inner.groups.keys().cloned().collect();
            for id in ids {
                let Some(g) = inner.groups.get_mut(&id) else {
                    continue;
                };
                let (expired, effects) = g.tick(now, &self.config.limits);
                for m in &expired {
                    tracing::info!(group = %id, member = %m, "member expired: no heartbeat within the session timeout");
                }
                let empty = g.state == State::Empty;
                inner.apply(&id, effects);
                self.record_group(&mut inner, &id);
                if empty {
                    empty_groups.push(id);
                }
            }
        }
        // Offsets of groups without members (or without a group at all) expire.
        let candidates: Vec<String> = self
            .offsets
            .groups()
            .into_iter()
            .filter(|g| !self.has_members(g))
            .collect();
        let cutoff = now - self.config.offsets_retention_ms;
        let mut by_group: HashMap<String, Vec<((String, i32), Option<Committed>)>> = HashMap::new();
        for (g, key) in self.offsets.older_than(&candidates, cutoff) {
            by_group.entry(g).or_default().push((key, None));
        }
        for (g, deletions) in by_group {
            tracing::info!(group = %g, partitions = deletions.len(), "expiring committed offsets (offsets_retention_minutes)");
            if let Err(e) = self.offsets.write(&g, deletions) {
                tracing::error!(group = %g, error = %e, "cannot expire offsets");
            }
        }
        let mut inner = self.inner.lock();
        for id in empty_groups {
            if inner.groups.get(&id).is_some_and(|g| g.is_empty()) && !self.offsets.has_group(&id) {
                inner.groups.remove(&id);
                self.forget_group(&mut inner, &id);
            }
        }
    }

    fn has_members(&self, group_id: &str) -> bool {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .is_some_and(|g| !g.is_empty())
    }

    /// Checks that a commit may be applied to `group_id`: simple (standalone) commits
    /// with generation -1 are allowed only while the group has no members.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
    ) -> Result<(), CommitRefused> {
        if group_id.is_empty() {
            return Err(CommitRefused(code::INVALID_GROUP_ID));
        }
        let mut inner = self.inner.lock();
        let Some(g) = inner.groups.get_mut(group_id) else {
            return if generation < 0 {
                Ok(())
            } else {
                Err(CommitRefused(code::ILLEGAL_GENERATION))
            };
        };
        if g.is_empty() {
            return if generation < 0 {
                Ok(())
            } else {
                Err(CommitRefused(code::ILLEGAL_GENERATION))
            };
        }
        if generation < 0 && member_id.is_empty() {
            // Another client committing for a group that has live members.
            return Err(CommitRefused(code::UNKNOWN_MEMBER_ID));
        }
        match g.members.get_mut(member_id) {
            None => Err(CommitRefused(
                if instance_id.is_some()
                    && g.members.values().any(|m| m.instance_id == *instance_id)
                {
                    code::FENCED_INSTANCE_ID
                } else {
                    code::UNKNOWN_MEMBER_ID
                },
            )),
            Some(_) if generation != g.generation => Err(CommitRefused(code::ILLEGAL_GENERATION)),
            // As in Kafka: commits of the current generation are accepted while the
            // group prepares a rebalance (members commit as their partitions are
            // revoked), but not between the JoinGroup and SyncGroup answers.
            Some(_) if g.state == State::CompletingRebalance => {
                Err(CommitRefused(code::REBALANCE_IN_PROGRESS))
            }
            Some(m) => {
                m.last_seen_ms = now_ms();
                Ok(())
            }
        }
    }

    /// The replica of `group_id`'s partition of the offsets topic held here, if any.
    pub fn offsets_partition(
        &self,
        group_id: &str,
    ) -> Option<Arc<crate::replication::replica::Replica>> {
        self.offsets.partition_of(group_id)
    }

    pub fn commit(
        &self,
        group_id: &str,
        commits: Vec<((String, i32), Committed)>,
    ) -> Result<(), OffsetsError> {
        let result = self.offsets.write(
            group_id,
            commits.into_iter().map(|(k, c)| (k, Some(c))).collect(),
        );
        // A group that exists only through its offsets is listed as Empty.
        self.inner
            .lock()
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        result
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Every known group (with members, or with committed offsets).
    pub fn list(&self) -> Vec<GroupView> {
        let mut ids: Vec<String> = self.inner.lock().groups.keys().cloned().collect();
        ids.extend(self.offsets.groups());
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.describe(&id))
            .collect()
    }

    /// A group's state; None if the coordinator knows nothing of it.
    pub fn describe(&self, group_id: &str) -> Option<GroupView> {
        let inner = self.inner.lock();
        match inner.groups.get(group_id) {
            Some(g) => {
                let protocol = g.protocol.clone().unwrap_or_default();
                Some(GroupView {
                    id: g.id.clone(),
                    state: g.state.name().to_string(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol: protocol.clone(),
                    generation: g.generation,
                    members: g
                        .members
                        .values()
                        .map(|m| MemberView {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m.metadata_for(&protocol),
                            assignment: m.assignment.clone(),
                        })
                        .collect(),
                })
            }
            None if self.offsets.has_group(group_id) => Some(GroupView {
                id: group_id.to_string(),
                state: "Empty".into(),
                protocol_type: "consumer".into(),
                protocol: String::new(),
                generation: 0,
                members: vec![],
            }),
            None => None,
        }
    }

    /// DeleteGroups for one group: only an empty group may go; its offsets go with it.
    pub fn delete(&self, group_id: &str) -> i16 {
        let known = {
            let inner = self.inner.lock();
            match inner.groups.get(group_id) {
                Some(g) if !g.is_empty() => return 68, // NON_EMPTY_GROUP
                Some(_) => true,
                None => false,
            }
        };
        if !known && !self.offsets.has_group(group_id) {
            return 69; // GROUP_ID_NOT_FOUND
        }
        if let Err(e) = self.offsets.delete_group(group_id) {
            tracing::error!(group = group_id, error = %e, "cannot delete group offsets");
            return crate::broker::errors::code(
                kafka_protocol::error::ResponseError::KafkaStorageError,
            );
        }
        let mut inner = self.inner.lock();
        if inner.groups.get(group_id).is_some_and(|g| g.is_empty()) {
            inner.groups.remove(group_id);
        }
        self.forget_group(&mut inner, group_id);
        tracing::info!(group = group_id, "deleted group");
        code::NONE
    }

    /// Topics the group's members subscribe to (for OffsetDelete).
    pub fn subscribed_topics(&self, group_id: &str) -> std::collections::BTreeSet<String> {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .map(|g| g.subscribed_topics())
            .unwrap_or_default()
    }

    pub fn exists(&self, group_id: &str) -> bool {
        self.inner.lock().groups.contains_key(group_id) || self.offsets.has_group(group_id)
    }

    /// Answers every parked request (shutdown): members will rejoin elsewhere or later.
    pub fn shutdown(&self) {
        let mut inner = self.inner.lock();
        for (_, tx) in inner.joins.drain() {
            let _ = tx.send(JoinOutcome::error(code::COORDINATOR_NOT_AVAILABLE, ""));
        }
        for (_, tx) in inner.syncs.drain() {
            let _ = tx.send(SyncOutcome::error(code::COORDINATOR_NOT_AVAILABLE));
        }
    }
}
