//! JoinGroup: hands the request to the coordinator, which answers at once or when the
//! rebalance completes.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::group::group::JoinRequest;

pub async fn handle(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: req.session_timeout_ms as i64,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms as i64
        } else {
            req.session_timeout_ms as i64
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    if !broker.coordinates(&req.group_id.0) {
        // The client looks the coordinator up again (FindCoordinator) and retries.
        return JoinGroupResponse::default()
            .with_error_code(crate::broker::errors::code(
                kafka_protocol::error::ResponseError::NotCoordinator,
            ))
            .with_generation_id(-1);
    }
    let out = broker.groups.join(&req.group_id.0, join).await;
    let skip_assignment = out.skip_assignment;
    let mut resp = JoinGroupResponse::default()
        .with_error_code(out.error)
        .with_generation_id(out.generation)
        .with_protocol_name(Some(StrBytes::from_string(
            out.protocol.clone().unwrap_or_default(),
        )))
        .with_leader(StrBytes::from_string(out.leader))
        .with_member_id(StrBytes::from_string(out.member_id))
        .with_members(
            out.members
                .into_iter()
                .map(|(id, iid, meta)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(id))
                        .with_group_instance_id(iid.map(StrBytes::from_string))
                        .with_metadata(meta)
                })
                .collect(),
        );
    if version >= 7 {
        resp.protocol_type = out.protocol_type.map(StrBytes::from_string);
    }
    if version >= 9 {
        resp.skip_assignment = skip_assignment;
    }
    if out.protocol.is_none() && version >= 7 {
        resp.protocol_name = None;
    }
    resp
}
