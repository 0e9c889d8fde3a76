//! Input plugins: how events enter a running pipeline. Every durable input is a
//! consumer of a topic — `kafka` (any topics, this appliance's or another cluster's),
//! `beats` and `http` (the topics this appliance's Beats and HTTP listeners write) —
//! and sends `Batch`es that carry an `Ack`: the partition, the batch's sequence number
//! and the offset to commit once every output holds the batch. `generator` and `stdin`
//! are for tests and benchmarks and carry no acknowledgement.
//!
//! The options every Logstash input has (`type`, `tags`, `add_field`, `id`, `codec`)
//! are applied to each decoded event here.

mod generator;
mod kafka;
mod stdin;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::ast::Plugin;
use super::codec::Decoder;
use super::context::Context;
use super::event::{parse_field_ref, Event};
use super::progress::PartitionProgress;
use super::settings::{PluginError, Settings};
use super::sprintf::sprintf;
use super::stop::StopFlag;

pub use kafka::KafkaInput;

/// An input's end of the pipeline's queue: batches are tagged with the input's index
/// so that per-input counts can be kept.
#[derive(Clone)]
pub struct BatchSender {
    pub(crate) tx: mpsc::Sender<(usize, Batch)>,
    pub(crate) input: usize,
}

impl BatchSender {
    /// Waits for room in the queue (back-pressure); fails once the pipeline is gone.
    pub async fn send(&self, batch: Batch) -> Result<(), ()> {
        self.tx.send((self.input, batch)).await.map_err(|_| ())
    }
}

/// Events from one input, with what to commit once they are delivered.
pub struct Batch {
    pub events: Events,
    pub ack: Option<Ack>,
}

/// A batch's events: ready, or still records that the worker decodes (so that
/// decoding runs on the pipeline's workers, in parallel, not in the fetch task).
pub enum Events {
    Ready(Vec<Event>),
    Records {
        records: Vec<crate::client::access::Fetched>,
        decoder: Arc<dyn RecordDecoder>,
        topic: Arc<str>,
        partition: i32,
        now_ms: i64,
    },
}

/// Turns a consumed record into events (codec, decoration, common options).
pub trait RecordDecoder: Send + Sync {
    fn events(
        &self,
        r: &crate::client::access::Fetched,
        topic: &Arc<str>,
        partition: i32,
        now_ms: i64,
        out: &mut Vec<Event>,
    );
}

impl Events {
    /// The events, decoding records now if need be.
    pub fn decode(self) -> Vec<Event> {
        match self {
            Events::Ready(e) => e,
            Events::Records {
                records,
                decoder,
                topic,
                partition,
                now_ms,
            } => {
                let mut out = Vec::with_capacity(records.len());
                for r in &records {
                    decoder.events(r, &topic, partition, now_ms, &mut out);
                }
                out
            }
        }
    }
}

pub struct Ack {
    pub progress: Arc<PartitionProgress>,
    pub seq: u64,
    pub next_offset: i64,
}

/// The input plugins this build knows.
pub const AVAILABLE: &[&str] = &["beats", "generator", "http", "kafka", "stdin"];

/// Options every input has.
#[derive(Clone, Default)]
pub struct Common {
    pub id: String,
    /// The plugin's name as written (`kafka`, `beats`, …): a custom `id` hides it.
    pub plugin: String,
    kind: Option<String>,
    tags: Vec<String>,
    add_field: Vec<(String, String)>,
}

impl Common {
    fn read(s: &mut Settings, plugin: &Plugin) -> Result<Common, PluginError> {
        // Read from the plugin by codec::decoder (a name, or a codec with settings).
        s.accept("codec");
        s.bool("enable_metric")?;
        Ok(Common {
            id: s.string("id")?.unwrap_or_else(|| {
                format!("{}@{}:{}", plugin.name, plugin.pos.line, plugin.pos.column)
            }),
            plugin: plugin.name.clone(),
            kind: s.string("type")?,
            tags: s.list("tags")?,
            add_field: s.hash("add_field")?,
        })
    }

    /// Applies `type` (only when the event has none), `tags` and `add_field`.
    pub fn decorate(&self, e: &mut Event) {
        if let Some(t) = &self.kind {
            let path = ["type".to_string()];
            if e.get(&path).is_none() {
                e.set(&path, Value::String(t.clone()));
            }
        }
        for t in &self.tags {
            e.add_tag(t);
        }
        for (k, v) in &self.add_field {
            let path = parse_field_ref(&sprintf(k, e));
            let value = Value::String(sprintf(v, e));
            e.set(&path, value);
        }
    }
}

/// A configured input, ready to run.
pub enum Input {
    Kafka(KafkaInput),
    Generator(generator::Generator),
    Stdin(stdin::Stdin),
}

impl Input {
    pub fn common(&self) -> &Common {
        match self {
            Input::Kafka(k) => &k.common,
            Input::Generator(g) => &g.common,
            Input::Stdin(s) => &s.common,
        }
    }

    /// Runs until `stop` is set (or the input ends), sending batches to `out`.
    pub async fn run(
        self,
        pipeline: String,
        batch_size: usize,
        out: BatchSender,
        stop: StopFlag,
        progress: super::progress::ProgressSet,
    ) {
        match self {
            Input::Kafka(k) => k.run(pipeline, batch_size, out, stop, progress).await,
            Input::Generator(g) => g.run(batch_size, out, stop).await,
            Input::Stdin(s) => s.run(batch_size, out, stop).await,
        }
    }
}

fn port_matches(
    s: &Settings,
    port: Option<String>,
    listener: Option<u16>,
    what: &str,
) -> Result<(), PluginError> {
    if let (Some(p), Some(l)) = (port, listener) {
        if p.parse::<u16>().ok() != Some(l) {
            return Err(s.error(format!(
                "port {p} is not this appliance's {what} listener (port {l}): a {what} input \
                 consumes the topic that listener writes to; set the listener's address instead"
            )));
        }
    }
    Ok(())
}

pub fn build(plugin: &Plugin, ctx: &Context, pipeline: &str) -> Result<Input, PluginError> {
    let mut s = Settings::new(plugin, "input");
    let common = Common::read(&mut s, plugin)?;
    let input = match plugin.name.as_str() {
        "kafka" => Input::Kafka(KafkaInput::build(plugin, &mut s, ctx, common)?),
        "beats" | "http" => {
            let beats = plugin.name == "beats";
            let (listener, what, default_topic) = if beats {
                (ctx.beats_port, "Beats", ctx.beats_topic.clone())
            } else {
                (ctx.http_port, "HTTP", "http".to_string())
            };
            let port = s.string("port")?;
            s.string("host")?;
            if beats {
                for t in [
                    "ssl",
                    "ssl_enabled",
                    "client_inactivity_timeout",
                    "include_codec_tag",
                ] {
                    s.string(t)?;
                }
            }
            port_matches(&s, port, listener, what)?;
            let topic = s.string("topic")?.unwrap_or(default_topic);
            Input::Kafka(KafkaInput::for_listener(
                plugin,
                ctx,
                common,
                topic,
                format!("logbridge-{pipeline}"),
            )?)
        }
        "generator" => Input::Generator(generator::Generator::build(plugin, &mut s, common)?),
        "stdin" => Input::Stdin(stdin::Stdin::build(plugin, &mut s, common)?),
        other => {
            return Err(PluginError {
                pos: plugin.pos,
                message: format!(
                    "unknown input plugin \"{other}\" (available: {})",
                    AVAILABLE.join(", ")
                ),
            })
        }
    };
    s.finish()?;
    Ok(input)
}

/// The decoder an input uses: its `codec`, else `default`.
pub fn decoder(plugin: &Plugin, default: Decoder) -> Result<Decoder, PluginError> {
    super::codec::decoder(plugin, default)
}
