//! Building and reading record batches through the codec, for the places where the
//! appliance itself writes or reads records (the command line, committed offsets,
//! Beats and HTTP ingest).
//! The produce and fetch paths never come here: they move batches as bytes.

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
) -> Result<Bytes, CodecError> {
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
) -> Result<Bytes, CodecError> {
    let recs: Vec<Record> = records
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
            // Constant `offset - sequence` keeps all records in one batch (the encoder
            // splits batches where it changes); the base sequence stays -1, "none".
            sequence: i as i32 - 1,
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
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )?;
    Ok(buf.freeze())
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
