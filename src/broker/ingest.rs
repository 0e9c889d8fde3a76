//! Appending records the appliance builds itself (Beats, HTTP ingest, pipeline outputs)
//! to topics: pick partitions (Kafka's murmur2 for keyed records, round-robin per call
//! otherwise), encode batches compressed with the topic's `compression.type`
//! (`producer` means zstd here: there is no producer batch to keep) at its
//! `compression.*.level`, append, and return
//! only once the records are durable under the flush policy and held by every ISR
//! member of their partition (as a producer's `acks=all`; a partition whose ISR is
//! below `min.insync.replicas` refuses them).
//!
//! The same limits as Kafka produce, on every door: internal topics are refused; a
//! record that alone would make a batch over the topic's `max.message.bytes` is
//! refused (and reported, so the door can answer for that record and store the rest);
//! compacted topics take only keyed records; records are split into batches that stay
//! within `max.message.bytes` and `max_uncompressed_batch_bytes` uncompressed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use kafka_protocol::records::Compression;
use thiserror::Error;

use super::registry::{is_internal, RegistryError};
use super::Broker;
use crate::protocol::partitioner::partition_for_key;
use crate::protocol::records::{encode_records_at, OutRecord};
use crate::storage::batch::HEADER_LEN;
use crate::storage::segment::now_ms;
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("topic '{0}' does not exist and auto-creation is off")]
    NoTopic(String),
    #[error("cannot append to internal topic {0}")]
    InternalTopic(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Replica(#[from] crate::replication::replica::ReplicaError),
    #[error("cannot encode records: {0}")]
    Encode(String),
    #[error("cannot create the topic: {0}")]
    Admin(#[from] super::topic_admin::AdminError),
    #[error("{topic}-{partition} has no leader now")]
    NoLeader { topic: String, partition: i32 },
    #[error("appending through the leader of {topic}-{partition}: {source}")]
    Forward {
        topic: String,
        partition: i32,
        source: crate::replication::forward::ForwardError,
    },
}

/// Why one record was not appended (the others of the call were).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A batch holding only this record would be `size` bytes, over `max.message.bytes`
    /// (or `max_uncompressed_batch_bytes`, if smaller: `limit` names which).
    TooLarge {
        size: usize,
        max: usize,
        limit: &'static str,
    },
    /// A compacted topic needs a key on every record.
    NoKey,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge { size, max, limit } => {
                write!(f, "record of {size} bytes exceeds {limit} of {max}")
            }
            Refusal::NoKey => write!(f, "compacted topic cannot accept a record without a key"),
        }
    }
}

/// What an ingest call did: how many records are durable, and which were refused (by
/// their position in the call's input).
#[derive(Debug, Default)]
pub struct IngestReport {
    pub appended: usize,
    pub refused: Vec<(usize, Refusal)>,
}

/// How long a forwarded append may take, as a producer's `request.timeout.ms`.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

static ROUND_ROBIN: AtomicU32 = AtomicU32::new(0);

fn compression_for(topic_setting: &str) -> Compression {
    match topic_setting {
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

impl Broker {
    /// Appends `records` to `topic` (created on first use when auto-creation is on).
    /// Returns once every appended record is durable; refused records are reported.
    pub fn ingest(
        &self,
        topic: &str,
        records: Vec<OutRecord>,
    ) -> Result<IngestReport, IngestError> {
        if is_internal(topic) {
            return Err(IngestError::InternalTopic(topic.to_string()));
        }
        let mut report = IngestReport::default();
        if records.is_empty() {
            return Ok(report);
        }
        let t = if self.quorum().is_some() {
            // Callers run this off the async runtime (spawn_blocking), where waiting
            // for the quorum's commit of an auto-creation may block.
            let exists = tokio::runtime::Handle::current().block_on(self.auto_create(topic))?;
            self.registry
                .get(topic)
                .filter(|_| exists)
                .ok_or_else(|| IngestError::NoTopic(topic.to_string()))?
        } else {
            self.registry
                .get_or_auto_create(topic)?
                .ok_or_else(|| IngestError::NoTopic(topic.to_string()))?
        };
        let partitions = t.partition_count();
        // Records without a key are spread over the partitions led here (in a cluster
        // of one, all of them), or over all partitions when none is; a keyed record
        // goes to its key's partition. Partitions led elsewhere are appended through
        // their leader (`replication::forward`).
        let local = t.local_replicas();
        let mut spread_over: Vec<i32> = local
            .iter()
            .filter(|r| r.is_leader())
            .map(|r| r.index)
            .collect();
        if spread_over.is_empty() {
            spread_over = (0..partitions).collect();
        }
        if spread_over.is_empty() {
            return Err(IngestError::NoTopic(topic.to_string()));
        }
        let settings_of = |c: &crate::storage::config::LogConfig| {
            let compression = compression_for(&c.compression_type);
            let level = match compression {
                Compression::Gzip => Some(c.gzip_level),
                Compression::Lz4 => Some(c.lz4_level),
                Compression::Zstd => Some(c.zstd_level),
                _ => None,
            };
            (c.max_message_bytes, c.compacts(), compression, level)
        };
        // The config a local replica already holds; only a node that holds none of
        // the topic's partitions (it forwards everything) builds it from the overrides.
        let (max_message, compacted, compression, level) = match local.first() {
            Some(r) => r.config(settings_of),
            None => settings_of(
                &self
                    .settings
                    .topic_log_config(&t.overrides.read())
                    .map_err(RegistryError::from)?,
            ),
        };
        let batch_max = max_message.min(self.settings.max_uncompressed_batch_bytes);
        let spread = ROUND_ROBIN.fetch_add(1, Ordering::Relaxed) as i32;
        let mut by_partition: BTreeMap<i32, Vec<OutRecord>> = BTreeMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let size = HEADER_LEN + r.encoded_len(0);
            if size > batch_max {
                let limit = if batch_max == max_message {
                    "the topic's max.message.bytes"
                } else {
                    "max_uncompressed_batch_bytes"
                };
                report.refused.push((
                    i,
                    Refusal::TooLarge {
                        size,
                        max: batch_max,
                        limit,
                    },
                ));
                continue;
            }
            if compacted && r.key.is_none() {
                report.refused.push((i, Refusal::NoKey));
                continue;
            }
            let p = match &r.key {
                Some(k) => partition_for_key(k, partitions),
                None => spread_over[spread.rem_euclid(spread_over.len() as i32) as usize],
            };
            by_partition.entry(p).or_default().push(r);
        }
        let now = now_ms();
        let mut to_sync = Vec::new();
        let mut awaiting = Vec::new();
        for (p, recs) in by_partition {
            let Some(partition) = t.partition(p).filter(|r| r.is_leader()) else {
                for chunk in split_batches(&recs, batch_max) {
                    let bytes = encode_records_at(chunk, now, compression, level)
                        .map_err(|e| IngestError::Encode(e.to_string()))?;
                    self.forward(topic, p, bytes.freeze())?;
                    report.appended += chunk.len();
                }
                continue;
            };
            partition.check_enough_replicas()?;
            let epoch = partition.leader_epoch();
            let mut end = 0;
            for chunk in split_batches(&recs, batch_max) {
                let bytes = encode_records_at(chunk, now, compression, level)
                    .map_err(|e| IngestError::Encode(e.to_string()))?;
                let info = partition.append_batches(bytes, now)?;
                if let Some(f) = info.file {
                    to_sync.push(f);
                }
                end = info.base_offset + info.records;
                report.appended += chunk.len();
            }
            awaiting.push((partition, end, epoch));
        }
        if self.settings.fsync_before_ack {
            for f in to_sync {
                f.sync_data().map_err(StorageError::from)?;
            }
        }
        self.data_arrived.notify_waiters();
        for (partition, end, epoch) in awaiting {
            if !partition.is_replicated(end, epoch) {
                tokio::runtime::Handle::current().block_on(partition.await_replicated(
                    end,
                    epoch,
                    FORWARD_TIMEOUT,
                ))?;
            }
        }
        Ok(report)
    }

    /// Appends `batch` to `topic`-`partition` through its leader on another node, and
    /// waits for the leader's acknowledgement (called off the runtime, as `ingest`).
    fn forward(&self, topic: &str, partition: i32, batch: bytes::Bytes) -> Result<(), IngestError> {
        let no_leader = || IngestError::NoLeader {
            topic: topic.to_string(),
            partition,
        };
        let leader = self
            .topic_view(topic)
            .and_then(|t| t.partitions.get(partition as usize).map(|p| p.leader))
            .filter(|l| *l >= 0)
            .ok_or_else(no_leader)?;
        let addr = self.inter_node_address(leader).ok_or_else(no_leader)?;
        tokio::runtime::Handle::current()
            .block_on(
                self.forwarder
                    .produce(&addr, topic, partition, batch, FORWARD_TIMEOUT),
            )
            .map(|_| ())
            .map_err(|source| IngestError::Forward {
                topic: topic.to_string(),
                partition,
                source,
            })
    }
}

/// Cuts `records` into runs whose uncompressed batch stays within `max` bytes (a record
/// that alone exceeds it gets a batch of its own; the caller refused those over
/// `max.message.bytes` already).
fn split_batches(records: &[OutRecord], max: usize) -> Vec<&[OutRecord]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0usize, HEADER_LEN);
    for (i, r) in records.iter().enumerate() {
        let len = r.encoded_len(i - start);
        if i > start && size + len > max {
            out.push(&records[start..i]);
            start = i;
            size = HEADER_LEN + r.encoded_len(0);
        } else {
            size += len;
        }
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::records::encode_records;

    #[test]
    fn batches_are_split_at_the_size_limit_and_sizes_are_exact() {
        let recs: Vec<OutRecord> = (0..10)
            .map(|i| OutRecord {
                key: None,
                value: Some(Bytes::from(vec![b'x'; 100 + i])),
                headers: vec![("source".into(), Bytes::from_static(b"http"))],
            })
            .collect();
        // The computed size is what the encoder writes.
        let one = encode_records(&recs[..1], 0, Compression::None).unwrap();
        assert_eq!(one.len(), HEADER_LEN + recs[0].encoded_len(0));
        let all = encode_records(&recs, 0, Compression::None).unwrap();
        let sum: usize = recs.iter().enumerate().map(|(i, r)| r.encoded_len(i)).sum();
        assert_eq!(all.len(), HEADER_LEN + sum);
        let chunks = split_batches(&recs, 400);
        assert!(chunks.len() >= 3);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 10);
        for c in chunks {
            let b = encode_records(c, 0, Compression::None).unwrap();
            assert!(b.len() <= 400, "{} bytes", b.len());
        }
    }
}
