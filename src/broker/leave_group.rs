//! LeaveGroup: one member (v0–v2) or a batch of members by id or instance id (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::Broker;
use crate::group::group::code;

pub fn handle(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    if !broker.coordinates(&group) {
        return LeaveGroupResponse::default().with_error_code(crate::broker::errors::code(
            kafka_protocol::error::ResponseError::NotCoordinator,
        ));
    }
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(broker.groups.leave(
            &group,
            &req.member_id,
            &None,
        ));
    }
    let members: Vec<MemberResponse> = req
        .members
        .into_iter()
        .map(|m| {
            let iid = m.group_instance_id.as_ref().map(|s| s.to_string());
            let err = broker.groups.leave(&group, &m.member_id, &iid);
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(err)
        })
        .collect();
    // The top-level code is set only when the group itself is unknown.
    let top = if !members.is_empty() && !broker.groups.exists(&group) {
        code::UNKNOWN_MEMBER_ID
    } else {
        code::NONE
    };
    LeaveGroupResponse::default()
        .with_error_code(top)
        .with_members(members)
}
