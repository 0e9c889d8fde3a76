//! What a pipeline needs from a Kafka cluster, as one trait with two implementations:
//! `LocalAccess` reads and writes this appliance's own topics in-process (no network
//! hop, no re-encoding), `RemoteAccess` speaks the Kafka protocol to another cluster.
//! Pipelines hold an `Arc<dyn TopicAccess>` and never learn which one they have.
//!
//! Offsets are committed by the pipeline's group session as a member of its group
//! (`pipeline::group_session`), through the Kafka listener `bootstrap` names.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::ClientError;
use crate::protocol::records::OutRecord;

pub type AccessFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// One consumed record with everything `decorate_events` can show.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl From<kafka_protocol::records::Record> for Fetched {
    fn from(r: kafka_protocol::records::Record) -> Fetched {
        Fetched {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

/// The outcome of one fetch from one partition.
#[derive(Debug)]
pub enum FetchOutcome {
    Records(Vec<Fetched>),
    /// The offset is outside the log (deleted by retention, or beyond its end); the
    /// caller resets it by its `auto_offset_reset`.
    OutOfRange,
}

pub trait TopicAccess: Send + Sync {
    /// A name for logs: `local` or the bootstrap address.
    fn describe(&self) -> String;
    /// Every topic's name.
    fn topics(&self) -> AccessFuture<'_, Vec<String>>;
    /// The number of partitions of a topic; 0 when it does not exist.
    fn partition_count<'a>(&'a self, topic: &'a str) -> AccessFuture<'a, i32>;
    /// The earliest and the next (log end) offset of a partition.
    fn offset_bounds<'a>(&'a self, topic: &'a str, partition: i32) -> AccessFuture<'a, (i64, i64)>;
    /// Records from `offset` on, waiting up to `max_wait_ms` when there are none yet.
    fn fetch<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        offset: i64,
        max_bytes: u64,
        max_wait_ms: u64,
    ) -> AccessFuture<'a, FetchOutcome>;
    /// The offset `group` committed for a partition, if any.
    fn committed<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        partition: i32,
    ) -> AccessFuture<'a, Option<i64>>;
    /// A Kafka listener of the cluster (`host:port`): group membership speaks the
    /// protocol to the group's coordinator through it.
    fn bootstrap(&self) -> String;
    /// Appends records to a topic (keyed records by Kafka's murmur2 partitioner) and
    /// returns once they are acknowledged with acks=all.
    fn produce<'a>(&'a self, topic: &'a str, records: Vec<OutRecord>) -> AccessFuture<'a, ()>;
}
