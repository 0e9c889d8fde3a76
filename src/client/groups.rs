//! Consumer-group requests of the small client: finding a group's coordinator, list,
//! describe, committed offsets, and a standalone offset commit (what `groups
//! reset-offsets` sends). Describe, offsets and commits go to the group's coordinator
//! (`to_coordinator`); a cluster lists its groups broker by broker (`list_all_groups`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{kafka_err, ClientError, KafkaClient};
use crate::group::consumer_protocol::parse_assignment;

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, client id, client host, assigned (topic, partitions))
    pub members: Vec<(String, String, String, Vec<(String, Vec<i32>)>)>,
}

/// Attempts of FindCoordinator while the coordinator is not available yet.
const COORDINATOR_ATTEMPTS: usize = 20;

impl KafkaClient {
    /// A connection to `group`'s coordinator (this one, if it is; FindCoordinator is
    /// asked again while the answer is COORDINATOR_NOT_AVAILABLE).
    pub async fn to_coordinator(mut self, group: &str) -> Result<KafkaClient, ClientError> {
        for attempt in 1..=COORDINATOR_ATTEMPTS {
            let req = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(group.to_string()))
                .with_key_type(0);
            let r = match self
                .send(
                    ApiKey::FindCoordinator,
                    3,
                    RequestKind::FindCoordinator(req),
                )
                .await?
            {
                ResponseKind::FindCoordinator(r) => r,
                _ => return Err(ClientError::Protocol("unexpected response".into())),
            };
            match r.error_code {
                0 => {
                    let addr = format!("{}:{}", r.host, r.port);
                    if self.peer_addr().is_some_and(|a| a == addr) {
                        return Ok(self);
                    }
                    return KafkaClient::connect(&addr).await;
                }
                // The offsets topic is being created.
                c if c == crate::broker::errors::code(ResponseError::CoordinatorNotAvailable)
                    && attempt < COORDINATOR_ATTEMPTS =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await
                }
                code => {
                    return Err(kafka_err(
                        format!("finding the coordinator of group '{group}'"),
                        code,
                        r.error_message.as_ref(),
                    ))
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// (group id, state) of every group of every broker the metadata names.
    pub async fn list_all_groups(&mut self) -> Result<Vec<(String, String)>, ClientError> {
        let md = self.metadata(Some(Vec::new()), false).await?;
        let mut all = self.list_groups().await?;
        let me = self.peer_addr();
        for b in md.brokers {
            let addr = format!("{}:{}", b.host, b.port);
            if me.as_deref() == Some(addr.as_str()) {
                continue;
            }
            all.extend(KafkaClient::connect(&addr).await?.list_groups().await?);
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// (group id, state) of every group this broker coordinates.
    pub async fn list_groups(&mut self) -> Result<Vec<(String, String)>, ClientError> {
        match self
            .send(
                ApiKey::ListGroups,
                4,
                RequestKind::ListGroups(ListGroupsRequest::default()),
            )
            .await?
        {
            ResponseKind::ListGroups(r) => {
                if r.error_code != 0 {
                    return Err(kafka_err("cannot list groups", r.error_code, None));
                }
                let mut v: Vec<_> = r
                    .groups
                    .into_iter()
                    .map(|g| (g.group_id.0.to_string(), g.group_state.to_string()))
                    .collect();
                v.sort();
                Ok(v)
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.into()))]);
        match self
            .send(ApiKey::DescribeGroups, 4, RequestKind::DescribeGroups(req))
            .await?
        {
            ResponseKind::DescribeGroups(r) => {
                let g =
                    r.groups.into_iter().next().ok_or_else(|| {
                        ClientError::Protocol("empty DescribeGroups response".into())
                    })?;
                if g.error_code != 0 {
                    return Err(kafka_err(
                        format!("cannot describe group '{group}'"),
                        g.error_code,
                        None,
                    ));
                }
                let consumer = g.protocol_type.as_str() == "consumer";
                Ok(GroupDescription {
                    group_id: g.group_id.0.to_string(),
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    protocol: g.protocol_data.to_string(),
                    members: g
                        .members
                        .into_iter()
                        .map(|m| {
                            let assigned = if consumer {
                                parse_assignment(&m.member_assignment)
                            } else {
                                vec![]
                            };
                            (
                                m.member_id.to_string(),
                                m.client_id.to_string(),
                                m.client_host.to_string(),
                                assigned,
                            )
                        })
                        .collect(),
                })
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Committed offsets of a group: (topic, partition, offset); all of them when
    /// `topics` is None.
    pub async fn committed(
        &mut self,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, i32, i64)>, ClientError> {
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t)))
                            .with_partition_indexes(ps)
                    })
                    .collect()
            }));
        match self
            .send(ApiKey::OffsetFetch, 5, RequestKind::OffsetFetch(req))
            .await?
        {
            ResponseKind::OffsetFetch(r) => {
                if r.error_code != 0 {
                    return Err(kafka_err(
                        format!("cannot fetch offsets of group '{group}'"),
                        r.error_code,
                        None,
                    ));
                }
                let mut out = Vec::new();
                for t in r.topics {
                    for p in t.partitions {
                        if p.error_code != 0 {
                            return Err(kafka_err(
                                format!("cannot fetch offsets of group '{group}'"),
                                p.error_code,
                                None,
                            ));
                        }
                        out.push((t.name.0.to_string(), p.partition_index, p.committed_offset));
                    }
                }
                out.sort();
                Ok(out)
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Commits offsets outside any generation (allowed only while the group is empty).
    pub async fn commit_standalone(
        &mut self,
        group: &str,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> Result<(), ClientError> {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                )]);
        match self
            .send(ApiKey::OffsetCommit, 5, RequestKind::OffsetCommit(req))
            .await?
        {
            ResponseKind::OffsetCommit(r) => {
                for t in r.topics {
                    for p in t.partitions {
                        if p.error_code != 0 {
                            return Err(kafka_err(
                                format!("cannot commit offsets of group '{group}'"),
                                p.error_code,
                                None,
                            ));
                        }
                    }
                }
                Ok(())
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }
}
