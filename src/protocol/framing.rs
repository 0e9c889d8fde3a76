//! Kafka's size-prefixed framing, bytes in and frames out, no I/O: an `i32` size, then
//! that many bytes of request. The listener feeds what it reads into a buffer and takes
//! whole frames off its front; this module decides what the buffer holds.
//!
//! Invariants: a size is checked against the limit as soon as its four bytes are
//! there, before anything is allocated for the frame; `take` either returns one whole
//! frame and consumes exactly its bytes, or consumes nothing.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

pub const SIZE_LEN: usize = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("request size {size} is outside 0..={max} (socket.request.max.bytes)")]
    BadSize { size: i64, max: usize },
}

/// What the front of the buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Front {
    /// Nothing at all: the connection is between requests.
    Empty,
    /// Part of a size prefix.
    PartialSize,
    /// A frame of `size` bytes (after its prefix), of which `have` have arrived.
    Frame { size: usize, have: usize },
}

/// Looks at the front of `buf` without consuming anything.
pub fn front(buf: &[u8], max: usize) -> Result<Front, FramingError> {
    if buf.is_empty() {
        return Ok(Front::Empty);
    }
    if buf.len() < SIZE_LEN {
        return Ok(Front::PartialSize);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 || size as usize > max {
        return Err(FramingError::BadSize {
            size: size as i64,
            max,
        });
    }
    Ok(Front::Frame {
        size: size as usize,
        have: (buf.len() - SIZE_LEN).min(size as usize),
    })
}

/// Takes one whole frame (without its prefix) off the front of `buf`, or returns
/// `None` (consuming nothing) when it has not all arrived.
pub fn take(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FramingError> {
    match front(buf, max)? {
        Front::Frame { size, have } if have == size => {
            buf.advance(SIZE_LEN);
            Ok(Some(buf.split_to(size).freeze()))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_whole_and_sizes_are_checked_early() {
        let mut all = BytesMut::new();
        for body in [&b"abc"[..], b"", b"hello"] {
            all.extend_from_slice(&(body.len() as i32).to_be_bytes());
            all.extend_from_slice(body);
        }
        // Fed a byte at a time: every prefix is "not yet", the frames come out whole.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in all.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = take(&mut buf, 100).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(
            out,
            vec![
                Bytes::from_static(b"abc"),
                Bytes::new(),
                Bytes::from_static(b"hello")
            ]
        );
        assert!(buf.is_empty());
        assert_eq!(front(b"", 10), Ok(Front::Empty));
        assert_eq!(front(b"\0\0", 10), Ok(Front::PartialSize));
        assert_eq!(
            front(b"\0\0\0\x05ab", 10),
            Ok(Front::Frame { size: 5, have: 2 })
        );
        assert!(
            front(&200i32.to_be_bytes(), 100).is_err(),
            "checked before the body arrives"
        );
        assert!(front(&(-1i32).to_be_bytes(), 100).is_err());
    }
}
