//! Building and reading record batches through the codec, for the places where the
//! appliance itself writes or reads records (the command line, committed offsets,
//! Beats and HTTP ingest).
//! The produce and fetch paths never come here (but for the legacy conversion old
//! clients need): they move batches as bytes.

use super::CodecError;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
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

/// Encodes records, headers included, as one v2 batch.
pub fn encode_records(
    records: &[OutRecord],
    timestamp: i64,
    compression: Compression,
) -> Result<BytesMut, CodecError> {
    let mut recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        kafka_protocol::protocol::StrBytes::from_string(k.clone()),
                        Some(v.clone()),
                    )
                })
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    encode_plain_batch(&mut buf, &mut recs, compression)?;
    Ok(buf)
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
    let Some(first) = records.first().map(|r| r.offset) else {
        return Ok(());
    };
    for r in records.iter_mut() {
        r.producer_id = -1;
        r.producer_epoch = -1;
        r.transactional = false;
        r.sequence = (r.offset - first) as i32 - 1;
    }
    RecordBatchEncoder::encode(
        out,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )?;
    Ok(())
}

/// Decodes every record of a buffer of whole batches, headers and timestamps
/// included; control records are skipped. A partial batch at the end (a fetch
/// response cut at its size limit) ends the decoding without an error.
pub fn decode_full_records(mut bytes: Bytes) -> Result<Vec<Record>, CodecError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 12
            || bytes.len()
                < 12 + i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]).max(0)
                    as usize
        {
            break;
        }
        let set = RecordBatchDecoder::decode(&mut bytes)?;
        out.extend(set.records.into_iter().filter(|r| !r.control));
    }
    Ok(out)
}

/// Decodes every record (offset, key, value) in a buffer of whole batches; control
/// records are skipped.
pub fn decode_records(
    mut bytes: Bytes,
) -> Result<Vec<(i64, Option<Bytes>, Option<Bytes>)>, CodecError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes)?;
        out.extend(
            set.records
                .into_iter()
                .filter(|r| !r.control)
                .map(|r| (r.offset, r.key, r.value)),
        );
    }
    Ok(out)
}
