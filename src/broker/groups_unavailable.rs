//! Consumer-group APIs before the group coordinator exists: each request is answered,
//! in its own API and version, with COORDINATOR_NOT_AVAILABLE (retriable) wherever the
//! response has an error code, so clients keep their connection and retry instead of
//! failing on a dropped socket. None of these APIs is advertised in ApiVersions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::*;

use super::errors::code;

pub fn handle(req: RequestKind, version: i16) -> Option<ResponseKind> {
    let unavailable = code(ResponseError::CoordinatorNotAvailable);
    Some(match req {
        RequestKind::FindCoordinator(r) => {
            let mut resp = FindCoordinatorResponse::default().with_node_id(BrokerId(-1)).with_port(-1);
            if version >= 4 {
                resp.coordinators = r
                    .coordinator_keys
                    .into_iter()
                    .map(|k| Coordinator::default().with_key(k).with_node_id(BrokerId(-1)).with_port(-1).with_error_code(unavailable))
                    .collect();
            } else {
                resp.error_code = unavailable;
            }
            ResponseKind::FindCoordinator(resp)
        }
        RequestKind::JoinGroup(_) => ResponseKind::JoinGroup(JoinGroupResponse::default().with_error_code(unavailable)),
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(unavailable)),
        RequestKind::Heartbeat(_) => ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(unavailable)),
        RequestKind::LeaveGroup(_) => ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(unavailable)),
        RequestKind::ListGroups(_) => ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(unavailable)),
        RequestKind::OffsetDelete(_) => ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_error_code(unavailable)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(
            r.topics
                .into_iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(
                        t.partitions
                            .into_iter()
                            .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(unavailable))
                            .collect(),
                    )
                })
                .collect(),
        )),
        RequestKind::OffsetFetch(r) => {
            let mut resp = OffsetFetchResponse::default();
            if version >= 8 {
                resp.groups = r
                    .groups
                    .into_iter()
                    .map(|g| OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(unavailable))
                    .collect();
            } else if version >= 2 {
                resp.error_code = unavailable;
            }
            ResponseKind::OffsetFetch(resp)
        }
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(
            r.groups.into_iter().map(|g| DescribedGroup::default().with_group_id(g).with_error_code(unavailable)).collect(),
        )),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(
            r.groups_names.into_iter().map(|g| DeletableGroupResult::default().with_group_id(g).with_error_code(unavailable)).collect(),
        )),
        other => {
            tracing::warn!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
            return None;
        }
    })
}
