//! The topic registry: which topics exist, their ids, partition counts and config
//! overrides, and the open partition logs. Topic metadata is persisted as one JSON file
//! per topic under `<data>/__meta/topics/` (written to a temporary file and renamed, so
//! a crash leaves either the old or the new file).
//!
//! In a cluster the metadata image says which topics exist and which of their partitions
//! this node holds a replica of (`apply_image`); the registry then keeps only those
//! partitions' logs, and records which in the topic's file.
//!
//! Invariants: a topic in the map has the logs of every partition this node holds open
//! (all of them in a cluster of one); a topic's partition count only grows; a topic
//! name is valid by Kafka's rules.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::cluster::image::{MetadataImage, TopicRecord};
use crate::config::Settings;
use crate::replication::replica::{Leadership, Replica};
use crate::storage::config::{ConfigError, LogConfig};
use crate::storage::log::PartitionLog;
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("invalid topic name '{name}': {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    #[error("'{0}' is an internal topic: only the broker writes or removes it")]
    Internal(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write topic metadata: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt topic metadata {path}: {why}")]
    CorruptMeta { path: PathBuf, why: String },
    #[error("{0}")]
    OtherMode(String),
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub overrides: RwLock<BTreeMap<String, String>>,
    /// One slot per partition of the topic: the replica if this node holds one.
    partitions: RwLock<Vec<Option<Arc<Replica>>>>,
}

impl Topic {
    /// The replica of partition `index` this node holds, if any.
    pub fn partition(&self, index: i32) -> Option<Arc<Replica>> {
        if index < 0 {
            return None;
        }
        self.partitions
            .read()
            .get(index as usize)
            .cloned()
            .flatten()
    }

    /// The topic's partition count, held here or not.
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }

    /// The replicas this node holds, in partition order.
    pub fn local_replicas(&self) -> Vec<Arc<Replica>> {
        self.partitions.read().iter().flatten().cloned().collect()
    }
}

#[derive(Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
    /// The partitions held here, in a cluster (absent: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local: Option<Vec<i32>>,
}

pub struct Registry {
    data_dir: PathBuf,
    settings: Settings,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    by_id: RwLock<HashMap<Uuid, Arc<Topic>>>,
    /// Serialises create/delete/grow so that two creators of one name cannot race.
    admin: Mutex<()>,
    /// Topics come from the cluster's metadata image, not from local creation.
    clustered: bool,
    /// The newest metadata image applied (its log index).
    applied_index: Mutex<u64>,
}

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: i32 = 100_000;

/// Whether a topic of `current` partitions may grow to `count` (CreatePartitions: more,
/// never fewer, within `MAX_PARTITIONS`).
pub fn grows_to(current: i32, count: i32) -> bool {
    count > current && count <= MAX_PARTITIONS
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), RegistryError> {
    let bad = |why| {
        Err(RegistryError::InvalidName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Topics only the broker writes (Kafka's `Topic.isInternal`): clients may read them,
/// never produce to them, whatever door they come in by.
pub const INTERNAL_TOPICS: &[&str] = &[crate::group::offsets::OFFSETS_TOPIC, "__transaction_state"];

pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Whether `dir` holds only what a partition log writes (segment, index and
/// compaction files named by a 20-digit base offset, and its checkpoints), so that nothing else in the
/// data directory is ever taken for an orphaned partition.
fn looks_like_partition_dir(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    use crate::storage::{epochs::CHECKPOINT_FILE, log::HW_CHECKPOINT_FILE};
    entries.flatten().all(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let checkpoint = name.strip_suffix(".tmp").unwrap_or(&name);
        if checkpoint == CHECKPOINT_FILE || checkpoint == HW_CHECKPOINT_FILE {
            return true;
        }
        name.len() > 21
            && name.as_bytes()[..20].iter().all(u8::is_ascii_digit)
            && [".log", ".index", ".timeindex", ".cleaned"]
                .iter()
                .any(|ext| name.ends_with(ext))
    })
}

impl Registry {
    fn meta_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("__meta").join("topics")
    }

    /// A new replica here: in a cluster of one this node leads it; in a cluster it leads
    /// nothing until the metadata image says so.
    fn new_replica(&self, index: i32, log: PartitionLog) -> Arc<Replica> {
        let node = self.settings.node_id;
        let leadership = if self.clustered {
            Leadership::unknown()
        } else {
            Leadership::sole(node)
        };
        Arc::new(Replica::new(index, node, log, leadership))
    }

    fn partition_dir(&self, topic: &str, p: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{p}"))
    }

    /// Opens every persisted topic. `clean` says whether the last stop was clean.
    pub fn open(settings: &Settings, clean: bool) -> Result<Registry, RegistryError> {
        let data_dir = settings.data_dir.clone();
        fs::create_dir_all(Self::meta_dir(&data_dir))?;
        for entry in fs::read_dir(Self::meta_dir(&data_dir))?.flatten() {
            // A metadata write a crash or a full disk interrupted.
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let reg = Registry {
            data_dir: data_dir.clone(),
            settings: settings.clone(),
            topics: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
            admin: Mutex::new(()),
            clustered: settings.is_cluster(),
            applied_index: Mutex::new(0),
        };
        for entry in fs::read_dir(Self::meta_dir(&data_dir))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = fs::read_to_string(&path)?;
            let meta: TopicMeta =
                serde_json::from_str(&text).map_err(|e| RegistryError::CorruptMeta {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            // A data directory serves one mode: a cluster node whose image does not
            // know a single node's topics would delete them, and a single node would
            // serve a cluster node's few partitions as if they were all.
            match (reg.clustered, &meta.local) {
                (true, None) => return Err(RegistryError::OtherMode(format!(
                    "{} holds topic '{}' of a single node: a cluster node needs a data directory of its own (moving topics into a cluster is not built yet)",
                    data_dir.display(), meta.name
                ))),
                (false, Some(_)) => return Err(RegistryError::OtherMode(format!(
                    "{} holds topic '{}' of a cluster node: start it with its voters",
                    data_dir.display(), meta.name
                ))),
                _ => {}
            }
            let config = settings.topic_log_config(&meta.configs)?;
            let mut parts = Vec::new();
            for p in 0..meta.partitions {
                if meta.local.as_ref().is_some_and(|l| !l.contains(&p)) {
                    parts.push(None);
                    continue;
                }
                let log =
                    PartitionLog::open(&reg.partition_dir(&meta.name, p), config.clone(), clean)?;
                parts.push(Some(reg.new_replica(p, log)));
            }
            let topic = Arc::new(Topic {
                name: meta.name.clone(),
                id: meta.id,
                overrides: RwLock::new(meta.configs),
                partitions: RwLock::new(parts),
            });
            reg.by_id.write().insert(topic.id, topic.clone());
            reg.topics.write().insert(meta.name, topic);
        }
        reg.remove_orphans();
        Ok(reg)
    }

    /// Removes partition directories no topic owns: what a delete interrupted by a
    /// crash, or a failed create, left behind — so their space comes back.
    fn remove_orphans(&self) {
        let Ok(entries) = fs::read_dir(&self.data_dir) else {
            return;
        };
        let topics = self.topics.read();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((topic, p)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(p) = p.parse::<i32>() else { continue };
            if validate_topic_name(topic).is_err() || !looks_like_partition_dir(&entry.path()) {
                continue;
            }
            if topics.get(topic).is_some_and(|t| t.partition(p).is_some()) {
                continue;
            }
            tracing::info!(dir = %entry.path().display(), "removing the directory of a deleted partition");
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove an orphaned partition directory");
            }
        }
    }

    fn write_meta(&self, topic: &Topic) -> Result<(), RegistryError> {
        let meta = TopicMeta {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partition_count(),
            configs: topic.overrides.read().clone(),
            local: self.clustered.then(|| {
                topic
                    .partitions
                    .read()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.is_some())
                    .map(|(i, _)| i as i32)
                    .collect()
            }),
        };
        let dir = Self::meta_dir(&self.data_dir);
        let tmp = dir.join(format!("{}.json.tmp", topic.name));
        let fin = dir.join(format!("{}.json", topic.name));
        let written = fs::File::create(&tmp).and_then(|f| {
            serde_json::to_writer_pretty(&f, &meta).map_err(std::io::Error::other)?;
            f.sync_all()
        });
        if let Err(e) = written {
            // A full disk: the old file (if any) stands, and no half-written one stays.
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        fs::rename(&tmp, &fin)?;
        fs::File::open(&dir)?.sync_all()?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.by_id.read().get(id).cloned()
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.topics.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks a creation without doing it (CreateTopics `validate_only`).
    pub fn validate_create(
        &self,
        name: &str,
        partitions: i32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, RegistryError> {
        if self.topics.read().contains_key(name) {
            return Err(RegistryError::AlreadyExists(name.to_string()));
        }
        self.validate_shape(name, partitions, overrides)
    }

    /// The name, partition count and configs of a new topic, by Kafka's rules (whether
    /// it exists is the caller's question: in a cluster the image answers it).
    pub fn validate_shape(
        &self,
        name: &str,
        partitions: i32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, RegistryError> {
        validate_topic_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(RegistryError::InvalidPartitions(partitions));
        }
        Ok(self.settings.topic_log_config(overrides)?)
    }

    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, RegistryError> {
        let _guard = self.admin.lock();
        let config = self.validate_create(name, partitions, &overrides)?;
        let mut parts = Vec::new();
        for p in 0..partitions {
            let dir = self.partition_dir(name, p);
            // Leftovers of a topic deleted while we were down must not resurface.
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            let log = PartitionLog::open(&dir, config.clone(), true)?;
            parts.push(Some(self.new_replica(p, log)));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            overrides: RwLock::new(overrides),
            partitions: RwLock::new(parts),
        });
        if let Err(e) = self.write_meta(&topic) {
            // Nothing of a topic that could not be recorded stays behind.
            for p in 0..partitions {
                let _ = fs::remove_dir_all(self.partition_dir(name, p));
            }
            return Err(e);
        }
        self.by_id.write().insert(topic.id, topic.clone());
        self.topics.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// An entry for a topic whose partitions the cluster has not yet assigned (the
    /// offsets topic, which the group coordinator holds from the start): `count` slots,
    /// no logs, nothing written until the image gives this node a partition.
    pub fn placeholder(
        &self,
        name: &str,
        id: Uuid,
        count: i32,
        configs: BTreeMap<String, String>,
    ) -> Arc<Topic> {
        let _guard = self.admin.lock();
        if let Some(t) = self.get(name) {
            return t;
        }
        let t = Arc::new(Topic {
            name: name.to_string(),
            id,
            overrides: RwLock::new(configs),
            partitions: RwLock::new(vec![None; count.max(0) as usize]),
        });
        self.by_id.write().insert(id, t.clone());
        self.topics.write().insert(name.to_string(), t.clone());
        t
    }

    /// Auto-creation on Metadata: returns the existing topic, or creates it with
    /// `num.partitions` when `auto.create.topics.enable` is on.
    pub fn get_or_auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>, RegistryError> {
        if let Some(t) = self.get(name) {
            return Ok(Some(t));
        }
        if !self.settings.auto_create_topics {
            return Ok(None);
        }
        match self.create(name, self.settings.num_partitions, BTreeMap::new()) {
            Ok(t) => Ok(Some(t)),
            Err(RegistryError::AlreadyExists(_)) => Ok(self.get(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and gives its space back at once (see `PartitionLog::release`);
    /// nothing is written, so this works on a full disk. Partition directories left by
    /// a crash in the middle are removed at the next start (`remove_orphans`).
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, RegistryError> {
        if is_internal(name) {
            return Err(RegistryError::Internal(name.to_string()));
        }
        let _guard = self.admin.lock();
        self.remove(name)
    }

    /// Removes a topic's logs and record here (under the admin lock).
    fn remove(&self, name: &str) -> Result<Arc<Topic>, RegistryError> {
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        self.by_id.write().remove(&topic.id);
        fs::remove_file(Self::meta_dir(&self.data_dir).join(format!("{name}.json")))?;
        for p in topic.local_replicas() {
            self.drop_replica(name, &p);
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    fn drop_replica(&self, topic: &str, replica: &Replica) {
        replica.maintain(|log| log.release());
        let dir = self.partition_dir(topic, replica.index);
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
        }
    }

    /// Brings the local topics in line with the cluster's metadata image: opens the
    /// replicas this node is assigned, gives every held replica the leadership the
    /// image records, and removes topics (or replicas) the image no longer gives this
    /// node. Idempotent: applying the same image twice changes nothing.
    pub fn apply_image(&self, image: &MetadataImage) -> Result<(), RegistryError> {
        let node = self.settings.node_id;
        let _guard = self.admin.lock();
        // Images may arrive out of order (the follower task and a handler that waited
        // for its own change): an older one never undoes a newer one.
        {
            let mut applied = self.applied_index.lock();
            if image.applied_index < *applied {
                return Ok(());
            }
            *applied = image.applied_index;
        }
        let stale: Vec<String> = self
            .topics
            .read()
            .values()
            .filter(|t| match image.topics.get(&t.name) {
                // The group coordinator holds the offsets topic's entry from the start.
                None => t.name != crate::group::offsets::OFFSETS_TOPIC,
                Some(r) => r.id != t.id,
            })
            .map(|t| t.name.clone())
            .collect();
        // One topic that cannot be brought in line (its configs, a failed removal) is
        // logged and retried with the next image; it holds up no other topic.
        let mut first_error = None;
        for name in stale {
            if let Err(e) = self.remove(&name) {
                tracing::error!(topic = %name, error = %e, "cannot remove a topic the cluster deleted");
                first_error.get_or_insert(e);
            }
        }
        for record in image.topics.values() {
            if let Err(e) = self.apply_topic(record, node) {
                tracing::error!(topic = %record.name, error = %e, "cannot apply the cluster's metadata to a topic");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One topic of `apply_image`: new replicas are opened and recorded in the topic's
    /// file before any of them may lead, so a crash in between never leaves a replica
    /// that took writes unrecorded (the next start would remove its directory).
    fn apply_topic(&self, record: &TopicRecord, node: i32) -> Result<(), RegistryError> {
        let topic = match self.get(&record.name) {
            Some(t) => t,
            None => {
                let t = Arc::new(Topic {
                    name: record.name.clone(),
                    id: record.id,
                    overrides: RwLock::new(record.configs.clone()),
                    partitions: RwLock::new(Vec::new()),
                });
                self.by_id.write().insert(t.id, t.clone());
                self.topics.write().insert(t.name.clone(), t.clone());
                t
            }
        };
        let config = self.settings.topic_log_config(&record.configs)?;
        let mut changed = false;
        let mut dropped = Vec::new();
        {
            let mut slots = topic.partitions.write();
            while slots.len() < record.partitions.len() {
                slots.push(None);
                changed = true;
            }
            for (i, p) in record.partitions.iter().enumerate() {
                let hosted = p.replicas.contains(&node);
                if hosted && slots[i].is_none() {
                    let dir = self.partition_dir(&record.name, i as i32);
                    // Leftovers of an earlier topic of this name must not resurface.
                    if dir.exists() {
                        fs::remove_dir_all(&dir)?;
                    }
                    let log = PartitionLog::open(&dir, config.clone(), true)?;
                    slots[i] = Some(self.new_replica(i as i32, log));
                    changed = true;
                } else if !hosted {
                    if let Some(r) = slots[i].take() {
                        dropped.push(r);
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.write_meta(&topic)?;
        }
        for (i, p) in record.partitions.iter().enumerate() {
            if let Some(r) = topic.partition(i as i32) {
                r.set_leadership(Leadership {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                });
            }
        }
        for r in dropped {
            self.drop_replica(&record.name, &r);
        }
        Ok(())
    }

    /// Grows a topic to `count` partitions (CreatePartitions).
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), RegistryError> {
        let _guard = self.admin.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        let current = topic.partition_count();
        if !grows_to(current, count) {
            return Err(RegistryError::InvalidPartitions(count));
        }
        if validate_only {
            return Ok(());
        }
        let config = self.settings.topic_log_config(&topic.overrides.read())?;
        let remove_new = || {
            for p in current..count {
                let _ = fs::remove_dir_all(self.partition_dir(name, p));
            }
        };
        let mut new_parts = Vec::new();
        for p in current..count {
            match PartitionLog::open(&self.partition_dir(name, p), config.clone(), true) {
                Ok(log) => new_parts.push(Some(self.new_replica(p, log))),
                Err(e) => {
                    remove_new();
                    return Err(e.into());
                }
            }
        }
        topic.partitions.write().extend(new_parts);
        if let Err(e) = self.write_meta(&topic) {
            // The count on disk is the old one: so is the topic's.
            topic.partitions.write().truncate(current as usize);
            remove_new();
            return Err(e);
        }
        Ok(())
    }

    /// Every open partition, for background flush and retention work.
    pub fn all_partitions(&self) -> Vec<(String, Arc<Replica>)> {
        self.list()
            .into_iter()
            .flat_map(|t| {
                let name = t.name.clone();
                t.local_replicas()
                    .into_iter()
                    .map(move |p| (name.clone(), p))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{MetadataCommand, MetadataImage};

    fn clustered(dir: &Path, node: i32) -> Registry {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            node_id: node,
            voters: "1@a:1,2@b:1".into(),
            ..Settings::default()
        };
        Registry::open(&settings, true).unwrap()
    }

    fn image_with(topics: &[(&str, Vec<Vec<i32>>)]) -> MetadataImage {
        let mut image = MetadataImage::with_brokers(1..=2);
        for (name, assignments) in topics {
            image.apply(
                10,
                &MetadataCommand::CreateTopic {
                    name: name.to_string(),
                    id: Uuid::new_v4(),
                    configs: BTreeMap::new(),
                    assignments: assignments.clone(),
                },
            );
        }
        image
    }

    #[test]
    fn a_node_holds_exactly_the_partitions_the_image_gives_it_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let reg = clustered(dir.path(), 2);
        let mut image = image_with(&[("t", vec![vec![1], vec![2], vec![1], vec![2]])]);
        reg.apply_image(&image).unwrap();
        reg.apply_image(&image).unwrap();
        let t = reg.get("t").unwrap();
        assert_eq!(t.partition_count(), 4);
        let held: Vec<i32> = t.local_replicas().iter().map(|r| r.index).collect();
        assert_eq!(held, vec![1, 3]);
        assert!(t.partition(1).unwrap().is_leader());
        assert!(!dir.path().join("t-0").exists() && dir.path().join("t-1").exists());
        drop((t, reg));
        // Reopened before any image arrives: the same partitions, leading nothing yet.
        let reg = clustered(dir.path(), 2);
        let t = reg.get("t").unwrap();
        let held: Vec<i32> = t.local_replicas().iter().map(|r| r.index).collect();
        assert_eq!(held, vec![1, 3]);
        assert!(!t.partition(1).unwrap().is_leader());
        reg.apply_image(&image).unwrap();
        assert!(reg.get("t").unwrap().partition(1).unwrap().is_leader());
        // Deleted from the image: gone here too, directories and all.
        image.apply(20, &MetadataCommand::DeleteTopic { name: "t".into() });
        reg.apply_image(&image).unwrap();
        assert!(reg.get("t").is_none());
        assert!(!dir.path().join("t-1").exists() && !dir.path().join("t-3").exists());
    }

    #[test]
    fn the_offsets_placeholder_waits_for_the_image_and_a_recreated_topic_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let reg = clustered(dir.path(), 1);
        let offsets = crate::group::offsets::OFFSETS_TOPIC;
        reg.placeholder(offsets, Uuid::new_v4(), 2, BTreeMap::new());
        let image = image_with(&[("u", vec![vec![1]])]);
        reg.apply_image(&image).unwrap();
        assert!(
            reg.get(offsets).is_some(),
            "the coordinator's entry is kept"
        );
        let u = reg.get("u").unwrap();
        u.partition(0)
            .unwrap()
            .append_batches(
                crate::protocol::records::encode_batch(
                    vec![(None, Some(bytes::Bytes::from_static(b"x")))],
                    0,
                    kafka_protocol::records::Compression::None,
                )
                .unwrap(),
                0,
            )
            .unwrap();
        // "u" deleted and created again under a new id: a new, empty log.
        let again = image_with(&[("u", vec![vec![1]])]);
        reg.apply_image(&again).unwrap();
        let u2 = reg.get("u").unwrap();
        assert_ne!(u.id, u2.id);
        assert_eq!(u2.partition(0).unwrap().offsets().log_end, 0);
    }

    #[test]
    fn an_older_image_never_undoes_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let reg = clustered(dir.path(), 1);
        let mut newer = image_with(&[("t", vec![vec![1]])]);
        newer.applied_index = 5;
        reg.apply_image(&newer).unwrap();
        let mut older = image_with(&[]);
        older.applied_index = 3;
        reg.apply_image(&older).unwrap();
        assert!(
            reg.get("t").is_some(),
            "applied late, an older image removed a topic"
        );
    }

    #[test]
    fn a_data_directory_serves_one_mode() {
        let dir = tempfile::tempdir().unwrap();
        let single = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        Registry::open(&single, true)
            .unwrap()
            .create("kept", 1, BTreeMap::new())
            .unwrap();
        let err = Registry::open(
            &Settings {
                voters: "1@a:1".into(),
                node_id: 1,
                ..single.clone()
            },
            true,
        )
        .err()
        .expect("a single node's topics in a cluster node");
        assert!(err.to_string().contains("'kept' of a single node"), "{err}");
        assert!(dir.path().join("kept-0").exists(), "nothing was removed");
    }
}
