//! Heartbeat: keeps a member alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Broker;

pub fn handle(broker: &Broker, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    if !broker.coordinates(&req.group_id.0) {
        return HeartbeatResponse::default().with_error_code(crate::broker::errors::code(
            kafka_protocol::error::ResponseError::NotCoordinator,
        ));
    }
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    HeartbeatResponse::default().with_error_code(broker.groups.heartbeat(
        &req.group_id.0,
        &req.member_id,
        &instance_id,
        req.generation_id,
    ))
}
