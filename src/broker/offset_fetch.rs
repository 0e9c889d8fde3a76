//! OffsetFetch: committed offsets of one group (v0–v7) or several (v8+); -1 where
//! nothing is committed; all of a group's partitions when no topics are named.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::Broker;
use crate::group::offsets::Committed;

/// One partition's answer: -1 and empty metadata where nothing is committed.
struct Found {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: StrBytes,
}

impl Found {
    fn new(partition: i32, c: Option<Committed>, version: i16) -> Found {
        Found {
            partition,
            offset: c.as_ref().map(|c| c.offset).unwrap_or(-1),
            // Leader epochs exist from v5 on.
            leader_epoch: c
                .as_ref()
                .filter(|_| version >= 5)
                .map(|c| c.leader_epoch)
                .unwrap_or(-1),
            metadata: StrBytes::from_string(c.map(|c| c.metadata).unwrap_or_default()),
        }
    }
}

/// (topic, partitions) for the requested topics, or everything committed.
fn lookup(
    broker: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    version: i16,
) -> Vec<(TopicName, Vec<Found>)> {
    let by_topic: Vec<(String, Vec<(i32, Option<Committed>)>)> = match topics {
        Some(ts) => ts
            .into_iter()
            .map(|(t, ps)| {
                let found = ps
                    .into_iter()
                    .map(|p| (p, broker.groups.offsets.get(group, &t, p)))
                    .collect();
                (t, found)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<(i32, Option<Committed>)>> =
                Default::default();
            for ((t, p), c) in broker.groups.offsets.all(group) {
                by_topic.entry(t).or_default().push((p, Some(c)));
            }
            by_topic.into_iter().collect()
        }
    };
    by_topic
        .into_iter()
        .map(|(t, parts)| {
            let found = parts
                .into_iter()
                .map(|(p, c)| Found::new(p, c, version))
                .collect();
            (TopicName(StrBytes::from_string(t)), found)
        })
        .collect()
}

pub fn handle(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts: Vec<OffsetFetchRequestTopics>| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let topics = lookup(broker, &g.group_id.0, wanted, version)
                    .into_iter()
                    .map(|(name, parts)| {
                        let parts = parts
                            .into_iter()
                            .map(|f| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(f.partition)
                                    .with_committed_offset(f.offset)
                                    .with_committed_leader_epoch(f.leader_epoch)
                                    .with_metadata(Some(f.metadata))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(parts)
                    })
                    .collect();
                let mut group = OffsetFetchResponseGroup::default();
                if broker.coordinates(&g.group_id.0) {
                    group.topics = topics;
                } else {
                    group.error_code = code(ResponseError::NotCoordinator);
                }
                group.with_group_id(g.group_id)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if !broker.coordinates(&req.group_id.0) {
        return OffsetFetchResponse::default().with_error_code(code(ResponseError::NotCoordinator));
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = lookup(broker, &req.group_id.0, wanted, version)
        .into_iter()
        .map(|(name, parts)| {
            let parts = parts
                .into_iter()
                .map(|f| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(f.offset)
                        .with_committed_leader_epoch(f.leader_epoch)
                        .with_metadata(Some(f.metadata))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(parts)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
