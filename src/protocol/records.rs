//! Records on the wire: building v2 batches through the codec where the appliance
//! writes records itself (the command line, committed offsets, Beats and HTTP
//! ingest), and `RecordWalker`, which reads the records of a batch in place for every
//! reader (see `storage::records`). The produce and fetch paths move batches as bytes.

use super::CodecError;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Encodes (key, value) pairs as one v2 record batch with the given timestamp.
pub fn encode_batch(
    records: Vec<(Option<Bytes>, Option<Bytes>)>,
    timestamp: i64,
    compression: Compression,
) -> Result<BytesMut, CodecError> {
    let records: Vec<OutRecord> = records
        .into_iter()
        .map(|(key, value)| OutRecord {
            key,
            value,
            headers: vec![],
        })
        .collect();
    encode_records(&records, timestamp, compression)
}

/// A record the appliance writes itself (Beats and HTTP ingest).
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

/// The zig-zag varint size of `v`.
fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

impl OutRecord {
    /// The bytes this record takes in an uncompressed v2 batch as its `index`-th record
    /// (length prefix included; timestamp delta 0).
    pub fn encoded_len(&self, index: usize) -> usize {
        let field = |b: Option<&[u8]>| match b {
            Some(b) => varint_len(b.len() as i64) + b.len(),
            None => 1,
        };
        let mut body = 1 + 1 + varint_len(index as i64);
        body += field(self.key.as_deref()) + field(self.value.as_deref());
        body += varint_len(self.headers.len() as i64);
        for (k, v) in &self.headers {
            body += field(Some(k.as_bytes())) + field(Some(v));
        }
        varint_len(body as i64) + body
    }
}

/// Encodes records, headers included, as one v2 batch.
pub fn encode_records(
    records: &[OutRecord],
    timestamp: i64,
    compression: Compression,
) -> Result<BytesMut, CodecError> {
    encode_records_at(records, timestamp, compression, None)
}

/// As `encode_records`, compressed at `level` (the codec's own scale: gzip 1–9, lz4
/// 1–17, zstd up to 22; None for each codec's default), as the topic's
/// `compression.*.level` asks.
pub fn encode_records_at(
    records: &[OutRecord],
    timestamp: i64,
    compression: Compression,
    level: Option<i32>,
) -> Result<BytesMut, CodecError> {
    let mut recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut rec = plain_record(i as i64, timestamp, r.key.clone(), r.value.clone());
            rec.headers = r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        kafka_protocol::protocol::StrBytes::from_string(k.clone()),
                        Some(v.clone()),
                    )
                })
                .collect();
            rec
        })
        .collect();
    let mut buf = BytesMut::new();
    encode_batch_at(&mut buf, &mut recs, compression, level)?;
    Ok(buf)
}

/// A plain record (no producer, no transaction, CreateTime, no headers) at `offset`.
pub fn plain_record(
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

/// Encodes `records` into `out` as ONE plain (non-idempotent, non-transactional) v2
/// batch that keeps their offsets, gaps included. The codec starts a new batch wherever
/// `offset - sequence` changes, so sequences are set relative to the first offset,
/// which also leaves the batch's base sequence at -1 ("none").
pub fn encode_plain_batch(
    out: &mut BytesMut,
    records: &mut [Record],
    compression: Compression,
) -> Result<(), CodecError> {
    encode_batch_at(out, records, compression, None)
}

fn encode_batch_at(
    out: &mut BytesMut,
    records: &mut [Record],
    compression: Compression,
    level: Option<i32>,
) -> Result<(), CodecError> {
    let Some(first) = records.first().map(|r| r.offset) else {
        return Ok(());
    };
    for r in records.iter_mut() {
        r.producer_id = -1;
        r.producer_epoch = -1;
        r.transactional = false;
        r.sequence = (r.offset - first) as i32 - 1;
    }
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    match level {
        None => RecordBatchEncoder::encode(out, records.iter(), &options)?,
        Some(level) => RecordBatchEncoder::encode_with_custom_compression(
            out,
            records.iter(),
            &options,
            Some(|plain: &mut BytesMut, out: &mut BytesMut, c: Compression| {
                let packed = super::compression::compress(c as i16, level, plain)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
                out.extend_from_slice(&packed);
                Ok(())
            }),
        )?,
    }
    Ok(())
}

/// Why the records section of a batch could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid record {index}: {why}")]
pub struct RecordFormatError {
    /// The record's position in its batch (0-based).
    pub index: usize,
    pub why: &'static str,
}

/// One record of a v2 batch, read in place: the layout of Kafka's `DefaultRecord`
/// (length, attributes, timestampDelta as a varlong, offsetDelta, key, value, headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: usize,
    /// The headers as encoded, after their count (already checked by the walker).
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers: (key, value) pairs in order.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            cursor: Cursor {
                buf: self.headers,
                pos: 0,
            },
            left: self.header_count,
        }
    }
}

pub struct HeaderIter<'a> {
    cursor: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The walker checked this layout before handing the view out.
        let key = self.cursor.bytes().ok()??;
        let value = self.cursor.bytes().ok()?;
        Some((key, value))
    }
}

/// Walks the records section of an (uncompressed or already decompressed) v2 batch
/// without allocating: every length is checked against the bytes that are there, and
/// each record must use exactly the bytes its length prefix claims.
///
/// Written here rather than taken from the vendored codec, which builds a `Record`
/// (with a header map) for every record: the produce path walks every record of every
/// batch to validate it, and that allocation would cost it throughput.
pub struct RecordWalker<'a> {
    cursor: Cursor<'a>,
    index: usize,
}

impl<'a> RecordWalker<'a> {
    pub fn new(records: &'a [u8]) -> RecordWalker<'a> {
        RecordWalker {
            cursor: Cursor {
                buf: records,
                pos: 0,
            },
            index: 0,
        }
    }

    /// Whether every byte of the section has been walked.
    pub fn is_done(&self) -> bool {
        self.cursor.pos >= self.cursor.buf.len()
    }

    /// The byte range of the section the next record starts at.
    pub fn position(&self) -> usize {
        self.cursor.pos
    }

    fn record(&mut self) -> Result<RecordView<'a>, &'static str> {
        let len = self.cursor.varint()?;
        if len < 0 {
            return Err("negative record length");
        }
        let body = self.cursor.take(len as usize)?;
        let mut c = Cursor { buf: body, pos: 0 };
        let attributes = c.take(1)?[0] as i8;
        let timestamp_delta = c.varlong()?;
        let offset_delta = c.varint()?;
        let key = c.bytes()?;
        let value = c.bytes()?;
        let header_count = c.varint()?;
        if header_count < 0 {
            return Err("negative header count");
        }
        let headers_start = c.pos;
        for _ in 0..header_count {
            if c.bytes()?.is_none() {
                return Err("null header key");
            }
            c.bytes()?;
        }
        if c.pos != body.len() {
            return Err("record length does not match its contents");
        }
        Ok(RecordView {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count: header_count as usize,
            headers: &body[headers_start..],
        })
    }
}

impl<'a> Iterator for RecordWalker<'a> {
    type Item = Result<RecordView<'a>, RecordFormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.is_done() {
            return None;
        }
        let index = self.index;
        self.index += 1;
        Some(self.record().map_err(|why| {
            // Nothing after a malformed record can be trusted.
            self.cursor.pos = self.cursor.buf.len();
            RecordFormatError { index, why }
        }))
    }
}

/// A bounds-checked reader of Kafka's varint-framed fields.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() - self.pos < n {
            return Err("truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated varint");
            };
            self.pos += 1;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long")
    }

    fn varint(&mut self) -> Result<i32, &'static str> {
        let z = self.unsigned(5)?;
        if z > u32::MAX as u64 {
            return Err("varint too long");
        }
        let z = z as u32;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, &'static str> {
        let z = self.unsigned(10)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A varint length followed by that many bytes; -1 is null.
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err("negative length"),
            n => self.take(n as usize).map(Some),
        }
    }
}
