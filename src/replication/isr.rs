//! ISR changes on this node's leaders: a clock that asks every replica this node leads
//! what its ISR should be now (`Replica::isr_change`, which decides from what it knows
//! of its followers) and proposes each change to the metadata quorum as an
//! `AlterPartition`. The new ISR takes effect when the committed image reaches the
//! replica, never before — so the high watermark never counts a member the quorum has
//! not recorded, and a member the quorum dropped stops counting only once recorded.
//!
//! Invariants: at most one proposal in flight per partition (the replica holds it until
//! the partition epoch moves or a retry time passes); a fenced broker is never proposed
//! as a new member.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::replica::Replica;
use crate::cluster::image::{ApplyResult, MetadataCommand};
use crate::cluster::quorum::Quorum;

/// How often the leaders' ISRs are checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Runs until `stop`: `led` lists the replicas this node holds (with their topics).
pub async fn run(
    quorum: Arc<Quorum>,
    led: impl Fn() -> Vec<(String, Arc<Replica>)> + Send + 'static,
    replica_lag_time_max: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let lag_ms = replica_lag_time_max.as_millis() as i64;
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let image = quorum.image();
        let live = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
        for (topic, replica) in led() {
            let Some(change) = replica.isr_change(lag_ms, live) else {
                continue;
            };
            let leadership = replica.leadership();
            tracing::info!(topic = %topic, partition = replica.index, from = ?leadership.isr, to = ?change.isr, "proposing an ISR change");
            let cmd = MetadataCommand::AlterPartition {
                topic: topic.clone(),
                partition: replica.index,
                leader: leadership.leader,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                isr: change.isr,
            };
            let q = quorum.clone();
            tokio::spawn(async move {
                match q.propose(cmd).await {
                    Ok(ApplyResult::Applied) => {}
                    Ok(other) => {
                        tracing::info!(topic = %topic, partition = replica.index, result = ?other, "ISR change not applied")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic, partition = replica.index, error = %e, "cannot propose an ISR change")
                    }
                }
            });
        }
    }
}
