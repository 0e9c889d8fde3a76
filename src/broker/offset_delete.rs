//! OffsetDelete: removes committed offsets of partitions whose topic no member of the
//! group subscribes to.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::errors::{code, offsets_write_code};
use super::Broker;

pub fn handle(broker: &Broker, req: OffsetDeleteRequest, _version: i16) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if !broker.coordinates(&group) {
        return OffsetDeleteResponse::default()
            .with_error_code(code(ResponseError::NotCoordinator));
    }
    if !broker.groups.exists(&group) {
        return OffsetDeleteResponse::default()
            .with_error_code(code(ResponseError::GroupIdNotFound));
    }
    let subscribed = broker.groups.subscribed_topics(&group);
    let mut deletions = Vec::new();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let parts = t
                .partitions
                .into_iter()
                .map(|p| {
                    let err = if subscribed.contains(&name) {
                        code(ResponseError::GroupSubscribedToTopic)
                    } else if broker
                        .registry
                        .get(&name)
                        .and_then(|tp| tp.partition(p.partition_index))
                        .is_none()
                    {
                        code(ResponseError::UnknownTopicOrPartition)
                    } else {
                        deletions.push(((name.clone(), p.partition_index), None));
                        0
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(err)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    let mut resp = OffsetDeleteResponse::default().with_topics(topics);
    if let Err(e) = broker.groups.offsets.write(&group, deletions) {
        tracing::error!(group, error = %e, "cannot delete offsets");
        resp.error_code = offsets_write_code(&e);
    }
    resp
}
