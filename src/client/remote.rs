//! `TopicAccess` over the Kafka protocol, for pipelines whose `bootstrap_servers`
//! name another cluster (and for this appliance's partitions led by another node).
//! Produces, fetches and offset lookups go to each partition's leader
//! (`leaders::LeaderClient`), committed offsets to the group's coordinator. One
//! request at a time; a failed request drops the connections and the next call
//! reconnects.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use kafka_protocol::records::Compression;
use tokio::sync::{Mutex, MutexGuard};

use super::access::{AccessFuture, FetchOutcome, TopicAccess};
use super::leaders::LeaderClient;
use super::{ClientError, KafkaClient};
use crate::protocol::partitioner::partition_for_key;
use crate::protocol::records::OutRecord;

/// Kafka's OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

pub struct RemoteAccess {
    address: String,
    connection: Mutex<Option<LeaderClient>>,
    round_robin: AtomicU32,
}

impl RemoteAccess {
    pub fn new(address: &str) -> RemoteAccess {
        RemoteAccess {
            address: address.to_string(),
            connection: Mutex::new(None),
            round_robin: AtomicU32::new(0),
        }
    }

    /// The connection, made on first use.
    async fn connection(&self) -> Result<MutexGuard<'_, Option<LeaderClient>>, ClientError> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            *guard = Some(LeaderClient::connect(&self.address).await?);
        }
        Ok(guard)
    }
}

/// Puts the connection back after a call, unless the call failed in a way that may
/// have left it out of step. Every call takes the client out of the slot first, so a
/// call whose future is dropped half-way (a pipeline stopping during a long-poll
/// fetch) drops the connection with it instead of leaving an unread response behind.
fn settle<T>(
    guard: &mut MutexGuard<'_, Option<LeaderClient>>,
    client: LeaderClient,
    result: Result<T, ClientError>,
) -> Result<T, ClientError> {
    if !matches!(
        result,
        Err(ClientError::Io(_)
            | ClientError::Protocol(_)
            | ClientError::Timeout
            | ClientError::Connect { .. })
    ) {
        **guard = Some(client);
    }
    result
}

/// Runs `$body` with `$c` bound to the connection (made on first use), then settles
/// the connection as `settle` says. For use inside the methods' async blocks.
macro_rules! on_connection {
    ($self:ident, $c:ident, $body:block) => {{
        let mut guard = $self.connection().await?;
        let mut client = guard.take().expect("connected");
        let result = async {
            let $c = &mut client;
            $body
        }
        .await;
        settle(&mut guard, client, result)
    }};
}

impl TopicAccess for RemoteAccess {
    fn describe(&self) -> String {
        self.address.clone()
    }

    fn topics(&self) -> AccessFuture<'_, Vec<String>> {
        Box::pin(async move {
            on_connection!(self, c, {
                let md = c.bootstrap().metadata(None, false).await?;
                Ok(md
                    .topics
                    .into_iter()
                    .filter_map(|t| t.name.map(|n| n.0.to_string()))
                    .collect())
            })
        })
    }

    fn partition_count<'a>(&'a self, topic: &'a str) -> AccessFuture<'a, i32> {
        Box::pin(async move {
            on_connection!(self, c, {
                match c.partitions(topic, false).await {
                    Ok(n) => Ok(n),
                    Err(ClientError::Kafka { .. }) => Ok(0),
                    Err(e) => Err(e),
                }
            })
        })
    }

    fn offset_bounds<'a>(&'a self, topic: &'a str, partition: i32) -> AccessFuture<'a, (i64, i64)> {
        Box::pin(async move {
            on_connection!(self, c, {
                let start = c.list_offset(topic, partition, -2).await?;
                let end = c.list_offset(topic, partition, -1).await?;
                Ok((start, end))
            })
        })
    }

    fn fetch<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
        offset: i64,
        _max_bytes: u64,
        max_wait_ms: u64,
    ) -> AccessFuture<'a, FetchOutcome> {
        Box::pin(async move {
            on_connection!(self, c, {
                let positions = BTreeMap::from([(partition, offset)]);
                if !c.knows_leader(topic, partition) {
                    c.partitions(topic, false).await?;
                }
                match c
                    .fetch(topic, &positions, max_wait_ms.min(i32::MAX as u64) as i32)
                    .await
                {
                    Ok(records) => Ok(FetchOutcome::Records(
                        records.into_iter().map(|r| r.record).collect(),
                    )),
                    Err(ClientError::Kafka { code, .. }) if code == OFFSET_OUT_OF_RANGE => {
                        Ok(FetchOutcome::OutOfRange)
                    }
                    Err(e) => Err(e),
                }
            })
        })
    }

    fn committed<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        partition: i32,
    ) -> AccessFuture<'a, Option<i64>> {
        Box::pin(async move {
            let mut c = KafkaClient::connect(&self.address)
                .await?
                .to_coordinator(group)
                .await?;
            let got = c
                .committed(group, Some(vec![(topic.to_string(), vec![partition])]))
                .await?;
            Ok(got.first().map(|(_, _, o)| *o).filter(|o| *o >= 0))
        })
    }

    fn bootstrap(&self) -> String {
        self.address.clone()
    }

    fn produce<'a>(&'a self, topic: &'a str, records: Vec<OutRecord>) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            on_connection!(self, c, {
                let partitions = c.partitions(topic, true).await?.max(1);
                let spread = self.round_robin.fetch_add(1, Ordering::Relaxed) as i32;
                let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
                for r in records {
                    let p = match &r.key {
                        Some(k) => partition_for_key(k, partitions),
                        None => spread.rem_euclid(partitions),
                    };
                    by_partition.entry(p).or_default().push((r.key, r.value));
                }
                for (p, recs) in by_partition {
                    c.produce(topic, p, recs, Compression::None).await?;
                }
                Ok(())
            })
        })
    }
}
