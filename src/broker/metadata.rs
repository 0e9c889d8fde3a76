//! Metadata: this broker, and topics with their partitions (all led by this node), with
//! authorized operations (v8+) when asked for, as Kafka answers without an authorizer.
//! Unknown topics are auto-created when the request allows it (always before v4) and
//! `auto_create_topics` is on.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::authorized;
use super::errors::{code, registry_code};
use super::registry::Topic;
use super::Broker;

pub fn handle(broker: &Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = broker.node_id();
    let (host, port) = broker.advertised();
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_string(host))
            .with_port(port)])
        .with_controller_id(BrokerId(node));
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(broker.settings.cluster_id.clone()));
    }
    if (8..=10).contains(&version) {
        resp.cluster_authorized_operations = authorized::answer(
            req.include_cluster_authorized_operations,
            authorized::CLUSTER,
        );
    }
    let topic_ops = authorized::answer(
        version >= 8 && req.include_topic_authorized_operations,
        authorized::TOPIC,
    );
    let all = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    if all {
        resp.topics = broker
            .registry
            .list()
            .iter()
            .map(|t| topic_entry(node, t, version, topic_ops))
            .collect();
        return resp;
    }
    for wanted in req.topics.unwrap_or_default() {
        let by_name = wanted.name.as_ref().map(|n| n.0.to_string());
        let found = match &by_name {
            Some(name) if allow_create => broker.registry.get_or_auto_create(name),
            Some(name) => Ok(broker.registry.get(name)),
            None => Ok(broker.registry.get_by_id(&wanted.topic_id)),
        };
        let entry = match found {
            Ok(Some(t)) => topic_entry(node, &t, version, topic_ops),
            Ok(None) => MetadataResponseTopic::default()
                .with_error_code(if by_name.is_some() {
                    code(ResponseError::UnknownTopicOrPartition)
                } else {
                    code(ResponseError::UnknownTopicId)
                })
                .with_name(wanted.name.clone())
                .with_topic_id(wanted.topic_id),
            Err(e) => MetadataResponseTopic::default()
                .with_error_code(registry_code(&e))
                .with_name(wanted.name.clone()),
        };
        resp.topics.push(entry);
    }
    resp
}

fn topic_entry(node: i32, t: &Topic, version: i16, authorized_ops: i32) -> MetadataResponseTopic {
    let partitions = (0..t.partition_count())
        .map(|p| {
            let mut mp = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node))
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)]);
            if version >= 7 {
                mp.leader_epoch = 0;
            }
            mp
        })
        .collect();
    let mut entry = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_is_internal(super::registry::is_internal(&t.name))
        .with_partitions(partitions);
    if version >= 10 {
        entry.topic_id = t.id;
    }
    if version >= 8 {
        entry.topic_authorized_operations = authorized_ops;
    }
    entry
}
