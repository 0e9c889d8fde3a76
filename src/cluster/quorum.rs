//! The metadata quorum on this node: openraft over our log store and transport, the
//! proposals the broker makes (answered once committed), and the controller's work on
//! the Raft leader — broker heartbeats and fencing.
//!
//! Every voter starts with the same `voters` and initialises the Raft group with them
//! (openraft: initialising several nodes with the same membership is safe), so a
//! cluster forms with no bootstrap step. A node outside the voters joins as a learner
//! (it follows the log and does not vote) and is a broker like any other. A proposal made on a follower is forwarded
//! once to the leader it names; until a leader is known it is retried, up to
//! `PROPOSE_TIMEOUT`.
//!
//! Invariants: a command is answered only after it is committed and applied here or on
//! the leader; the controller acts only while this node is the Raft leader, and a new
//! controller gives every broker a full session before fencing it (it cannot know when
//! they last heartbeated to its predecessor).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, ServerState};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::image::{ApplyResult, BrokerRecord, Endpoint, MetadataCommand, MetadataImage};
use super::raft_store::{LogStore, NodeId, StateMachine, TypeConfig};
use super::transport::{
    self, HeartbeatReply, PeerClient, PeerHandler, PeerRequest, PeerResponse, Peers,
    ProposeRefusal, TransportError,
};

/// A leader that has not heard from a majority for this long is not taken as one.
const LEADER_QUORUM_WINDOW_MS: u64 = 3000;

/// How long one forwarded proposal may take before it is tried again.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a proposal may wait for a leader and its commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot open the metadata log in {dir}: {source}")]
    Store { dir: String, source: std::io::Error },
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
}

#[derive(Debug, Error)]
pub enum ProposeError {
    #[error("no metadata leader answered within {0:?} (is a majority of voters up?)")]
    NoLeader(Duration),
    #[error("the metadata quorum refused the change: {0}")]
    Failed(String),
}

/// What this node is in the cluster, from the settings.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: i32,
    /// Kafka's cluster id (`cluster_id`).
    pub cluster_id: String,
    /// The voters' cluster addresses, by node id (`voters`).
    pub voters: BTreeMap<i32, String>,
    pub cluster_listen: String,
    /// The address peers reach this node at (`cluster_listen`, or its advertised form).
    pub cluster_advertised: String,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Kafka's `broker.session.timeout.ms` (9 s).
    pub session_timeout: Duration,
    /// Kafka's `broker.heartbeat.interval.ms` (2 s).
    pub heartbeat_interval: Duration,
}

/// The controller's view of heartbeats: when each broker (at which epoch) was last heard.
#[derive(Default)]
struct Heartbeats {
    seen: HashMap<i32, (u64, Instant)>,
    /// The term in which `seen` was filled: a new term starts afresh.
    term: u64,
}

/// Which brokers missed their session: the controller's decision, kept pure. A
/// registration the controller has not heard from yet (new in this term, or a broker
/// that registered again) gets a full session from now: it is entered in `seen`.
pub fn brokers_to_fence(
    image: &MetadataImage,
    seen: &mut HashMap<i32, (u64, Instant)>,
    now: Instant,
    session: Duration,
) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    for b in image.brokers.values().filter(|b| !b.fenced) {
        let last = match seen.get(&b.id) {
            Some((epoch, at)) if *epoch == b.epoch => *at,
            _ => {
                seen.insert(b.id, (b.epoch, now));
                now
            }
        };
        if now.duration_since(last) > session {
            out.push((b.id, b.epoch));
        }
    }
    out
}

pub struct Quorum {
    config: QuorumConfig,
    raft: Raft<TypeConfig>,
    image: watch::Receiver<Arc<MetadataImage>>,
    peers: Arc<Peers>,
    heartbeats: parking_lot::Mutex<Heartbeats>,
    /// What the log had committed when this node started: until the image has applied
    /// that much it is incomplete, and nothing local is changed after it.
    committed_at_start: u64,
    /// This broker's registration epoch, once registered.
    broker_epoch: parking_lot::Mutex<Option<u64>>,
    /// Set by a controlled shutdown: no more heartbeats or registrations.
    shutting_down: std::sync::atomic::AtomicBool,
}

/// Status for `GET /cluster` and `logbridge cluster status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuorumStatus {
    pub node_id: i32,
    pub raft_leader: Option<i32>,
    pub raft_term: u64,
    pub raft_state: String,
    pub voters: Vec<i32>,
    pub last_applied: Option<u64>,
    pub registered: bool,
}

fn raft_config() -> openraft::Config {
    openraft::Config {
        cluster_name: "logbridge".into(),
        heartbeat_interval: 250,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
}

impl Quorum {
    /// Opens the metadata log under `dir`, binds `cluster_listen` and joins the quorum.
    /// Returns once the Raft node runs; `ready` says when a leader is known and this
    /// broker is registered.
    pub async fn start(
        config: QuorumConfig,
        dir: &Path,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Quorum>, ClusterError> {
        let store_err = |source| ClusterError::Store {
            dir: dir.display().to_string(),
            source,
        };
        let log = LogStore::open(dir).map_err(store_err)?;
        let committed_at_start = log.committed_index();
        let (machine, image) = StateMachine::open(dir).map_err(store_err)?;
        // Nodes of one cluster share its id and its voters: a node of another cluster
        // that reaches this listener (a reused port, a wrong address) is turned away.
        let identity = format!(
            "{}/{}",
            config.cluster_id,
            config
                .voters
                .iter()
                .map(|(id, addr)| format!("{id}@{addr}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let peers = Arc::new(Peers::new(&identity));
        let listener = TcpListener::bind(&config.cluster_listen)
            .await
            .map_err(|source| ClusterError::Bind {
                addr: config.cluster_listen.clone(),
                source,
            })?;
        let raft_cfg = Arc::new(
            raft_config()
                .validate()
                .map_err(|e| ClusterError::Raft(e.to_string()))?,
        );
        let raft = Raft::new(
            config.node_id as NodeId,
            raft_cfg,
            super::raft_network::NetworkFactory::new(peers.clone()),
            log,
            machine,
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let quorum = Arc::new(Quorum {
            config: config.clone(),
            raft,
            image,
            peers,
            heartbeats: parking_lot::Mutex::new(Heartbeats::default()),
            committed_at_start,
            broker_epoch: parking_lot::Mutex::new(None),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(transport::serve(
            listener,
            Arc::new(quorum.clone()),
            quorum.peers.cluster(),
            stop.clone(),
        ));
        if config.voters.contains_key(&config.node_id) {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id as NodeId, BasicNode { addr: addr.clone() }))
                .collect();
            let initialized = quorum
                .raft
                .is_initialized()
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
            if !initialized {
                if let Err(e) = quorum.raft.initialize(members).await {
                    // Another voter's initialisation reached us first: the same members.
                    tracing::debug!(error = %e, "metadata quorum already initialised");
                }
            }
        } else {
            tokio::spawn(quorum.clone().join_as_learner(stop.clone()));
        }
        tokio::spawn(quorum.clone().run_controller(stop.clone()));
        tokio::spawn(quorum.clone().run_broker_lifecycle(stop));
        Ok(quorum)
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The metadata image as last applied on this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Whether `image` holds everything this node knew committed at start (a restarted
    /// node's image is empty until openraft has re-applied its log).
    pub fn complete(&self, image: &MetadataImage) -> bool {
        image.applied_index >= self.committed_at_start
    }

    pub fn raft_leader(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    /// Whether a metadata leader that a majority follows is known: a follower knows
    /// one; a leader must have heard from a majority lately (openraft keeps a leader
    /// cut off from the others in office, so that is checked here).
    fn leader_reachable(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            m.millis_since_quorum_ack
                .is_some_and(|ms| ms < LEADER_QUORUM_WINDOW_MS)
        } else {
            m.current_leader.is_some()
        }
    }

    /// Ready to serve: a leader is known and this broker is registered and unfenced.
    pub fn ready(&self) -> bool {
        let Some(epoch) = *self.broker_epoch.lock() else {
            return false;
        };
        self.complete(&self.image())
            && self.leader_reachable()
            && self
                .image()
                .brokers
                .get(&self.config.node_id)
                .is_some_and(|b| b.epoch == epoch && !b.fenced)
    }

    pub fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        QuorumStatus {
            node_id: self.config.node_id,
            raft_leader: m.current_leader.map(|l| l as i32),
            raft_term: m.current_term,
            raft_state: format!("{:?}", m.state),
            voters: m
                .membership_config
                .membership()
                .voter_ids()
                .map(|v| v as i32)
                .collect(),
            last_applied: m.last_applied.map(|l| l.index),
            registered: self.broker_epoch.lock().is_some(),
        }
    }

    /// The quorum's connection to `leader`, at the address the membership records.
    fn leader_client(&self, leader: NodeId) -> Option<Arc<PeerClient>> {
        let addr = {
            let m = self.raft.metrics();
            let m = m.borrow();
            m.membership_config
                .membership()
                .get_node(&leader)?
                .addr
                .clone()
        };
        Some(self.peers.control(leader, &addr))
    }

    /// Commits `cmd` through the Raft leader and returns what applying it did.
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<ApplyResult, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            // A leader cut off from the others keeps the entry uncommitted: bounded.
            let left = deadline.saturating_duration_since(Instant::now());
            let written = tokio::time::timeout(left, self.raft.client_write(cmd.clone())).await;
            let leader = match written {
                Err(_) => return Err(ProposeError::NoLeader(PROPOSE_TIMEOUT)),
                Ok(Ok(resp)) => return Ok(resp.data),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => f.leader_id,
                Ok(Err(e)) => return Err(ProposeError::Failed(e.to_string())),
            };
            if let Some(client) = leader.and_then(|l| self.leader_client(l)) {
                // One try may not spend the whole deadline on an unreachable leader.
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .min(FORWARD_TIMEOUT);
                match client.call(&PeerRequest::Propose(cmd.clone()), left).await {
                    Ok(PeerResponse::Propose(Ok(r))) => return Ok(r),
                    Ok(PeerResponse::Propose(Err(ProposeRefusal::Failed(why)))) => {
                        return Err(ProposeError::Failed(why))
                    }
                    // Leadership moved, the leader is unreachable or answered oddly: retry.
                    Ok(_) | Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::NoLeader(PROPOSE_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Hands out a block of `count` producer ids, unique across the cluster.
    pub async fn allocate_producer_ids(&self, count: i64) -> Result<(i64, i64), ProposeError> {
        match self
            .propose(MetadataCommand::AllocateProducerIds { count })
            .await?
        {
            ApplyResult::ProducerIds { first, count } => Ok((first, count)),
            other => Err(ProposeError::Failed(format!("{other:?}"))),
        }
    }

    fn is_controller(&self) -> Option<u64> {
        let m = self.raft.metrics().borrow().clone();
        (m.state == ServerState::Leader && m.current_leader == Some(self.config.node_id as NodeId))
            .then_some(m.current_term)
    }

    /// A heartbeat from `broker` at `epoch`, on the controller.
    fn heartbeat(self: &Arc<Self>, broker: i32, epoch: u64) -> HeartbeatReply {
        let Some(term) = self.is_controller() else {
            return HeartbeatReply::NotController {
                leader: self.raft.metrics().borrow().current_leader,
            };
        };
        let image = self.image();
        let Some(record) = image.brokers.get(&broker).filter(|b| b.epoch == epoch) else {
            return HeartbeatReply::Unknown;
        };
        {
            let mut hb = self.heartbeats.lock();
            if hb.term != term {
                hb.term = term;
                hb.seen.clear();
            }
            hb.seen.insert(broker, (epoch, Instant::now()));
        }
        if record.fenced {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me
                    .propose(MetadataCommand::UnfenceBroker { id: broker, epoch })
                    .await
                {
                    tracing::warn!(broker, error = %e, "cannot unfence a broker");
                }
            });
        }
        HeartbeatReply::Accepted
    }

    /// On the Raft leader: fences brokers that missed their session.
    async fn run_controller(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            let Some(term) = self.is_controller() else {
                continue;
            };
            let image = self.image();
            let to_fence = {
                let mut hb = self.heartbeats.lock();
                if hb.term != term {
                    hb.term = term;
                    hb.seen.clear();
                }
                brokers_to_fence(
                    &image,
                    &mut hb.seen,
                    Instant::now(),
                    self.config.session_timeout,
                )
            };
            for (id, epoch) in to_fence {
                tracing::warn!(
                    broker = id,
                    epoch,
                    session_ms = self.config.session_timeout.as_millis() as u64,
                    "broker missed its session: fencing it"
                );
                if let Err(e) = self
                    .propose(MetadataCommand::FenceBroker { id, epoch })
                    .await
                {
                    tracing::warn!(broker = id, error = %e, "cannot fence a broker");
                }
            }
        }
    }

    /// A node outside the voters: asks the voters (the leader, once one names it) to add
    /// it as a Raft learner, so it follows the metadata log without voting. Asked again
    /// at every start: adding a node that is already a member changes nothing.
    async fn join_as_learner(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let me = self.config.node_id as NodeId;
        let request = PeerRequest::Join {
            node: me,
            addr: self.config.cluster_advertised.clone(),
        };
        let mut target: Option<i32> = None;
        loop {
            let named = target.and_then(|t| self.config.voters.get(&t).map(|a| (t, a.clone())));
            let candidates: Vec<(i32, String)> = match named {
                Some(t) => vec![t],
                None => self
                    .config
                    .voters
                    .iter()
                    .map(|(i, a)| (*i, a.clone()))
                    .collect(),
            };
            target = None;
            for (id, addr) in candidates {
                let client = self.peers.control(id as NodeId, &addr);
                match client.call(&request, FORWARD_TIMEOUT).await {
                    Ok(PeerResponse::Join(Ok(()))) => {
                        tracing::info!(
                            node = me,
                            via = id,
                            "following the metadata log as a broker (not a voter)"
                        );
                        return;
                    }
                    Ok(PeerResponse::Join(Err(ProposeRefusal::NotLeader { leader: Some(l) }))) => {
                        target = Some(l as i32);
                        break;
                    }
                    Ok(other) => tracing::debug!(answer = ?other, "join not accepted yet"),
                    Err(e) => {
                        tracing::debug!(voter = id, error = %e, "cannot reach a voter to join")
                    }
                }
            }
            if target.is_some() {
                // Redirected to the leader: try it next, without hammering.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// This node as a broker: registers, then heartbeats to the controller, registering
    /// again when the controller no longer knows it.
    async fn run_broker_lifecycle(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(
            self.config
                .heartbeat_interval
                .min(Duration::from_millis(500)),
        );
        let mut last_beat = Instant::now() - self.config.heartbeat_interval;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let epoch = *self.broker_epoch.lock();
            let Some(epoch) = epoch else {
                let cmd = MetadataCommand::RegisterBroker {
                    id: self.config.node_id,
                    endpoints: self.config.endpoints.clone(),
                    rack: self.config.rack.clone(),
                    cluster_addr: self.config.cluster_advertised.clone(),
                };
                match self.propose(cmd).await {
                    Ok(ApplyResult::Registered { epoch }) => {
                        tracing::info!(node = self.config.node_id, epoch, "registered as a broker");
                        *self.broker_epoch.lock() = Some(epoch);
                        last_beat = Instant::now() - self.config.heartbeat_interval;
                    }
                    Ok(other) => {
                        tracing::warn!(result = ?other, "unexpected answer to a registration")
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "broker registration waits for the metadata quorum")
                    }
                }
                continue;
            };
            if last_beat.elapsed() < self.config.heartbeat_interval {
                continue;
            }
            last_beat = Instant::now();
            match self.send_heartbeat(epoch).await {
                Ok(HeartbeatReply::Unknown) => {
                    tracing::info!(
                        epoch,
                        "the controller does not know this registration: registering again"
                    );
                    *self.broker_epoch.lock() = None;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "heartbeat not delivered"),
            }
        }
    }

    async fn send_heartbeat(
        self: &Arc<Self>,
        epoch: u64,
    ) -> Result<HeartbeatReply, TransportError> {
        let leader = self.raft.metrics().borrow().current_leader;
        let Some(leader) = leader else {
            return Ok(HeartbeatReply::NotController { leader: None });
        };
        if leader == self.config.node_id as NodeId {
            return Ok(self.heartbeat(self.config.node_id, epoch));
        }
        let client = self
            .leader_client(leader)
            .ok_or(TransportError::UnknownNode(leader))?;
        match client
            .call(
                &PeerRequest::Heartbeat {
                    broker: self.config.node_id,
                    epoch,
                },
                self.config.heartbeat_interval,
            )
            .await?
        {
            PeerResponse::Heartbeat(r) => Ok(r),
            other => Err(TransportError::Decode(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Kafka's controlled shutdown: this broker stops heartbeating and asks the quorum
    /// to move its leaderships (and ISR places) to other replicas now, rather than a
    /// session after it is gone; returns once that is committed here, or after
    /// `timeout` (then the session timeout does it).
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let Some(epoch) = *self.broker_epoch.lock() else {
            return;
        };
        let cmd = MetadataCommand::ShutdownBroker {
            id: self.config.node_id,
            epoch,
        };
        let index_before = self.image().applied_index;
        match tokio::time::timeout(timeout, self.propose(cmd)).await {
            Ok(Ok(ApplyResult::Applied)) => {
                let mut rx = self.subscribe();
                let me = self.config.node_id;
                let moved = rx.wait_for(|i| {
                    i.applied_index > index_before && i.brokers.get(&me).is_some_and(|b| b.fenced)
                });
                let _ = tokio::time::timeout(timeout, moved).await;
                tracing::info!(
                    node = me,
                    "controlled shutdown: leaderships moved to other replicas"
                );
            }
            Ok(other) => {
                tracing::warn!(result = ?other.map(|r| format!("{r:?}")), "controlled shutdown not applied: the session timeout will move leaderships")
            }
            Err(_) => tracing::warn!(
                "controlled shutdown timed out: the session timeout will move leaderships"
            ),
        }
    }

    /// The live broker record of `id`, if any.
    pub fn broker(&self, id: i32) -> Option<BrokerRecord> {
        self.image().brokers.get(&id).cloned()
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

impl PeerHandler for Arc<Quorum> {
    async fn handle(&self, req: PeerRequest) -> PeerResponse {
        match req {
            PeerRequest::AppendEntries(r) => {
                PeerResponse::AppendEntries(self.raft.append_entries(r).await)
            }
            PeerRequest::Vote(r) => PeerResponse::Vote(self.raft.vote(r).await),
            PeerRequest::InstallSnapshot(r) => {
                PeerResponse::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            PeerRequest::Propose(cmd) => PeerResponse::Propose(
                match tokio::time::timeout(FORWARD_TIMEOUT, self.raft.client_write(cmd)).await {
                    // Not committed in time (no majority): the proposer tries again until
                    // its own deadline.
                    Err(_) => Err(ProposeRefusal::NotLeader { leader: None }),
                    Ok(Ok(resp)) => Ok(resp.data),
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                        Err(ProposeRefusal::NotLeader {
                            leader: f.leader_id,
                        })
                    }
                    Ok(Err(e)) => Err(ProposeRefusal::Failed(e.to_string())),
                },
            ),
            // Answered by the listener itself, before any request reaches here.
            PeerRequest::Hello { .. } => PeerResponse::Hello(false),
            PeerRequest::Join { node, addr } => PeerResponse::Join(
                match self.raft.add_learner(node, BasicNode { addr }, false).await {
                    Ok(_) => Ok(()),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        Err(ProposeRefusal::NotLeader {
                            leader: f.leader_id,
                        })
                    }
                    Err(e) => Err(ProposeRefusal::Failed(e.to_string())),
                },
            ),
            PeerRequest::Heartbeat { broker, epoch } => {
                PeerResponse::Heartbeat(self.heartbeat(broker, epoch))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::MetadataCommand;

    #[test]
    fn a_broker_is_fenced_only_after_a_full_session_without_heartbeats() {
        let mut image = MetadataImage::with_brokers(1..=2);
        let session = Duration::from_secs(9);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut seen = HashMap::new();
        // A new controller: nobody heard yet, nobody fenced before a session passes.
        assert!(brokers_to_fence(&image, &mut seen, t0, session).is_empty());
        assert!(brokers_to_fence(&image, &mut seen, at(8), session).is_empty());
        seen.insert(1, (1, at(8)));
        assert_eq!(
            brokers_to_fence(&image, &mut seen, at(10), session),
            vec![(2, 2)]
        );
        // Broker 2 registers again (a new epoch): a full session from when the
        // controller first sees the new registration.
        image.apply(
            20,
            &MetadataCommand::RegisterBroker {
                id: 2,
                endpoints: vec![],
                rack: None,
                cluster_addr: String::new(),
            },
        );
        assert!(brokers_to_fence(&image, &mut seen, at(11), session).is_empty());
        assert_eq!(
            brokers_to_fence(&image, &mut seen, at(18), session),
            vec![(1, 1)]
        );
        assert_eq!(
            brokers_to_fence(&image, &mut seen, at(21), session),
            vec![(1, 1), (2, 20)]
        );
    }
}
