//! Produce: validate each partition's record batch as Kafka's LogValidator does
//! (`storage::validate`: framing, CRC-32C, counts, offsets, sizes compressed and not,
//! timestamps), append it as sent — the records are walked, never re-encoded — refuse
//! writes to internal topics, and acknowledge per
//! `acks`: 0 (no response), 1 (written to the leader's log), -1/all (written, held by
//! every ISR member — the high watermark has passed it — and, with `fsync_before_ack`,
//! fsync'd here first). `acks=all` is refused before the append with
//! NOT_ENOUGH_REPLICAS while the ISR is below `min.insync.replicas`, and answered
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND when it falls below while the produce waits (the
//! delayed produce of Kafka's purgatory, bounded by the request's `timeout_ms`).

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{
    absent_partition_code, code, legacy_code, replica_code, validation_code, NONE,
};
use super::legacy;
use super::registry::is_internal;
use super::Broker;
use crate::replication::replica::{Replica, ReplicaError};
use crate::storage::batch::BatchError;
use crate::storage::segment::now_ms;
use crate::storage::validate::{self, ValidationError};

/// The longest an `acks=all` produce waits for its ISR, whatever the client asks.
const MAX_REPLICATION_WAIT: Duration = Duration::from_secs(60);

pub async fn handle(broker: &Broker, req: ProduceRequest, version: i16) -> ProduceResponse {
    stage(broker, req, version).finish().await
}

/// A produce whose records are appended (or refused), waiting for what `acks` asks
/// before it is answered: `finish` fsyncs under `fsync_before_ack` and waits for the
/// ISR. Apart from the broker, so the listener can read a connection's next request
/// while this one waits (the appends stay in request order; the answers too).
pub struct StagedProduce {
    responses: Vec<TopicProduceResponse>,
    to_sync: Vec<std::sync::Arc<std::fs::File>>,
    awaiting: Vec<(usize, usize, std::sync::Arc<Replica>, i64, i32)>,
    acks: i16,
    fsync_before_ack: bool,
    replication_wait: Duration,
    version: i16,
}

/// Validates and appends every partition's records now; the answer waits in the
/// returned `StagedProduce`.
pub fn stage(broker: &Broker, req: ProduceRequest, version: i16) -> StagedProduce {
    let acks = req.acks;
    let replication_wait =
        Duration::from_millis(req.timeout_ms.max(0) as u64).min(MAX_REPLICATION_WAIT);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut to_sync = Vec::new();
    // acks=all: (topic index, partition index, replica, end offset, leader epoch).
    let mut awaiting = Vec::new();
    let mut appended = false;
    for topic_data in req.topic_data {
        let name = topic_data.name.0.to_string();
        let topic = broker.registry.get(&name);
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for pd in topic_data.partition_data {
            let index = pd.index;
            let mut r = PartitionProduceResponse::default().with_index(index);
            if !matches!(acks, -1 | 0 | 1) {
                r.error_code = code(ResponseError::InvalidRequiredAcks);
            } else if req.transactional_id.is_some() {
                r.error_code = code(ResponseError::TransactionalIdAuthorizationFailed);
                r.error_message = Some(StrBytes::from_static_str(
                    "transactions are not supported by logbridge",
                ));
            } else if is_internal(&name) {
                // Kafka: "Cannot append to internal topic"; only the broker writes there.
                r.error_code = code(ResponseError::InvalidTopicException);
                if version >= 8 {
                    r.error_message = Some(StrBytes::from_string(format!(
                        "cannot append to internal topic {name}"
                    )));
                }
            } else {
                match topic.as_ref().and_then(|t| t.partition(index)) {
                    None => r.error_code = absent_partition_code(topic.as_deref(), index),
                    Some(partition) => {
                        let epoch = partition.leader_epoch();
                        let checked = if acks == -1 {
                            partition.check_enough_replicas()
                        } else {
                            Ok(())
                        };
                        let result = match checked {
                            Ok(()) => append_off_the_reactor(broker, &partition, pd, version),
                            Err(e) => Err(Refused::from((replica_code(&e), e.to_string()))),
                        };
                        match result {
                            Ok(outcome) => {
                                if acks == -1 {
                                    awaiting.push((
                                        responses.len(),
                                        partition_responses.len(),
                                        partition.clone(),
                                        outcome.end_offset,
                                        epoch,
                                    ));
                                }
                                r.base_offset = outcome.base_offset;
                                if version >= 2 {
                                    r.log_append_time_ms = outcome.log_append_time_ms;
                                }
                                if version >= 5 {
                                    r.log_start_offset = outcome.log_start_offset;
                                }
                                if let Some(f) = outcome.file {
                                    to_sync.push(f);
                                    appended = true;
                                }
                            }
                            Err(refused) => {
                                tracing::debug!(topic = %name, partition = index, error = %refused.message, "produce refused");
                                r.error_code = refused.code;
                                if version >= 8 {
                                    r.error_message = Some(StrBytes::from_string(refused.message));
                                    r.record_errors = refused
                                        .record_errors
                                        .into_iter()
                                        .map(|(i, m)| {
                                            BatchIndexAndErrorMessage::default()
                                                .with_batch_index(i)
                                                .with_batch_index_error_message(Some(
                                                    StrBytes::from_string(m),
                                                ))
                                        })
                                        .collect();
                                }
                            }
                        }
                    }
                }
            }
            partition_responses.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_partition_responses(partition_responses),
        );
    }
    if appended {
        broker.data_arrived.notify_waiters();
    }
    StagedProduce {
        responses,
        to_sync,
        awaiting,
        acks,
        fsync_before_ack: broker.settings.fsync_before_ack,
        replication_wait,
        version,
    }
}

impl StagedProduce {
    /// The answer, once what `acks` asks holds: fsync'd here (`fsync_before_ack`) and
    /// held by each partition's ISR for `acks=all`.
    pub async fn finish(self) -> ProduceResponse {
        let StagedProduce {
            mut responses,
            to_sync,
            awaiting,
            acks,
            fsync_before_ack,
            replication_wait,
            version,
        } = self;
        if acks == -1 && fsync_before_ack && !to_sync.is_empty() {
            fsync_all(to_sync, &mut responses).await;
        }
        // acks=all: each partition's records must be held by its whole ISR.
        for (t, p, replica, end, epoch) in awaiting {
            if let Err(e) = replica.await_replicated(end, epoch, replication_wait).await {
                tracing::debug!(partition = replica.index, error = %e, "acks=all produce not replicated");
                let r = &mut responses[t].partition_responses[p];
                r.error_code = replica_code(&e);
                if version >= 8 {
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
        }
        ProduceResponse::default().with_responses(responses)
    }
}

/// fsyncs the written segments before `acks=all` is answered; a failure turns every
/// partition answered so far into KAFKA_STORAGE_ERROR.
async fn fsync_all(
    to_sync: Vec<std::sync::Arc<std::fs::File>>,
    responses: &mut [TopicProduceResponse],
) {
    let result =
        tokio::task::spawn_blocking(move || to_sync.iter().try_for_each(|f| f.sync_data())).await;
    if !matches!(result, Ok(Ok(()))) {
        tracing::error!("fsync before acknowledging acks=all failed");
        for t in responses {
            for p in &mut t.partition_responses {
                if p.error_code == NONE {
                    p.error_code = code(ResponseError::KafkaStorageError);
                }
            }
        }
    }
}

struct Outcome {
    base_offset: i64,
    /// One past the last offset of the append (for a retried duplicate, past its first).
    end_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
    file: Option<std::sync::Arc<std::fs::File>>,
}

/// Runs `append_partition`, which for a compressed batch decompresses up to
/// `max_uncompressed_batch_bytes` to validate it: that work is moved off the async
/// worker (`block_in_place`), so the other connections the worker serves keep going.
fn append_off_the_reactor(
    broker: &Broker,
    partition: &Replica,
    pd: PartitionProduceData,
    version: i16,
) -> Result<Outcome, Refused> {
    let compressed = pd
        .records
        .as_ref()
        .is_some_and(|r| legacy::compression_of(r) != 0);
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if compressed && multi_threaded {
        tokio::task::block_in_place(|| append_partition(broker, partition, pd, version))
    } else {
        append_partition(broker, partition, pd, version)
    }
}

/// Why a partition's records were not appended, as the Produce response says it.
struct Refused {
    code: i16,
    message: String,
    /// KIP-467: the records refused one by one, by their index in the batch.
    record_errors: Vec<(i32, String)>,
}

impl From<(i16, String)> for Refused {
    fn from((code, message): (i16, String)) -> Self {
        Refused {
            code,
            message,
            record_errors: Vec::new(),
        }
    }
}

impl From<ValidationError> for Refused {
    fn from(e: ValidationError) -> Self {
        let record_errors = match &e {
            ValidationError::Records(r) => r.listed.clone(),
            _ => Vec::new(),
        };
        Refused {
            code: validation_code(&e),
            message: e.to_string(),
            record_errors,
        }
    }
}

fn append_partition(
    broker: &Broker,
    partition: &Replica,
    pd: PartitionProduceData,
    version: i16,
) -> Result<Outcome, Refused> {
    let records = pd.records.ok_or_else(|| {
        (
            code(ResponseError::CorruptMessage),
            "no records".to_string(),
        )
    })?;
    let max_uncompressed = broker.settings.max_uncompressed_batch_bytes;
    let mut bytes = match legacy::magic_of(&records) {
        Some(2) => BytesMut::from(&records[..]),
        Some(0 | 1) if version <= 2 => legacy::upconvert(records, max_uncompressed)
            .map_err(|e| (legacy_code(&e), e.to_string()))?,
        Some(m) => return Err(ValidationError::from(BatchError::UnsupportedMagic(m)).into()),
        None => {
            return Err((
                code(ResponseError::CorruptMessage),
                format!("records of {} bytes", records.len()),
            )
                .into())
        }
    };
    // Validated outside the partition lock (it decompresses), against the rules of
    // the topic's config as it is now.
    let rules = partition.config(|c| c.validation_rules(max_uncompressed));
    let now = now_ms();
    let headers = validate::client_batch(&mut bytes, &rules, now)?;
    if headers.iter().any(|(_, h)| h.is_transactional()) {
        return Err((
            code(ResponseError::InvalidRecord),
            "transactional batches are not supported".to_string(),
        )
            .into());
    }
    let info = partition.append(bytes, headers, now).map_err(|e| {
        if let ReplicaError::Storage(crate::storage::StorageError::Io(io)) = &e {
            tracing::error!(partition = partition.index, error = %io, "append failed");
        }
        Refused::from((replica_code(&e), e.to_string()))
    })?;
    Ok(Outcome {
        base_offset: info.base_offset,
        end_offset: info.base_offset + info.records.max(1),
        log_append_time_ms: info.log_append_time_ms,
        log_start_offset: info.log_start_offset,
        file: info.file,
    })
}
