//! `TopicAccess` on this appliance's own broker, in-process: fetches read the segment
//! files through the partition's replica on this node (a follower's reads stop at the
//! high watermark it learned, so they never show what a new leader could truncate),
//! produces go through the same ingest path as Beats and HTTP (which forwards to the
//! leader in a cluster). No sockets, no request encoding.
//!
//! What this node cannot answer from its own replicas goes over the Kafka protocol
//! through its own listener (`remote`): partitions it holds no replica of, and
//! committed offsets, which the group's coordinator keeps (in a cluster, maybe
//! another node).

use std::sync::Arc;
use std::time::Duration;

use super::access::{AccessFuture, FetchOutcome, Fetched, TopicAccess};
use super::remote::RemoteAccess;
use super::ClientError;
use crate::broker::Broker;
use crate::protocol::records::OutRecord;
use crate::replication::replica::Replica;
use crate::storage::records::{decode_full_records, ReadLimits};
use crate::storage::StorageError;

pub struct LocalAccess {
    broker: Arc<Broker>,
    /// This node's Kafka listener, spoken to over the protocol.
    remote: RemoteAccess,
}

impl LocalAccess {
    /// `listener`: this node's Kafka listener as this host reaches it.
    pub fn new(broker: Arc<Broker>, listener: &str) -> LocalAccess {
        LocalAccess {
            broker,
            remote: RemoteAccess::new(listener),
        }
    }

    /// This node's replica of the partition, if it holds one.
    fn replica(&self, topic: &str, partition: i32) -> Option<Arc<Replica>> {
        self.broker
            .registry
            .get(topic)
            .and_then(|t| t.partition(partition))
    }

    fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Replica>, ClientError> {
        self.replica(topic, partition)
            .ok_or_else(|| ClientError::Protocol(format!("no partition {topic}-{partition}")))
    }

    fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<FetchOutcome>, ClientError> {
        let p = self.partition(topic, partition)?;
        let plan = match p.read(offset, max_bytes).0 {
            Ok(Some(plan)) => plan,
            Ok(None) => return Ok(None),
            Err(StorageError::OffsetOutOfRange { .. }) => {
                return Ok(Some(FetchOutcome::OutOfRange))
            }
            Err(e) => {
                return Err(ClientError::Protocol(format!(
                    "read {topic}-{partition}: {e}"
                )))
            }
        };
        let bytes = plan.read()?;
        let limits = ReadLimits {
            max_uncompressed: self.broker.settings.max_uncompressed_batch_bytes,
            ..ReadLimits::default()
        };
        let records = decode_full_records(&bytes, offset, limits)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let fetched: Vec<Fetched> = records.into_iter().map(Fetched::from).collect();
        if fetched.is_empty() {
            return Ok(None);
        }
        Ok(Some(FetchOutcome::Records(fetched)))
    }
}

impl TopicAccess for LocalAccess {
    fn describe(&self) -> String {
        "local".into()
    }

    fn topics(&self) -> AccessFuture<'_, Vec<String>> {
        Box::pin(async move {
            Ok(self
                .broker
                .registry
                .list()
                .iter()
                .map(|t| t.name.clone())
                .collect())
        })
    }

    fn partition_count<'a>(&'a self, topic: &'a str) -> AccessFuture<'a, i32> {
        Box::pin(async move {
            Ok(self
                .broker
                .registry
                .get(topic)
                .map_or(0, |t| t.partition_count()))
        })
    }

    fn offset_bounds<'a>(&'a self, topic: &'a str, partition: i32) -> AccessFuture<'a, (i64, i64)> {
        Box::pin(async move {
            // Only the leader's bounds count: a follower's log may start later or end
            // earlier (it is catching up), and a reset to them would skip or repeat.
            match self.replica(topic, partition).filter(|p| p.is_leader()) {
                Some(p) => {
                    let o = p.offsets();
                    Ok((o.log_start, o.high_watermark))
                }
                None => self.remote.offset_bounds(topic, partition).await,
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        offset: i64,
        max_bytes: u64,
        max_wait_ms: u64,
    ) -> AccessFuture<'a, FetchOutcome> {
        Box::pin(async move {
            if self.replica(topic, partition).is_none() {
                return self
                    .remote
                    .fetch(topic, partition, offset, max_bytes, max_wait_ms)
                    .await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms);
            loop {
                // Registered before reading, so an append between the read and the
                // wait still wakes us.
                let arrived = self.broker.data_arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                match self.read(topic, partition, offset, max_bytes)? {
                    // A follower's log may not reach the offset yet (it is catching
                    // up, or just came back): only the leader says it is out of range.
                    Some(FetchOutcome::OutOfRange)
                        if !self
                            .replica(topic, partition)
                            .is_some_and(|p| p.is_leader()) =>
                    {
                        return self
                            .remote
                            .fetch(topic, partition, offset, max_bytes, max_wait_ms)
                            .await;
                    }
                    Some(outcome) => return Ok(outcome),
                    None => {}
                }
                if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return Ok(FetchOutcome::Records(Vec::new()));
                }
            }
        })
    }

    fn committed<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        partition: i32,
    ) -> AccessFuture<'a, Option<i64>> {
        self.remote.committed(group, topic, partition)
    }

    fn bootstrap(&self) -> String {
        self.remote.bootstrap()
    }

    fn produce<'a>(&'a self, topic: &'a str, records: Vec<OutRecord>) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            let broker = self.broker.clone();
            let topic = topic.to_string();
            let report = tokio::task::spawn_blocking({
                let topic = topic.clone();
                move || broker.ingest(&topic, records)
            })
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
            // As Kafka producers treat RecordTooLarge: not retriable, so logged and
            // dropped rather than retried for ever.
            for (_, why) in report.refused {
                tracing::warn!(topic, reason = %why, "record refused by the topic's limits: dropped");
            }
            Ok(())
        })
    }
}
