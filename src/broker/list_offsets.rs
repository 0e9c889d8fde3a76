//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
//! same as earliest: there is no tiered storage), latest tiered (-5, none: -1), or the
//! first record with a timestamp at or after the one asked for. v0 answers in the old
//! `old_style_offsets` shape.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::errors::{absent_partition_code, code, storage_code};
use super::Broker;
use std::ops::ControlFlow;

use crate::storage::log::PartitionLog;
use crate::storage::records;
use crate::storage::StorageError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(broker: &Broker, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = broker.registry.get(&t.name.0);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut r =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            match topic
                .as_ref()
                .and_then(|tp| tp.partition(p.partition_index))
            {
                None => r.error_code = absent_partition_code(topic.as_deref(), p.partition_index),
                Some(partition) if !partition.is_leader() => {
                    r.error_code = code(ResponseError::NotLeaderOrFollower)
                }
                Some(partition) => {
                    let hw = partition.high_watermark();
                    let (found, epoch) = partition.inspect(|log| {
                        (
                            lookup(
                                log,
                                hw,
                                p.timestamp,
                                broker.settings.max_uncompressed_batch_bytes,
                            ),
                            log.leader_epoch(),
                        )
                    });
                    match found {
                        Ok((offset, ts)) => {
                            if version == 0 {
                                r.old_style_offsets =
                                    if offset >= 0 { vec![offset] } else { vec![] };
                            } else {
                                r.offset = offset;
                                r.timestamp = ts;
                                if version >= 4 {
                                    r.leader_epoch = epoch;
                                }
                            }
                        }
                        Err(e) => r.error_code = storage_code(&e),
                    }
                }
            }
            partitions.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for a target; (-1, -1) when no record qualifies. Consumers see
/// nothing at or past the high watermark `hw`: "latest" is the high watermark, and a
/// record found there by time is not reported yet (as Kafka's READ_UNCOMMITTED).
fn lookup(
    log: &PartitionLog,
    hw: i64,
    target: i64,
    max_uncompressed: usize,
) -> Result<(i64, i64), StorageError> {
    let hw = hw.min(log.log_end_offset());
    let visible = |found: (i64, i64)| if found.0 >= hw { (-1, -1) } else { found };
    match target {
        LATEST => Ok((hw, -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((log.log_start_offset(), -1)),
        LATEST_TIERED => Ok((-1, -1)),
        MAX_TIMESTAMP => {
            let max = log.max_timestamp();
            if max < 0 {
                return Ok((-1, -1));
            }
            // The last record carrying the max timestamp is what Kafka reports; the first
            // one at it is a close, cheaper answer for logs with unique maxima.
            first_record_at_or_after(log, max, max_uncompressed).map(visible)
        }
        ts if ts >= 0 => first_record_at_or_after(log, ts, max_uncompressed).map(visible),
        _ => Ok((-1, -1)),
    }
}

/// Finds the batch whose max timestamp reaches `ts`, then the first record in it that
/// does (walking the records in place: timestamps are varlong deltas, so a batch may
/// spread its records over any range of time).
fn first_record_at_or_after(
    log: &PartitionLog,
    ts: i64,
    max_uncompressed: usize,
) -> Result<(i64, i64), StorageError> {
    let Some(base) = log.offset_for_timestamp(ts)? else {
        return Ok((-1, -1));
    };
    let Some(plan) = log.read(base, 1)? else {
        return Ok((-1, -1));
    };
    let bytes: Bytes = plan.read()?;
    let mut found = None;
    records::walk(&bytes, max_uncompressed, |header, _, view| {
        let (offset, timestamp) = records::offset_and_timestamp(header, &view);
        if offset >= base && timestamp >= ts {
            found = Some((offset, timestamp));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
    Ok(found.unwrap_or((base, ts)))
}
