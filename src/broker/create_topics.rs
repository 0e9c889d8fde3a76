//! CreateTopics: validate names, partition counts, replication factor (this node is
//! the whole cluster, so only 1 or -1) and configs; create unless `validate_only`.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{code, registry_code};
use super::Broker;

pub fn handle(broker: &Broker, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default().with_name(t.name.clone());
        let partitions = if t.num_partitions == -1 {
            broker.settings.num_partitions
        } else {
            t.num_partitions
        };
        let overrides: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let bad_assignment = t
            .assignments
            .iter()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.node_id()));
        let outcome = if t.replication_factor > 1
            || t.replication_factor == 0
            || t.replication_factor < -1
            || bad_assignment
        {
            Err((
                code(ResponseError::InvalidReplicationFactor),
                format!(
                    "replication factor {} is larger than the 1 available broker",
                    t.replication_factor
                ),
            ))
        } else if req.validate_only {
            broker
                .registry
                .validate_create(&name, partitions, &overrides)
                .map(|_| ())
                .map_err(|e| (registry_code(&e), e.to_string()))
        } else {
            broker
                .registry
                .create(&name, partitions, overrides)
                .map(|_| ())
                .map_err(|e| (registry_code(&e), e.to_string()))
        };
        match outcome {
            Ok(()) => {
                if version >= 5 {
                    r.num_partitions = partitions;
                    r.replication_factor = 1;
                    if let Some(topic) = broker.registry.get(&name) {
                        if version >= 7 {
                            r.topic_id = topic.id;
                        }
                        if let Ok(cfg) = broker.settings.topic_log_config(&topic.overrides.read()) {
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
