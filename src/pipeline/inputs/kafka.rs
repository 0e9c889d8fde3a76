//! `kafka` input (and the `beats`/`http` inputs, which consume their listener's topic
//! the same way): `topics` or `topics_pattern`, `group_id` (default `logstash`),
//! `auto_offset_reset` (`earliest`, `latest` — Kafka's default —, `none`),
//! `consumer_threads` (how many partitions are fetched at once), `decorate_events`
//! (`[@metadata][kafka]` topic, partition, offset, key, timestamp, consumer_group; with
//! `extended` also headers) and `codec` (`plain` by default).
//!
//! The input is a member of its consumer group (`pipeline::group_session`), as
//! Logstash's Java consumer is: the same pipeline on several nodes, or beside other
//! consumers of the group, shares the partitions by the range assignor, and takes over
//! the share of a member that leaves or dies. Each assigned partition has its own
//! fetch task that starts at the group's committed offset (or the reset position) and
//! numbers its batches for ordered commits. After a rebalance, tasks of partitions
//! still assigned go on; those taken away stop (their last delivered offsets
//! committed). Topics that do not exist yet (or appear later and match
//! `topics_pattern`), and new partitions, make the input join again, so the group's
//! leader assigns them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use super::{Ack, Batch, BatchSender, Common, Events, RecordDecoder};
use crate::client::access::{FetchOutcome, Fetched, TopicAccess};
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::Decoder;
use crate::pipeline::context::Context;
use crate::pipeline::event::{Event, Origin};
use crate::pipeline::group_session::GroupSession;
use crate::pipeline::progress::{PartitionProgress, ProgressSet};
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::stop::StopFlag;
use crate::storage::segment::now_ms;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Decorate {
    None,
    Basic,
    Extended,
}

pub struct KafkaInput {
    pub common: Common,
    topics: Vec<String>,
    pattern: Option<regex::Regex>,
    group: String,
    reset: Reset,
    threads: usize,
    decorate: Decorate,
    decoder: Decoder,
    max_bytes: u64,
    access: Arc<dyn TopicAccess>,
}

/// Consumer settings of Logstash's kafka input that tune the Java client; accepted so
/// existing files load, with no effect here.
const TUNING: &[&str] = &[
    "auto_commit_interval_ms",
    "check_crcs",
    "client_id",
    "client_rack",
    "connections_max_idle_ms",
    "enable_auto_commit",
    "exclude_internal_topics",
    "fetch_max_wait_ms",
    "fetch_min_bytes",
    "group_instance_id",
    "heartbeat_interval_ms",
    "isolation_level",
    "key_deserializer_class",
    "max_poll_interval_ms",
    "max_poll_records",
    "metadata_max_age_ms",
    "partition_assignment_strategy",
    "poll_timeout_ms",
    "receive_buffer_bytes",
    "reconnect_backoff_ms",
    "request_timeout_ms",
    "retry_backoff_ms",
    "send_buffer_bytes",
    "session_timeout_ms",
    "value_deserializer_class",
];

impl KafkaInput {
    pub fn build(
        plugin: &Plugin,
        s: &mut Settings,
        ctx: &Context,
        common: Common,
    ) -> Result<KafkaInput, PluginError> {
        for t in TUNING {
            s.string(t)?;
        }
        let pattern = match s.string("topics_pattern")? {
            Some(p) => Some(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                s.error(format!(
                    "topics_pattern is not a valid regular expression: {e}"
                ))
            })?),
            None => None,
        };
        let mut topics = s.list("topics")?;
        if topics.is_empty() && pattern.is_none() {
            topics.push("logstash".into());
        }
        let reset = match s.string("auto_offset_reset")?.as_deref() {
            None | Some("latest") => Reset::Latest,
            Some("earliest") => Reset::Earliest,
            Some("none") => Reset::None,
            Some(other) => {
                return Err(s.error(format!(
                    "auto_offset_reset must be earliest, latest or none, not \"{other}\""
                )))
            }
        };
        let decorate = match s.string("decorate_events")?.as_deref() {
            None | Some("none") | Some("false") => Decorate::None,
            Some("basic") | Some("true") => Decorate::Basic,
            Some("extended") => Decorate::Extended,
            Some(other) => {
                return Err(s.error(format!(
                    "decorate_events must be none, basic or extended, not \"{other}\""
                )))
            }
        };
        let threads = match s.string("consumer_threads")? {
            None => 1,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| s.error("consumer_threads must be a positive number".into()))?,
        };
        let max_bytes = match s
            .string("fetch_max_bytes")?
            .or(s.string("max_partition_fetch_bytes")?)
        {
            None => 1 << 20,
            Some(n) => n
                .parse::<u64>()
                .map_err(|_| s.error("fetch sizes must be numbers".into()))?,
        };
        let bootstrap = s.string("bootstrap_servers")?;
        Ok(KafkaInput {
            common,
            topics,
            pattern,
            group: s.string("group_id")?.unwrap_or_else(|| "logstash".into()),
            reset,
            threads,
            decorate,
            decoder: super::decoder(plugin, Decoder::PLAIN)?,
            max_bytes,
            access: ctx.access(bootstrap.as_deref()),
        })
    }

    /// The consumer behind a `beats` or `http` input: this appliance's `topic`, JSON
    /// events, from the earliest offset the first time.
    pub fn for_listener(
        plugin: &Plugin,
        ctx: &Context,
        common: Common,
        topic: String,
        group: String,
    ) -> Result<KafkaInput, PluginError> {
        Ok(KafkaInput {
            common,
            topics: vec![topic],
            pattern: None,
            group,
            reset: Reset::Earliest,
            threads: 1,
            decorate: Decorate::None,
            decoder: super::decoder(plugin, Decoder::JSON)?,
            max_bytes: 1 << 20,
            access: ctx.access(None),
        })
    }

    pub async fn run(
        self,
        pipeline: String,
        batch_size: usize,
        out: BatchSender,
        stop: StopFlag,
        progress: ProgressSet,
    ) {
        let me = Arc::new(self);
        let permits = Arc::new(Semaphore::new(me.threads));
        let session = GroupSession::new(&me.access.bootstrap(), &me.group);
        session.start_heartbeats();
        progress.add_session(session.clone());
        let mut running: BTreeMap<(String, i32), tokio::task::AbortHandle> = BTreeMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        // The subscription (topic → partition count) of the last join; None before one.
        let mut joined_with: Option<BTreeMap<String, i32>> = None;
        while !stop.is_set() {
            // A named topic that does not exist yet is looked for twice a second (it
            // appears with the first event shipped to it); otherwise new topics and
            // partitions are looked for every few seconds.
            let subscription = match me.subscription().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(pipeline = %pipeline, input = %me.common.id, error = %e, "kafka input: cannot list partitions; retrying");
                    if !stop.pause(Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
            };
            if joined_with.as_ref() != Some(&subscription) {
                session.request_rejoin();
            }
            let rejoin = tokio::select! {
                _ = session.rejoin_needed() => true,
                _ = stop.stopped() => break,
                _ = tokio::time::sleep(if subscription.values().any(|n| *n == 0) {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(3)
                }) => false,
            };
            if !rejoin {
                continue;
            }
            // Before joining, what this input delivered is committed: a partition that
            // moves to another member is read again from there, not from further back.
            let delivered = progress.partitions_of(&session);
            tokio::select! {
                _ = crate::pipeline::progress::commit(&delivered) => {}
                _ = stop.stopped() => break,
            }
            let topics: Vec<String> = subscription.keys().cloned().collect();
            let assigned = tokio::select! {
                a = session.join(&topics) => a,
                _ = stop.stopped() => break,
            };
            let assigned: BTreeSet<(String, i32)> = match assigned {
                Ok(a) => a.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(pipeline = %pipeline, input = %me.common.id, group = %me.group, error = %e, "kafka input: cannot join the consumer group; retrying");
                    if !stop.pause(Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
            };
            joined_with = Some(subscription);
            tracing::info!(pipeline = %pipeline, input = %me.common.id, group = %me.group, partitions = ?assigned, "kafka input: partitions assigned");
            let revoked: Vec<(String, i32)> = running
                .keys()
                .filter(|k| !assigned.contains(*k))
                .cloned()
                .collect();
            for key in revoked {
                // The task's registration leaves the commit set with it; what it had
                // delivered was committed before the join.
                if let Some(task) = running.remove(&key) {
                    task.abort();
                }
            }
            for (topic, partition) in assigned {
                if running.contains_key(&(topic.clone(), partition)) {
                    continue;
                }
                let task = tasks.spawn(me.clone().consume_partition(
                    pipeline.clone(),
                    session.clone(),
                    topic.clone(),
                    partition,
                    batch_size,
                    out.clone(),
                    stop.clone(),
                    progress.clone(),
                    permits.clone(),
                ));
                running.insert((topic, partition), task);
            }
            // Finished (aborted) tasks are reaped so the set does not grow.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The topics this input subscribes to now, with their partition counts (0 for a
    /// named topic that does not exist yet).
    async fn subscription(&self) -> Result<BTreeMap<String, i32>, crate::client::ClientError> {
        let mut names = self.topics.clone();
        if let Some(p) = &self.pattern {
            names.extend(
                self.access
                    .topics()
                    .await?
                    .into_iter()
                    .filter(|t| p.is_match(t) && !t.starts_with("__")),
            );
        }
        let mut out = BTreeMap::new();
        for t in names {
            let n = self.access.partition_count(&t).await?;
            out.insert(t, n);
        }
        Ok(out)
    }

    async fn start_offset(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i64, Option<i64>), String> {
        let committed = self
            .access
            .committed(&self.group, topic, partition)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(c) = committed {
            return Ok((c, Some(c)));
        }
        let (start, end) = self
            .access
            .offset_bounds(topic, partition)
            .await
            .map_err(|e| e.to_string())?;
        match self.reset {
            Reset::Earliest => Ok((start, None)),
            Reset::Latest => Ok((end, None)),
            Reset::None => Err(format!(
                "group {} has no committed offset for {topic}-{partition} and auto_offset_reset is none",
                self.group
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume_partition(
        self: Arc<Self>,
        pipeline: String,
        session: Arc<GroupSession>,
        topic: String,
        partition: i32,
        batch_size: usize,
        out: BatchSender,
        stop: StopFlag,
        set: ProgressSet,
        permits: Arc<Semaphore>,
    ) {
        let log_error = |e: &str| tracing::warn!(pipeline = %pipeline, topic = %topic, partition, error = %e, "kafka input");
        let (mut offset, committed) = loop {
            let found = tokio::select! {
                found = self.start_offset(&topic, partition) => found,
                _ = stop.stopped() => return,
            };
            match found {
                Ok(o) => break o,
                Err(e) => log_error(&e),
            }
            if !stop.pause(Duration::from_secs(5)).await {
                return;
            }
        };
        let progress = Arc::new(PartitionProgress::new(
            session,
            self.access.clone(),
            &topic,
            partition,
            offset,
            committed,
        ));
        let _registered = set.add(progress.clone());
        let topic_name: Arc<str> = Arc::from(topic.as_str());
        while !stop.is_set() {
            let fetched = {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                tokio::select! {
                    _ = stop.stopped() => return,
                    r = self.access.fetch(&topic, partition, offset, self.max_bytes, 500) => r,
                }
            };
            let records = match fetched {
                Ok(FetchOutcome::Records(r)) => r,
                Ok(FetchOutcome::OutOfRange) => {
                    let reset = match self.access.offset_bounds(&topic, partition).await {
                        Ok((_, end)) if self.reset == Reset::Latest => end,
                        Ok((start, _)) => start,
                        Err(e) => {
                            log_error(&e.to_string());
                            offset
                        }
                    };
                    tracing::warn!(pipeline = %pipeline, topic = %topic, partition, from = offset, to = reset, "kafka input: offset out of range; reset");
                    offset = reset;
                    progress.reset_position(offset);
                    continue;
                }
                Err(e) => {
                    log_error(&e.to_string());
                    if !stop.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            // Moved into batches, not copied: the fetched vector is not needed after.
            let mut records = records.into_iter().peekable();
            while records.peek().is_some() {
                let chunk: Vec<Fetched> = records.by_ref().take(batch_size.max(1)).collect();
                let next_offset = chunk.last().map_or(offset, |r| r.offset + 1);
                let seq = progress.next_batch(next_offset);
                let batch = Batch {
                    events: Events::Records {
                        records: chunk,
                        decoder: self.clone(),
                        topic: topic_name.clone(),
                        partition,
                        now_ms: now_ms(),
                    },
                    ack: Some(Ack {
                        progress: progress.clone(),
                        seq,
                        next_offset,
                    }),
                };
                // A full channel is back-pressure: fetching waits for the workers.
                tokio::select! {
                    _ = stop.stopped() => return,
                    sent = out.send(batch) => if sent.is_err() { return },
                }
                offset = next_offset;
            }
        }
    }
}

impl RecordDecoder for KafkaInput {
    fn events(
        &self,
        r: &Fetched,
        topic: &Arc<str>,
        partition: i32,
        now: i64,
        out: &mut Vec<Event>,
    ) {
        let first = out.len();
        self.decoder
            .decode_all(r.value.as_deref().unwrap_or_default(), now, out);
        let metadata =
            (self.decorate != Decorate::None).then(|| self.metadata(r, topic, partition));
        for (index, e) in out[first..].iter_mut().enumerate() {
            e.set_origin(Origin {
                topic: topic.clone(),
                partition,
                offset: r.offset,
                index: index as u32,
            });
            if let Some(m) = &metadata {
                e.set(&["@metadata".to_string(), "kafka".to_string()], m.clone());
            }
            self.common.decorate(e);
        }
    }
}

impl KafkaInput {
    /// `[@metadata][kafka]` for `decorate_events`.
    fn metadata(&self, r: &Fetched, topic: &str, partition: i32) -> Value {
        let mut m = Map::new();
        m.insert("topic".into(), json!(topic));
        m.insert("partition".into(), json!(partition));
        m.insert("offset".into(), json!(r.offset));
        m.insert(
            "key".into(),
            r.key
                .as_ref()
                .map_or(Value::Null, |k| json!(String::from_utf8_lossy(k))),
        );
        m.insert("timestamp".into(), json!(r.timestamp));
        m.insert("consumer_group".into(), json!(self.group));
        if self.decorate == Decorate::Extended {
            let headers: Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_ref()
                            .map_or(Value::Null, |v| json!(String::from_utf8_lossy(v))),
                    )
                })
                .collect();
            m.insert("headers".into(), Value::Object(headers));
        }
        Value::Object(m)
    }
}
