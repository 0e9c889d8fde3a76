//! Appending records the appliance builds itself (Beats, HTTP ingest) to topics: pick
//! partitions (Kafka's murmur2 for keyed records, round-robin per call otherwise),
//! encode one batch per partition compressed with the topic's `compression.type`
//! (`producer` means zstd here: there is no producer batch to keep), append, and return
//! only once the records are durable under the flush policy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use kafka_protocol::records::Compression;
use thiserror::Error;

use super::registry::RegistryError;
use super::Broker;
use crate::protocol::partitioner::partition_for_key;
use crate::protocol::records::{encode_records, OutRecord};
use crate::storage::segment::now_ms;
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("topic '{0}' does not exist and auto-creation is off")]
    NoTopic(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot encode records: {0}")]
    Encode(String),
}

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
    /// Returns the number of records appended once they are durable.
    pub fn ingest(&self, topic: &str, records: Vec<OutRecord>) -> Result<usize, IngestError> {
        if records.is_empty() {
            return Ok(0);
        }
        let t = self
            .registry
            .get_or_auto_create(topic)?
            .ok_or_else(|| IngestError::NoTopic(topic.to_string()))?;
        let partitions = t.partition_count();
        let spread = ROUND_ROBIN.fetch_add(1, Ordering::Relaxed) as i32;
        let mut by_partition: BTreeMap<i32, Vec<OutRecord>> = BTreeMap::new();
        for r in records {
            let p = match &r.key {
                Some(k) => partition_for_key(k, partitions),
                None => spread.rem_euclid(partitions),
            };
            by_partition.entry(p).or_default().push(r);
        }
        let now = now_ms();
        let mut count = 0;
        let mut to_sync = Vec::new();
        for (p, recs) in by_partition {
            let partition = t
                .partition(p)
                .ok_or_else(|| IngestError::NoTopic(topic.to_string()))?;
            let compression = compression_for(&partition.log.lock().config().compression_type);
            let bytes = encode_records(&recs, now, compression)
                .map_err(|e| IngestError::Encode(e.to_string()))?;
            let info = partition.log.lock().append_batches(bytes, now)?;
            if let Some(f) = info.file {
                to_sync.push(f);
            }
            count += recs.len();
        }
        if self.settings.fsync_before_ack {
            for f in to_sync {
                f.sync_data().map_err(StorageError::from)?;
            }
        }
        self.data_arrived.notify_waiters();
        Ok(count)
    }
}
