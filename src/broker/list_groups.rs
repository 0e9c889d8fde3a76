//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;

pub fn handle(broker: &Broker, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if version >= 4 {
                l.group_state = StrBytes::from_string(g.state);
            }
            if version >= 5 {
                l.group_type = StrBytes::from_static_str("classic");
            }
            l
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
