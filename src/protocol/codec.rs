//! Request decoding and response encoding for one Kafka frame.
//!
//! A frame on the wire is `i32 size` followed by `size` bytes. The listener reads the
//! size (bounded by `socket.request.max.bytes`) and hands the body here. Decoding first
//! reads the fixed part of the header (api key, version, correlation id) so that even a
//! request we cannot decode can be answered or logged with its correlation id.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

use super::versions;

/// A decoded request. `version` is the codec version (see `versions::ALIASES`), which
/// is also the version its response is encoded at.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApi { api_key: i16, version: i16, correlation_id: i32 },
    #[error("unsupported version {version} of {api:?} (correlation id {correlation_id})")]
    UnsupportedVersion { api: ApiKey, version: i16, correlation_id: i32 },
    #[error("malformed {api:?} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed { api: ApiKey, version: i16, correlation_id: i32, reason: String },
}

/// Decodes one frame body (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(api_key_raw)
        .map_err(|_| DecodeError::UnknownApi { api_key: api_key_raw, version, correlation_id })?;
    if !versions::is_handled(api, version) {
        return Err(DecodeError::UnsupportedVersion { api, version, correlation_id });
    }
    let malformed = |e: anyhow::Error| DecodeError::Malformed { api, version, correlation_id, reason: e.to_string() };
    // Handlers see the codec version: an aliased wire version behaves like it.
    let version = versions::codec_version(api, version);
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(malformed)?;
    let body = RequestKind::decode(api, &mut frame, version).map_err(malformed)?;
    if frame.has_remaining() {
        // Kafka ignores trailing bytes; so do we, but they usually mean a client bug.
        tracing::debug!(?api, version, trailing = frame.remaining(), "request has trailing bytes");
    }
    Ok(Request { api_key: api, version, header, body })
}

/// Encodes a response with its size prefix and header, ready to write to the socket.
pub fn encode_response(api: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) -> anyhow::Result<Bytes> {
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a request (client side), with its size prefix.
pub fn encode_request(header: &RequestHeader, body: &RequestKind) -> anyhow::Result<Bytes> {
    let api = ApiKey::try_from(header.request_api_key).map_err(|_| anyhow::anyhow!("unknown api key"))?;
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
pub fn decode_response(api: ApiKey, version: i16, mut frame: Bytes) -> anyhow::Result<(i32, ResponseKind)> {
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
            let req = frame(ApiKey::Metadata, v, RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))));
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
            Err(DecodeError::UnknownApi { correlation_id: 9, .. }) => {}
            other => panic!("{other:?}"),
        }
        let req = frame(ApiKey::ApiVersions, 3, RequestKind::ApiVersions(ApiVersionsRequest::default()));
        let mut raw = req.to_vec();
        raw[3] = 99;
        assert!(matches!(decode_request(Bytes::from(raw)), Err(DecodeError::UnsupportedVersion { version: 99, .. })));
    }

    #[test]
    fn aliased_versions_decode_like_their_codec_version() {
        use kafka_protocol::messages::ProduceRequest;
        let req = frame(ApiKey::Produce, 11, RequestKind::Produce(ProduceRequest::default().with_acks(1)));
        let mut raw = req.to_vec();
        raw[3] = 12; // same bytes, announced as Produce v12
        let decoded = decode_request(Bytes::from(raw)).unwrap();
        assert_eq!(decoded.version, 11);
        assert!(matches!(decoded.body, RequestKind::Produce(ref p) if p.acks == 1));
    }

    #[test]
    fn truncated_requests_are_errors_not_panics() {
        let req = frame(ApiKey::Metadata, 9, RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))));
        for cut in 0..req.len() {
            let _ = decode_request(req.slice(..cut));
        }
    }
}
