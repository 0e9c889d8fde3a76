//! The topic registry: which topics exist, their ids, partition counts and config
//! overrides, and the open partition logs. Topic metadata is persisted as one JSON file
//! per topic under `<data>/__meta/topics/` (written to a temporary file and renamed, so
//! a crash leaves either the old or the new file).
//!
//! Invariants: a topic in the map has all of its partition logs open; a topic's
//! partition count only grows; a topic name is valid by Kafka's rules.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

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
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub overrides: RwLock<BTreeMap<String, String>>,
    pub partitions: RwLock<Vec<Arc<Replica>>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Replica>> {
        if index < 0 {
            return None;
        }
        self.partitions.read().get(index as usize).cloned()
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }
}

#[derive(Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

pub struct Registry {
    data_dir: PathBuf,
    settings: Settings,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    by_id: RwLock<HashMap<Uuid, Arc<Topic>>>,
    /// Serialises create/delete/grow so that two creators of one name cannot race.
    admin: Mutex<()>,
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
/// compaction files named by a 20-digit base offset), so that nothing else in the
/// data directory is ever taken for an orphaned partition.
fn looks_like_partition_dir(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let name = e.file_name().to_string_lossy().to_string();
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

    /// A partition of a cluster of one: this node leads it.
    fn new_replica(&self, index: i32, log: PartitionLog) -> Arc<Replica> {
        let node = self.settings.node_id;
        Arc::new(Replica::new(index, node, log, Leadership::sole(node)))
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
            let config = settings.topic_log_config(&meta.configs)?;
            let mut parts = Vec::new();
            for p in 0..meta.partitions {
                let log =
                    PartitionLog::open(&reg.partition_dir(&meta.name, p), config.clone(), clean)?;
                parts.push(reg.new_replica(p, log));
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
            if topics.get(topic).is_some_and(|t| p < t.partition_count()) {
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
        validate_topic_name(name)?;
        if self.topics.read().contains_key(name) {
            return Err(RegistryError::AlreadyExists(name.to_string()));
        }
        if !(1..=100_000).contains(&partitions) {
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
            parts.push(self.new_replica(p, log));
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
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        self.by_id.write().remove(&topic.id);
        fs::remove_file(Self::meta_dir(&self.data_dir).join(format!("{name}.json")))?;
        for p in topic.partitions.read().iter() {
            p.maintain(|log| log.release());
            let dir = self.partition_dir(name, p.index);
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
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
        if count <= current || count > 100_000 {
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
                Ok(log) => new_parts.push(self.new_replica(p, log)),
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
                t.partitions
                    .read()
                    .iter()
                    .map(move |p| (name.clone(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
