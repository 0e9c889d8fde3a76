//! `kafka`: produces events to a topic (`topic_id`, sprintf) of this appliance
//! (in-process, when `bootstrap_servers` names it or is omitted) or of another cluster
//! (Kafka protocol), keyed by `message_key` (sprintf), encoded by `codec` (`plain` by
//! default, as in Logstash; usually `json`). A write returns once every record is
//! acknowledged (acks=all).

use std::sync::Arc;

use bytes::Bytes;

use super::{Output, OutputFuture};
use crate::client::access::TopicAccess;
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::{encoder, Encoder};
use crate::pipeline::context::Context;
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;
use crate::protocol::records::OutRecord;

pub struct KafkaOutput {
    topic: String,
    key: Option<String>,
    encoder: Encoder,
    access: Arc<dyn TopicAccess>,
}

/// Producer settings of Logstash's kafka output that tune the Java client; accepted so
/// existing files load, with no effect here.
const TUNING: &[&str] = &[
    "acks",
    "batch_size",
    "buffer_memory",
    "client_id",
    "compression_type",
    "connections_max_idle_ms",
    "linger_ms",
    "max_request_size",
    "metadata_max_age_ms",
    "partitioner",
    "receive_buffer_bytes",
    "reconnect_backoff_ms",
    "request_timeout_ms",
    "retries",
    "retry_backoff_ms",
    "send_buffer_bytes",
    "key_serializer",
    "value_serializer",
];

impl KafkaOutput {
    pub fn build(
        plugin: &Plugin,
        s: &mut Settings,
        ctx: &Context,
    ) -> Result<KafkaOutput, PluginError> {
        let topic = s
            .string("topic_id")?
            .ok_or_else(|| s.error("\"topic_id\" is required".into()))?;
        for t in TUNING {
            s.string(t)?;
        }
        let bootstrap = s.string("bootstrap_servers")?;
        Ok(KafkaOutput {
            topic,
            key: s.string("message_key")?,
            encoder: encoder(
                plugin,
                Encoder::Text {
                    format: None,
                    newline: false,
                },
            )?,
            access: ctx.access(bootstrap.as_deref()),
        })
    }
}

impl Output for KafkaOutput {
    fn write<'a>(&'a self, events: &'a [&'a Event]) -> OutputFuture<'a> {
        Box::pin(async move {
            let mut by_topic: Vec<(String, Vec<OutRecord>)> = Vec::new();
            for e in events {
                let topic = sprintf(&self.topic, e);
                let mut value = Vec::with_capacity(256);
                self.encoder.encode(e, &mut value);
                let record = OutRecord {
                    key: self.key.as_ref().map(|k| Bytes::from(sprintf(k, e))),
                    value: Some(Bytes::from(value)),
                    headers: Vec::new(),
                };
                match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                    Some((_, recs)) => recs.push(record),
                    None => by_topic.push((topic, vec![record])),
                }
            }
            for (topic, records) in by_topic {
                self.access.produce(&topic, records).await.map_err(|e| {
                    format!("kafka topic {topic} on {}: {e}", self.access.describe())
                })?;
            }
            Ok(())
        })
    }
}
