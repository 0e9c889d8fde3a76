//! Request decoding and response encoding for one Kafka frame.
//!
//! A frame on the wire is `i32 size` followed by `size` bytes. The listener reads the
//! size (bounded by `socket.request.max.bytes`) and hands the body here. Decoding first
//! reads the fixed part of the header (api key, version, correlation id) so that even a
//! request we cannot decode can be answered or logged with its correlation id.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::ListOffsetsTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

use super::{versions, CodecError};

/// A decoded request. `version` is the codec version handlers work with (see
/// `versions::ALIASES`); `wire_version` is what the client sent.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    /// The version the client sent, which its response must be encoded at.
    pub wire_version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApi {
        api_key: i16,
        version: i16,
        correlation_id: i32,
    },
    #[error("unsupported version {version} of {api:?} (correlation id {correlation_id})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error("malformed {api:?} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        reason: String,
    },
}

/// Decodes one frame body (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(api_key_raw).map_err(|_| DecodeError::UnknownApi {
        api_key: api_key_raw,
        version,
        correlation_id,
    })?;
    if !versions::is_handled(api, version) {
        return Err(DecodeError::UnsupportedVersion {
            api,
            version,
            correlation_id,
        });
    }
    let malformed = |e: anyhow::Error| DecodeError::Malformed {
        api,
        version,
        correlation_id,
        reason: e.to_string(),
    };
    // Handlers see the codec version: an aliased wire version behaves like it.
    let wire_version = version;
    let version = versions::codec_version(api, version);
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(malformed)?;
    let body = if api == ApiKey::ListOffsets && wire_version == 10 {
        RequestKind::ListOffsets(
            decode_list_offsets_v10(&mut frame).map_err(|e| malformed(anyhow::Error::msg(e.0)))?,
        )
    } else {
        RequestKind::decode(api, &mut frame, version).map_err(malformed)?
    };
    if frame.has_remaining() {
        // Kafka ignores trailing bytes; so do we, but they usually mean a client bug.
        tracing::debug!(
            ?api,
            version,
            trailing = frame.remaining(),
            "request has trailing bytes"
        );
    }
    Ok(Request {
        api_key: api,
        version,
        wire_version,
        header,
        body,
    })
}

/// Encodes a response for a request sent at `wire_version`, with its size prefix and
/// header, ready to write to the socket.
pub fn encode_response(
    api: ApiKey,
    wire_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, CodecError> {
    let version = versions::codec_version(api, wire_version);
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(capacity_for(body));
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    if api == ApiKey::Metadata && wire_version == 13 {
        // v13 = v12 + a top-level ErrorCode (always 0 here) before the tagged fields,
        // which we never set (a single 0x00 count byte).
        if buf.last() != Some(&0) {
            return Err(CodecError(
                "metadata v12 body does not end with an empty tagged-field section".into(),
            ));
        }
        buf.truncate(buf.len() - 1);
        buf.put_i16(0);
        buf.put_u8(0);
    }
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// A first capacity for a response's buffer: a Fetch answer is mostly its records,
/// sized up front so they are copied once instead of again at every doubling.
fn capacity_for(body: &ResponseKind) -> usize {
    const FIXED: usize = 64;
    const PER_PARTITION: usize = 64;
    match body {
        ResponseKind::Fetch(r) => {
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| PER_PARTITION + p.records.as_ref().map_or(0, |r| r.len()))
                .sum::<usize>()
                + FIXED
        }
        _ => FIXED,
    }
}

/// ListOffsets v10 is v9 plus `TimeoutMs` (int32) between the topics and the tagged
/// fields; the topic entries are encoded as in v9.
fn decode_list_offsets_v10(buf: &mut Bytes) -> Result<ListOffsetsRequest, CodecError> {
    fn need(buf: &Bytes, n: usize) -> Result<(), CodecError> {
        if buf.remaining() < n {
            return Err(CodecError("truncated ListOffsets v10 request".into()));
        }
        Ok(())
    }
    fn uvarint(buf: &mut Bytes) -> Result<u32, CodecError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            need(buf, 1)?;
            let b = buf.get_u8();
            value |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError("varint too long".into()))
    }
    need(buf, 5)?;
    let replica_id = buf.get_i32();
    let isolation_level = buf.get_i8();
    let count = uvarint(buf)?
        .checked_sub(1)
        .ok_or_else(|| CodecError("null topics array".into()))? as usize;
    let mut topics = Vec::with_capacity(count.min(buf.remaining()));
    for _ in 0..count {
        topics.push(ListOffsetsTopic::decode(buf, 9)?);
    }
    need(buf, 4)?;
    let timeout_ms = buf.get_i32();
    let _ = timeout_ms; // answers never wait: there is no remote storage to consult
    let tagged = uvarint(buf)?;
    for _ in 0..tagged {
        let _tag = uvarint(buf)?;
        let size = uvarint(buf)? as usize;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_isolation_level(isolation_level)
        .with_topics(topics))
}

/// Encodes a request (client side), with its size prefix.
pub fn encode_request(header: &RequestHeader, body: &RequestKind) -> Result<Bytes, CodecError> {
    let api = ApiKey::try_from(header.request_api_key)
        .map_err(|_| CodecError("unknown api key".into()))?;
    let version = header.request_api_version;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, api.request_header_version(version))?;
    body.encode(&mut buf, version)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Decodes a response frame body (client side) for a request of `api` at `version`.
pub fn decode_response(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseKind), CodecError> {
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    let body = ResponseKind::decode(api, &mut frame, version)?;
    Ok((header.correlation_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn frame(api: ApiKey, version: i16, body: RequestKind) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        encode_request(&header, &body).unwrap().slice(4..)
    }

    #[test]
    fn round_trips_a_metadata_request_at_every_version() {
        for v in 0..=12 {
            let req = frame(
                ApiKey::Metadata,
                v,
                RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
            );
            let decoded = decode_request(req).unwrap();
            assert_eq!(decoded.api_key, ApiKey::Metadata);
            assert_eq!(decoded.header.correlation_id, 42);
        }
    }

    #[test]
    fn unknown_key_and_version_keep_the_correlation_id() {
        let mut raw = vec![0x7f, 0x00, 0, 1, 0, 0, 0, 9];
        raw.extend([0u8; 4]);
        match decode_request(Bytes::from(raw)) {
            Err(DecodeError::UnknownApi {
                correlation_id: 9, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let req = frame(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        );
        let mut raw = req.to_vec();
        raw[3] = 99;
        assert!(matches!(
            decode_request(Bytes::from(raw)),
            Err(DecodeError::UnsupportedVersion { version: 99, .. })
        ));
    }

    #[test]
    fn aliased_versions_decode_like_their_codec_version() {
        use kafka_protocol::messages::ProduceRequest;
        let req = frame(
            ApiKey::Produce,
            11,
            RequestKind::Produce(ProduceRequest::default().with_acks(1)),
        );
        let mut raw = req.to_vec();
        raw[3] = 12; // same bytes, announced as Produce v12
        let decoded = decode_request(Bytes::from(raw)).unwrap();
        assert_eq!(decoded.version, 11);
        assert!(matches!(decoded.body, RequestKind::Produce(ref p) if p.acks == 1));
    }

    #[test]
    fn list_offsets_v10_is_v9_with_a_timeout() {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use kafka_protocol::messages::TopicName;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(3)
                    .with_timestamp(-2)])]);
        let v9 = frame(
            ApiKey::ListOffsets,
            9,
            RequestKind::ListOffsets(req.clone()),
        );
        // Insert TimeoutMs before the final (empty) tagged-field section, as v10 does.
        let mut raw = v9.to_vec();
        assert_eq!(raw.pop(), Some(0));
        raw.extend(30_000i32.to_be_bytes());
        raw.push(0);
        raw[3] = 10;
        let decoded = decode_request(Bytes::from(raw.clone())).unwrap();
        assert_eq!((decoded.version, decoded.wire_version), (9, 10));
        match decoded.body {
            RequestKind::ListOffsets(r) => assert_eq!(r.topics, req.topics),
            other => panic!("{other:?}"),
        }
        for cut in 0..raw.len() {
            let _ = decode_request(Bytes::from(raw[..cut].to_vec()));
        }
    }

    #[test]
    fn metadata_v13_adds_a_zero_error_code_before_the_tagged_fields() {
        use kafka_protocol::messages::MetadataResponse;
        let body = ResponseKind::Metadata(MetadataResponse::default());
        let v12 = encode_response(ApiKey::Metadata, 12, 7, &body).unwrap();
        let v13 = encode_response(ApiKey::Metadata, 13, 7, &body).unwrap();
        assert_eq!(v13.len(), v12.len() + 2);
        assert_eq!(&v13[4..v12.len() - 1], &v12[4..v12.len() - 1]);
        assert_eq!(&v13[v12.len() - 1..], &[0, 0, 0]);
        assert_eq!(
            i32::from_be_bytes(v13[..4].try_into().unwrap()) as usize,
            v13.len() - 4
        );
    }

    #[test]
    fn truncated_requests_are_errors_not_panics() {
        let req = frame(
            ApiKey::Metadata,
            9,
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
        );
        for cut in 0..req.len() {
            let _ = decode_request(req.slice(..cut));
        }
    }
}
