//! Consumer-group membership, as a Kafka consumer does it with the classic ("eager")
//! protocol: JoinGroup (protocol type `consumer`, the `range` assignor), SyncGroup
//! (the elected leader computes every member's assignment), Heartbeat, OffsetCommit
//! with the generation and member id, and LeaveGroup. Requests go to the group's
//! coordinator, found again (FindCoordinator) whenever its connection fails or it
//! answers NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE — in a cluster the coordinator
//! moves with the leader of the group's `__consumer_offsets` partition.
//!
//! Invariants: `member_id` and `generation` are those of the last completed join (or
//! empty / -1 before it); a failure that leaves the connection out of step drops it;
//! every request is bounded by the client's timeout, and `session_timeout` and
//! `rebalance_timeout` stay below it.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{kafka_err, ClientError, KafkaClient};
use crate::broker::errors::code;
use crate::group::consumer_protocol::{parse_assignment, parse_subscription};

/// Kafka's consumer defaults: `session.timeout.ms` as Logstash's kafka input sets it,
/// `heartbeat.interval.ms`, and a rebalance timeout that a JoinGroup answer cannot
/// outlast the client's 30 s request timeout with.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(20);
/// The only assignor offered: Kafka's (and Logstash's) default.
const ASSIGNOR: &str = "range";
/// Joins tried through member-id requests, rebalances and coordinator moves before
/// the error is returned to the caller (who tries again later).
const JOIN_ATTEMPTS: usize = 10;

/// What a heartbeat says about this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Still a member of the current generation.
    Stable,
    /// The group is rebalancing, or this member was expired: join again.
    Rejoin,
}

pub struct GroupMember {
    bootstrap: String,
    group: String,
    coordinator: Option<KafkaClient>,
    member_id: String,
    generation: i32,
}

impl GroupMember {
    /// A member of `group` that will find its coordinator through `bootstrap`.
    pub fn new(bootstrap: &str, group: &str) -> GroupMember {
        GroupMember {
            bootstrap: bootstrap.to_string(),
            group: group.to_string(),
            coordinator: None,
            member_id: String::new(),
            generation: -1,
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// (member id, generation) of the last completed join.
    pub fn identity(&self) -> (&str, i32) {
        (&self.member_id, self.generation)
    }

    async fn coordinator(&mut self) -> Result<&mut KafkaClient, ClientError> {
        if self.coordinator.is_none() {
            let mut last = None;
            for addr in self.bootstrap.split(',').map(str::trim) {
                match KafkaClient::connect(addr).await {
                    Ok(c) => match c.to_coordinator(&self.group).await {
                        Ok(c) => {
                            self.coordinator = Some(c);
                            break;
                        }
                        Err(e) => last = Some(e),
                    },
                    Err(e) => last = Some(e),
                }
            }
            if self.coordinator.is_none() {
                return Err(last
                    .unwrap_or_else(|| ClientError::Protocol("no bootstrap server given".into())));
            }
        }
        Ok(self.coordinator.as_mut().expect("connected above"))
    }

    /// Sends one request to the coordinator. The connection is out of its slot while
    /// the request is outstanding and put back only once answered: a failed exchange,
    /// or a call dropped half-way (the pipeline stopping during a parked join), leaves
    /// no unread answer behind for the next request.
    async fn send(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        self.coordinator().await?;
        let mut c = self.coordinator.take().expect("connected above");
        let result = c.send(api, version, body).await;
        if result.is_ok() {
            self.coordinator = Some(c);
        }
        result
    }

    /// Drops the coordinator connection when `code` says the coordinator moved.
    fn note(&mut self, error_code: i16) {
        if [
            ResponseError::NotCoordinator,
            ResponseError::CoordinatorNotAvailable,
        ]
        .iter()
        .any(|e| code(*e) == error_code)
        {
            self.coordinator = None;
        }
    }

    /// Joins the group subscribed to `topics`, waits for the generation's assignment
    /// and returns it: the (topic, partition) pairs this member consumes.
    pub async fn join(&mut self, topics: &[String]) -> Result<Vec<(String, i32)>, ClientError> {
        let mut last = None;
        for _ in 0..JOIN_ATTEMPTS {
            match self.join_once(topics).await {
                Ok(Some(assigned)) => return Ok(assigned),
                Ok(None) => continue,
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            ClientError::Protocol(format!("group '{}' kept rebalancing", self.group))
        }))
    }

    /// One JoinGroup + SyncGroup round; `None` when the round must be tried again at
    /// once (a member id was handed out, or a new rebalance began).
    async fn join_once(
        &mut self,
        topics: &[String],
    ) -> Result<Option<Vec<(String, i32)>>, ClientError> {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_session_timeout_ms(SESSION_TIMEOUT.as_millis() as i32)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT.as_millis() as i32)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str(ASSIGNOR))
                .with_metadata(subscription(topics))]);
        let joined = match self
            .send(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(req))
            .await?
        {
            ResponseKind::JoinGroup(r) => r,
            _ => return Err(ClientError::Protocol("unexpected response".into())),
        };
        match joined.error_code {
            0 => {}
            c if c == code(ResponseError::MemberIdRequired) => {
                self.member_id = joined.member_id.to_string();
                return Ok(None);
            }
            c if c == code(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                return Ok(None);
            }
            c if c == code(ResponseError::RebalanceInProgress) => return Ok(None),
            c => {
                self.note(c);
                return Err(kafka_err(
                    format!("joining group '{}'", self.group),
                    c,
                    None,
                ));
            }
        }
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let assignments = if joined.leader == joined.member_id {
            self.assign(&joined.members).await?
        } else {
            Vec::new()
        };
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_assignments(assignments);
        let synced = match self
            .send(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(req))
            .await?
        {
            ResponseKind::SyncGroup(r) => r,
            _ => return Err(ClientError::Protocol("unexpected response".into())),
        };
        match synced.error_code {
            0 => Ok(Some(
                parse_assignment(&synced.assignment)
                    .into_iter()
                    .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                    .collect(),
            )),
            c if c == code(ResponseError::RebalanceInProgress) => Ok(None),
            c if c == code(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                Ok(None)
            }
            c if c == code(ResponseError::IllegalGeneration) => Ok(None),
            c => {
                self.note(c);
                Err(kafka_err(
                    format!("syncing group '{}'", self.group),
                    c,
                    None,
                ))
            }
        }
    }

    /// The leader's part: every member's assignment by the range assignor, over the
    /// partition counts the metadata gives now.
    async fn assign(
        &mut self,
        members: &[join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let subscriptions: Vec<(String, Vec<String>)> = members
            .iter()
            .map(|m| (m.member_id.to_string(), parse_subscription(&m.metadata)))
            .collect();
        let mut counts = BTreeMap::new();
        for (_, topics) in &subscriptions {
            for t in topics {
                if !counts.contains_key(t) {
                    let c = self.coordinator().await?;
                    let n = match c.partitions(t, false).await {
                        Ok(n) => n,
                        // A topic that does not exist (yet) has nothing to assign.
                        Err(ClientError::Kafka { .. }) => 0,
                        Err(e) => {
                            self.coordinator = None;
                            return Err(e);
                        }
                    };
                    counts.insert(t.clone(), n);
                }
            }
        }
        Ok(range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, assigned)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member))
                    .with_assignment(assignment(&assigned))
            })
            .collect())
    }

    pub async fn heartbeat(&mut self) -> Result<Heartbeat, ClientError> {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let r = match self
            .send(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(req))
            .await?
        {
            ResponseKind::Heartbeat(r) => r,
            _ => return Err(ClientError::Protocol("unexpected response".into())),
        };
        match r.error_code {
            0 => Ok(Heartbeat::Stable),
            c if c == code(ResponseError::RebalanceInProgress)
                || c == code(ResponseError::IllegalGeneration) =>
            {
                Ok(Heartbeat::Rejoin)
            }
            c if c == code(ResponseError::UnknownMemberId)
                || c == code(ResponseError::FencedInstanceId) =>
            {
                self.member_id.clear();
                Ok(Heartbeat::Rejoin)
            }
            c => {
                self.note(c);
                Err(kafka_err(
                    format!("heartbeat in group '{}'", self.group),
                    c,
                    None,
                ))
            }
        }
    }

    /// Commits next-offsets as this member of its generation.
    pub async fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let r = match self
            .send(ApiKey::OffsetCommit, 5, RequestKind::OffsetCommit(req))
            .await?
        {
            ResponseKind::OffsetCommit(r) => r,
            _ => return Err(ClientError::Protocol("unexpected response".into())),
        };
        for t in r.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    self.note(p.error_code);
                    return Err(kafka_err(
                        format!("committing offsets of group '{}'", self.group),
                        p.error_code,
                        None,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Leaves the group, so the others rebalance at once instead of after this
    /// member's session timeout. Best effort: a member that cannot say so expires.
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let req = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))]);
        if let Err(e) = self
            .send(ApiKey::LeaveGroup, 3, RequestKind::LeaveGroup(req))
            .await
        {
            tracing::debug!(group = %self.group, error = %e, "leave group");
        }
        self.member_id.clear();
        self.generation = -1;
    }
}

/// A ConsumerProtocolSubscription (version 0) naming `topics`.
fn subscription(topics: &[String]) -> Bytes {
    let s = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    s.encode(&mut buf, 0)
        .expect("a subscription of topic names encodes");
    buf.freeze()
}

/// A ConsumerProtocolAssignment (version 0).
fn assignment(assigned: &[(String, Vec<i32>)]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assigned
            .iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    a.encode(&mut buf, 0)
        .expect("an assignment of topic names and partitions encodes");
    buf.freeze()
}

/// Kafka's RangeAssignor: per topic, the members subscribed to it in member-id order
/// each take a contiguous range of partitions, the first `partitions % members` one
/// more. Every member gets an entry, empty when nothing falls to it.
pub fn range_assign(
    subscriptions: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<i32>)>> = subscriptions
        .iter()
        .map(|(m, _)| (m.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        members.sort();
        members.dedup();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in members.into_iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            if take > 0 {
                let ps = (next..next + take).collect();
                out.get_mut(m)
                    .expect("every member has an entry")
                    .push((topic.clone(), ps));
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn range_assigns_contiguous_ranges_first_members_taking_the_remainder() {
        let counts = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 1)]);
        let got = range_assign(&subs(&[("m2", &["a", "b"]), ("m1", &["a"])]), &counts);
        assert_eq!(got["m1"], vec![("a".to_string(), vec![0, 1, 2])]);
        assert_eq!(
            got["m2"],
            vec![("a".to_string(), vec![3, 4]), ("b".to_string(), vec![0])]
        );
    }

    #[test]
    fn range_gives_members_beyond_the_partitions_nothing() {
        let counts = BTreeMap::from([("a".to_string(), 2)]);
        let got = range_assign(
            &subs(&[("x", &["a"]), ("y", &["a"]), ("z", &["a"])]),
            &counts,
        );
        assert_eq!(got["x"], vec![("a".to_string(), vec![0])]);
        assert_eq!(got["y"], vec![("a".to_string(), vec![1])]);
        assert!(got["z"].is_empty());
    }

    #[test]
    fn subscription_and_assignment_read_back_with_the_coordinators_parsers() {
        let topics = vec!["logs".to_string(), "audit".to_string()];
        assert_eq!(parse_subscription(&subscription(&topics)), topics);
        let assigned = vec![("logs".to_string(), vec![0, 2])];
        assert_eq!(parse_assignment(&assignment(&assigned)), assigned);
    }
}
