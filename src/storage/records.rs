//! The records inside stored batches, for every reader that needs more than bytes:
//! down-conversion for old fetch versions, timestamp lookups, compaction, the replay of
//! `__consumer_offsets`, and the clients (CLI, pipelines) that turn records into events.
//!
//! Invariants: a batch's records are decompressed into at most `max_uncompressed`
//! bytes (the produce path refuses anything larger, see `validate.rs`, so a stored
//! batch always fits); readers that build a `Record` per record stop at a budget that
//! counts each record's bytes plus its in-memory overhead, so a batch of millions of
//! one-byte records costs a reader no more than the budget — never the whole batch.
//! Nothing here allocates from a length read off disk or the wire before checking it.

use std::ops::ControlFlow;

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use thiserror::Error;

use super::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use crate::protocol::compression::{self, DecompressError};
use crate::protocol::records::{RecordFormatError, RecordView, RecordWalker};

/// The default bound on one batch's uncompressed records (`max_uncompressed_batch_bytes`).
pub const DEFAULT_MAX_UNCOMPRESSED_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// What a decoded `Record` costs in memory beyond its key, value and headers: the
/// struct, its header map and the bookkeeping of the vector it lands in.
pub const DECODED_RECORD_OVERHEAD: usize = 256;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordsError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error(transparent)]
    Format(#[from] RecordFormatError),
}

/// The records section of the whole batch at the start of `batch`: in place when it is
/// uncompressed, else decompressed into `scratch` (cleared first); at most
/// `max_uncompressed` bytes either way. The one place that bound is applied to a batch.
pub fn records_section_in<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    max_uncompressed: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], RecordsError> {
    let raw = &batch[HEADER_LEN..header.total_len()];
    match header.compression() {
        compression::NONE if raw.len() > max_uncompressed => Err(DecompressError::TooLarge {
            limit: max_uncompressed,
        }
        .into()),
        compression::NONE => Ok(raw),
        codec => {
            compression::decompress_into(codec, raw, max_uncompressed, scratch)?;
            Ok(scratch)
        }
    }
}

/// As `records_section_in`, as shared bytes (a slice of `batch` when uncompressed), so
/// records built from it need not copy their keys and values.
pub fn records_section(
    batch: &Bytes,
    header: &BatchHeader,
    max_uncompressed: usize,
) -> Result<Bytes, RecordsError> {
    let mut scratch = Vec::new();
    records_section_in(batch, header, max_uncompressed, &mut scratch)?;
    Ok(if header.compression() == compression::NONE {
        batch.slice(HEADER_LEN..header.total_len())
    } else {
        Bytes::from(scratch)
    })
}

/// Calls `visit` with every record of every whole batch in `bytes` (a trailing partial
/// batch — a fetch cut at its size limit — ends the walk), with the batch's header and
/// its decompressed records section. `visit` may stop the walk early.
pub fn walk(
    bytes: &Bytes,
    max_uncompressed: usize,
    mut visit: impl FnMut(&BatchHeader, &Bytes, RecordView<'_>) -> ControlFlow<()>,
) -> Result<(), RecordsError> {
    let mut pos = 0;
    while pos < bytes.len() {
        let header = match batch::peek_batch(&bytes[pos..]) {
            Ok(h) => h,
            Err(BatchError::Truncated { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        let whole = bytes.slice(pos..pos + header.total_len());
        pos += header.total_len();
        let section = records_section(&whole, &header, max_uncompressed)?;
        for view in RecordWalker::new(&section) {
            if visit(&header, &section, view?).is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A record's absolute offset and timestamp.
pub fn offset_and_timestamp(header: &BatchHeader, view: &RecordView<'_>) -> (i64, i64) {
    let offset = header.base_offset.wrapping_add(view.offset_delta as i64);
    let timestamp = if header.attributes & 0x08 != 0 {
        header.max_timestamp
    } else {
        header.base_timestamp.wrapping_add(view.timestamp_delta)
    };
    (offset, timestamp)
}

/// Bounds for readers that build a `Record` per record.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// The largest uncompressed records section of one batch.
    pub max_uncompressed: usize,
    /// Stop once the records built so far cost this much (bytes plus
    /// `DECODED_RECORD_OVERHEAD` each); at least one record is always returned.
    pub budget: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_uncompressed: DEFAULT_MAX_UNCOMPRESSED_BATCH_BYTES,
            budget: 16 * 1024 * 1024,
        }
    }
}

/// The records at or after offset `from` in a buffer of whole batches, headers and
/// timestamps included; control records are skipped. Fewer than all of them when the
/// budget runs out: the caller continues from the last offset returned plus one.
pub fn decode_full_records(
    bytes: &Bytes,
    from: i64,
    limits: ReadLimits,
) -> Result<Vec<Record>, RecordsError> {
    let mut out = Vec::new();
    let mut cost = 0usize;
    walk(bytes, limits.max_uncompressed, |header, section, view| {
        let (offset, timestamp) = offset_and_timestamp(header, &view);
        if header.is_control() || offset < from {
            return ControlFlow::Continue(());
        }
        if cost >= limits.budget && !out.is_empty() {
            return ControlFlow::Break(());
        }
        cost += DECODED_RECORD_OVERHEAD
            + view.key.map_or(0, <[u8]>::len)
            + view.value.map_or(0, <[u8]>::len)
            + view.header_count * 64;
        out.push(to_record(header, section, &view, offset, timestamp));
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// (offset, key, value) of every record in a buffer of whole batches, control records
/// skipped: for readers that hold little per record (the offsets replay).
pub fn decode_records(
    bytes: &Bytes,
    max_uncompressed: usize,
) -> Result<Vec<(i64, Option<Bytes>, Option<Bytes>)>, RecordsError> {
    let mut out = Vec::new();
    walk(bytes, max_uncompressed, |header, section, view| {
        if !header.is_control() {
            let (offset, _) = offset_and_timestamp(header, &view);
            out.push((
                offset,
                view.key.map(|k| section.slice_ref(k)),
                view.value.map(|v| section.slice_ref(v)),
            ));
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The codec's `Record` for one record, sharing the section's bytes.
pub fn to_record(
    header: &BatchHeader,
    section: &Bytes,
    view: &RecordView<'_>,
    offset: i64,
    timestamp: i64,
) -> Record {
    let headers = view
        .headers()
        .map(|(k, v)| {
            let key = StrBytes::from_utf8(section.slice_ref(k))
                .unwrap_or_else(|_| StrBytes::from_string(String::from_utf8_lossy(k).into_owned()));
            (key, v.map(|v| section.slice_ref(v)))
        })
        .collect();
    Record {
        transactional: header.is_transactional(),
        control: header.is_control(),
        partition_leader_epoch: header.leader_epoch,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        timestamp_type: if header.attributes & 0x08 != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        },
        offset,
        sequence: if header.base_sequence < 0 {
            -1
        } else {
            header.base_sequence.wrapping_add(view.offset_delta)
        },
        timestamp,
        key: view.key.map(|k| section.slice_ref(k)),
        value: view.value.map(|v| section.slice_ref(v)),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{encode_records, plain_record, OutRecord};
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};

    fn batch(n: usize, compression: Compression) -> Bytes {
        let recs: Vec<OutRecord> = (0..n)
            .map(|i| OutRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 100])),
                headers: vec![("h".into(), Bytes::from_static(b"1"))],
            })
            .collect();
        encode_records(&recs, 5_000, compression).unwrap().freeze()
    }

    #[test]
    fn records_come_back_whole_and_the_budget_stops_early() {
        let b = batch(1000, Compression::Zstd);
        let all = decode_full_records(&b, 0, ReadLimits::default()).unwrap();
        assert_eq!(all.len(), 1000);
        assert_eq!(all[7].offset, 7);
        assert_eq!(all[7].key.as_deref(), Some(&b"k7"[..]));
        assert_eq!(all[7].headers.len(), 1);
        let from_500 = decode_full_records(&b, 500, ReadLimits::default()).unwrap();
        assert_eq!(from_500.first().map(|r| r.offset), Some(500));
        // A budget of about ten records' cost: the caller continues from the last + 1.
        let small = ReadLimits {
            budget: 10 * (DECODED_RECORD_OVERHEAD + 170),
            ..ReadLimits::default()
        };
        let some = decode_full_records(&b, 0, small).unwrap();
        assert!((5..=20).contains(&some.len()), "{}", some.len());
        // A batch over the decompression bound is an error, not a large allocation.
        let tight = ReadLimits {
            max_uncompressed: 1000,
            ..ReadLimits::default()
        };
        assert!(matches!(
            decode_full_records(&b, 0, tight),
            Err(RecordsError::Decompress(DecompressError::TooLarge { .. }))
        ));
        // A trailing partial batch (a fetch cut at its limit) ends the walk quietly.
        let mut two = b.to_vec();
        two.extend_from_slice(&b[..100]);
        assert_eq!(
            decode_full_records(&Bytes::from(two), 0, ReadLimits::default())
                .unwrap()
                .len(),
            1000
        );
    }

    #[test]
    fn timestamps_spread_wider_than_an_i32_decode_exactly() {
        // Records 10^12 ms apart: the deltas are varlongs (the vendored codec's encoder
        // writes them so since the patch).
        let stamps = [0i64, 1_000_000_000_000, 2_000_000_000_000];
        let recs: Vec<Record> = stamps
            .iter()
            .enumerate()
            .map(|(i, ts)| plain_record(i as i64, *ts, None, Some(Bytes::from_static(b"x"))))
            .collect();
        let mut out = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            recs.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        let got = decode_full_records(&out.freeze(), 0, ReadLimits::default()).unwrap();
        assert_eq!(got.iter().map(|r| r.timestamp).collect::<Vec<_>>(), stamps);
    }
}
