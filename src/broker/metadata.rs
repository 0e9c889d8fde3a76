//! Metadata: the live brokers, the controller, and topics with each partition's leader,
//! epoch, replicas and ISR (`view.rs`: from the metadata image in a cluster), with
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
use super::errors::{admin_code, code};
use super::view::TopicView;
use super::Broker;

pub async fn handle(
    broker: &Broker,
    req: MetadataRequest,
    version: i16,
    listener: &str,
) -> MetadataResponse {
    let mut resp = MetadataResponse::default()
        .with_brokers(
            broker
                .brokers_view(listener)
                .into_iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.id))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(b.port)
                        .with_rack(b.rack.map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_controller_id(BrokerId(broker.controller_id()));
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
            .topic_views()
            .iter()
            .map(|t| topic_entry(t, version, topic_ops))
            .collect();
        return resp;
    }
    for wanted in req.topics.unwrap_or_default() {
        let by_name = wanted.name.as_ref().map(|n| n.0.to_string());
        let found = match &by_name {
            Some(name) if allow_create => broker
                .auto_create(name)
                .await
                .map(|_| broker.topic_view(name)),
            Some(name) => Ok(broker.topic_view(name)),
            None => Ok(broker.topic_view_by_id(&wanted.topic_id)),
        };
        let entry = match found {
            Ok(Some(t)) => topic_entry(&t, version, topic_ops),
            Ok(None) => MetadataResponseTopic::default()
                .with_error_code(if by_name.is_some() {
                    code(ResponseError::UnknownTopicOrPartition)
                } else {
                    code(ResponseError::UnknownTopicId)
                })
                .with_name(wanted.name.clone())
                .with_topic_id(wanted.topic_id),
            Err(e) => MetadataResponseTopic::default()
                .with_error_code(match e {
                    // Auto-creation waits for a quorum: retriable, as clients expect here.
                    super::topic_admin::AdminError::Quorum(_) => {
                        code(ResponseError::LeaderNotAvailable)
                    }
                    e => admin_code(&e),
                })
                .with_name(wanted.name.clone()),
        };
        resp.topics.push(entry);
    }
    resp
}

fn topic_entry(t: &TopicView, version: i16, authorized_ops: i32) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect());
            if p.leader < 0 {
                mp.error_code = code(ResponseError::LeaderNotAvailable);
            }
            if version >= 7 {
                mp.leader_epoch = p.leader_epoch;
            }
            mp
        })
        .collect();
    let mut entry = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_is_internal(t.internal)
        .with_partitions(partitions);
    if version >= 10 {
        entry.topic_id = t.id;
    }
    if version >= 8 {
        entry.topic_authorized_operations = authorized_ops;
    }
    entry
}
