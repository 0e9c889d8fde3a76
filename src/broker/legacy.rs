//! Message-format conversion for clients that predate record batches (Kafka < 0.11):
//! Produce v0–v2 may carry magic 0/1 message sets, which are up-converted to one v2
//! batch before storage (the log holds only v2); Fetch v0–v3 clients cannot read v2,
//! so what they fetch is down-converted to magic 0 (Fetch v0–v1) or 1 (v2–v3).
//!
//! Compressed message sets (gzip, snappy, lz4) are opened and re-compressed with the
//! same codec, as Kafka does; the old format itself is read in `protocol::message_set`.

use std::ops::ControlFlow;

use crate::protocol::compression;
use crate::protocol::message_set::{self, MessageSetError};
use crate::protocol::records::{encode_plain_batch, plain_record};
use crate::storage::batch::BatchHeader;
use crate::storage::records;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LegacyError {
    #[error(transparent)]
    MessageSet(#[from] MessageSetError),
    #[error("malformed message set: {0}")]
    Malformed(String),
}

/// The magic byte of the first message or batch in `buf`, if it is long enough.
pub fn magic_of(buf: &[u8]) -> Option<i8> {
    buf.get(16).map(|b| *b as i8)
}

/// Up-converts a magic 0/1 message set to one v2 batch, as Kafka 3.x does: offsets
/// 0..n-1 (the log assigns the real ones), each message's key, value and timestamp
/// kept (-1, "none", for magic 0), compressed with the codec the client used. A
/// compressed wrapper is opened within `max_uncompressed` bytes.
pub fn upconvert(message_set: Bytes, max_uncompressed: usize) -> Result<BytesMut, LegacyError> {
    let codec = compression_of(&message_set);
    let messages = message_set::read(&message_set, max_uncompressed)?;
    let mut records: Vec<Record> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| plain_record(i as i64, m.timestamp, m.key, m.value))
        .collect();
    let compression = match codec {
        compression::GZIP => Compression::Gzip,
        compression::SNAPPY => Compression::Snappy,
        compression::LZ4 => Compression::Lz4,
        _ => Compression::None,
    };
    let mut out = BytesMut::new();
    encode_plain_batch(&mut out, &mut records, compression)
        .map_err(|e| LegacyError::Malformed(e.to_string()))?;
    Ok(out)
}

/// The compression codec of a Produce partition's records: a v2 batch's (from its
/// header) or an old-format set's first message's; 0 when it cannot be told.
pub fn compression_of(records: &[u8]) -> i16 {
    match magic_of(records) {
        Some(2) => BatchHeader::parse(records).map_or(0, |h| h.compression()),
        // offset, size, crc, magic, then the attributes byte.
        Some(0 | 1) => records.get(17).map_or(0, |a| (a & 0x07) as i16),
        _ => 0,
    }
}

/// Down-converts stored v2 batches to an uncompressed magic `magic` (0 or 1) message
/// set: the records at or after `from` (control records and headers dropped, as Kafka
/// drops them), one message at a time, stopping before the output passes `max_bytes`
/// (with `min_one`, the first message always goes, so a consumer makes progress;
/// without, a first message over the budget leaves the output empty). Each batch is
/// decompressed within `max_uncompressed` bytes, and nothing is built per record
/// beyond the message being written — a batch of millions of tiny records costs the
/// output's size, not its own.
pub fn downconvert(
    batches: &Bytes,
    magic: i8,
    from: i64,
    max_bytes: usize,
    min_one: bool,
    max_uncompressed: usize,
) -> Result<Bytes, LegacyError> {
    let options = RecordEncodeOptions {
        version: magic,
        compression: Compression::None,
    };
    let mut out = BytesMut::new();
    let mut message = BytesMut::new();
    let mut failed = None;
    records::walk(batches, max_uncompressed, |header, section, view| {
        if header.is_control() {
            return ControlFlow::Continue(());
        }
        let (offset, timestamp) = records::offset_and_timestamp(header, &view);
        if offset < from {
            return ControlFlow::Continue(());
        }
        let mut record = records::to_record(header, section, &view, offset, timestamp);
        record.headers.clear();
        record.transactional = false;
        message.clear();
        if let Err(e) = RecordBatchEncoder::encode(&mut message, std::iter::once(&record), &options)
        {
            failed = Some(e.to_string());
            return ControlFlow::Break(());
        }
        let first_may_exceed = min_one && out.is_empty();
        if !first_may_exceed && out.len() + message.len() > max_bytes {
            return ControlFlow::Break(());
        }
        // The encoder writes offset 0; old clients need the absolute offset.
        message[..8].copy_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&message);
        ControlFlow::Continue(())
    })
    .map_err(|e| LegacyError::Malformed(e.to_string()))?;
    if let Some(e) = failed {
        return Err(LegacyError::Malformed(e));
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Record, RecordBatchDecoder};

    fn rec(i: i64, v: &'static [u8]) -> Record {
        plain_record(i, 1000 + i, None, Some(Bytes::from_static(v)))
    }

    #[test]
    fn v1_message_set_round_trips_through_a_v2_batch() {
        let records = [rec(0, b"a"), rec(1, b"bb")];
        let mut legacy = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut legacy,
            records.iter(),
            &RecordEncodeOptions {
                version: 1,
                compression: Compression::None,
            },
        )
        .unwrap();
        let v2 = upconvert(legacy.freeze(), 1 << 20).unwrap();
        let hdr = crate::storage::batch::validate_batch(&v2).unwrap();
        assert_eq!(hdr.record_count, 2);
        let v2 = v2.freeze();
        let back = downconvert(&v2, 0, 0, 1 << 20, true, 1 << 20).unwrap();
        assert_eq!(magic_of(&back), Some(0));
        let mut b = back;
        let sets = RecordBatchDecoder::decode_all(&mut b).unwrap();
        let values: Vec<_> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"bb")]
        );
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(
            offsets,
            vec![0, 1],
            "absolute offsets survive down-conversion"
        );
    }

    #[test]
    fn down_conversion_keeps_to_its_budget_and_starting_offset() {
        let records: Vec<Record> = (0..10_000).map(|i| rec(i, b"0123456789")).collect();
        let mut v2 = BytesMut::new();
        encode_plain_batch(&mut v2, &mut records.clone(), Compression::Zstd).unwrap();
        let v2 = v2.freeze();
        let out = downconvert(&v2, 1, 2_500, 4096, true, 1 << 20).unwrap();
        assert!(out.len() <= 4096 && !out.is_empty(), "{} bytes", out.len());
        let mut b = out;
        let sets = RecordBatchDecoder::decode_all(&mut b).unwrap();
        assert_eq!(sets[0].records[0].offset, 2_500);
        // Under a budget smaller than one message, the first message still goes — unless
        // this is not the fetch's first partition with data.
        assert!(!downconvert(&v2, 0, 0, 1, true, 1 << 20).unwrap().is_empty());
        assert!(downconvert(&v2, 0, 0, 1, false, 1 << 20)
            .unwrap()
            .is_empty());
        // Over the decompression bound: an error, not an allocation.
        assert!(downconvert(&v2, 0, 0, 4096, true, 1000).is_err());
    }

    #[test]
    fn compressed_legacy_sets_become_one_compressed_v2_batch() {
        let records: Vec<Record> = (0..3).map(|i| rec(i, b"gz")).collect();
        for (version, codec) in [
            (1, Compression::Gzip),
            (1, Compression::Snappy),
            (0, Compression::Gzip),
        ] {
            let mut legacy = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut legacy,
                records.iter(),
                &RecordEncodeOptions {
                    version,
                    compression: codec,
                },
            )
            .unwrap();
            let v2 = upconvert(legacy.freeze(), 1 << 20).unwrap();
            let hdr = crate::storage::batch::validate_batch(&v2).unwrap();
            assert_eq!(hdr.record_count, 3);
            assert_eq!(hdr.compression(), codec as i16, "kept the client's codec");
            let got = records::decode_full_records(&v2.freeze(), 0, records::ReadLimits::default())
                .unwrap();
            let stamps: Vec<i64> = got.iter().map(|r| r.timestamp).collect();
            if version == 0 {
                assert_eq!(stamps, vec![-1, -1, -1], "magic 0 keeps no timestamp");
            } else {
                assert_eq!(stamps, vec![1000, 1001, 1002]);
            }
        }
    }
}
