//! Follower fetchers: for every node that leads partitions this node follows, one task
//! that fetches them from it with the Kafka Fetch API (v12, with this node's id as the
//! replica id, `CurrentLeaderEpoch` and `LastFetchedEpoch`), as Kafka's replica fetcher
//! threads do, and appends what comes back to the local replicas as the leader stored
//! it. A `DivergingEpoch` answer truncates the replica where its log and the leader's
//! part ways (KIP-279), an offset before the leader's log start empties it to start
//! there; leadership errors wait for the metadata to catch up.
//!
//! What to fetch is the broker's plan (`FetchPlan`, from the metadata image), handed
//! over through a watch channel: this room never reaches up into `broker/`. It speaks
//! the protocol through `protocol/` (never through `client/`).
//!
//! Invariants: one request in flight per leader; every exchange has a deadline; an
//! answer is matched by correlation id and applied only to the replicas the request
//! named, and only while each still follows that leader in the epoch it asked in; a
//! fetcher ends when its leader leaves the plan or the node stops.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::exchange;
use super::replica::Replica;
use crate::protocol::codec::{decode_response, encode_request};

/// Fetch v12: topic names, `LastFetchedEpoch` and `DivergingEpoch`.
const FETCH_VERSION: i16 = 12;
/// How long the leader may hold a fetch with nothing new (Kafka's
/// `replica.fetch.wait.max.ms`).
const MAX_WAIT_MS: i32 = 500;
/// Kafka's `replica.fetch.max.bytes` and `replica.fetch.response.max.bytes`.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// The largest answer read: the response limit, a first batch over it (KIP-74) of at
/// most a message's size, and framing.
const MAX_ANSWER_BYTES: usize = 64 << 20;
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed exchange or a leadership error.
const BACKOFF: Duration = Duration::from_millis(200);

/// The partitions this node follows from one leader, and where that leader listens.
#[derive(Clone, Default)]
pub struct FetchTarget {
    pub addr: String,
    pub partitions: Vec<(String, Arc<Replica>)>,
}

/// Leader node id → what to fetch from it.
pub type FetchPlan = BTreeMap<i32, FetchTarget>;

/// Runs one fetcher per leader of `plan`, until `stop`.
/// Called after an answer was applied: the broker wakes its local readers (long-poll
/// fetches, pipelines reading this node's replicas), whose high watermark may have
/// moved.
pub type OnApplied = Arc<dyn Fn() + Send + Sync>;

pub async fn run(
    node_id: i32,
    mut plan: watch::Receiver<Arc<FetchPlan>>,
    mut stop: watch::Receiver<bool>,
    applied: OnApplied,
) {
    let mut running: HashMap<i32, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let current = plan.borrow_and_update().clone();
        running.retain(|_, task| !task.is_finished());
        for leader in current.keys() {
            running.entry(*leader).or_insert_with(|| {
                tokio::spawn(fetch_from(
                    node_id,
                    *leader,
                    plan.clone(),
                    stop.clone(),
                    applied.clone(),
                ))
            });
        }
        tokio::select! {
            _ = stop.changed() => break,
            changed = plan.changed() => if changed.is_err() { break },
        }
    }
    for task in running.values() {
        task.abort();
    }
}

/// Sleeps `d` unless the node stops first; false when it stops.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        _ = tokio::time::sleep(d) => !*stop.borrow(),
    }
}

async fn fetch_from(
    node_id: i32,
    leader: i32,
    plan: watch::Receiver<Arc<FetchPlan>>,
    mut stop: watch::Receiver<bool>,
    on_applied: OnApplied,
) {
    let mut conn: Option<TcpStream> = None;
    let mut correlation_id = 0i32;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(target) = plan.borrow().get(&leader).cloned() else {
            return;
        };
        correlation_id = correlation_id.wrapping_add(1);
        let asked = asked_of(leader, &target);
        if asked.is_empty() {
            // The plan still names this leader, but no replica follows it any more.
            if !pause(BACKOFF, &mut stop).await {
                return;
            }
            continue;
        }
        let frame = match encode_request(&header(correlation_id), &request(node_id, &asked)) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(leader, error = %e, "cannot encode a follower fetch");
                return;
            }
        };
        let answer = tokio::select! {
            _ = stop.changed() => return,
            a = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(&mut conn, &target.addr, &frame, MAX_ANSWER_BYTES)) => a,
        };
        let bytes = match answer {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::debug!(leader, error = %e, "follower fetch failed");
                conn = None;
                if !pause(BACKOFF, &mut stop).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                tracing::debug!(leader, "follower fetch timed out");
                conn = None;
                continue;
            }
        };
        let applied = match decode_response(ApiKey::Fetch, FETCH_VERSION, bytes) {
            Ok((got, ResponseKind::Fetch(resp))) if got == correlation_id => {
                // Appends and truncations write files: off the async workers.
                if tokio::task::block_in_place(|| apply_answer(&asked, leader, resp)) {
                    on_applied();
                    Applied::Progress
                } else {
                    Applied::Retry
                }
            }
            Ok(_) => {
                tracing::warn!(
                    leader,
                    "an answer to a follower fetch that does not match it"
                );
                conn = None;
                Applied::Retry
            }
            Err(e) => {
                tracing::warn!(leader, error = %e, "cannot decode the leader's fetch answer");
                conn = None;
                Applied::Retry
            }
        };
        if applied == Applied::Retry && !pause(BACKOFF, &mut stop).await {
            return;
        }
    }
}

fn header(correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("logbridge-replica-fetcher")))
}

/// A partition asked for in one fetch: its topic, replica, and the leader epoch it
/// was asked in — the answer is applied only while the replica still follows that
/// leader in that epoch (a late answer from a deposed leader is dropped).
pub type Asked = (String, Arc<Replica>, i32);

/// The target's partitions whose replicas follow `leader` now, with their epochs.
fn asked_of(leader: i32, target: &FetchTarget) -> Vec<Asked> {
    target
        .partitions
        .iter()
        .filter_map(|(topic, replica)| {
            let l = replica.leadership();
            (l.leader == leader).then(|| (topic.clone(), replica.clone(), l.leader_epoch))
        })
        .collect()
}

/// One Fetch for every partition asked, each from its log end.
fn request(node_id: i32, asked: &[Asked]) -> RequestKind {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (topic, replica, epoch) in asked {
        let (log_end, last_epoch, log_start) = replica.fetch_position();
        topics.entry(topic).or_default().push(
            FetchPartition::default()
                .with_partition(replica.index)
                .with_current_leader_epoch(*epoch)
                .with_fetch_offset(log_end)
                .with_last_fetched_epoch(last_epoch)
                .with_log_start_offset(log_start)
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id(BrokerId(node_id))
            .with_max_wait_ms(MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(RESPONSE_MAX_BYTES)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ),
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Applied {
    Progress,
    /// Nothing could be applied (leadership moving, a refused fetch): pause first.
    Retry,
}

/// Applies `leader`'s answer to the replicas the request named; false when nothing
/// could be applied (the fetcher pauses before asking again). Public for the
/// `replica_fetch_answers` fuzz target.
pub fn apply_answer(
    asked: &[Asked],
    leader: i32,
    resp: kafka_protocol::messages::FetchResponse,
) -> bool {
    apply(asked, leader, resp) == Applied::Progress
}

fn apply(asked: &[Asked], leader: i32, resp: kafka_protocol::messages::FetchResponse) -> Applied {
    if resp.error_code != 0 {
        tracing::debug!(
            code = resp.error_code,
            "the leader refused a follower fetch"
        );
        return Applied::Retry;
    }
    let mut outcome = Applied::Progress;
    for topic in resp.responses {
        for pd in topic.partitions {
            let Some((name, replica, epoch)) = asked
                .iter()
                .find(|(t, r, _)| *t == topic.topic.0.as_str() && r.index == pd.partition_index)
            else {
                continue;
            };
            if let Err(e) = apply_partition(replica, (leader, *epoch), &pd) {
                if matches!(e, super::replica::ReplicaError::StaleLeader { .. }) {
                    // Expected around every leader change: the answer was asked of a
                    // leader this replica no longer follows.
                    tracing::debug!(topic = %name, partition = pd.partition_index, error = %e, "dropped an answer of a former leader");
                } else {
                    tracing::warn!(topic = %name, partition = pd.partition_index, error = %e, "cannot apply what the leader sent");
                }
                outcome = Applied::Retry;
            } else if pd.error_code != 0 {
                outcome = Applied::Retry;
            }
        }
    }
    outcome
}

fn apply_partition(
    replica: &Replica,
    from: (i32, i32),
    pd: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Result<(), super::replica::ReplicaError> {
    if pd.error_code == ResponseError::OffsetOutOfRange.code() {
        let (log_end, _, _) = replica.fetch_position();
        if pd.log_start_offset > log_end {
            // Retention on the leader deleted what this replica would fetch next.
            replica.restart_at(pd.log_start_offset, from)?;
        } else {
            tracing::warn!(
                partition = pd.partition_index,
                log_end,
                leader_log_start = pd.log_start_offset,
                "the leader refused this replica's fetch offset"
            );
        }
        return Ok(());
    }
    if pd.error_code != 0 {
        tracing::debug!(
            partition = pd.partition_index,
            code = pd.error_code,
            "the leader refused a follower fetch of a partition"
        );
        return Ok(());
    }
    let diverging = &pd.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        return replica.truncate_diverging(diverging.epoch, diverging.end_offset, from);
    }
    match pd.records.as_ref().filter(|r| !r.is_empty()) {
        Some(records) => {
            replica.append_replicated(records, pd.high_watermark, from)?;
        }
        None => replica.update_follower_high_watermark(pd.high_watermark, from)?,
    }
    Ok(())
}
