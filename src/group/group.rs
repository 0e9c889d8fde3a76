//! One consumer group's membership state machine (Kafka's classic group protocol),
//! as pure logic: requests and clock ticks go in, the answers to send to waiting
//! members come out as `Effect`s. No I/O, no timers, no channels — the coordinator
//! (`mod.rs`) owns those, which is what lets this file be tested as plain functions.
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable, and back to
//! PreparingRebalance whenever a member joins, leaves, changes its subscription or
//! expires. Invariants:
//! - the generation only grows, by one per completed rebalance;
//! - in CompletingRebalance and Stable every member has joined the current generation
//!   and the leader is a member;
//! - a member is expired only when it is not waiting in a JoinGroup, after
//!   `session_timeout_ms` without a heartbeat, join or sync.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::metadata_record::{StoredGroup, StoredMember};

/// Kafka's error codes used by the group protocol.
pub mod code {
    pub const NONE: i16 = 0;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_seen_ms: i64,
    /// Waiting in a JoinGroup for the current rebalance to complete.
    pub awaiting_join: bool,
    /// Waiting in a SyncGroup for the leader's assignment.
    pub awaiting_sync: bool,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// The leader need not assign: the group keeps its assignment (static rejoin).
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn error(error: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: vec![],
            skip_assignment: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    pub error: i16,
    pub assignment: Bytes,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
}

impl SyncOutcome {
    pub fn error(error: i16) -> SyncOutcome {
        SyncOutcome {
            error,
            assignment: Bytes::new(),
            protocol_type: None,
            protocol: None,
        }
    }
}

/// An answer for a member that is waiting in a JoinGroup or SyncGroup.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Join(String, JoinOutcome),
    Sync(String, SyncOutcome),
}

/// The fields of a JoinGroup request the state machine needs.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

/// Limits from the broker settings.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub min_session_timeout_ms: i64,
    pub max_session_timeout_ms: i64,
    pub initial_rebalance_delay_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not yet used to join.
    pending_ids: BTreeSet<String>,
    /// When the current PreparingRebalance gives up on members that have not rejoined.
    rebalance_deadline_ms: i64,
    /// A new group waits this long for more members before its first rebalance.
    initial_delay_until_ms: i64,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_ids: BTreeSet::new(),
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A group as its metadata record left it (`metadata_record.rs`), at `now`: with
    /// members it is Stable at its stored generation, so members that go on
    /// heartbeating keep their assignment — as after a coordinator failover in Kafka;
    /// members that do not are expired after their session timeout.
    pub fn restore(id: &str, stored: &StoredGroup, now: i64) -> Group {
        let mut g = Group::new(id);
        g.generation = stored.generation;
        g.protocol_type = Some(stored.protocol_type.clone()).filter(|p| !p.is_empty());
        g.protocol = stored.protocol.clone();
        g.leader = stored.leader.clone();
        let protocol = stored.protocol.clone().unwrap_or_default();
        for m in &stored.members {
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms as i64,
                    rebalance_timeout_ms: m.rebalance_timeout_ms as i64,
                    protocols: vec![(protocol.clone(), m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    last_seen_ms: now,
                    awaiting_join: false,
                    awaiting_sync: false,
                },
            );
        }
        let leader_is_member = g.leader.as_ref().is_some_and(|l| g.members.contains_key(l));
        g.state = if g.members.is_empty() || !leader_is_member {
            g.members.clear();
            g.leader = None;
            State::Empty
        } else {
            State::Stable
        };
        g
    }

    /// A fingerprint of what the group's metadata record would hold (generation,
    /// state, leader, members and their instance ids), None when its state is not one
    /// Kafka records: cheap to compare, so the coordinator writes a record only when
    /// it would differ from the last (a static member replaced without a rebalance
    /// changes it too).
    pub fn record_fingerprint(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let recordable =
            self.state == State::Stable || (self.state == State::Empty && self.generation > 0);
        if !recordable {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.generation,
            self.state.name(),
            &self.leader,
            &self.protocol,
        )
            .hash(&mut h);
        for m in self.members.values() {
            (&m.id, &m.instance_id).hash(&mut h);
        }
        Some(h.finish())
    }

    /// What the group's metadata record should say now, if its state is one Kafka
    /// records (Stable after a rebalance, or Empty once it had members); None in the
    /// middle of a rebalance.
    pub fn to_stored(&self, now: i64) -> Option<StoredGroup> {
        let members = match self.state {
            State::Stable => self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms.clamp(0, i32::MAX as i64) as i32,
                    session_timeout_ms: m.session_timeout_ms.clamp(0, i32::MAX as i64) as i32,
                    subscription: m.metadata_for(self.protocol.as_deref().unwrap_or_default()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            State::Empty if self.generation > 0 => vec![],
            _ => return None,
        };
        let stable = self.state == State::Stable;
        Some(StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone().filter(|_| stable),
            leader: self.leader.clone().filter(|_| stable),
            state_timestamp: now,
            members,
        })
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    /// A JoinGroup. Returns the member id the request now stands for, and an immediate
    /// answer (`Some`) or `None` when the member must wait for the rebalance; effects
    /// answer other waiting members.
    pub fn join(
        &mut self,
        now: i64,
        req: JoinRequest,
        limits: &GroupLimits,
    ) -> (String, Option<JoinOutcome>, Vec<Effect>) {
        let (answer, effects) = self.join_inner(now, req, limits);
        (answer.0, answer.1, effects)
    }

    fn join_inner(
        &mut self,
        now: i64,
        req: JoinRequest,
        limits: &GroupLimits,
    ) -> ((String, Option<JoinOutcome>), Vec<Effect>) {
        let refuse = |error: i16, id: &str| {
            (
                (id.to_string(), Some(JoinOutcome::error(error, id))),
                vec![],
            )
        };
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return refuse(code::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        if req.protocol_type.is_empty()
            || req.protocols.is_empty()
            || !self.protocols_compatible(&req)
        {
            return refuse(code::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
        }
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            // A static member rejoining under a new incarnation takes over its old entry.
            let known_static = req.instance_id.as_ref().and_then(|iid| {
                self.members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(iid))
                    .map(|m| m.id.clone())
            });
            match known_static {
                Some(old_id) => {
                    let mut m = self.members.remove(&old_id).expect("present");
                    member_id = self.new_member_id(&req.client_id);
                    m.id = member_id.clone();
                    let was_leader = self.leader.as_deref() == Some(old_id.as_str());
                    if was_leader {
                        self.leader = Some(member_id.clone());
                    }
                    m.protocols = req.protocols.clone();
                    m.last_seen_ms = now;
                    self.members.insert(member_id.clone(), m);
                    // The point of static membership: a restarted member takes its old
                    // place without a rebalance (its SyncGroup returns the assignment it
                    // had) as long as the group's protocol choice stays the same — Kafka's
                    // rule. A leader gets the member list with `skip_assignment`, so it
                    // does not compute a new assignment (KIP-814).
                    let same_protocol = self.select_protocol() == self.protocol;
                    if self.state == State::Stable && same_protocol {
                        let protocol = self.protocol.clone().unwrap_or_default();
                        let out = JoinOutcome {
                            error: code::NONE,
                            generation: self.generation,
                            protocol_type: self.protocol_type.clone(),
                            protocol: self.protocol.clone(),
                            leader: self.leader.clone().unwrap_or_default(),
                            member_id: member_id.clone(),
                            members: if was_leader {
                                self.members
                                    .values()
                                    .map(|m| {
                                        (
                                            m.id.clone(),
                                            m.instance_id.clone(),
                                            m.metadata_for(&protocol),
                                        )
                                    })
                                    .collect()
                            } else {
                                vec![]
                            },
                            skip_assignment: was_leader,
                        };
                        return ((member_id, Some(out)), vec![]);
                    }
                }
                None => {
                    member_id = self.new_member_id(&req.client_id);
                    if req.require_known_member_id && req.instance_id.is_none() {
                        self.pending_ids.insert(member_id.clone());
                        return refuse(code::MEMBER_ID_REQUIRED, &member_id);
                    }
                }
            }
        } else if !self.members.contains_key(&member_id) && !self.pending_ids.remove(&member_id) {
            // A static member's old incarnation is fenced; anyone else is unknown.
            let fenced = req.instance_id.is_some()
                && self
                    .members
                    .values()
                    .any(|m| m.instance_id == req.instance_id);
            let error = if fenced {
                code::FENCED_INSTANCE_ID
            } else {
                code::UNKNOWN_MEMBER_ID
            };
            return refuse(error, &member_id);
        }
        let was_empty = self.members.is_empty();
        let entry = self
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                id: member_id.clone(),
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: vec![],
                assignment: Bytes::new(),
                last_seen_ms: now,
                awaiting_join: false,
                awaiting_sync: false,
            });
        entry.protocols = req.protocols.clone();
        entry.session_timeout_ms = req.session_timeout_ms;
        entry.rebalance_timeout_ms = req.rebalance_timeout_ms.max(req.session_timeout_ms);
        entry.instance_id = req.instance_id.clone();
        entry.last_seen_ms = now;
        entry.awaiting_join = true;
        self.protocol_type = Some(req.protocol_type.clone());
        let mut effects = Vec::new();
        if self.state != State::PreparingRebalance {
            effects.extend(self.prepare_rebalance(now, was_empty, limits));
        }
        effects.extend(self.maybe_complete_join(now));
        // If this join completed the rebalance, its own answer is among the effects.
        let own = effects
            .iter()
            .position(|e| matches!(e, Effect::Join(id, _) if *id == member_id));
        match own {
            Some(i) => match effects.remove(i) {
                Effect::Join(_, outcome) => ((member_id, Some(outcome)), effects),
                Effect::Sync(..) => unreachable!("position matched a join"),
            },
            None => ((member_id, None), effects),
        }
    }

    fn protocols_compatible(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        // Some protocol must be supported by the newcomer and every other member.
        req.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.id != req.member_id)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn prepare_rebalance(
        &mut self,
        now: i64,
        new_group: bool,
        limits: &GroupLimits,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Members waiting for an assignment of the old generation must rejoin.
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                effects.push(Effect::Sync(
                    m.id.clone(),
                    SyncOutcome::error(code::REBALANCE_IN_PROGRESS),
                ));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance_deadline_ms = now + timeout;
        self.initial_delay_until_ms = if new_group {
            now + limits.initial_rebalance_delay_ms.min(timeout)
        } else {
            now
        };
        self.state = State::PreparingRebalance;
        effects
    }

    /// Completes the rebalance when every member has rejoined (and a new group's
    /// initial delay has passed), or when the rebalance deadline has passed.
    fn maybe_complete_join(&mut self, now: i64) -> Vec<Effect> {
        if self.state != State::PreparingRebalance {
            return vec![];
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        let ready =
            (all_joined && now >= self.initial_delay_until_ms) || now >= self.rebalance_deadline_ms;
        if !ready {
            return vec![];
        }
        // Members that did not rejoin in time are out.
        self.members.retain(|_, m| m.awaiting_join);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            self.generation += 1;
            return vec![];
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = State::CompletingRebalance;
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        let mut effects = Vec::new();
        for m in self.members.values_mut() {
            m.awaiting_join = false;
            m.last_seen_ms = now;
            m.assignment = Bytes::new();
            effects.push(Effect::Join(
                m.id.clone(),
                JoinOutcome {
                    error: code::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader { all.clone() } else { vec![] },
                    skip_assignment: false,
                },
            ));
        }
        effects
    }

    /// Kafka's choice: among protocols every member supports, the one most members
    /// list first among those candidates.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        // Ties go to the earlier candidate in the first member's order.
        let mut best: Option<(&String, usize)> = None;
        for c in candidates {
            let v = votes.get(c).copied().unwrap_or(0);
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((c, v));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
    ) -> Result<(), i16> {
        match self.members.get(member_id) {
            None => {
                if instance_id.is_some()
                    && self.members.values().any(|m| m.instance_id == *instance_id)
                {
                    Err(code::FENCED_INSTANCE_ID)
                } else {
                    Err(code::UNKNOWN_MEMBER_ID)
                }
            }
            Some(_) if generation != self.generation => Err(code::ILLEGAL_GENERATION),
            Some(_) => Ok(()),
        }
    }

    /// A SyncGroup. `assignments` is only non-empty from the leader.
    pub fn sync(
        &mut self,
        now: i64,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> (Option<SyncOutcome>, Vec<Effect>) {
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return (Some(SyncOutcome::error(e)), vec![]);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen_ms = now;
        }
        match self.state {
            State::Empty => (Some(SyncOutcome::error(code::UNKNOWN_MEMBER_ID)), vec![]),
            State::PreparingRebalance => (
                Some(SyncOutcome::error(code::REBALANCE_IN_PROGRESS)),
                vec![],
            ),
            State::Stable => (Some(self.sync_outcome(member_id)), vec![]),
            State::CompletingRebalance => {
                if self.leader.as_deref() == Some(member_id) {
                    let given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                    }
                    self.state = State::Stable;
                    let mut effects = Vec::new();
                    let waiting: Vec<String> = self
                        .members
                        .values()
                        .filter(|m| m.awaiting_sync)
                        .map(|m| m.id.clone())
                        .collect();
                    for id in waiting {
                        if let Some(m) = self.members.get_mut(&id) {
                            m.awaiting_sync = false;
                        }
                        effects.push(Effect::Sync(id.clone(), self.sync_outcome(&id)));
                    }
                    (Some(self.sync_outcome(member_id)), effects)
                } else {
                    if let Some(m) = self.members.get_mut(member_id) {
                        m.awaiting_sync = true;
                    }
                    (None, vec![])
                }
            }
        }
    }

    fn sync_outcome(&self, member_id: &str) -> SyncOutcome {
        SyncOutcome {
            error: code::NONE,
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
        }
    }

    /// A Heartbeat: keeps the member alive, and tells it when it must rejoin.
    pub fn heartbeat(
        &mut self,
        now: i64,
        member_id: &str,
        instance_id: &Option<String>,
        generation: i32,
    ) -> i16 {
        if self.state == State::Empty {
            return code::UNKNOWN_MEMBER_ID;
        }
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            // During a rebalance an old-generation member is told to rejoin.
            if e == code::ILLEGAL_GENERATION && self.state == State::PreparingRebalance {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_seen_ms = now;
                }
                return code::REBALANCE_IN_PROGRESS;
            }
            return e;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen_ms = now;
        }
        if self.state == State::PreparingRebalance {
            code::REBALANCE_IN_PROGRESS
        } else {
            code::NONE
        }
    }

    /// A LeaveGroup for one member (by id, or by instance id for static members).
    pub fn leave(
        &mut self,
        now: i64,
        member_id: &str,
        instance_id: &Option<String>,
        limits: &GroupLimits,
    ) -> (i16, Vec<Effect>) {
        let id = if let Some(iid) = instance_id {
            match self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(iid))
            {
                Some(m) if member_id.is_empty() || m.id == member_id => m.id.clone(),
                Some(_) => return (code::FENCED_INSTANCE_ID, vec![]),
                None => return (code::UNKNOWN_MEMBER_ID, vec![]),
            }
        } else {
            member_id.to_string()
        };
        if self.members.remove(&id).is_none() {
            return (code::UNKNOWN_MEMBER_ID, vec![]);
        }
        (code::NONE, self.after_departure(now, limits))
    }

    fn after_departure(&mut self, now: i64, limits: &GroupLimits) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            return effects;
        }
        if self.state != State::PreparingRebalance {
            effects.extend(self.prepare_rebalance(now, false, limits));
        }
        effects.extend(self.maybe_complete_join(now));
        effects
    }

    /// Clock tick: expires silent members and completes a rebalance whose deadline or
    /// initial delay has passed. Returns the expired member ids with the effects.
    pub fn tick(&mut self, now: i64, limits: &GroupLimits) -> (Vec<String>, Vec<Effect>) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && now - m.last_seen_ms > m.session_timeout_ms)
            .map(|m| m.id.clone())
            .collect();
        let mut effects = Vec::new();
        for id in &expired {
            self.members.remove(id);
        }
        if !expired.is_empty() {
            effects.extend(self.after_departure(now, limits));
        }
        effects.extend(self.maybe_complete_join(now));
        (expired, effects)
    }

    /// The topics members subscribed to, from the consumer protocol metadata
    /// (ConsumerProtocolSubscription: i16 version, then an array of topic strings).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut topics = BTreeSet::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        for m in self.members.values() {
            for (_, meta) in &m.protocols {
                topics.extend(super::consumer_protocol::parse_subscription(meta));
            }
        }
        topics
    }
}
