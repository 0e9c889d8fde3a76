//! A small Kafka client over the same codecs the broker uses, for the command line and
//! for pipelines that read or write another cluster (`remote`); `access` is the trait
//! pipelines use and `local` its in-process implementation on this appliance's broker.
//! `KafkaClient` speaks to one broker and sends every request there (admin and group
//! requests: any node forwards them); `leaders::LeaderClient` sends produce, fetch and
//! offset lookups to each partition's leader; `membership::GroupMember` is a consumer
//! group member (join, sync, heartbeat, commit, leave) at the group's coordinator.
//!
//! Invariant: one request in flight per connection; a response whose correlation id
//! does not match the request is an error, never silently accepted.

pub mod access;
mod groups;
pub mod leaders;
pub mod local;
pub mod membership;
pub mod remote;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::storage::records::{decode_full_records, ReadLimits};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use crate::protocol::partitioner::partition_for_key;
pub use crate::protocol::records::encode_batch;
pub use groups::GroupDescription;

use crate::protocol::codec::{decode_response, encode_request};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{context}: {error} (error code {code})")]
    Kafka {
        context: String,
        code: i16,
        error: String,
    },
    #[error("timed out waiting for the broker")]
    Timeout,
}

pub(crate) fn kafka_err(
    context: impl Into<String>,
    code: i16,
    message: Option<&StrBytes>,
) -> ClientError {
    let name = code
        .err()
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| "NONE".into());
    let error = match message {
        Some(m) if !m.is_empty() => format!("{name}: {m}"),
        _ => name,
    };
    ClientError::Kafka {
        context: context.into(),
        code,
        error,
    }
}

/// A consumed record and the partition it came from.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub record: access::Fetched,
}

pub struct KafkaClient {
    stream: TcpStream,
    correlation_id: i32,
    timeout: Duration,
}

const CLIENT_ID: &str = "logbridge-cli";

impl KafkaClient {
    pub async fn connect(addr: &str) -> Result<KafkaClient, ClientError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.into(),
                source: std::io::ErrorKind::TimedOut.into(),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.into(),
                source,
            })?;
        stream.set_nodelay(true)?;
        Ok(KafkaClient {
            stream,
            correlation_id: 0,
            timeout: Duration::from_secs(30),
        })
    }

    /// The address this connection reached.
    pub fn peer_addr(&self) -> Option<String> {
        self.stream.peer_addr().ok().map(|a| a.to_string())
    }

    /// Sends one request and waits for its response.
    pub async fn send(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let frame =
            encode_request(&header, &body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream.write_all(&frame).await?;
        let read = async {
            let size = self.stream.read_i32().await?;
            if !(0..=256 * 1024 * 1024).contains(&size) {
                return Err(ClientError::Protocol(format!(
                    "response size {size} out of range"
                )));
            }
            let mut buf = BytesMut::zeroed(size as usize);
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, ClientError>(buf.freeze())
        };
        let buf = tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| ClientError::Timeout)??;
        let (correlation_id, resp) =
            decode_response(api, version, buf).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if correlation_id != self.correlation_id {
            return Err(ClientError::Protocol(format!(
                "correlation id {correlation_id}, expected {}",
                self.correlation_id
            )));
        }
        Ok(resp)
    }

    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
        auto_create: bool,
    ) -> Result<MetadataResponse, ClientError> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        match self
            .send(ApiKey::Metadata, 12, RequestKind::Metadata(req))
            .await?
        {
            ResponseKind::Metadata(m) => Ok(m),
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Partition count of `topic` (creating it if the broker auto-creates).
    pub async fn partitions(&mut self, topic: &str, auto_create: bool) -> Result<i32, ClientError> {
        let md = self
            .metadata(Some(vec![topic.to_string()]), auto_create)
            .await?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| ClientError::Protocol("empty metadata".into()))?;
        if t.error_code != 0 {
            return Err(kafka_err(format!("topic '{topic}'"), t.error_code, None));
        }
        Ok(t.partitions.len() as i32)
    }

    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            );
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        match self
            .send(ApiKey::CreateTopics, 4, RequestKind::CreateTopics(req))
            .await?
        {
            ResponseKind::CreateTopics(r) => match r.topics.first() {
                Some(t) if t.error_code != 0 => Err(kafka_err(
                    format!("cannot create topic '{name}'"),
                    t.error_code,
                    t.error_message.as_ref(),
                )),
                Some(_) => Ok(()),
                None => Err(ClientError::Protocol("empty CreateTopics response".into())),
            },
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    pub async fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let req = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(StrBytes::from_string(name.into()))])
            .with_timeout_ms(30_000);
        match self
            .send(ApiKey::DeleteTopics, 3, RequestKind::DeleteTopics(req))
            .await?
        {
            ResponseKind::DeleteTopics(r) => match r.responses.first() {
                Some(t) if t.error_code != 0 => Err(kafka_err(
                    format!("cannot delete topic '{name}'"),
                    t.error_code,
                    None,
                )),
                Some(_) => Ok(()),
                None => Err(ClientError::Protocol("empty DeleteTopics response".into())),
            },
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Topic configs as (name, value, is_override).
    pub async fn describe_topic_configs(
        &mut self,
        name: &str,
    ) -> Result<Vec<(String, String, bool)>, ClientError> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(name.into()))
                .with_configuration_keys(None),
        ]);
        match self
            .send(
                ApiKey::DescribeConfigs,
                2,
                RequestKind::DescribeConfigs(req),
            )
            .await?
        {
            ResponseKind::DescribeConfigs(r) => {
                let res = r.results.first().ok_or_else(|| {
                    ClientError::Protocol("empty DescribeConfigs response".into())
                })?;
                if res.error_code != 0 {
                    return Err(kafka_err(
                        format!("cannot describe topic '{name}'"),
                        res.error_code,
                        res.error_message.as_ref(),
                    ));
                }
                Ok(res
                    .configs
                    .iter()
                    .map(|c| {
                        (
                            c.name.to_string(),
                            c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                            c.config_source == 1,
                        )
                    })
                    .collect())
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Produces one batch to one partition with acks=all; returns the base offset.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
        compression: Compression,
    ) -> Result<i64, ClientError> {
        let buf = encode_batch(records, crate::storage::segment::now_ms(), compression)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(buf.freeze()))])]);
        match self
            .send(ApiKey::Produce, 7, RequestKind::Produce(req))
            .await?
        {
            ResponseKind::Produce(r) => {
                let p = r
                    .responses
                    .first()
                    .and_then(|t| t.partition_responses.first())
                    .ok_or_else(|| ClientError::Protocol("empty Produce response".into()))?;
                if p.error_code != 0 {
                    return Err(kafka_err(
                        format!("produce to {topic}-{partition} failed"),
                        p.error_code,
                        p.error_message.as_ref(),
                    ));
                }
                Ok(p.base_offset)
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// ListOffsets for one partition: -2 earliest, -1 latest, or a timestamp.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        match self
            .send(ApiKey::ListOffsets, 5, RequestKind::ListOffsets(req))
            .await?
        {
            ResponseKind::ListOffsets(r) => {
                let p = r
                    .topics
                    .first()
                    .and_then(|t| t.partitions.first())
                    .ok_or_else(|| ClientError::Protocol("empty ListOffsets response".into()))?;
                if p.error_code != 0 {
                    return Err(kafka_err(
                        format!("list offsets of {topic}-{partition}"),
                        p.error_code,
                        None,
                    ));
                }
                Ok(p.offset)
            }
            _ => Err(ClientError::Protocol("unexpected response".into())),
        }
    }

    /// Fetches from several partitions at once: `positions` maps partition → next offset.
    pub async fn fetch(
        &mut self,
        topic: &str,
        positions: &BTreeMap<i32, i64>,
        max_wait_ms: i32,
    ) -> Result<Vec<Consumed>, ClientError> {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(50 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(
                    positions
                        .iter()
                        .map(|(p, o)| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(*o)
                                .with_partition_max_bytes(1024 * 1024)
                        })
                        .collect(),
                )]);
        let resp = match self
            .send(ApiKey::Fetch, 11, RequestKind::Fetch(req))
            .await?
        {
            ResponseKind::Fetch(r) => r,
            _ => return Err(ClientError::Protocol("unexpected response".into())),
        };
        let mut out = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    return Err(kafka_err(
                        format!("fetch from {topic}-{}", p.partition_index),
                        p.error_code,
                        None,
                    ));
                }
                let Some(records) = p.records else {
                    continue;
                };
                let from = positions.get(&p.partition_index).copied().unwrap_or(0);
                // Bounded whatever the broker sends: a partial batch at the end ends
                // the decoding, a batch over the default uncompressed bound is an error.
                let decoded =
                    decode_full_records(&records, from, ReadLimits::default()).map_err(|e| {
                        ClientError::Protocol(format!(
                            "fetch from {topic}-{}: {e}",
                            p.partition_index
                        ))
                    })?;
                out.extend(decoded.into_iter().map(|r| Consumed {
                    partition: p.partition_index,
                    record: r.into(),
                }));
            }
        }
        Ok(out)
    }
}
