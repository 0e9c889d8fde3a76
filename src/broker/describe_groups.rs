//! DescribeGroups: state, protocol and members (with metadata and assignment).

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorized;
use super::Broker;

pub fn handle(broker: &Broker, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let mut d = DescribedGroup::default().with_group_id(g.clone());
            if !broker.coordinates(&g.0) {
                d.error_code = crate::broker::errors::code(
                    kafka_protocol::error::ResponseError::NotCoordinator,
                );
                return d;
            }
            match broker.groups.describe(&g.0) {
                // Kafka describes an unknown group as Dead, without an error.
                None => d.group_state = StrBytes::from_static_str("Dead"),
                Some(v) => {
                    d.group_state = StrBytes::from_string(v.state);
                    d.protocol_type = StrBytes::from_string(v.protocol_type);
                    d.protocol_data = StrBytes::from_string(v.protocol);
                    d.members = v
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                dm.group_instance_id = m.instance_id.map(StrBytes::from_string);
                            }
                            dm
                        })
                        .collect();
                }
            }
            if version >= 3 {
                d.authorized_operations =
                    authorized::answer(req.include_authorized_operations, authorized::GROUP);
            }
            d
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
