//! A kafka input's membership in its consumer group while the pipeline runs: joins
//! (through `client::membership`), heartbeats every 3 s on a task of its own until the
//! pipeline leaves, says when the group needs a new join, and commits the input's
//! delivered offsets as a member of the current generation. The same pipeline on
//! several nodes (or appliances) shares the group's partitions this way, and takes a
//! dead member's share over once the coordinator expires it.
//!
//! Invariants: one request at a time on the member (a join, a heartbeat or a commit);
//! heartbeats stop once `leave` has been called; a heartbeat answered "rejoin" sets
//! `rejoin_needed` until the next join completes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Mutex};

use crate::client::membership::{GroupMember, Heartbeat, HEARTBEAT_INTERVAL};
use crate::client::ClientError;

pub struct GroupSession {
    pub group: String,
    member: Mutex<GroupMember>,
    rejoin: watch::Sender<bool>,
    /// Set while a join is parked at the coordinator (up to the rebalance timeout):
    /// commits do not queue behind it (the coordinator would refuse them anyway).
    joining: AtomicBool,
    left: AtomicBool,
    leaving: tokio::sync::Notify,
}

impl GroupSession {
    /// A session of `group` through the Kafka listener at `bootstrap`; it heartbeats
    /// once `start_heartbeats` is called and it has joined.
    pub fn new(bootstrap: &str, group: &str) -> Arc<GroupSession> {
        Arc::new(GroupSession {
            group: group.to_string(),
            member: Mutex::new(GroupMember::new(bootstrap, group)),
            rejoin: watch::channel(false).0,
            joining: AtomicBool::new(false),
            left: AtomicBool::new(false),
            leaving: tokio::sync::Notify::new(),
        })
    }

    /// Heartbeats every `HEARTBEAT_INTERVAL` until `leave`, or until the session is
    /// dropped without leaving (the coordinator then expires the member).
    pub fn start_heartbeats(self: &Arc<Self>) {
        let session = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(me) = session.upgrade() else {
                    return;
                };
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
                    _ = me.leaving.notified() => {}
                }
                if me.left.load(Ordering::SeqCst) {
                    return;
                }
                if *me.rejoin.borrow() {
                    continue;
                }
                let mut member = me.member.lock().await;
                if member.identity().1 < 0 || me.left.load(Ordering::SeqCst) {
                    continue;
                }
                match member.heartbeat().await {
                    Ok(Heartbeat::Stable) => {}
                    Ok(Heartbeat::Rejoin) => me.request_rejoin(),
                    Err(e) => {
                        tracing::warn!(group = %me.group, error = %e, "group heartbeat failed; retrying")
                    }
                }
            }
        });
    }

    /// Joins with `topics` as the subscription; the assigned (topic, partition)s.
    pub async fn join(&self, topics: &[String]) -> Result<Vec<(String, i32)>, ClientError> {
        let mut member = self.member.lock().await;
        self.rejoin.send_replace(false);
        self.joining.store(true, Ordering::SeqCst);
        // Cleared however the join ends, a dropped future included.
        let _joined = ClearOnDrop(&self.joining);
        let assigned = member.join(topics).await;
        if assigned.is_err() {
            self.request_rejoin();
        }
        assigned
    }

    /// Asks the input to join again (its subscription changed, or the group said so).
    pub fn request_rejoin(&self) {
        self.rejoin.send_replace(true);
    }

    /// Completes once a new join is needed.
    pub async fn rejoin_needed(&self) {
        let mut rx = self.rejoin.subscribe();
        let _ = rx.wait_for(|needed| *needed).await;
    }

    /// Commits next-offsets (topic, partition, offset) as the current member. Refused
    /// at once while a join is under way; a commit the coordinator refuses because
    /// this member's generation is over asks for a new join.
    pub async fn commit(&self, offsets: &[(String, i32, i64)]) -> Result<(), ClientError> {
        if self.joining.load(Ordering::SeqCst) {
            return Err(ClientError::Protocol(format!(
                "group '{}' is rebalancing",
                self.group
            )));
        }
        let result = self.member.lock().await.commit(offsets).await;
        if let Err(ClientError::Kafka { code: c, .. }) = &result {
            use kafka_protocol::error::ResponseError::*;
            if [IllegalGeneration, UnknownMemberId, RebalanceInProgress]
                .iter()
                .any(|e| crate::broker::errors::code(*e) == *c)
            {
                self.request_rejoin();
            }
        }
        result
    }

    /// Leaves the group and ends the heartbeats; later calls do nothing.
    pub async fn leave(&self) {
        if self.left.swap(true, Ordering::SeqCst) {
            return;
        }
        self.leaving.notify_waiters();
        self.member.lock().await.leave().await;
    }
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
