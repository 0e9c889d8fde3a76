//! Appends forwarded to a partition's leader on another node: a batch that an ingest
//! door (Beats, `_bulk`) built on this node, sent as a Kafka Produce with `acks=all` to
//! the leader's Kafka listener — so it is acknowledged only once the leader holds it
//! as its own produce would. Speaks the protocol through `protocol/`, never through
//! `client/`, which stands above `broker/`.
//!
//! Invariants: one request in flight per leader connection, its answer matched by
//! correlation id; every exchange has a deadline; a connection that failed mid-way is
//! dropped, never reused (`connection.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use thiserror::Error;
use tokio::net::TcpStream;

use crate::protocol::codec::{decode_response, encode_request};

/// The Produce version forwarded (every logbridge node takes it).
const PRODUCE_VERSION: i16 = 9;
/// Largest answer read back: a Produce response for one partition is tiny.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum ForwardError {
    #[error("the leader: {0}")]
    Exchange(#[from] super::connection::ExchangeError),
    #[error("the leader's answer: {0}")]
    Protocol(String),
    /// The leader refused the batch with this Kafka error code.
    #[error("the leader refused the append (error code {code})")]
    Refused { code: i16 },
    #[error("the leader did not answer within {0:?}")]
    Timeout(Duration),
}

/// One connection to one leader, used by one request at a time.
type Slot = Arc<tokio::sync::Mutex<Option<TcpStream>>>;

#[derive(Default)]
pub struct Forwarder {
    connections: parking_lot::Mutex<HashMap<String, Slot>>,
    correlation: std::sync::atomic::AtomicI32,
}

impl Forwarder {
    /// Appends `batch` (whole v2 batches) to `topic`-`partition` on the leader at
    /// `addr`; returns the base offset it assigned.
    pub async fn produce(
        &self,
        addr: &str,
        topic: &str,
        partition: i32,
        batch: Bytes,
        timeout: Duration,
    ) -> Result<i64, ForwardError> {
        let correlation_id = self
            .correlation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(PRODUCE_VERSION)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("logbridge-forward")));
        let body = RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch))])]),
        );
        let frame =
            encode_request(&header, &body).map_err(|e| ForwardError::Protocol(e.to_string()))?;
        let slot = self
            .connections
            .lock()
            .entry(addr.to_string())
            .or_default()
            .clone();
        let exchange = async {
            let mut conn = slot.lock().await;
            super::connection::exchange(&mut conn, addr, &frame, MAX_RESPONSE_BYTES).await
        };
        // The deadline covers the wait for the connection too.
        let answer = match tokio::time::timeout(timeout, exchange).await {
            Ok(a) => a?,
            Err(_) => return Err(ForwardError::Timeout(timeout)),
        };
        let (got, resp) = decode_response(ApiKey::Produce, PRODUCE_VERSION, answer)
            .map_err(|e| ForwardError::Protocol(e.to_string()))?;
        if got != correlation_id {
            return Err(ForwardError::Protocol(format!(
                "correlation id {got}, expected {correlation_id}"
            )));
        }
        let ResponseKind::Produce(r) = resp else {
            return Err(ForwardError::Protocol("not a Produce response".into()));
        };
        let p = r
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| ForwardError::Protocol("empty Produce response".into()))?;
        if p.error_code != 0 {
            return Err(ForwardError::Refused { code: p.error_code });
        }
        Ok(p.base_offset)
    }
}
