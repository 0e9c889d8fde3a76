//! CreateTopics: validate names, partition counts, replication factor or explicit
//! replica assignments (whose length is the partition count, as in Kafka), and configs;
//! create unless `validate_only` (`topic_admin.rs`: on the registry, or through the
//! metadata quorum in a cluster).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::messages::create_topics_request::CreatableTopic;

use super::errors::{admin_code, code};
use super::topic_admin::TopicSpec;
use super::Broker;

pub async fn handle(
    broker: &Broker,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default().with_name(t.name.clone());
        let overrides: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let shape = topic_shape(broker, &t);
        let (partitions, replication) = shape.as_ref().map_or((-1, -1), |s| (s.0, s.1));
        let outcome = match shape {
            Err(refused) => Err(refused),
            Ok((_, _, assignments)) => {
                let spec = TopicSpec {
                    name: name.clone(),
                    partitions,
                    replication_factor: replication,
                    assignments,
                    configs: overrides,
                };
                broker
                    .create_topic(spec, req.validate_only)
                    .await
                    .map_err(|e| (admin_code(&e), e.to_string()))
            }
        };
        match outcome {
            Ok(()) => {
                if version >= 5 {
                    r.num_partitions = partitions;
                    r.replication_factor = broker.replication_factor_for(replication);
                    if let Some(topic) = broker.topic_view(&name) {
                        if version >= 7 {
                            r.topic_id = topic.id;
                        }
                    }
                    {
                        if let Ok(cfg) = broker.settings.topic_log_config(&configs_of(&t)) {
                            r.configs = Some(
                                cfg.describe()
                                    .into_iter()
                                    .map(|(k, v, is_override)| {
                                        CreatableTopicConfigs::default()
                                            .with_name(StrBytes::from_string(k))
                                            .with_value(Some(StrBytes::from_string(v)))
                                            .with_config_source(if is_override { 1 } else { 5 })
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
            }
            Err((c, msg)) => {
                r.error_code = c;
                if version >= 1 {
                    r.error_message = Some(StrBytes::from_string(msg));
                }
                if version >= 5 {
                    r.num_partitions = -1;
                    r.replication_factor = -1;
                }
            }
        }
        results.push(r);
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn configs_of(t: &CreatableTopic) -> BTreeMap<String, String> {
    t.configs
        .iter()
        .filter_map(|c| {
            c.value
                .as_ref()
                .map(|v| (c.name.to_string(), v.to_string()))
        })
        .collect()
}

/// The partition count and replication factor a request asks for, checked as Kafka
/// checks them: either counts (-1 for the broker defaults) or an assignment list
/// (partitions 0, 1, 2… each placed on registered brokers, no broker twice), not both.
fn topic_shape(
    broker: &Broker,
    t: &CreatableTopic,
) -> Result<(i32, i16, Option<Vec<Vec<i32>>>), (i16, String)> {
    if t.assignments.is_empty() {
        if t.replication_factor == 0 || t.replication_factor < -1 {
            return Err((
                code(ResponseError::InvalidReplicationFactor),
                format!("invalid replication factor {}", t.replication_factor),
            ));
        }
        let partitions = if t.num_partitions == -1 {
            broker.settings.num_partitions
        } else {
            t.num_partitions
        };
        // -1 stays -1: the broker's default, decided where topics are made.
        return Ok((partitions, t.replication_factor, None));
    }
    if t.num_partitions != -1 || t.replication_factor != -1 {
        return Err((
            code(ResponseError::InvalidRequest),
            "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time".into(),
        ));
    }
    let invalid = |why: String| Err((code(ResponseError::InvalidReplicaAssignment), why));
    let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return invalid("partitions should be a consecutive 0-based integer sequence".into());
    }
    let replicas = t.assignments[0].broker_ids.len();
    for a in &t.assignments {
        if a.broker_ids.is_empty() || a.broker_ids.len() != replicas {
            return invalid(
                "all partitions should have the same, non-zero number of replicas".into(),
            );
        }
        if let Some(b) = a.broker_ids.iter().find(|b| !broker.is_registered(b.0)) {
            return invalid(format!(
                "the manual partition assignment includes broker {}, but no such broker is registered",
                b.0
            ));
        }
        let mut ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != a.broker_ids.len() {
            return invalid("a broker may hold only one replica of a partition".into());
        }
    }
    let mut by_index: Vec<_> = t.assignments.iter().collect();
    by_index.sort_by_key(|a| a.partition_index);
    let assignments = by_index
        .iter()
        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
        .collect();
    Ok((
        t.assignments.len() as i32,
        replicas as i16,
        Some(assignments),
    ))
}
