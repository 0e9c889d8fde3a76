//! Request handlers: one Kafka API, one file. `Broker::handle` takes a decoded request
//! and returns the response to send (or none, for `acks=0` produce). Handlers never
//! touch sockets; the listener (`listener.rs`) never interprets a request.
//!
//! Invariants: every request that reaches `handle` gets a response of the same API and
//! version (except `acks=0`); no handler panics on client input; errors are mapped to
//! Kafka codes only in `errors.rs`.

mod api_versions;
mod authorized;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
pub mod errors;
mod fetch;
mod find_coordinator;
mod heartbeat;
pub mod ingest;
mod init_producer_id;
mod join_group;
mod leave_group;
pub mod legacy;
mod list_groups;
mod list_offsets;
pub mod listener;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
pub mod producer_ids;
pub mod registry;
mod sync_group;
pub mod topic_admin;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use tokio::sync::Notify;

use crate::cluster::image::Endpoint;
use crate::config::Settings;
use crate::group::group::GroupLimits;
use crate::group::offsets::{OffsetStore, OffsetsError, OFFSETS_TOPIC};
use crate::group::{CoordinatorConfig, GroupCoordinator};
use crate::protocol::Request;
use crate::storage::disk::{self, DiskSpace, DiskState};
use crate::storage::segment::now_ms;
use producer_ids::ProducerIdAllocator;
use registry::{Registry, RegistryError};

/// A request's answer: ready now (None: no answer, `acks=0`), or once a produce's
/// `acks=all` wait ends.
pub enum Handled {
    Now(Option<ResponseKind>),
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = ResponseKind> + Send>>),
}

/// How often a cluster node checkpoints its replicas' high watermarks (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms`).
const HW_CHECKPOINT_INTERVAL_MS: i64 = 5_000;

/// Why the broker could not open its data directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot load committed offsets: {0}")]
    Offsets(#[from] OffsetsError),
    #[error(transparent)]
    Locked(#[from] crate::storage::dir_lock::LockError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Broker {
    pub settings: Settings,
    pub registry: Registry,
    pub producer_ids: ProducerIdAllocator,
    /// In a cluster: the block of producer ids the quorum gave this node.
    cluster_producer_ids: producer_ids::BlockCache,
    pub groups: Arc<GroupCoordinator>,
    /// Woken after every append, so long-polling fetches can re-check.
    pub data_arrived: Notify,
    /// What each named Kafka listener advertises in Metadata, in `listeners` order.
    advertised: parking_lot::RwLock<Vec<Endpoint>>,
    /// Held for the broker's life: no second process opens this data directory.
    _dir_lock: crate::storage::dir_lock::DataDirLock,
    /// The disk state last logged, so each change is logged once.
    disk_state: parking_lot::Mutex<DiskState>,
    /// The partitions of `__consumer_offsets` this node leads, whose groups it
    /// coordinates (in a cluster), with the leader epoch it took each over in.
    /// Partition → the leader epoch it is led in here; None until the first image.
    coordinated: parking_lot::Mutex<Option<std::collections::BTreeMap<i32, i32>>>,
    /// When the high watermarks were last checkpointed (ms).
    last_hw_checkpoint: parking_lot::Mutex<i64>,
    /// Appends the ingest doors forward to leaders on other nodes.
    pub forwarder: crate::replication::forward::Forwarder,
    /// The metadata quorum, in a cluster (set once, at start).
    quorum: std::sync::OnceLock<Arc<crate::cluster::quorum::Quorum>>,
    /// What this node's follower fetchers fetch, from which leader (`replication::fetcher`),
    /// rebuilt at every metadata image.
    fetch_plan: tokio::sync::watch::Sender<Arc<crate::replication::fetcher::FetchPlan>>,
}

impl Broker {
    /// Opens the data directory (recovering after an unclean stop), the topic registry
    /// and the group coordinator (replaying committed offsets).
    pub fn open(settings: Settings) -> Result<Arc<Broker>, OpenError> {
        std::fs::create_dir_all(&settings.data_dir)?;
        // Before anything is read or recovered: another process may be writing here.
        let dir_lock = crate::storage::dir_lock::DataDirLock::acquire(&settings.data_dir)?;
        let marker = settings.data_dir.join(".clean_shutdown");
        let clean = marker.exists();
        if !clean {
            tracing::info!(data_dir = %settings.data_dir.display(), "no clean-shutdown marker: verifying the tail of every partition");
        }
        let registry = Registry::open(&settings, clean)?;
        if clean {
            std::fs::remove_file(&marker)?;
        }
        let producer_ids = ProducerIdAllocator::open(&settings.data_dir.join("__meta"))
            .map_err(RegistryError::from)?;
        let offsets_configs =
            topic_admin::offsets_topic_configs(settings.offsets_topic_segment_bytes);
        let offsets_topic = match registry.get(OFFSETS_TOPIC) {
            Some(t) => t,
            // In a cluster the quorum places its partitions (topic_admin).
            None if settings.is_cluster() => registry.placeholder(
                OFFSETS_TOPIC,
                topic_admin::offsets_topic_id(&settings.cluster_id),
                settings.offsets_topic_num_partitions,
                offsets_configs,
            ),
            None => registry.create(
                OFFSETS_TOPIC,
                settings.offsets_topic_num_partitions,
                offsets_configs,
            )?,
        };
        let coordinator = GroupCoordinator::new(
            CoordinatorConfig {
                limits: GroupLimits {
                    min_session_timeout_ms: settings.group_min_session_timeout_ms,
                    max_session_timeout_ms: settings.group_max_session_timeout_ms,
                    initial_rebalance_delay_ms: settings.group_initial_rebalance_delay_ms,
                },
                offsets_retention_ms: settings.offsets_retention_minutes.saturating_mul(60_000),
                offset_metadata_max_bytes: settings.offset_metadata_max_bytes,
            },
            OffsetStore::load(
                offsets_topic,
                settings.fsync_before_ack,
                settings.max_uncompressed_batch_bytes,
            )?,
        );
        let advertised = settings
            .kafka_listeners()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, addr)| {
                let bound = addr
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9092)));
                let (host, port) = settings.advertised_for(&name, bound);
                Endpoint { name, host, port }
            })
            .collect();
        Ok(Arc::new(Broker {
            settings,
            registry,
            producer_ids,
            cluster_producer_ids: producer_ids::BlockCache::default(),
            groups: coordinator,
            data_arrived: Notify::new(),
            advertised: parking_lot::RwLock::new(advertised),
            _dir_lock: dir_lock,
            disk_state: parking_lot::Mutex::new(DiskState::Ok),
            last_hw_checkpoint: parking_lot::Mutex::new(0),
            coordinated: Default::default(),
            forwarder: Default::default(),
            quorum: std::sync::OnceLock::new(),
            fetch_plan: tokio::sync::watch::Sender::new(Default::default()),
        }))
    }

    /// Joins this broker to the metadata quorum (once, at start).
    pub fn set_quorum(&self, quorum: Arc<crate::cluster::quorum::Quorum>) {
        let _ = self.quorum.set(quorum);
    }

    /// The metadata quorum, in a cluster.
    pub fn quorum(&self) -> Option<&Arc<crate::cluster::quorum::Quorum>> {
        self.quorum.get()
    }

    /// Starts data replication on a cluster node: the follower fetchers (which follow
    /// the fetch plan each metadata image rebuilds) and the ISR changes of the
    /// partitions this node leads.
    pub fn start_replication(self: &Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let Some(q) = self.quorum().cloned() else {
            return;
        };
        let woken = Arc::downgrade(self);
        tokio::spawn(crate::replication::fetcher::run(
            self.node_id(),
            self.fetch_plan.subscribe(),
            stop.clone(),
            Arc::new(move || {
                if let Some(b) = woken.upgrade() {
                    b.data_arrived.notify_waiters()
                }
            }),
        ));
        let me = self.clone();
        tokio::spawn(crate::replication::isr::run(
            q,
            move || me.registry.all_partitions(),
            Duration::from_millis(self.settings.replica_lag_time_max_ms),
            stop,
        ));
    }

    /// Rebuilds the follower fetchers' plan: every local replica led by another node,
    /// grouped by that leader.
    pub(crate) fn refresh_fetch_plan(&self) {
        use crate::replication::fetcher::{FetchPlan, FetchTarget};
        let me = self.node_id();
        let mut plan = FetchPlan::new();
        for (topic, replica) in self.registry.all_partitions() {
            let leader = replica.leadership().leader;
            if leader < 0 || leader == me {
                continue;
            }
            let Some(addr) = self.inter_node_address(leader) else {
                continue;
            };
            plan.entry(leader)
                .or_insert_with(|| FetchTarget {
                    addr,
                    partitions: Vec::new(),
                })
                .partitions
                .push((topic, replica));
        }
        self.fetch_plan.send_replace(Arc::new(plan));
    }

    /// Records the addresses the named Kafka listeners actually bound (port 0 picks
    /// one).
    pub fn set_bound_addresses(&self, bound: &[(String, SocketAddr)]) {
        *self.advertised.write() = bound
            .iter()
            .map(|(name, addr)| {
                let (host, port) = self.settings.advertised_for(name, *addr);
                Endpoint {
                    name: name.clone(),
                    host,
                    port,
                }
            })
            .collect();
    }

    /// Every endpoint this broker advertises, one per named listener.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.advertised.read().clone()
    }

    /// The first listener's advertised host and port.
    pub fn advertised(&self) -> (String, i32) {
        self.advertised
            .read()
            .first()
            .map(|e| (e.host.clone(), e.port))
            .unwrap_or_else(|| ("127.0.0.1".into(), 9092))
    }

    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    /// Answers one request, as `handle`, except a produce with `acks=all`: its records
    /// are appended now and its answer comes once its ISR holds them, so the listener
    /// may read the connection's next requests meanwhile.
    pub async fn handle_staged(&self, req: Request, peer: SocketAddr, listener: &str) -> Handled {
        match req.body {
            RequestKind::Produce(r) if r.acks == -1 => {
                let staged = produce::stage(self, r, req.version);
                Handled::Later(Box::pin(async move {
                    ResponseKind::Produce(staged.finish().await)
                }))
            }
            body => Handled::Now(self.handle(Request { body, ..req }, peer, listener).await),
        }
    }

    /// Answers one request from `peer`. `None` means no response is sent (produce
    /// with acks=0).
    /// `listener` names the Kafka listener the request came in on: brokers are
    /// advertised to the client by their endpoint of that name.
    pub async fn handle(
        &self,
        req: Request,
        peer: SocketAddr,
        listener: &str,
    ) -> Option<ResponseKind> {
        let v = req.version;
        let client_id = req
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Some(match req.body {
            RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(r, v)),
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, r, v, listener).await)
            }
            RequestKind::Produce(r) => {
                let acks = r.acks;
                let resp = produce::handle(self, r, v).await;
                if acks == 0 {
                    return None;
                }
                ResponseKind::Produce(resp)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(self, r, v).await),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, r, v))
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(create_topics::handle(self, r, v).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(delete_topics::handle(self, r, v).await)
            }
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(create_partitions::handle(self, r, v).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(describe_configs::handle(self, r, v))
            }
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(describe_cluster::handle(self, r, v, listener))
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(init_producer_id::handle(self, r, v).await)
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(find_coordinator::handle(self, r, v, listener).await)
            }
            RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
                join_group::handle(self, r, v, &client_id, &format!("/{}", peer.ip())).await,
            ),
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(sync_group::handle(self, r, v).await)
            }
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(self, r, v)),
            RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(self, r, v)),
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(offset_commit::handle(self, r, v).await)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(offset_fetch::handle(self, r, v))
            }
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(describe_groups::handle(self, r, v))
            }
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(self, r, v)),
            RequestKind::DeleteGroups(r) => {
                ResponseKind::DeleteGroups(delete_groups::handle(self, r, v))
            }
            RequestKind::OffsetDelete(r) => {
                ResponseKind::OffsetDelete(offset_delete::handle(self, r, v))
            }
            other => {
                // `protocol::versions` lets only the APIs above through.
                tracing::error!(request = ?std::mem::discriminant(&other), "request for an API without a handler");
                return None;
            }
        })
    }

    /// Background work: `flush.ms`, retention and the group coordinator's clock, until
    /// `shutdown` fires.
    pub async fn run_maintenance(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut flush_tick = tokio::time::interval(Duration::from_millis(
            self.settings.flush_check_interval_ms.max(10),
        ));
        let mut retention_tick = tokio::time::interval(Duration::from_millis(
            self.settings.retention_check_interval_ms.max(10),
        ));
        let mut group_tick = tokio::time::interval(Duration::from_millis(100));
        let mut disk_tick = tokio::time::interval(Duration::from_millis(
            self.settings.disk_check_interval_ms.max(100),
        ));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = disk_tick.tick() => self.check_disk(),
                _ = group_tick.tick() => {
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.groups.tick()).await;
                }
                _ = flush_tick.tick() => {
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.flush_due()).await;
                }
                _ = retention_tick.tick() => {
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.enforce_retention()).await;
                }
            }
        }
    }

    /// The data directory's free space and what it means, if it can be read.
    pub fn disk(&self) -> Option<(DiskSpace, DiskState)> {
        let space = disk::space(&self.settings.data_dir).ok()?;
        Some((
            space,
            DiskState::of(space, self.settings.disk_low_free_bytes),
        ))
    }

    /// Logs each change of the disk state once: a warning when it runs low, an error
    /// when it is full (appends are then refused with KAFKA_STORAGE_ERROR and nothing
    /// is acknowledged), a note when space is back.
    fn check_disk(&self) {
        let Some((space, state)) = self.disk() else {
            return;
        };
        let mut last = self.disk_state.lock();
        if *last == state {
            return;
        }
        let (free, total) = (space.free_bytes, space.total_bytes);
        let dir = self.settings.data_dir.display();
        match state {
            DiskState::Low => {
                tracing::warn!(%dir, free, total, low_below = self.settings.disk_low_free_bytes, "disk space is low")
            }
            DiskState::Full => {
                tracing::error!(%dir, free, total, "disk is full: appends are refused until space is freed")
            }
            DiskState::Ok => {
                tracing::info!(%dir, free, total, "disk space is back above the low mark")
            }
        }
        *last = state;
    }

    fn flush_due(&self) {
        let now = now_ms();
        let checkpoint = self.quorum().is_some() && {
            let mut last = self.last_hw_checkpoint.lock();
            let due = now - *last >= HW_CHECKPOINT_INTERVAL_MS;
            if due {
                *last = now;
            }
            due
        };
        for (topic, p) in self.registry.all_partitions() {
            if let Err(e) = p.maintain(|log| log.flush_if_due(now)) {
                tracing::error!(topic, partition = p.index, error = %e, "flush failed");
            }
            if checkpoint {
                if let Err(e) = p.checkpoint_high_watermark() {
                    tracing::warn!(topic, partition = p.index, error = %e, "cannot checkpoint the high watermark");
                }
            }
        }
    }

    /// Applies `retention.ms` / `retention.bytes` to every partition once, and compacts
    /// compacted topics that have new sealed segments.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for (topic, p) in self.registry.all_partitions() {
            let hw = p.high_watermark();
            p.maintain(|log| {
            log.set_clean_limit(hw);
            match log.enforce_retention(now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    topic,
                    partition = p.index,
                    segments = n,
                    "retention deleted segments"
                ),
                Err(e) => {
                    tracing::error!(topic, partition = p.index, error = %e, "retention failed")
                }
            }
            if log.needs_compaction(now) {
                match crate::storage::compaction::compact(
                    log,
                    now,
                    self.settings.max_uncompressed_batch_bytes,
                ) {
                    Ok(s) => tracing::info!(
                        topic,
                        partition = p.index,
                        segments = s.segments,
                        before = s.records_before,
                        after = s.records_after,
                        "compacted"
                    ),
                    Err(e) => {
                        tracing::error!(topic, partition = p.index, error = %e, "compaction failed")
                    }
                }
            }
            });
        }
    }

    /// At shutdown: every replica stops leading here (no append is taken after this),
    /// which answers the produces waiting for their ISR at once.
    pub fn stop_leading(&self) {
        for (_, p) in self.registry.all_partitions() {
            p.stop_leading();
        }
    }

    /// Flushes and closes every log and leaves the clean-shutdown marker.
    pub fn close(&self) {
        let mut ok = true;
        for (topic, p) in self.registry.all_partitions() {
            if let Err(e) = p.checkpoint_high_watermark() {
                tracing::warn!(topic, partition = p.index, error = %e, "cannot checkpoint the high watermark");
            }
            if let Err(e) = p.maintain(|log| log.flush().and_then(|_| log.close())) {
                tracing::error!(topic, partition = p.index, error = %e, "close failed");
                ok = false;
            }
        }
        if ok {
            if let Err(e) = std::fs::write(self.settings.data_dir.join(".clean_shutdown"), b"") {
                tracing::error!(error = %e, "cannot write clean-shutdown marker");
            }
        }
    }
}
