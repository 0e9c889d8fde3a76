//! What a client batch must satisfy before it is appended — Kafka's `LogValidator` for
//! magic v2 produce requests — and the one correction the broker makes in place.
//!
//! Checked, in Kafka's order and with its error classes: the framing and CRC-32C
//! (`batch::validate_batch`); one batch per partition; a record count that is
//! positive and equal to `lastOffsetDelta + 1`; no control batches; a base sequence
//! for every batch that carries a producer id; the batch's size against
//! `max.message.bytes`; then every record, decompressed within
//! `max_uncompressed_batch_bytes` — exactly `count` records whose offset deltas run
//! 0, 1, 2…, each using exactly the bytes its length claims, with a key on compacted
//! topics, and a timestamp within `message.timestamp.before.max.ms` /
//! `after.max.ms` of the broker's clock on CreateTime topics.
//!
//! Corrected in place: the header's max timestamp becomes the largest record
//! timestamp (as Kafka's `setMaxTimestamp` does), with the CRC recomputed, so that
//! the time index never trusts a producer's claim.
//!
//! Differs from Kafka on purpose: a v2 batch whose offset deltas are not 0, 1, 2… is
//! refused with INVALID_RECORD — Kafka re-encodes such a batch; no client writes one,
//! and storing it as sent would give its records offsets outside the batch.

use thiserror::Error;

use super::batch::{self, BatchError, BatchHeader};
use super::records::{self, RecordsError};
use crate::protocol::compression::DecompressError;
use crate::protocol::records::RecordWalker;

/// The topic settings a batch is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub max_message_bytes: usize,
    pub max_uncompressed: usize,
    pub compacted: bool,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValidationError {
    /// Framing or CRC: Kafka's CORRUPT_MESSAGE.
    #[error(transparent)]
    Corrupt(#[from] BatchError),
    /// Kafka's INVALID_RECORD.
    #[error("{0}")]
    InvalidRecord(String),
    /// Kafka's MESSAGE_TOO_LARGE.
    #[error("{0}")]
    TooLarge(String),
    /// Records refused one by one (KIP-467): INVALID_TIMESTAMP or INVALID_RECORD with
    /// `record_errors` in the Produce response.
    #[error("{0}")]
    Records(RecordErrors),
}

impl From<RecordsError> for ValidationError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::Batch(b) => ValidationError::Corrupt(b),
            RecordsError::Decompress(DecompressError::TooLarge { limit }) => {
                ValidationError::TooLarge(format!(
                    "batch records decompress to more than max_uncompressed_batch_bytes ({limit})"
                ))
            }
            RecordsError::Decompress(d) => {
                ValidationError::Corrupt(BatchError::Compression(d.to_string()))
            }
            RecordsError::Format(f) => ValidationError::InvalidRecord(f.to_string()),
        }
    }
}

/// Validates the records of one produce request's partition (magic v2, as sent or as
/// up-converted) and returns the batch with its header. `buf` may be corrected in
/// place (see the module doc).
pub fn client_batch(
    buf: &mut [u8],
    rules: &Rules,
    now_ms: i64,
) -> Result<Vec<(usize, BatchHeader)>, ValidationError> {
    let mut header = batch::validate_batch(buf).map_err(|e| match e {
        // Kafka: "Batch has an invalid offset range", an INVALID_RECORD.
        BatchError::BadRecordCount { .. } => ValidationError::InvalidRecord(e.to_string()),
        other => ValidationError::Corrupt(other),
    })?;
    if header.total_len() != buf.len() {
        return Err(ValidationError::InvalidRecord(
            "a produce request may carry one record batch per partition".into(),
        ));
    }
    if header.record_count <= 0 {
        return Err(ValidationError::InvalidRecord(format!(
            "invalid reported count for record batch: {}",
            header.record_count
        )));
    }
    if header.last_offset_delta.checked_add(1) != Some(header.record_count) {
        return Err(ValidationError::InvalidRecord(format!(
            "inconsistent batch offset range [0, {}] and count of records {}",
            header.last_offset_delta, header.record_count
        )));
    }
    if header.is_control() {
        return Err(ValidationError::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(ValidationError::InvalidRecord(format!(
            "invalid sequence number {} in a batch with producer id {}",
            header.base_sequence, header.producer_id
        )));
    }
    if header.total_len() > rules.max_message_bytes {
        return Err(ValidationError::TooLarge(format!(
            "batch of {} bytes exceeds max.message.bytes {}",
            header.total_len(),
            rules.max_message_bytes
        )));
    }
    let max_timestamp = check_records(buf, &header, rules, now_ms)?;
    if !rules.log_append_time && header.max_timestamp != max_timestamp {
        batch::set_max_timestamp(buf, max_timestamp)?;
        header.max_timestamp = max_timestamp;
    }
    Ok(vec![(0, header)])
}

/// Walks every record; returns the largest record timestamp.
fn check_records(
    buf: &[u8],
    header: &BatchHeader,
    rules: &Rules,
    now_ms: i64,
) -> Result<i64, ValidationError> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let section =
            records::records_section_in(buf, header, rules.max_uncompressed, &mut scratch)?;
        let result = walk_records(section, header, rules, now_ms);
        if scratch.capacity() > SCRATCH_KEPT {
            *scratch = Vec::new();
        }
        result
    })
}

thread_local! {
    /// Where a compressed batch is decompressed to be checked: kept per thread, so the
    /// produce path does not allocate (and fault in) a buffer for every batch.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The scratch buffer is given back after a batch larger than this.
const SCRATCH_KEPT: usize = 4 * 1024 * 1024;

fn walk_records(
    section: &[u8],
    header: &BatchHeader,
    rules: &Rules,
    now_ms: i64,
) -> Result<i64, ValidationError> {
    let log_append_batch = header.attributes & 0x08 != 0;
    let mut max_timestamp = -1i64;
    let mut expected_delta = 0i32;
    // Key and timestamp problems are the records' own (KIP-467): every one is
    // reported, by its index, as Kafka does; the structure of the batch is not.
    let mut refused = RecordErrors::default();
    let mut walker = RecordWalker::new(section);
    for view in walker.by_ref() {
        let view = view.map_err(RecordsError::from)?;
        let index = expected_delta;
        if expected_delta == header.record_count {
            return Err(ValidationError::InvalidRecord(format!(
                "more records than the batch's count of {}",
                header.record_count
            )));
        }
        if view.offset_delta != expected_delta {
            return Err(ValidationError::InvalidRecord(format!(
                "record {index} has offset delta {}; records must be numbered 0, 1, 2…",
                view.offset_delta
            )));
        }
        expected_delta += 1;
        if rules.compacted && view.key.is_none() {
            refused.push(index, false, || {
                "compacted topic cannot accept message without key".into()
            });
            continue;
        }
        let timestamp = header.base_timestamp.wrapping_add(view.timestamp_delta);
        if !rules.log_append_time && timestamp != -1 {
            let diff = now_ms as i128 - timestamp as i128;
            if diff > rules.timestamp_before_max_ms as i128
                || -diff > rules.timestamp_after_max_ms as i128
            {
                refused.push(index, true, || {
                    format!(
                        "timestamp {timestamp} of message with offset {index} is out of range. The timestamp should be within [{}, {}]",
                        now_ms.saturating_sub(rules.timestamp_before_max_ms),
                        now_ms.saturating_add(rules.timestamp_after_max_ms)
                    )
                });
                continue;
            }
        } else if log_append_batch {
            refused.push(index, true, || {
                "producers must not set the timestamp type to LogAppendTime".into()
            });
            continue;
        }
        max_timestamp = max_timestamp.max(timestamp);
    }
    if expected_delta != header.record_count {
        return Err(ValidationError::InvalidRecord(format!(
            "the batch claims {} records but holds {expected_delta}",
            header.record_count
        )));
    }
    if refused.count > 0 {
        return Err(ValidationError::Records(refused));
    }
    Ok(max_timestamp)
}

/// The records of a batch refused for their own content, by index in the batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    /// The first `MAX_LISTED` of them: (batch index, message).
    pub listed: Vec<(i32, String)>,
    /// How many in all.
    pub count: usize,
    /// Whether any is a timestamp error (the partition's error is then
    /// INVALID_TIMESTAMP, else INVALID_RECORD, as in Kafka).
    pub timestamp: bool,
}

/// Per-record errors kept with their message (the rest are counted).
const MAX_LISTED: usize = 100;

impl RecordErrors {
    fn push(&mut self, index: i32, timestamp: bool, message: impl FnOnce() -> String) {
        self.count += 1;
        self.timestamp |= timestamp;
        if self.listed.len() < MAX_LISTED {
            self.listed.push((index, message()));
        }
    }
}

impl std::fmt::Display for RecordErrors {
    /// Kafka's summary line for a batch with record errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.timestamp {
            return write!(
                f,
                "One or more records have been rejected due to invalid timestamp"
            );
        }
        let first: Vec<String> = self
            .listed
            .iter()
            .take(3)
            .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
            .collect();
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            self.count,
            first.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::encode_records;
    use crate::protocol::records::OutRecord;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    fn rules() -> Rules {
        Rules {
            max_message_bytes: 1 << 20,
            max_uncompressed: 1 << 20,
            compacted: false,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
        }
    }

    fn batch(n: usize, compression: Compression, key: bool) -> Vec<u8> {
        let recs: Vec<OutRecord> = (0..n)
            .map(|i| OutRecord {
                key: key.then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                headers: vec![("h".into(), Bytes::from_static(b"v"))],
            })
            .collect();
        encode_records(&recs, 1_000, compression).unwrap().to_vec()
    }

    fn set_i32(b: &mut [u8], at: usize, v: i32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn real_batches_pass_with_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = batch(50, c, false);
            let v = client_batch(&mut b, &rules(), 2_000).unwrap();
            assert_eq!(v[0].1.record_count, 50, "{c:?}");
        }
    }

    #[test]
    fn lying_counts_and_offsets_are_invalid_records() {
        // lastOffsetDelta = i32::MAX: the count can never match, and nothing overflows.
        let mut b = batch(3, Compression::None, false);
        set_i32(&mut b, 23, i32::MAX);
        assert!(matches!(
            client_batch(&mut b, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // One record claimed, with a delta of 2^31-2.
        let mut b = batch(1, Compression::None, false);
        set_i32(&mut b, 23, i32::MAX - 1);
        assert!(matches!(
            client_batch(&mut b, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // Zero records.
        let mut b = batch(1, Compression::None, false);
        set_i32(&mut b, 57, 0);
        set_i32(&mut b, 23, -1);
        assert!(matches!(
            client_batch(&mut b, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // A count that matches the delta but not the records inside.
        let mut b = batch(2, Compression::Zstd, false);
        set_i32(&mut b, 57, 3);
        set_i32(&mut b, 23, 2);
        assert!(matches!(
            client_batch(&mut b, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // A producer id without a sequence.
        let mut b = batch(1, Compression::None, false);
        b[43..51].copy_from_slice(&7i64.to_be_bytes());
        set_i32(&mut b, 53, -1);
        assert!(matches!(
            client_batch(&mut b, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
        // Two batches in one partition's records.
        let mut two = batch(1, Compression::None, false);
        two.extend(batch(1, Compression::None, false));
        assert!(matches!(
            client_batch(&mut two, &rules(), 0),
            Err(ValidationError::InvalidRecord(_))
        ));
    }

    #[test]
    fn compacted_topics_need_keys_and_sizes_are_bounded() {
        let compacted = Rules {
            compacted: true,
            ..rules()
        };
        let mut b = batch(2, Compression::None, false);
        match client_batch(&mut b, &compacted, 0) {
            Err(ValidationError::Records(e)) => {
                assert_eq!(e.count, 2, "every keyless record is reported");
                assert_eq!(e.listed[1].0, 1);
                assert!(!e.timestamp);
            }
            other => panic!("{other:?}"),
        }
        let mut b = batch(2, Compression::None, true);
        client_batch(&mut b, &compacted, 0).unwrap();
        let small = Rules {
            max_uncompressed: 100,
            ..rules()
        };
        let mut b = batch(20, Compression::Zstd, false);
        assert!(matches!(
            client_batch(&mut b, &small, 0),
            Err(ValidationError::TooLarge(_))
        ));
        let tiny = Rules {
            max_message_bytes: 50,
            ..rules()
        };
        let mut b = batch(20, Compression::None, false);
        assert!(matches!(
            client_batch(&mut b, &tiny, 0),
            Err(ValidationError::TooLarge(_))
        ));
    }

    #[test]
    fn timestamps_are_bounded_and_the_max_is_corrected() {
        let bounded = Rules {
            timestamp_before_max_ms: 500,
            timestamp_after_max_ms: 500,
            ..rules()
        };
        let mut b = batch(2, Compression::None, false);
        assert!(matches!(
            client_batch(&mut b, &bounded, 10_000),
            Err(ValidationError::Records(RecordErrors {
                timestamp: true,
                count: 2,
                ..
            }))
        ));
        let mut b = batch(2, Compression::None, false);
        client_batch(&mut b, &bounded, 1_200).unwrap();
        // A header claiming a far-future max timestamp is corrected to the records'.
        let mut b = batch(2, Compression::None, false);
        b[35..43].copy_from_slice(&(1i64 << 50).to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let v = client_batch(&mut b, &rules(), 0).unwrap();
        assert_eq!(v[0].1.max_timestamp, 1_000);
        assert_eq!(batch::validate_batch(&b).unwrap().max_timestamp, 1_000);
    }
}
