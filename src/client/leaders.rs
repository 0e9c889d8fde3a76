//! The client's way to a partition's leader: it learns brokers and leaders from
//! Metadata on the bootstrap connection, keeps one connection per broker, and sends
//! each produce, fetch and offset lookup to the partition's leader — in a cluster the
//! leaders are spread over the nodes; on a single node it is the bootstrap node.
//!
//! Invariant: a request refused with NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE or
//! UNKNOWN_TOPIC_OR_PARTITION (metadata not yet applied there), or whose leader cannot
//! be reached (a dead node), is retried on the leader fresh metadata names, a bounded
//! number of times; any other error is the caller's.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::{ClientError, Consumed, KafkaClient};

/// Tries of one request through leader changes before its error is returned.
const ATTEMPTS: usize = 10;
const RETRY_BACKOFF: Duration = Duration::from_millis(300);

/// Whether `e` says to find the leader again and retry: it moved, or its connection
/// failed.
fn retriable(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Io(_) | ClientError::Connect { .. } | ClientError::Timeout
    ) || leader_moved(e)
}

fn leader_moved(e: &ClientError) -> bool {
    use crate::broker::errors::code;
    use kafka_protocol::error::ResponseError::*;
    matches!(e, ClientError::Kafka { code: c, .. }
        if [UnknownTopicOrPartition, LeaderNotAvailable, NotLeaderOrFollower].iter().any(|r| code(*r) == *c))
}

pub struct LeaderClient {
    bootstrap: KafkaClient,
    /// Broker id → host:port, from the last Metadata.
    brokers: HashMap<i32, String>,
    leaders: HashMap<(String, i32), i32>,
    connections: HashMap<i32, KafkaClient>,
}

impl LeaderClient {
    /// Connects to the first reachable of the comma-separated `bootstrap` servers.
    pub async fn connect(bootstrap: &str) -> Result<LeaderClient, ClientError> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match KafkaClient::connect(addr).await {
                Ok(c) => {
                    return Ok(LeaderClient {
                        bootstrap: c,
                        brokers: HashMap::new(),
                        leaders: HashMap::new(),
                        connections: HashMap::new(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no bootstrap server given".into())))
    }

    /// The bootstrap connection, for requests any broker answers.
    pub fn bootstrap(&mut self) -> &mut KafkaClient {
        &mut self.bootstrap
    }

    /// Whether a leader of `topic`-`partition` is known (from an earlier Metadata).
    pub fn knows_leader(&self, topic: &str, partition: i32) -> bool {
        self.leaders.contains_key(&(topic.to_string(), partition))
    }

    /// Refreshes brokers and `topic`'s leaders; returns its partition count.
    pub async fn partitions(&mut self, topic: &str, auto_create: bool) -> Result<i32, ClientError> {
        let md = self
            .bootstrap
            .metadata(Some(vec![topic.to_string()]), auto_create)
            .await?;
        self.brokers = md
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        let t = md
            .topics
            .first()
            .ok_or_else(|| ClientError::Protocol("empty metadata".into()))?;
        if t.error_code != 0 {
            return Err(super::kafka_err(
                format!("topic '{topic}'"),
                t.error_code,
                None,
            ));
        }
        for p in &t.partitions {
            self.leaders
                .insert((topic.to_string(), p.partition_index), p.leader_id.0);
        }
        Ok(t.partitions.len() as i32)
    }

    /// The connection to `topic`-`partition`'s leader (the bootstrap connection while
    /// no leader is known).
    async fn leader(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<&mut KafkaClient, ClientError> {
        let Some(&id) = self.leaders.get(&(topic.to_string(), partition)) else {
            return Ok(&mut self.bootstrap);
        };
        let Some(addr) = self.brokers.get(&id).cloned() else {
            return Ok(&mut self.bootstrap);
        };
        if !self.connections.contains_key(&id) {
            let c = KafkaClient::connect(&addr).await?;
            self.connections.insert(id, c);
        }
        Ok(self.connections.get_mut(&id).expect("inserted above"))
    }

    /// After a failure on a connection: forget it and learn the leaders again.
    async fn rediscover(&mut self, topic: &str, partition: i32) {
        if let Some(id) = self.leaders.get(&(topic.to_string(), partition)) {
            self.connections.remove(id);
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
        let _ = self.partitions(topic, false).await;
    }

    /// Produces one batch with acks=all to the partition's leader; the base offset.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
        compression: Compression,
    ) -> Result<i64, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let produced = match self.leader(topic, partition).await {
                Ok(c) => {
                    c.produce(topic, partition, records.clone(), compression)
                        .await
                }
                Err(e) => Err(e),
            };
            match produced {
                Err(e) if attempt < ATTEMPTS && retriable(&e) => {
                    self.rediscover(topic, partition).await
                }
                other => return other,
            }
        }
    }

    /// ListOffsets on the partition's leader: -2 earliest, -1 latest, or a timestamp.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let listed = match self.leader(topic, partition).await {
                Ok(c) => c.list_offset(topic, partition, timestamp).await,
                Err(e) => Err(e),
            };
            match listed {
                Err(e) if attempt < ATTEMPTS && retriable(&e) => {
                    self.rediscover(topic, partition).await
                }
                other => return other,
            }
        }
    }

    /// Fetches from every partition in `positions` on its leader (one request per
    /// leader, `max_wait_ms` shared between them). A partition whose leader moved is
    /// skipped this round and found again for the next.
    pub async fn fetch(
        &mut self,
        topic: &str,
        positions: &BTreeMap<i32, i64>,
        max_wait_ms: i32,
    ) -> Result<Vec<Consumed>, ClientError> {
        let mut by_leader: BTreeMap<i32, BTreeMap<i32, i64>> = BTreeMap::new();
        for (p, o) in positions {
            let leader = self
                .leaders
                .get(&(topic.to_string(), *p))
                .copied()
                .unwrap_or(-1);
            by_leader.entry(leader).or_default().insert(*p, *o);
        }
        let wait = max_wait_ms / by_leader.len().max(1) as i32;
        let mut out = Vec::new();
        for part in by_leader.values() {
            let first = *part.keys().next().expect("a group is never empty");
            let fetched = match self.leader(topic, first).await {
                Ok(c) => c.fetch(topic, part, wait).await,
                Err(e) => Err(e),
            };
            match fetched {
                Ok(records) => out.extend(records),
                Err(e) if retriable(&e) => self.rediscover(topic, first).await,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
