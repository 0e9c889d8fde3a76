//! Fetch: read whole batches from each requested partition, as stored (no re-encoding,
//! except the down-conversion old clients need), within `partition_max_bytes` and the
//! request's `max_bytes` — of which, as KIP-74 says, only the first batch of the first
//! non-empty partition may exceed either; long-poll until `min_bytes` are available or `max_wait_ms`
//! passes. Incremental fetch sessions are not offered: responses carry session id 0,
//! which every client treats as "send full requests".
//!
//! A fetch with a replica id (a follower node's) is replication: it is answered by
//! `Replica::read_for_follower` — batches up to the log end rather than the high
//! watermark, `DivergingEpoch` where the follower's log parts from the leader's, its
//! `CurrentLeaderEpoch` checked — and it moves the high watermark, which wakes the
//! consumers' long polls.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::errors::{absent_partition_code, code, replica_code, storage_code};
use super::legacy;
use super::Broker;
use crate::replication::replica::{FollowerRead, Replica};
use crate::storage::StorageError;

/// Upper bound on how long a fetch may wait, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub async fn handle(broker: &Broker, req: FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    loop {
        let notified = broker.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (resp, bytes, had_error) = read_once(broker, &req, version);
        if bytes >= req.min_bytes.max(0) as usize || had_error || Instant::now() >= deadline {
            return resp;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

fn read_once(broker: &Broker, req: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut had_error = false;
    let max_total = if version >= 3 {
        req.max_bytes.max(0) as usize
    } else {
        usize::MAX
    };
    let max_uncompressed = broker.settings.max_uncompressed_batch_bytes;
    let replica_id = if version <= 14 {
        req.replica_id.0
    } else {
        req.replica_state.replica_id.0
    };
    let mut responses = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let topic = if version >= 13 {
            broker.registry.get_by_id(&ft.topic_id)
        } else {
            broker.registry.get(&ft.topic.0)
        };
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let mut pd = PartitionData::default().with_partition_index(fp.partition);
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                pd.error_code = if version >= 13 && topic.is_none() {
                    code(ResponseError::UnknownTopicId)
                } else {
                    absent_partition_code(topic.as_deref(), fp.partition)
                };
                had_error = true;
                partitions.push(pd);
                continue;
            };
            let budget = if total >= max_total {
                0
            } else {
                (fp.partition_max_bytes.max(0) as usize).min(max_total - total)
            };
            // KIP-74: until a partition has returned data, its first batch may exceed
            // the limits; after that, a batch over what is left is not sent.
            let min_one = total == 0;
            if replica_id >= 0 {
                let read = partition.read_for_follower(
                    replica_id,
                    fp.current_leader_epoch,
                    fp.fetch_offset,
                    fp.last_fetched_epoch,
                    budget as u64,
                );
                match follower_read(broker, &partition, read, min_one, &mut pd) {
                    Ok(n) => total += n,
                    Err(()) => had_error = true,
                }
                partitions.push(pd);
                continue;
            }
            if !partition.is_leader() {
                pd.error_code = code(ResponseError::NotLeaderOrFollower);
                had_error = true;
                partitions.push(pd);
                continue;
            }
            let (plan, offsets) = if budget == 0 && !min_one {
                (Ok(None), partition.offsets())
            } else {
                partition.read(fp.fetch_offset, budget as u64)
            };
            let (hw, start) = (offsets.high_watermark, offsets.log_start);
            let downconversion = partition.config(|c| c.message_downconversion_enable);
            if version < 4 && !downconversion {
                // message.downconversion.enable=false: old fetch versions cannot read it.
                pd.error_code = code(ResponseError::UnsupportedVersion);
                pd.high_watermark = hw;
                pd.records = Some(Bytes::new());
                had_error = true;
                partitions.push(pd);
                continue;
            }
            pd.high_watermark = hw;
            if version >= 4 {
                pd.last_stable_offset = hw;
                pd.aborted_transactions = Some(vec![]);
            }
            if version >= 5 {
                pd.log_start_offset = start;
            }
            // Old versions (v0–v2) had no response limit; they get at least one message.
            let min_one = min_one || version < 3;
            let read = plan.and_then(|p| {
                p.map(|p| p.read_within(min_one))
                    .transpose()
                    .map_err(StorageError::from)
            });
            match read {
                Ok(Some(records)) => {
                    let records = if version < 4 {
                        let from = fp.fetch_offset;
                        down_convert(&records, version, from, budget, min_one, max_uncompressed)
                    } else {
                        Ok(records)
                    };
                    match records {
                        Ok(records) => {
                            total += records.len();
                            pd.records = Some(records);
                        }
                        Err(()) => {
                            // Stored bytes an old client cannot be given: say so rather
                            // than answer an empty success it would ask again for.
                            pd.error_code = code(ResponseError::CorruptMessage);
                            had_error = true;
                            pd.records = Some(Bytes::new());
                        }
                    }
                }
                Ok(None) => pd.records = Some(Bytes::new()),
                Err(e) => {
                    pd.error_code = storage_code(&e);
                    had_error = true;
                    pd.records = Some(Bytes::new());
                }
            }
            partitions.push(pd);
        }
        let mut tr = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            tr.topic_id = ft.topic_id;
        } else {
            tr.topic = ft.topic.clone();
        }
        responses.push(tr);
    }
    (
        FetchResponse::default().with_responses(responses),
        total,
        had_error,
    )
}

/// Fills a follower's partition answer; the bytes it carries, or Err when it carries an
/// error (the fetch then answers at once).
fn follower_read(
    broker: &Broker,
    partition: &Replica,
    read: Result<FollowerRead, crate::replication::replica::ReplicaError>,
    min_one: bool,
    pd: &mut PartitionData,
) -> Result<usize, ()> {
    pd.records = Some(Bytes::new());
    match read {
        Err(e) => {
            pd.error_code = replica_code(&e);
            let offsets = partition.offsets();
            pd.high_watermark = offsets.high_watermark;
            pd.log_start_offset = offsets.log_start;
            Err(())
        }
        Ok(FollowerRead::Diverging {
            epoch,
            end_offset,
            offsets,
        }) => {
            pd.diverging_epoch.epoch = epoch;
            pd.diverging_epoch.end_offset = end_offset;
            pd.high_watermark = offsets.high_watermark;
            pd.last_stable_offset = offsets.high_watermark;
            pd.log_start_offset = offsets.log_start;
            // The follower truncates before it fetches again: answer now.
            Err(())
        }
        Ok(FollowerRead::Records {
            plan,
            offsets,
            high_watermark_moved,
        }) => {
            if high_watermark_moved {
                broker.data_arrived.notify_waiters();
            }
            pd.high_watermark = offsets.high_watermark;
            pd.last_stable_offset = offsets.high_watermark;
            pd.log_start_offset = offsets.log_start;
            pd.aborted_transactions = Some(vec![]);
            match plan.map(|p| p.read_within(min_one)).transpose() {
                Ok(records) => {
                    let records = records.unwrap_or_default();
                    let n = records.len();
                    pd.records = Some(records);
                    Ok(n)
                }
                Err(e) => {
                    pd.error_code = storage_code(&StorageError::from(e));
                    Err(())
                }
            }
        }
    }
}

fn down_convert(
    records: &Bytes,
    version: i16,
    from: i64,
    budget: usize,
    min_one: bool,
    max_uncompressed: usize,
) -> Result<Bytes, ()> {
    let magic = if version <= 1 { 0 } else { 1 };
    legacy::downconvert(records, magic, from, budget, min_one, max_uncompressed).map_err(|e| {
        tracing::warn!(error = %e, "cannot down-convert stored batches for an old fetch version");
    })
}
