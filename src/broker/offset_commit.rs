//! OffsetCommit: checks the member and generation (or allows a standalone commit for a
//! group without members), then makes the offsets durable in `__consumer_offsets` —
//! appended, and held by the ISR of the group's partition before the answer (in a
//! cluster of one at once).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::errors::{code, offsets_replication_code, offsets_write_code};
use super::Broker;
use crate::group::offsets::Committed;
use crate::storage::segment::now_ms;

/// How long a commit waits for the followers of its `__consumer_offsets` partition
/// (Kafka's `offsets.commit.timeout.ms`).
const COMMIT_REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn handle(
    broker: &Broker,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    // v0 commits are "simple" (ZooKeeper-era) commits without a generation.
    let generation = if version == 0 {
        -1
    } else {
        req.generation_id_or_member_epoch
    };
    // In a cluster only the leader of the group's offsets partition takes commits.
    let not_coordinator = !broker.coordinates(&group);
    let verdict = broker
        .groups
        .check_commit(&group, &req.member_id, &instance_id, generation);
    let now = now_ms();
    let max_meta = broker.groups.config().offset_metadata_max_bytes;
    let mut to_write = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let partitions = broker
            .topic_view(&t.name.0)
            .map_or(0, |tv| tv.partitions.len() as i32);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let error = if not_coordinator {
                code(ResponseError::NotCoordinator)
            } else if let Err(refused) = verdict {
                refused.0
            } else if !(0..partitions).contains(&p.partition_index) {
                code(ResponseError::UnknownTopicOrPartition)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > max_meta)
            {
                code(ResponseError::OffsetMetadataTooLarge)
            } else {
                to_write.push((
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: if version == 1 && p.commit_timestamp >= 0 {
                            p.commit_timestamp
                        } else {
                            now
                        },
                    },
                ));
                0
            };
            parts.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error),
            );
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    if !to_write.is_empty() {
        // The epoch the commit is written in, read before: a commit written in an
        // epoch this node then lost is never reported replicated.
        let written_in = broker
            .groups
            .offsets_partition(&group)
            .map(|r| r.leader_epoch());
        let failed = match broker.groups.commit(&group, to_write) {
            Err(e) => {
                tracing::error!(group, error = %e, "cannot persist committed offsets");
                // Nothing was applied: the previous commit stands.
                Some(offsets_write_code(&e))
            }
            // As Kafka's coordinator appends with acks=all: answered once the
            // partition's ISR holds the commit, so it survives the coordinator's death.
            Ok(()) => match (broker.groups.offsets_partition(&group), written_in) {
                (Some(replica), Some(epoch)) => {
                    let end = replica.offsets().log_end;
                    replica
                        .await_replicated(end, epoch, COMMIT_REPLICATION_TIMEOUT)
                        .await
                        .err()
                        .map(|e| {
                            tracing::warn!(group, error = %e, "a commit not replicated in time");
                            offsets_replication_code(&e)
                        })
                }
                _ => None,
            },
        };
        if let Some(failed) = failed {
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = failed;
                    }
                }
            }
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}
