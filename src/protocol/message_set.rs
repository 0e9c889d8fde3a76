//! Kafka's old message format (magic 0 and 1, before record batches), bytes in and
//! messages out, no I/O: what Produce v0–v2 from pre-0.11 clients carries.
//!
//! A message is `offset i64, size i32, crc u32, magic i8, attributes i8, [timestamp
//! i64 (magic 1)], key bytes, value bytes`; a compressed message is a wrapper whose
//! value is a whole message set compressed with gzip, snappy or lz4. `read` checks
//! every size against the bytes present and every CRC (IEEE), and opens a wrapper's
//! inner messages within a decompression bound.
//!
//! Offsets inside a set are the producer's and are not read (the log assigns them).
//! Refused as Kafka refuses them: messages of mixed magic, a producer's LogAppendTime
//! (INVALID_TIMESTAMP), zstd (which the old format never had), nested compression.
//! Magic 0 LZ4 frames carry the wrong header checksum that Kafka 0.8–0.9 wrote
//! (KAFKA-3160), which Kafka ignores for magic 0 and so do we (it is recomputed).

use bytes::Bytes;
use thiserror::Error;

use super::compression::{self, DecompressError};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MessageSetError {
    /// Framing or CRC: Kafka's CORRUPT_MESSAGE.
    #[error("malformed message set: {0}")]
    Corrupt(String),
    /// A valid message Kafka refuses (INVALID_RECORD).
    #[error("{0}")]
    Invalid(String),
    /// Kafka's INVALID_TIMESTAMP: a producer set LogAppendTime itself.
    #[error("{0}")]
    InvalidTimestamp(String),
    /// Kafka's UNSUPPORTED_COMPRESSION_TYPE: zstd never existed in the old format.
    #[error("{0}")]
    UnsupportedCompression(String),
    #[error(transparent)]
    Decompress(#[from] DecompressError),
}

/// One message of an old-format set, after a wrapper has been opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub magic: i8,
    /// -1 for magic 0 (no timestamp), else the message's.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// One message as it sits on the wire.
struct Raw {
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

impl Raw {
    fn codec(&self) -> i16 {
        (self.attributes & 0x07) as i16
    }
}

fn corrupt(why: impl Into<String>) -> MessageSetError {
    MessageSetError::Corrupt(why.into())
}

/// The messages of an old-format message set, a compressed wrapper opened (at most
/// `max_uncompressed` bytes of it) into the messages it holds.
pub fn read(set: &Bytes, max_uncompressed: usize) -> Result<Vec<Message>, MessageSetError> {
    let outer = parse(set)?;
    if outer.is_empty() {
        return Err(corrupt("empty message set"));
    }
    if outer.iter().any(|m| m.magic != outer[0].magic) {
        return Err(MessageSetError::Invalid(
            "messages of different magic in one set".into(),
        ));
    }
    if outer
        .iter()
        .any(|m| m.magic == 1 && m.attributes & 0x08 != 0)
    {
        return Err(MessageSetError::InvalidTimestamp(
            "producers must not set the timestamp type to LogAppendTime".into(),
        ));
    }
    if outer.iter().any(|m| m.codec() > compression::LZ4) {
        return Err(MessageSetError::UnsupportedCompression(format!(
            "compression codec {} is not defined for the old message format",
            outer[0].codec()
        )));
    }
    if !outer.iter().any(|m| m.codec() != compression::NONE) {
        return Ok(outer.into_iter().map(plain).collect());
    }
    if outer.len() != 1 {
        return Err(MessageSetError::Invalid(
            "compressed outer record has more than one batch".into(),
        ));
    }
    let wrapper = &outer[0];
    let Some(value) = &wrapper.value else {
        return Err(MessageSetError::Invalid(
            "compressed message without a value".into(),
        ));
    };
    let codec = wrapper.codec();
    if codec == compression::LZ4 && wrapper.magic == 0 {
        let fixed = fix_lz4_header_checksum(value)?;
        return open_wrapper(
            wrapper,
            &Bytes::from(compression::decompress(codec, &fixed, max_uncompressed)?),
        );
    }
    let inner = compression::decompress(codec, value, max_uncompressed)?;
    open_wrapper(wrapper, &Bytes::from(inner))
}

fn plain(m: Raw) -> Message {
    Message {
        magic: m.magic,
        timestamp: if m.magic == 0 { -1 } else { m.timestamp },
        key: m.key,
        value: m.value,
    }
}

fn open_wrapper(wrapper: &Raw, inner: &Bytes) -> Result<Vec<Message>, MessageSetError> {
    let messages = parse(inner)?;
    if messages.is_empty() {
        return Err(MessageSetError::Invalid(
            "compressed message set holds no messages".into(),
        ));
    }
    messages
        .into_iter()
        .map(|m| {
            if m.codec() != compression::NONE {
                return Err(MessageSetError::Invalid(
                    "compressed outer record should not have an inner record with a compression attribute set".into(),
                ));
            }
            if m.magic != wrapper.magic {
                return Err(MessageSetError::Invalid(format!(
                    "inner message magic {} does not match its wrapper's {}",
                    m.magic, wrapper.magic
                )));
            }
            Ok(plain(m))
        })
        .collect()
}

/// Walks a message set: sizes checked against the buffer, CRCs verified.
fn parse(set: &Bytes) -> Result<Vec<Raw>, MessageSetError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < set.len() {
        if set.len() - pos < 12 {
            return Err(corrupt("truncated message header"));
        }
        let size = i32::from_be_bytes(set[pos + 8..pos + 12].try_into().expect("4 bytes"));
        // crc + magic + attributes + key length + value length at least.
        if size < 14 || set.len() - pos - 12 < size as usize {
            return Err(corrupt(format!("bad message size {size}")));
        }
        let body = set.slice(pos + 12..pos + 12 + size as usize);
        pos += 12 + size as usize;
        let stored = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(&body[4..]);
        if stored != computed {
            return Err(corrupt(format!(
                "message CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let magic = body[4] as i8;
        let attributes = body[5] as i8;
        let mut at = 6usize;
        let timestamp = match magic {
            0 => -1,
            1 => {
                if body.len() < at + 8 {
                    return Err(corrupt("truncated timestamp"));
                }
                let t = i64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
                at += 8;
                t
            }
            m => return Err(corrupt(format!("message magic {m} in an old-format set"))),
        };
        let key = bytes_field(&body, &mut at)?;
        let value = bytes_field(&body, &mut at)?;
        if at != body.len() {
            return Err(corrupt("message size does not match its contents"));
        }
        out.push(Raw {
            magic,
            attributes,
            timestamp,
            key,
            value,
        });
    }
    Ok(out)
}

/// An `i32` length (-1: null) and that many bytes.
fn bytes_field(body: &Bytes, at: &mut usize) -> Result<Option<Bytes>, MessageSetError> {
    if body.len() < *at + 4 {
        return Err(corrupt("truncated length"));
    }
    let len = i32::from_be_bytes(body[*at..*at + 4].try_into().expect("4 bytes"));
    *at += 4;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || body.len() - *at < len as usize {
        return Err(corrupt(format!("bad field length {len}")));
    }
    let field = body.slice(*at..*at + len as usize);
    *at += len as usize;
    Ok(Some(field))
}

/// An LZ4 frame with its header checksum recomputed over the frame descriptor (the
/// right way; Kafka 0.8–0.9 included the magic number).
fn fix_lz4_header_checksum(frame: &[u8]) -> Result<Vec<u8>, MessageSetError> {
    if frame.len() < 7 || frame[..4] != [0x04, 0x22, 0x4D, 0x18] {
        return Err(corrupt("not an LZ4 frame"));
    }
    let flg = frame[4];
    let descriptor_len =
        2 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    let hc_at = 4 + descriptor_len;
    if frame.len() <= hc_at {
        return Err(corrupt("truncated LZ4 frame header"));
    }
    let mut fixed = frame.to_vec();
    fixed[hc_at] = (xxhash_rust::xxh32::xxh32(&frame[4..hc_at], 0) >> 8) as u8;
    Ok(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An old-format message, CRC filled in.
    pub(crate) fn message(
        magic: i8,
        attributes: i8,
        ts: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Vec<u8> {
        let mut body = vec![magic as u8, attributes as u8];
        if magic == 1 {
            body.extend(ts.to_be_bytes());
        }
        match key {
            Some(k) => {
                body.extend((k.len() as i32).to_be_bytes());
                body.extend(k);
            }
            None => body.extend((-1i32).to_be_bytes()),
        }
        body.extend((value.len() as i32).to_be_bytes());
        body.extend(value);
        let mut m = 0i64.to_be_bytes().to_vec();
        m.extend(((body.len() + 4) as i32).to_be_bytes());
        m.extend(crc32fast::hash(&body).to_be_bytes());
        m.extend(body);
        m
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_and_compressed_sets_open_with_their_timestamps() {
        let mut set = message(0, 0, 0, Some(b"k"), b"v0");
        set.extend(message(0, 0, 0, None, b"v1"));
        let got = read(&Bytes::from(set), 1 << 20).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].timestamp, -1, "magic 0 has no timestamp");
        assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
        let mut inner = message(1, 0, 1000, None, b"a");
        inner.extend(message(1, 0, 2000, Some(b"k"), b"b"));
        let wrapped = message(1, 1, 2000, None, &gzip(&inner));
        let got = read(&Bytes::from(wrapped), 1 << 20).unwrap();
        assert_eq!(
            got.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
            vec![1000, 2000]
        );
        // LogAppendTime set by a producer, mixed magic, zstd: refused as Kafka does.
        let wrapped = message(1, 1 | 0x08, 5000, None, &gzip(&inner));
        assert!(matches!(
            read(&Bytes::from(wrapped), 1 << 20),
            Err(MessageSetError::InvalidTimestamp(_))
        ));
        let mut mixed = message(0, 0, 0, None, b"a");
        mixed.extend(message(1, 0, 1, None, b"b"));
        assert!(matches!(
            read(&Bytes::from(mixed), 1 << 20),
            Err(MessageSetError::Invalid(_))
        ));
        let zstd = message(1, 4, 0, None, b"whatever");
        assert!(matches!(
            read(&Bytes::from(zstd), 1 << 20),
            Err(MessageSetError::UnsupportedCompression(_))
        ));
        // Within the decompression bound only.
        let wrapped = message(1, 1, 0, None, &gzip(&inner));
        assert!(matches!(
            read(&Bytes::from(wrapped), 10),
            Err(MessageSetError::Decompress(_))
        ));
    }

    #[test]
    fn nesting_corruption_and_truncation_are_refused() {
        let inner = message(1, 1, 0, None, &gzip(&message(1, 0, 0, None, b"x")));
        let nested = message(1, 1, 0, None, &gzip(&inner));
        assert!(matches!(
            read(&Bytes::from(nested), 1 << 20),
            Err(MessageSetError::Invalid(_))
        ));
        let mut bad = message(0, 0, 0, None, b"v");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            read(&Bytes::from(bad), 1 << 20),
            Err(MessageSetError::Corrupt(_))
        ));
        let good = message(1, 0, 7, Some(b"k"), b"value");
        for cut in 0..good.len() {
            assert!(read(&Bytes::from(good[..cut].to_vec()), 1 << 20).is_err());
        }
    }

    #[test]
    fn magic_0_lz4_with_kafka_08_header_checksums_is_read() {
        use std::io::Write;
        let inner = message(0, 0, 0, None, b"old lz4");
        let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        e.write_all(&inner).unwrap();
        let (mut frame, r) = e.finish();
        r.unwrap();
        // Kafka 0.8's checksum: over the magic number and the descriptor.
        let flg = frame[4];
        let hc_at = 4 + 2 + if flg & 0x08 != 0 { 8 } else { 0 };
        frame[hc_at] = (xxhash_rust::xxh32::xxh32(&frame[..hc_at], 0) >> 8) as u8;
        let got = read(&Bytes::from(message(0, 3, 0, None, &frame)), 1 << 20).unwrap();
        assert_eq!(got[0].value.as_deref(), Some(&b"old lz4"[..]));
    }
}
