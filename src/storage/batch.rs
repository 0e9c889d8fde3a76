//! Record-batch (magic v2) framing as it sits on disk and on the wire.
//!
//! Owns: reading and checking the fixed 61-byte batch header, walking a buffer of
//! concatenated batches, and stamping the two fields the broker assigns (base offset
//! and partition leader epoch — neither is covered by the CRC, so stamping never
//! invalidates a batch).
//!
//! Invariants: nothing here decompresses or decodes individual records (`validate.rs`
//! and `records.rs` do); stamping and timestamp corrections keep the CRC valid.
//! Every length read from a buffer is checked against the buffer before it is used.

use thiserror::Error;

/// Size of the v2 batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes before the `batchLength` field ends: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;

const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

/// Why a batch was refused. Maps to Kafka's CORRUPT_MESSAGE / UNSUPPORTED_FOR_MESSAGE_FORMAT.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("batch length {0} is smaller than a v2 header")]
    BadLength(i32),
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {delta}")]
    BadRecordCount { count: i32, delta: i32 },
    #[error("cannot decompress the records: {0}")]
    Compression(String),
}

/// The parsed fixed header of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the length field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parse the header at the start of `buf` (which must hold at least `HEADER_LEN` bytes).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, OFF_BASE_OFFSET),
            batch_length: be_i32(buf, OFF_LENGTH),
            leader_epoch: be_i32(buf, OFF_LEADER_EPOCH),
            magic: buf[OFF_MAGIC] as i8,
            crc: be_i32(buf, OFF_CRC) as u32,
            attributes: be_i16(buf, OFF_ATTRIBUTES),
            last_offset_delta: be_i32(buf, OFF_LAST_OFFSET_DELTA),
            base_timestamp: be_i64(buf, OFF_BASE_TIMESTAMP),
            max_timestamp: be_i64(buf, OFF_MAX_TIMESTAMP),
            producer_id: be_i64(buf, OFF_PRODUCER_ID),
            producer_epoch: be_i16(buf, OFF_PRODUCER_EPOCH),
            base_sequence: be_i32(buf, OFF_BASE_SEQUENCE),
            record_count: be_i32(buf, OFF_RECORD_COUNT),
        })
    }

    /// Total size of the batch on disk, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// The offset of the batch's last record (wrapping, never panicking, on a header
    /// that lies).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }

    /// The batch's compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Whether the producer asked for idempotent sequencing of this batch.
    pub fn has_producer_sequence(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0
    }

    /// The sequence number of the batch's last record, wrapping like Kafka's.
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Checks only the framing of the batch at the start of `buf` and returns its header and
/// total length; the CRC is not checked. Used when scanning files already verified.
pub fn peek_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let batch_length = be_i32(buf, OFF_LENGTH);
    if (batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Err(BatchError::BadLength(batch_length));
    }
    let header = BatchHeader::parse(buf)?;
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    if buf.len() < header.total_len() {
        return Err(BatchError::Truncated {
            needed: header.total_len(),
            available: buf.len(),
        });
    }
    Ok(header)
}

/// Fully validates the batch at the start of `buf`: framing, magic 2, CRC-32C over
/// everything from the attributes to the end, and a record count consistent with the
/// offset delta.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = peek_batch(buf)?;
    let computed = crc32c::crc32c(&buf[OFF_ATTRIBUTES..header.total_len()]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.record_count < 0
        || header.last_offset_delta < 0
        || (header.record_count > 0
            && (header.last_offset_delta as i64) + 1 < header.record_count as i64)
    {
        return Err(BatchError::BadRecordCount {
            count: header.record_count,
            delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Validates every batch in a buffer of concatenated batches, returning their headers
/// and start positions. An empty buffer yields no batches.
pub fn validate_batches(buf: &[u8]) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = validate_batch(&buf[pos..])?;
        out.push((pos, header));
        pos += header.total_len();
    }
    Ok(out)
}

/// Writes the broker-assigned base offset into the batch header at the start of `buf`.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch into the batch header at the start of `buf`.
pub fn set_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch at the start of `buf` as LogAppendTime with `now_ms` as its max
/// timestamp (Kafka's `message.timestamp.type=LogAppendTime`) and recomputes its CRC,
/// which covers both fields.
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) -> Result<(), BatchError> {
    let header = peek_batch(buf)?;
    let attributes = header.attributes | 0x08;
    buf[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&buf[OFF_ATTRIBUTES..header.total_len()]);
    buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Writes `max_timestamp` into the batch header at the start of `buf` (a CreateTime
/// batch whose header disagrees with its records) and recomputes the CRC.
pub fn set_max_timestamp(buf: &mut [u8], max_timestamp: i64) -> Result<(), BatchError> {
    let header = peek_batch(buf)?;
    buf[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&buf[OFF_ATTRIBUTES..header.total_len()]);
    buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Walks concatenated batches and returns the length of the longest prefix made of
/// whole batches; used to cut a read at a batch boundary.
pub fn whole_batches_prefix(buf: &[u8]) -> usize {
    let mut pos = 0;
    while let Ok(h) = peek_batch(&buf[pos..]) {
        pos += h.total_len();
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal valid batch with `count` empty-value records' worth of header.
    pub(crate) fn sample_batch(base: i64, count: i32, ts: i64) -> Vec<u8> {
        let body_len = 10usize; // pretend record bytes
        let batch_length = (HEADER_LEN - LOG_OVERHEAD + body_len) as i32;
        let mut b = vec![0u8; HEADER_LEN + body_len];
        b[0..8].copy_from_slice(&base.to_be_bytes());
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        b[27..35].copy_from_slice(&ts.to_be_bytes());
        b[35..43].copy_from_slice(&ts.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn valid_batch_round_trips_header_fields() {
        let b = sample_batch(0, 3, 1234);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 1234);
        assert_eq!(h.total_len(), b.len());
    }

    #[test]
    fn stamping_offset_and_epoch_keeps_crc_valid() {
        let mut b = sample_batch(0, 3, 1);
        set_base_offset(&mut b, 987_654);
        set_leader_epoch(&mut b, 7);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.base_offset, 987_654);
        assert_eq!(h.leader_epoch, 7);
        assert_eq!(h.last_offset(), 987_656);
    }

    #[test]
    fn flipped_bit_is_a_crc_error() {
        let mut b = sample_batch(0, 1, 1);
        let last = b.len() - 1;
        b[last] ^= 0x40;
        assert!(matches!(
            validate_batch(&b),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let b = sample_batch(0, 2, 1);
        for cut in 0..b.len() {
            assert!(validate_batch(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_magic_and_negative_length_are_rejected() {
        let mut b = sample_batch(0, 1, 1);
        b[16] = 1;
        assert_eq!(validate_batch(&b), Err(BatchError::UnsupportedMagic(1)));
        let mut b = sample_batch(0, 1, 1);
        b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(validate_batch(&b), Err(BatchError::BadLength(-5)));
    }

    #[test]
    fn log_append_time_rewrites_timestamp_and_keeps_crc_valid() {
        let mut b = sample_batch(0, 2, 5);
        set_log_append_time(&mut b, 99_999).unwrap();
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.max_timestamp, 99_999);
        assert_eq!(h.attributes & 0x08, 0x08);
    }

    #[test]
    fn prefix_stops_at_partial_batch() {
        let mut two = sample_batch(0, 1, 1);
        let one_len = two.len();
        two.extend(sample_batch(1, 1, 1));
        assert_eq!(whole_batches_prefix(&two), 2 * one_len);
        assert_eq!(whole_batches_prefix(&two[..one_len + 20]), one_len);
    }
}
