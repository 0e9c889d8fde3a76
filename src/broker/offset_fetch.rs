//! OffsetFetch: committed offsets of one group (v0–v7) or several (v8+); -1 where
//! nothing is committed; all of a group's partitions when no topics are named.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::group::offsets::Committed;

/// (topic, [(partition, committed)]) for the requested topics, or all committed.
fn lookup(
    broker: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<(i32, Option<Committed>)>)> {
    match topics {
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
    }
}

fn name(t: String) -> TopicName {
    TopicName(StrBytes::from_string(t))
}

pub fn handle(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let epoch = |c: &Option<Committed>| {
        if version >= 5 {
            c.as_ref().map(|c| c.leader_epoch).unwrap_or(-1)
        } else {
            -1
        }
    };
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
                let topics = lookup(broker, &g.group_id.0, wanted)
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(name(t))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(
                                                c.as_ref().map(|c| c.offset).unwrap_or(-1),
                                            )
                                            .with_committed_leader_epoch(epoch(&c))
                                            .with_metadata(Some(StrBytes::from_string(
                                                c.map(|c| c.metadata).unwrap_or_default(),
                                            )))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = lookup(broker, &req.group_id.0, wanted)
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(name(t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(c.as_ref().map(|c| c.offset).unwrap_or(-1))
                                .with_committed_leader_epoch(epoch(&c))
                                .with_metadata(Some(StrBytes::from_string(
                                    c.map(|c| c.metadata).unwrap_or_default(),
                                )))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
