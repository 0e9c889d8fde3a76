use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use snap::raw::*;

use crate::protocol::buf::{ByteBuf, ByteBufMut};

use super::{Compressor, Decompressor};

/// Snappy compression algorithm. See [Kafka's broker configuration](https://kafka.apache.org/documentation/#brokerconfigs_compression.type)
/// for more information.
pub struct Snappy;

impl<B: ByteBufMut> Compressor<B> for Snappy {
    type BufMut = BytesMut;
    fn compress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::BufMut) -> Result<R>,
    {
        // Write uncompressed bytes into a temporary buffer
        let mut tmp = BytesMut::new();
        let res = f(&mut tmp)?;

        // Compress directly into the target buffer
        let start_pos = buf.offset();
        let compress_gap = buf.put_gap(max_compress_len(tmp.len()));
        let actual_len = Encoder::new()
            .compress(&tmp, buf.gap_buf(compress_gap))
            .context("Failed to compress snappy")?;
        buf.seek(start_pos + actual_len);

        Ok(res)
    }
}

impl<B: ByteBuf> Decompressor<B> for Snappy {
    type Buf = Bytes;
    fn decompress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::Buf) -> Result<R>,
    {
        let buf = buf.copy_to_bytes(buf.remaining());
        let tmp = decompress_any_framing(&buf, usize::MAX)?;
        f(&mut Bytes::from(tmp))
    }
}

/// The xerial snappy-java stream header: magic, then version and minimum compatible
/// version (both 1) as big-endian i32.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

/// logbridge patch (upstream #79/#143): Kafka batches carry snappy in two framings —
/// raw snappy (librdkafka, kcat, Sarama) and the xerial snappy-java stream (the Java
/// client, kafka-python): a 16-byte header, then blocks of `i32 length` + raw snappy.
/// Upstream's fix reads xerial only; this reads both. Output over `limit` bytes is
/// refused before it is allocated (each raw block states its decompressed length).
pub fn decompress_any_framing(input: &[u8], limit: usize) -> std::result::Result<Vec<u8>, SnappyError> {
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        let mut out = Vec::new();
        let mut pos = XERIAL_HEADER_LEN;
        while pos < input.len() {
            if input.len() - pos < 4 {
                return Err(SnappyError::Corrupt("truncated xerial block length".into()));
            }
            let len = u32::from_be_bytes(input[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            pos += 4;
            if input.len() - pos < len {
                return Err(SnappyError::Corrupt("truncated xerial block".into()));
            }
            decompress_raw_into(&input[pos..pos + len], limit, &mut out)?;
            pos += len;
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    decompress_raw_into(input, limit, &mut out)?;
    Ok(out)
}

/// Why `decompress_any_framing` failed (logbridge patch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnappyError {
    /// The output would pass the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The input is not snappy in either framing.
    Corrupt(String),
}

impl std::fmt::Display for SnappyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnappyError::TooLarge { limit } => {
                write!(f, "Failed to decompress snappy: output exceeds the limit of {limit} bytes")
            }
            SnappyError::Corrupt(why) => write!(f, "Failed to decompress snappy: {why}"),
        }
    }
}

impl std::error::Error for SnappyError {}

/// Appends one raw snappy block to `out`, keeping `out` within `limit` bytes.
fn decompress_raw_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> std::result::Result<(), SnappyError> {
    let len = decompress_len(block).map_err(|e| SnappyError::Corrupt(e.to_string()))?;
    if len > limit.saturating_sub(out.len()) {
        return Err(SnappyError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| SnappyError::Corrupt(e.to_string()))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn xerial(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend(1i32.to_be_bytes());
        out.extend(1i32.to_be_bytes());
        for b in blocks {
            let c = Encoder::new().compress_vec(b).unwrap();
            out.extend((c.len() as i32).to_be_bytes());
            out.extend(c);
        }
        out
    }

    #[test]
    fn reads_raw_and_xerial_framings() {
        let raw = Encoder::new().compress_vec(b"hello snappy").unwrap();
        assert_eq!(decompress_any_framing(&raw, 100).unwrap(), b"hello snappy");
        let framed = xerial(&[b"hello ", b"xerial"]);
        assert_eq!(decompress_any_framing(&framed, 100).unwrap(), b"hello xerial");
        assert!(decompress_any_framing(&framed, 11).is_err(), "limit applies across blocks");
        assert!(decompress_any_framing(&raw, 5).is_err());
        for cut in 0..framed.len() {
            let _ = decompress_any_framing(&framed[..cut], 100);
        }
    }
}
