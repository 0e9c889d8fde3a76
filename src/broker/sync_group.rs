//! SyncGroup: the leader's assignments reach every member of the generation.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::group::group::code;

pub async fn handle(broker: &Broker, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    if !broker.coordinates(&req.group_id.0) {
        return SyncGroupResponse::default().with_error_code(crate::broker::errors::code(
            kafka_protocol::error::ResponseError::NotCoordinator,
        ));
    }
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let out = broker
        .groups
        .sync(
            &req.group_id.0,
            &req.member_id,
            &instance_id,
            req.generation_id,
            assignments,
        )
        .await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(out.error)
        .with_assignment(out.assignment);
    if version >= 5 {
        // v5 clients send the protocol they joined with; a mismatch is inconsistent.
        let mismatch = |sent: &Option<StrBytes>, ours: &Option<String>| matches!((sent, ours), (Some(s), Some(o)) if s.as_str() != o.as_str());
        if out.error == code::NONE
            && (mismatch(&req.protocol_type, &out.protocol_type)
                || mismatch(&req.protocol_name, &out.protocol))
        {
            return SyncGroupResponse::default().with_error_code(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        resp.protocol_type = out.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = out.protocol.map(StrBytes::from_string);
    }
    resp
}
