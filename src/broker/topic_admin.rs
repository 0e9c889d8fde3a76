//! Topic changes, in one place for every door (CreateTopics, DeleteTopics,
//! CreatePartitions, auto-creation on Metadata and ingest, the offsets topic): in a
//! cluster of one straight on the registry, in a cluster as proposals to the metadata
//! quorum, answered once committed and applied on this node too (so a client that
//! creates a topic here can use it here at once).
//!
//! The replication factor rules live here: a cluster of one keeps one copy; in a
//! cluster a factor from 1 to the live brokers is taken, the default being
//! `default_replication_factor` (3) capped at the live brokers, and a topic of 3 or more
//! copies gets `min.insync.replicas = 2` unless it (or `[topic_defaults]`) names its
//! own — safer than Kafka's default of 1. The offsets topic waits (coordinator not
//! available) until `offsets_topic_replication_factor` brokers, capped at the voters,
//! have registered, as Kafka's does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use uuid::Uuid;

use super::registry::{is_internal, RegistryError};
use super::Broker;
use crate::cluster::image::{
    assign_replicas, ApplyResult, MetadataCommand, MetadataImage, Rejection,
};
use crate::cluster::quorum::ProposeError;
use crate::group::offsets::OFFSETS_TOPIC;

/// How long a committed change may take to reach this node's image before the answer
/// goes out anyway (it is committed; this node will catch up).
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Where the next topic's first partition goes, so leaders spread over the brokers.
static NEXT_START: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Error)]
pub enum AdminError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    ReplicationFactor(String),
    #[error("{0}")]
    Assignment(String),
    #[error(transparent)]
    Quorum(#[from] ProposeError),
}

/// A topic to create, as CreateTopics and the CLI ask for it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    /// -1: `num_partitions`.
    pub partitions: i32,
    /// -1: the default (1).
    pub replication_factor: i16,
    /// Replicas per partition, when the client placed them itself.
    pub assignments: Option<Vec<Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// The offsets topic's id in a cluster: the same on every node, so the group
/// coordinator's local entry and the image's record are one topic from the start.
pub fn offsets_topic_id(cluster_id: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("logbridge:{OFFSETS_TOPIC}:{cluster_id}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Kafka's settings for the offsets topic: compacted, `offsets.topic.segment.bytes`.
pub fn offsets_topic_configs(segment_bytes: u64) -> BTreeMap<String, String> {
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), segment_bytes.to_string());
    configs
}

/// The replication factor of a new topic: -1 means the default, capped at the live
/// brokers; anything else must be between 1 and the live brokers.
fn replication_factor(rf: i16, default: i16, live: usize) -> Result<usize, AdminError> {
    match rf {
        -1 => Ok((default.max(1) as usize).min(live.max(1))),
        n if n >= 1 && (n as usize) <= live => Ok(n as usize),
        n => Err(AdminError::ReplicationFactor(format!(
            "replication factor {n}: there are {live} live broker(s)"
        ))),
    }
}

/// Kafka's `min.insync.replicas` defaults to 1; logbridge makes it 2 for topics of 3
/// or more copies unless the topic or the broker defaults set it.
fn with_safe_min_insync(
    mut configs: BTreeMap<String, String>,
    rf: usize,
    defaults: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    const KEY: &str = "min.insync.replicas";
    if rf >= 3 && !configs.contains_key(KEY) && !defaults.contains_key(KEY) {
        configs.insert(KEY.to_string(), "2".to_string());
    }
    configs
}

impl Broker {
    /// Brings this node's logs in line with `image` (see `Registry::apply_image`) and
    /// wakes long polls, whose partitions may have changed leader.
    pub fn apply_image(&self, image: &MetadataImage) {
        if let Err(e) = self.registry.apply_image(image) {
            tracing::error!(error = %e, "cannot apply the cluster metadata to the local logs");
        }
        self.take_over_coordination();
        self.refresh_fetch_plan();
        self.data_arrived.notify_waiters();
    }

    /// The group coordinator moves with the leadership of `__consumer_offsets`: for
    /// every partition of it this node has just come to lead, its groups are loaded
    /// from the replicated log (committed offsets survive the move); for every one it
    /// no longer leads — at the first image, every one it does not lead — its groups
    /// are dropped here.
    fn take_over_coordination(&self) {
        let Some(offsets) = self.registry.get(OFFSETS_TOPIC) else {
            return;
        };
        // Partition → the leader epoch this node leads it in: leading it again in a
        // later epoch (images may be skipped) is a new takeover, as the groups may have
        // moved on under another coordinator meanwhile.
        let led: std::collections::BTreeMap<i32, i32> = offsets
            .local_replicas()
            .iter()
            .filter(|r| r.is_leader())
            .map(|r| (r.index, r.leader_epoch()))
            .collect();
        let mut held = self.coordinated.lock();
        let before: std::collections::BTreeMap<i32, i32> = held
            .clone()
            .unwrap_or_else(|| (0..offsets.partition_count()).map(|p| (p, -1)).collect());
        for p in before.keys().filter(|p| !led.contains_key(p)) {
            self.groups.release_partition(*p);
        }
        for (p, epoch) in &led {
            let known = held.as_ref().and_then(|h| h.get(p));
            if known != Some(epoch) {
                if let Err(e) = self.groups.take_over_partition(*p) {
                    tracing::error!(partition = p, error = %e, "cannot load the groups of an offsets partition");
                }
            }
        }
        *held = Some(led);
    }

    /// Waits (bounded) until this node's image satisfies `done`, then applies it here
    /// (off the runtime: it opens and removes files).
    async fn await_applied(&self, done: impl Fn(&MetadataImage) -> bool) {
        let Some(q) = self.quorum() else { return };
        let mut rx = q.subscribe();
        let _ = tokio::time::timeout(APPLY_WAIT, rx.wait_for(|i| done(i))).await;
        let image = q.image();
        if !q.complete(&image) {
            return;
        }
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_threaded {
            tokio::task::block_in_place(|| self.apply_image(&image));
        } else {
            self.apply_image(&image);
        }
    }

    async fn commit(&self, cmd: MetadataCommand) -> Result<(), AdminError> {
        let q = self.quorum().expect("commit is only called in a cluster");
        match q.propose(cmd).await? {
            ApplyResult::Rejected(Rejection::TopicExists(name)) => {
                Err(AdminError::Registry(RegistryError::AlreadyExists(name)))
            }
            ApplyResult::Rejected(Rejection::UnknownTopic(name)) => {
                Err(AdminError::Registry(RegistryError::UnknownTopic(name)))
            }
            ApplyResult::Rejected(other) => Err(AdminError::Assignment(other.to_string())),
            _ => Ok(()),
        }
    }

    /// The replication factor a topic asked with `asked` (-1: the default) gets here.
    pub fn replication_factor_for(&self, asked: i16) -> i16 {
        match (asked, self.quorum()) {
            (-1, None) => 1,
            (-1, Some(q)) => {
                let live = q.image().live_brokers().len();
                replication_factor(-1, self.settings.default_replication_factor, live)
                    .map_or(1, |rf| rf as i16)
            }
            (n, _) => n,
        }
    }

    /// Whether `id` is a registered broker (for explicit replica assignments).
    pub fn is_registered(&self, id: i32) -> bool {
        match self.quorum() {
            None => id == self.node_id(),
            Some(q) => q.image().brokers.contains_key(&id),
        }
    }

    /// Creates a topic, or with `validate_only` checks that it could be created.
    pub async fn create_topic(
        &self,
        spec: TopicSpec,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let partitions = match (&spec.assignments, spec.partitions) {
            (Some(a), _) => a.len() as i32,
            (None, -1) => self.settings.num_partitions,
            (None, n) => n,
        };
        let asked_rf = match &spec.assignments {
            Some(a) => a.first().map_or(0, |r| r.len() as i16),
            None => spec.replication_factor,
        };
        let Some(q) = self.quorum() else {
            replication_factor(asked_rf, 1, 1)?;
            self.registry
                .validate_create(&spec.name, partitions, &spec.configs)?;
            if !validate_only {
                self.registry.create(&spec.name, partitions, spec.configs)?;
            }
            return Ok(());
        };
        let image = q.image();
        if image.topics.contains_key(&spec.name) {
            return Err(RegistryError::AlreadyExists(spec.name).into());
        }
        let live = image.live_brokers().len();
        let rf = replication_factor(asked_rf, self.settings.default_replication_factor, live)?;
        let configs = with_safe_min_insync(spec.configs, rf, &self.settings.topic_defaults);
        // The name, count and configs by the same rules as a cluster of one.
        self.registry
            .validate_shape(&spec.name, partitions, &configs)?;
        let assignments = match spec.assignments {
            Some(a) => a,
            None => assign_replicas(
                &image,
                partitions,
                rf,
                NEXT_START.fetch_add(1, Ordering::Relaxed),
            )
            .map_err(AdminError::ReplicationFactor)?,
        };
        if validate_only {
            return Ok(());
        }
        let id = if spec.name == OFFSETS_TOPIC {
            offsets_topic_id(&self.settings.cluster_id)
        } else {
            Uuid::new_v4()
        };
        let name = spec.name.clone();
        let created = self
            .commit(MetadataCommand::CreateTopic {
                name: spec.name,
                id,
                configs,
                assignments,
            })
            .await;
        match created {
            Ok(()) => {}
            // A proposal retried after an answer was lost: if the topic that exists is
            // ours (its id), the creation succeeded.
            Err(AdminError::Registry(RegistryError::AlreadyExists(_))) => {
                self.await_applied(|i| i.topics.contains_key(&name)).await;
                if !q.image().topics.get(&name).is_some_and(|t| t.id == id) {
                    return Err(RegistryError::AlreadyExists(name).into());
                }
            }
            Err(e) => return Err(e),
        }
        self.await_applied(|i| i.topics.contains_key(&name)).await;
        tracing::info!(topic = %name, partitions, "created topic through the metadata quorum");
        Ok(())
    }

    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if is_internal(name) {
            return Err(RegistryError::Internal(name.to_string()).into());
        }
        let Some(q) = self.quorum() else {
            return Ok(self.registry.delete(name)?.id);
        };
        let id = q
            .image()
            .topics
            .get(name)
            .map(|t| t.id)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        match self
            .commit(MetadataCommand::DeleteTopic {
                name: name.to_string(),
            })
            .await
        {
            // It existed when asked for; a retried proposal found it already gone.
            Ok(()) | Err(AdminError::Registry(RegistryError::UnknownTopic(_))) => {}
            Err(e) => return Err(e),
        }
        self.await_applied(|i| !i.topics.contains_key(name)).await;
        Ok(id)
    }

    /// Grows a topic to `count` partitions (CreatePartitions).
    pub async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let Some(q) = self.quorum() else {
            return Ok(self.registry.add_partitions(name, count, validate_only)?);
        };
        let image = q.image();
        let topic = image
            .topics
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if !super::registry::grows_to(current, count) {
            return Err(RegistryError::InvalidPartitions(count).into());
        }
        // New partitions get as many copies as the topic's first.
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let assignments = assign_replicas(
            &image,
            count - current,
            rf,
            NEXT_START.fetch_add(1, Ordering::Relaxed),
        )
        .map_err(AdminError::ReplicationFactor)?;
        if validate_only {
            return Ok(());
        }
        self.commit(MetadataCommand::CreatePartitions {
            name: name.to_string(),
            assignments,
        })
        .await?;
        self.await_applied(|i| {
            i.topics
                .get(name)
                .is_some_and(|t| t.partitions.len() as i32 >= count)
        })
        .await;
        Ok(())
    }

    /// Auto-creation (Metadata, ingest): whether the topic exists now, created with
    /// `num_partitions` if `auto_create_topics` allows.
    pub async fn auto_create(&self, name: &str) -> Result<bool, AdminError> {
        if self.topic_view(name).is_some() {
            return Ok(true);
        }
        if !self.settings.auto_create_topics {
            return Ok(false);
        }
        let spec = TopicSpec {
            name: name.to_string(),
            partitions: -1,
            replication_factor: -1,
            assignments: None,
            configs: BTreeMap::new(),
        };
        match self.create_topic(spec, false).await {
            Ok(()) | Err(AdminError::Registry(RegistryError::AlreadyExists(_))) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// In a cluster, creates `__consumer_offsets` the first time a coordinator is looked
    /// for (as Kafka does), once brokers have registered to spread it over.
    pub async fn ensure_offsets_topic(&self) -> Result<(), AdminError> {
        let Some(q) = self.quorum() else {
            return Ok(());
        };
        if self.topic_view(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        // As Kafka: not before `offsets.topic.replication.factor` brokers are alive
        // (capped at the voters, so a smaller cluster is not kept waiting forever).
        let voters = self.settings.parsed_voters().map(|v| v.len()).unwrap_or(1);
        let rf =
            (self.settings.offsets_topic_replication_factor.max(1) as usize).min(voters.max(1));
        let live = q.image().live_brokers().len();
        if live < rf {
            tracing::debug!(
                live,
                needed = rf,
                "the offsets topic waits for more brokers"
            );
            return Ok(());
        }
        let spec = TopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            partitions: self.settings.offsets_topic_num_partitions,
            replication_factor: rf as i16,
            assignments: None,
            configs: offsets_topic_configs(self.settings.offsets_topic_segment_bytes),
        };
        match self.create_topic(spec, false).await {
            Ok(()) | Err(AdminError::Registry(RegistryError::AlreadyExists(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether this node coordinates `group`: it leads the group's partition of
    /// `__consumer_offsets` and has loaded that partition's groups in its current
    /// leader epoch (always, in a cluster of one). Between the image naming it leader
    /// and the load, the group's requests are answered NOT_COORDINATOR, never from
    /// what an earlier term held (an OffsetFetch would answer "nothing committed").
    pub fn coordinates(&self, group: &str) -> bool {
        if self.quorum().is_none() {
            return true;
        }
        if self.coordinator_of(group) != Some(self.node_id()) {
            return false;
        }
        let Some(offsets) = self.registry.get(OFFSETS_TOPIC) else {
            return false;
        };
        let index = crate::group::offsets::partition_for_group(group, offsets.partition_count());
        let Some(replica) = offsets.partition(index) else {
            return false;
        };
        let loaded_in = self
            .coordinated
            .lock()
            .as_ref()
            .and_then(|held| held.get(&index).copied());
        replica.is_leader() && loaded_in == Some(replica.leader_epoch())
    }

    /// The node leading `group`'s partition of the offsets topic, if it has a leader.
    pub fn coordinator_of(&self, group: &str) -> Option<i32> {
        let view = self.topic_view(OFFSETS_TOPIC)?;
        let p = crate::group::offsets::partition_for_group(group, view.partitions.len() as i32);
        view.partitions
            .get(p as usize)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }
}

/// Keeps the local logs in line with the image as it changes, until `stop`.
pub async fn follow_image(broker: Arc<Broker>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(q) = broker.quorum() else { return };
    let mut rx = q.subscribe();
    loop {
        let image = rx.borrow_and_update().clone();
        // A restarted node's image is empty until its log is re-applied: applied
        // early, it would remove every local topic.
        if q.complete(&image) {
            let b = broker.clone();
            let _ = tokio::task::spawn_blocking(move || b.apply_image(&image)).await;
        }
        tokio::select! {
            _ = stop.changed() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}
