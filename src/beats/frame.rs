//! Lumberjack (Beats) framing, bytes in and frames out, no I/O: protocol v2 window
//! (`2W`), JSON event (`2J`), zlib-compressed (`2C`, holding more frames) and ack
//! (`2A`, server to client), and v1 data frames (`1D`, key/value pairs) from old
//! forwarders — as logstash-input-beats' PROTOCOL.md describes them.
//!
//! Invariants: `decode` either returns a whole frame and consumes exactly its bytes,
//! says it needs more bytes (consuming nothing), or fails; every length read off the
//! wire is checked against `max_frame` before anything is allocated; decompression
//! stops at `max_frame` bytes of output, so a zlib bomb costs at most that much memory,
//! and at a count of frames, so a bomb of tiny events costs no more than that many.

use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The number of events the client will send before it waits for an ack.
    Window(u32),
    /// One event as JSON (v2).
    Json { seq: u32, payload: Bytes },
    /// One event as key/value pairs (v1).
    Data {
        seq: u32,
        pairs: Vec<(String, String)>,
    },
    /// zlib-compressed frames.
    Compressed(Bytes),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("unsupported protocol version byte {0:#04x}")]
    Version(u8),
    #[error("unknown frame type {0:#04x}")]
    FrameType(u8),
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    TooLarge { size: u64, max: usize },
    #[error("invalid compressed frame: {0}")]
    Zlib(String),
    #[error("compressed frame ends in the middle of a frame")]
    TruncatedInner,
    #[error("invalid UTF-8 in a v1 data frame")]
    Utf8,
    #[error("more than {max} events in one window")]
    TooManyEvents { max: usize },
}

fn need(buf: &[u8], n: usize) -> bool {
    buf.len() >= n
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes one frame from the front of `buf`. `Ok(None)`: more bytes are needed.
pub fn decode(buf: &mut BytesMut, max_frame: usize) -> Result<Option<Frame>, FrameError> {
    if !need(buf, 2) {
        return Ok(None);
    }
    let (version, kind) = (buf[0], buf[1]);
    match (version, kind) {
        (b'2', b'W') | (b'1', b'W') => {
            if !need(buf, 6) {
                return Ok(None);
            }
            let n = u32_at(buf, 2);
            buf.advance(6);
            Ok(Some(Frame::Window(n)))
        }
        (b'2', b'J') => {
            if !need(buf, 10) {
                return Ok(None);
            }
            let seq = u32_at(buf, 2);
            let len = u32_at(buf, 6) as usize;
            if len > max_frame {
                return Err(FrameError::TooLarge {
                    size: len as u64,
                    max: max_frame,
                });
            }
            if !need(buf, 10 + len) {
                return Ok(None);
            }
            buf.advance(10);
            Ok(Some(Frame::Json {
                seq,
                payload: buf.split_to(len).freeze(),
            }))
        }
        (b'2', b'C') | (b'1', b'C') => {
            if !need(buf, 6) {
                return Ok(None);
            }
            let len = u32_at(buf, 2) as usize;
            if len > max_frame {
                return Err(FrameError::TooLarge {
                    size: len as u64,
                    max: max_frame,
                });
            }
            if !need(buf, 6 + len) {
                return Ok(None);
            }
            buf.advance(6);
            Ok(Some(Frame::Compressed(buf.split_to(len).freeze())))
        }
        (b'1', b'D') | (b'2', b'D') => {
            if !need(buf, 10) {
                return Ok(None);
            }
            let seq = u32_at(buf, 2);
            let count = u32_at(buf, 6) as usize;
            // Walk the pairs to find the frame's end before consuming anything.
            let mut pos = 10usize;
            let mut spans = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let mut span = [0usize; 4];
                for part in 0..2 {
                    if !need(buf, pos + 4) {
                        return Ok(None);
                    }
                    let len = u32_at(buf, pos) as usize;
                    if len > max_frame || pos + 4 + len > max_frame + 10 {
                        return Err(FrameError::TooLarge {
                            size: (pos + 4 + len) as u64,
                            max: max_frame,
                        });
                    }
                    if !need(buf, pos + 4 + len) {
                        return Ok(None);
                    }
                    span[part * 2] = pos + 4;
                    span[part * 2 + 1] = pos + 4 + len;
                    pos += 4 + len;
                }
                spans.push(span);
            }
            let mut pairs = Vec::with_capacity(spans.len());
            for s in spans {
                let k = std::str::from_utf8(&buf[s[0]..s[1]])
                    .map_err(|_| FrameError::Utf8)?
                    .to_string();
                let v = std::str::from_utf8(&buf[s[2]..s[3]])
                    .map_err(|_| FrameError::Utf8)?
                    .to_string();
                pairs.push((k, v));
            }
            buf.advance(pos);
            Ok(Some(Frame::Data { seq, pairs }))
        }
        (b'1' | b'2', other) => Err(FrameError::FrameType(other)),
        (other, _) => Err(FrameError::Version(other)),
    }
}

/// Inflates a compressed frame's payload, refusing output over `max` bytes.
pub fn inflate(payload: &[u8], max: usize) -> Result<BytesMut, FrameError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(payload).take(max as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| FrameError::Zlib(e.to_string()))?;
    if out.len() > max {
        return Err(FrameError::TooLarge {
            size: out.len() as u64,
            max,
        });
    }
    Ok(BytesMut::from(&out[..]))
}

/// Decodes every frame inside a compressed payload (which may nest further `C` frames,
/// flattened here up to `depth` levels), refusing more than `max_frames` frames in all:
/// a small payload of tiny events must not become millions of frames in memory.
pub fn decode_compressed(
    payload: &[u8],
    max: usize,
    depth: usize,
    max_frames: usize,
) -> Result<Vec<Frame>, FrameError> {
    let mut frames = Vec::new();
    decode_compressed_into(payload, max, depth, max_frames, &mut frames)?;
    Ok(frames)
}

fn decode_compressed_into(
    payload: &[u8],
    max: usize,
    depth: usize,
    max_frames: usize,
    frames: &mut Vec<Frame>,
) -> Result<(), FrameError> {
    let mut inner = inflate(payload, max)?;
    while !inner.is_empty() {
        match decode(&mut inner, max)? {
            Some(Frame::Compressed(p)) if depth > 0 => {
                decode_compressed_into(&p, max, depth - 1, max_frames, frames)?
            }
            Some(Frame::Compressed(_)) => {
                return Err(FrameError::Zlib(
                    "compressed frames nested too deeply".into(),
                ))
            }
            Some(f) => {
                if frames.len() >= max_frames {
                    return Err(FrameError::TooManyEvents { max: max_frames });
                }
                frames.push(f)
            }
            None => return Err(FrameError::TruncatedInner),
        }
    }
    Ok(())
}

/// The total size a frame at the front of `buf` declares, once its header is there
/// (JSON and compressed frames; other frames are small or walked as they come).
pub fn declared_len(buf: &[u8]) -> Option<usize> {
    match (buf.first()?, buf.get(1)?) {
        (b'2', b'J') if buf.len() >= 10 => Some(10 + u32_at(buf, 6) as usize),
        (b'1' | b'2', b'C') if buf.len() >= 6 => Some(6 + u32_at(buf, 2) as usize),
        _ => None,
    }
}

/// An ack frame (`2A` + sequence) to send back.
pub fn ack(seq: u32) -> [u8; 6] {
    let mut b = [b'2', b'A', 0, 0, 0, 0];
    b[2..].copy_from_slice(&seq.to_be_bytes());
    b
}

/// Encodes a JSON frame (for tests and tools).
pub fn encode_json(seq: u32, payload: &[u8], out: &mut BytesMut) {
    out.put_slice(b"2J");
    out.put_u32(seq);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn window_json_and_compressed_frames_decode_incrementally() {
        let mut all = BytesMut::new();
        all.put_slice(b"2W\0\0\0\x02");
        encode_json(1, br#"{"a":1}"#, &mut all);
        let mut inner = BytesMut::new();
        encode_json(2, br#"{"b":2}"#, &mut inner);
        let z = zlib(&inner);
        all.put_slice(b"2C");
        all.put_u32(z.len() as u32);
        all.put_slice(&z);
        // Feed one byte at a time: every prefix is "need more", never an error.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in all.iter() {
            buf.put_u8(*b);
            while let Some(f) = decode(&mut buf, 1 << 20).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames[0], Frame::Window(2));
        assert_eq!(
            frames[1],
            Frame::Json {
                seq: 1,
                payload: Bytes::from_static(br#"{"a":1}"#)
            }
        );
        let Frame::Compressed(p) = &frames[2] else {
            panic!()
        };
        assert_eq!(
            decode_compressed(p, 1 << 20, 4, 10).unwrap(),
            vec![Frame::Json {
                seq: 2,
                payload: Bytes::from_static(br#"{"b":2}"#)
            }]
        );
    }

    #[test]
    fn v1_data_frames_carry_pairs() {
        let mut b = BytesMut::new();
        b.put_slice(b"1D");
        b.put_u32(7);
        b.put_u32(1);
        b.put_u32(4);
        b.put_slice(b"line");
        b.put_u32(5);
        b.put_slice(b"hello");
        assert_eq!(
            decode(&mut b, 1024).unwrap(),
            Some(Frame::Data {
                seq: 7,
                pairs: vec![("line".into(), "hello".into())]
            })
        );
        assert!(b.is_empty());
    }

    #[test]
    fn bad_versions_types_sizes_and_bombs_are_errors() {
        assert_eq!(
            decode(&mut BytesMut::from(&b"3W\0\0\0\x01"[..]), 10),
            Err(FrameError::Version(b'3'))
        );
        assert_eq!(
            decode(&mut BytesMut::from(&b"2X"[..]), 10),
            Err(FrameError::FrameType(b'X'))
        );
        let mut big = BytesMut::from(&b"2J\0\0\0\x01\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            decode(&mut big, 1000),
            Err(FrameError::TooLarge { .. })
        ));
        // 10 MB of zeros compresses to ~10 KB; with a 1 MB limit it is refused.
        let bomb = zlib(&vec![0u8; 10 << 20]);
        assert!(matches!(
            inflate(&bomb, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            inflate(b"not zlib", 1 << 20),
            Err(FrameError::Zlib(_))
        ));
    }

    #[test]
    fn a_compressed_frame_of_many_tiny_events_is_bounded_by_count() {
        let mut inner = BytesMut::new();
        for i in 0..1000 {
            encode_json(i, b"{}", &mut inner);
        }
        let z = zlib(&inner);
        assert_eq!(decode_compressed(&z, 1 << 20, 1, 1000).unwrap().len(), 1000);
        assert_eq!(
            decode_compressed(&z, 1 << 20, 1, 999),
            Err(FrameError::TooManyEvents { max: 999 })
        );
        assert_eq!(declared_len(b"2J\0\0\0\x01\0\0\0\x05"), Some(15));
        assert_eq!(declared_len(b"2C\0\0\x01\0"), Some(6 + 256));
        assert_eq!(declared_len(b"2J\0\0"), None);
    }
}
