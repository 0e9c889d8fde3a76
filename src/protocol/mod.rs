//! Kafka wire framing: bytes in, typed requests out; typed responses in, bytes out.
//! No I/O happens here, so every function is fuzzed and unit-tested without a socket.
//!
//! Message bodies are the `kafka-protocol` crate's codecs (vendored 0.15.1, see
//! `src/vendor/kafka-protocol/PATCHES.md`). This module owns the 4-byte size prefix,
//! the request header, the table of API versions we implement (`versions`), and the
//! rule that a request outside that table never reaches a handler.

pub mod codec;
pub mod compression;
pub mod framing;
pub mod message_set;
pub mod partitioner;
pub mod records;
pub mod versions;

pub use codec::{decode_request, encode_response, DecodeError, Request};

/// A codec failure outside request decoding: encoding a message, or decoding a
/// response or a record batch. The vendored codec reports untyped errors; this is the
/// typed edge they are turned into.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

impl From<anyhow::Error> for CodecError {
    fn from(e: anyhow::Error) -> Self {
        CodecError(e.to_string())
    }
}
