//! DeleteGroups: removes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Broker;

pub fn handle(broker: &Broker, req: DeleteGroupsRequest, _version: i16) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let err = if broker.coordinates(&g.0) {
                broker.groups.delete(&g.0)
            } else {
                crate::broker::errors::code(kafka_protocol::error::ResponseError::NotCoordinator)
            };
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(err)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
