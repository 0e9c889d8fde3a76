//! Committed offsets: an in-memory table backed by the internal topic
//! `__consumer_offsets`, written in Kafka's own record formats so that the log is what
//! Kafka tools expect:
//! - key `OffsetCommitKey` v1: `i16 version, string group, string topic, i32 partition`;
//! - value `OffsetCommitValue` v3: `i16 version, i64 offset, i32 leader epoch,
//!   string metadata, i64 commit timestamp`; a null value (tombstone) deletes.
//!
//! Group metadata records (key v2, see `metadata_record.rs`) share the topic and are
//! read here too. A group's records go to partition `abs(javaHashCode(group)) % partitions`, as in
//! Kafka. Invariants: the table changes only after the records describing the change
//! are appended to the log; on start the table is rebuilt by replaying the log, the
//! latest record per key winning.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::Compression;
use thiserror::Error;

use super::metadata_record::{self, StoredGroup};
use crate::broker::registry::Topic;
use crate::protocol::records::encode_batch;
use crate::storage::batch;
use crate::storage::records::decode_records;
use crate::storage::StorageError;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Tombstones per batch when deletions are written: each is a key of at most a few
/// hundred bytes, so a batch stays well under the topic's `max.message.bytes`.
const DELETIONS_PER_BATCH: usize = 1000;

#[derive(Debug, Error)]
pub enum OffsetsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Replica(#[from] crate::replication::replica::ReplicaError),
    #[error("cannot encode offset records: {0}")]
    Encode(String),
    #[error("offsets topic has no partition {0}")]
    NoPartition(i32),
    #[error("a commit of {size} bytes exceeds the offsets topic's max.message.bytes of {max}")]
    TooLarge { size: usize, max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// Java's `String.hashCode` over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition that holds `group`'s records.
pub fn partition_for_group(group: &str, partitions: i32) -> i32 {
    // Kafka's Utils.abs: i32::MIN maps to 0.
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len().min(i16::MAX as usize) as i16);
    buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return None;
    }
    let s = buf.split_to(len as usize);
    Some(String::from_utf8_lossy(&s).into_owned())
}

pub fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_string(&mut b, group);
    put_string(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

pub fn encode_value(c: &Committed) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_string(&mut b, &c.metadata);
    b.put_i64(c.commit_timestamp);
    b.freeze()
}

/// (group, topic, partition) of an offset-commit key; None for other key kinds.
pub fn decode_key(mut k: Bytes) -> Option<(String, String, i32)> {
    if k.remaining() < 2 {
        return None;
    }
    let version = k.get_i16();
    if version > 1 {
        return None; // group metadata (v2) and newer record kinds
    }
    let group = get_string(&mut k)?;
    let topic = get_string(&mut k)?;
    if k.remaining() < 4 {
        return None;
    }
    Some((group, topic, k.get_i32()))
}

/// Reads OffsetCommitValue v0–v4.
pub fn decode_value(mut v: Bytes) -> Option<Committed> {
    if v.remaining() < 10 {
        return None;
    }
    let version = v.get_i16();
    let offset = v.get_i64();
    let leader_epoch = if version >= 3 {
        if v.remaining() < 4 {
            return None;
        }
        v.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut v)?;
    if v.remaining() < 8 {
        return None;
    }
    let commit_timestamp = v.get_i64();
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;

pub struct OffsetStore {
    topic: Arc<Topic>,
    table: parking_lot::Mutex<HashMap<String, GroupOffsets>>,
    /// Group metadata read at start, until the coordinator takes it.
    stored_groups: parking_lot::Mutex<HashMap<String, StoredGroup>>,
    fsync: bool,
    max_uncompressed: usize,
}

/// What one partition of the offsets topic holds, read to its log end.
struct PartitionContents {
    table: HashMap<String, GroupOffsets>,
    groups: HashMap<String, StoredGroup>,
    records: usize,
}

/// Replays one partition of the offsets topic, the latest record per key winning.
fn read_partition(
    partition: &crate::replication::replica::Replica,
    max_uncompressed: usize,
) -> Result<PartitionContents, OffsetsError> {
    let mut table: HashMap<String, GroupOffsets> = HashMap::new();
    let mut groups: HashMap<String, StoredGroup> = HashMap::new();
    let mut loaded = 0usize;
    let mut from = partition.offsets().log_start;
    loop {
        let Some(plan) = partition.read_to_log_end(from, 8 * 1024 * 1024)? else {
            break;
        };
        let bytes = plan.read().map_err(StorageError::from)?;
        let Ok(batches) = batch::validate_batches(&bytes) else {
            break;
        };
        let Some((_, last)) = batches.last().copied() else {
            break;
        };
        // Batch by batch: one that cannot be read (written before the bounds
        // existed, or damaged) is skipped with a log line, and only that one.
        let mut records = Vec::new();
        for (pos, h) in &batches {
            let one = bytes.slice(*pos..*pos + h.total_len());
            match decode_records(&one, max_uncompressed) {
                Ok(r) => records.extend(r),
                Err(e) => {
                    tracing::warn!(partition = partition.index, base = h.base_offset, error = %e, "skipping an unreadable __consumer_offsets batch");
                }
            }
        }
        for (_, key, value) in records {
            let Some(key) = key else { continue };
            if let Some(group) = metadata_record::decode_key(key.clone()) {
                match value.and_then(metadata_record::decode_value) {
                    Some(g) => groups.insert(group, g),
                    None => groups.remove(&group),
                };
                loaded += 1;
                continue;
            }
            let Some((group, t, p)) = decode_key(key) else {
                continue;
            };
            match value.and_then(decode_value) {
                Some(c) => {
                    table.entry(group).or_default().insert((t, p), c);
                }
                None => {
                    if let Some(g) = table.get_mut(&group) {
                        g.remove(&(t, p));
                    }
                }
            }
            loaded += 1;
        }
        from = last.last_offset() + 1;
    }
    table.retain(|_, g| !g.is_empty());
    Ok(PartitionContents {
        table,
        groups,
        records: loaded,
    })
}

impl OffsetStore {
    /// Rebuilds the table from the log of `topic` (the offsets topic): every
    /// partition held here, to its log end.
    pub fn load(
        topic: Arc<Topic>,
        fsync: bool,
        max_uncompressed: usize,
    ) -> Result<OffsetStore, OffsetsError> {
        let mut table: HashMap<String, GroupOffsets> = HashMap::new();
        let mut groups: HashMap<String, StoredGroup> = HashMap::new();
        let mut loaded = 0usize;
        for partition in topic.local_replicas() {
            let read = read_partition(&partition, max_uncompressed)?;
            table.extend(read.table);
            groups.extend(read.groups);
            loaded += read.records;
        }
        tracing::info!(
            records = loaded,
            groups = table.len(),
            group_metadata = groups.len(),
            "loaded committed offsets"
        );
        Ok(OffsetStore {
            topic,
            table: parking_lot::Mutex::new(table),
            stored_groups: parking_lot::Mutex::new(groups),
            fsync,
            max_uncompressed,
        })
    }

    /// The coordinator takes over partition `index` of the offsets topic (it became
    /// its leader): the offsets of that partition's groups are read again from the
    /// replica's log, to its end, replacing what an earlier term left here; returns
    /// the groups' metadata records, for the coordinator to restore.
    pub fn reload_partition(
        &self,
        index: i32,
    ) -> Result<HashMap<String, StoredGroup>, OffsetsError> {
        let partition = self
            .topic
            .partition(index)
            .ok_or(OffsetsError::NoPartition(index))?;
        let read = read_partition(&partition, self.max_uncompressed)?;
        let count = self.topic.partition_count();
        let mut table = self.table.lock();
        table.retain(|group, _| partition_for_group(group, count) != index);
        table.extend(read.table);
        tracing::info!(
            partition = index,
            records = read.records,
            groups = read.groups.len(),
            "took over a partition of the offsets topic"
        );
        Ok(read.groups)
    }

    /// The groups as their metadata records left them, handed over once (the
    /// coordinator restores them at start).
    pub fn take_stored_groups(&self) -> HashMap<String, StoredGroup> {
        std::mem::take(&mut *self.stored_groups.lock())
    }

    /// Appends a group's metadata record (None: a tombstone, the group is gone).
    pub fn write_group(
        &self,
        group: &str,
        stored: Option<&StoredGroup>,
    ) -> Result<(), OffsetsError> {
        let record = (
            Some(metadata_record::encode_key(group)),
            stored.map(metadata_record::encode_value),
        );
        self.append(group, vec![record])
    }

    /// Appends commits (a value) or deletions (None) for one group, then applies them.
    pub fn write(
        &self,
        group: &str,
        changes: Vec<((String, i32), Option<Committed>)>,
    ) -> Result<(), OffsetsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let records: Vec<(Option<Bytes>, Option<Bytes>)> = changes
            .iter()
            .map(|((t, p), c)| (Some(encode_key(group, t, *p)), c.as_ref().map(encode_value)))
            .collect();
        // The table lock is held across the append so that the table and the log agree
        // on the order of concurrent writes to one key.
        let mut table = self.table.lock();
        if changes.iter().all(|(_, c)| c.is_none()) {
            // Deletions (expiry, DeleteGroups) stand alone: written in batches that
            // keep to the topic's limit however many partitions the group had.
            let mut records = records;
            while !records.is_empty() {
                let rest = records.split_off(records.len().min(DELETIONS_PER_BATCH));
                self.append(group, records)?;
                records = rest;
            }
        } else {
            self.append(group, records)?;
        }
        let entry = table.entry(group.to_string()).or_default();
        for (key, c) in changes {
            match c {
                Some(c) => {
                    entry.insert(key, c);
                }
                None => {
                    entry.remove(&key);
                }
            }
        }
        if entry.is_empty() {
            table.remove(group);
        }
        Ok(())
    }

    /// Appends `records` as one batch to the group's partition, durable under the
    /// flush policy. One write is one batch, as in Kafka, held to the offsets topic's
    /// `max.message.bytes`: a larger one is refused (INVALID_COMMIT_OFFSET_SIZE for a
    /// commit), never stored.
    fn append(
        &self,
        group: &str,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
    ) -> Result<(), OffsetsError> {
        let now = crate::storage::segment::now_ms();
        let bytes = encode_batch(records, now, Compression::None)
            .map_err(|e| OffsetsError::Encode(e.to_string()))?;
        let partition_index = partition_for_group(group, self.topic.partition_count());
        let partition = self
            .topic
            .partition(partition_index)
            .ok_or(OffsetsError::NoPartition(partition_index))?;
        let max = partition.config(|c| c.max_message_bytes);
        if bytes.len() > max {
            return Err(OffsetsError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let info = partition.append_batches(bytes, now)?;
        if self.fsync {
            if let Some(f) = info.file {
                f.sync_data().map_err(StorageError::from)?;
            }
        }
        Ok(())
    }

    /// Drops the offsets of partition `index`'s groups from the table (this node no
    /// longer coordinates them).
    pub fn forget_partition(&self, index: i32) {
        let count = self.topic.partition_count();
        self.table
            .lock()
            .retain(|group, _| partition_for_group(group, count) != index);
    }

    /// The replica of `group`'s partition held here, if any.
    pub fn partition_of(&self, group: &str) -> Option<Arc<crate::replication::replica::Replica>> {
        self.topic
            .partition(partition_for_group(group, self.topic.partition_count()))
    }

    /// The offsets topic's partition count.
    pub fn partition_count(&self) -> i32 {
        self.topic.partition_count()
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.table
            .lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group.
    pub fn all(&self, group: &str) -> Vec<((String, i32), Committed)> {
        self.table
            .lock()
            .get(group)
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub fn groups(&self) -> Vec<String> {
        let mut v: Vec<String> = self.table.lock().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.table.lock().contains_key(group)
    }

    /// Deletes every offset of `group` (DeleteGroups).
    pub fn delete_group(&self, group: &str) -> Result<(), OffsetsError> {
        let keys: Vec<_> = self
            .all(group)
            .into_iter()
            .map(|(k, _)| (k, None))
            .collect();
        self.write(group, keys)
    }

    /// Offsets of the given groups committed before `cutoff_ms` (for expiry).
    pub fn older_than(&self, groups: &[String], cutoff_ms: i64) -> Vec<(String, (String, i32))> {
        let table = self.table.lock();
        groups
            .iter()
            .filter_map(|g| table.get(g).map(|o| (g, o)))
            .flat_map(|(g, o)| {
                o.iter()
                    .filter(|(_, c)| c.commit_timestamp < cutoff_ms)
                    .map(move |(k, _)| (g.clone(), k.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_and_partition_match_kafka() {
        // "".hashCode() == 0, "a" == 97, "test-group".hashCode() == 1016530296 (Java).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(partition_for_group("hello", 50), 99162322 % 50);
        assert!((0..50).contains(&partition_for_group("polygenelubricants", 50)));
    }

    #[test]
    fn key_and_value_round_trip() {
        let k = encode_key("g", "logs", 7);
        assert_eq!(decode_key(k), Some(("g".into(), "logs".into(), 7)));
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: 1234,
        };
        assert_eq!(decode_value(encode_value(&c)), Some(c));
        assert_eq!(decode_value(Bytes::from_static(&[0, 3, 1])), None);
        let mut group_meta = BytesMut::new();
        group_meta.put_i16(2);
        put_string(&mut group_meta, "g");
        assert_eq!(decode_key(group_meta.freeze()), None);
    }
}
