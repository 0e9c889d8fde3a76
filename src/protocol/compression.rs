//! Decompressing the records section of a v2 batch with a bound on the output: gzip,
//! snappy (raw, as librdkafka and kcat write it, or xerial-framed, as the Java client
//! and kafka-python write it), lz4 (the LZ4 frame format Kafka uses for v2) and zstd.
//!
//! Invariant: no call returns or allocates more than `limit` bytes of output, whatever
//! sizes the compressed stream claims — a 256 MiB run of zeros packed into 8 KB costs
//! at most `limit` bytes, and then an error. The streaming codecs are read through
//! `Read::take(limit + 1)`; snappy blocks state their length up front and are refused
//! before anything is allocated (see the vendored `decompress_snappy`).

use std::io::Read;

use kafka_protocol::compression::SnappyError;

use thiserror::Error;

/// The codec ids of a v2 batch's attributes (bits 0–2).
pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("records decompress to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("corrupt {codec} data: {why}")]
    Corrupt { codec: &'static str, why: String },
}

/// The codec's name as Kafka's `compression.type` spells it.
pub fn codec_name(codec: i16) -> &'static str {
    match codec {
        NONE => "none",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

/// Decompresses `input` (a batch's records section compressed with `codec`) into at
/// most `limit` bytes. `codec` must not be `NONE`: uncompressed records need no copy.
pub fn decompress(codec: i16, input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    decompress_into(codec, input, limit, &mut out)?;
    Ok(out)
}

/// As `decompress`, into `out` (cleared first), so a caller that decompresses batch
/// after batch can keep one buffer instead of allocating and faulting in a new one
/// each time.
pub fn decompress_into(
    codec: i16,
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    let corrupt = |why: String| DecompressError::Corrupt {
        codec: codec_name(codec),
        why,
    };
    out.clear();
    // A first guess at the output size that a lying stream cannot inflate.
    out.reserve(input.len().saturating_mul(4).min(limit).min(1 << 20));
    let read = match codec {
        GZIP => read_bounded(flate2::read::GzDecoder::new(input), limit, out),
        ZSTD => {
            let decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| corrupt(e.to_string()))?;
            read_bounded(decoder, limit, out)
        }
        LZ4 => {
            let decoder = lz4::Decoder::new(input).map_err(|e| corrupt(e.to_string()))?;
            read_bounded(decoder, limit, out)
        }
        SNAPPY => {
            *out = kafka_protocol::compression::decompress_snappy(input, limit).map_err(
                |e| match e {
                    SnappyError::TooLarge { limit } => DecompressError::TooLarge { limit },
                    SnappyError::Corrupt(why) => corrupt(why),
                },
            )?;
            return Ok(());
        }
        other => return Err(DecompressError::UnknownCodec(other)),
    };
    match read {
        Ok(()) if out.len() > limit => Err(DecompressError::TooLarge { limit }),
        Ok(()) => Ok(()),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

/// Compresses a records section with `codec` at `level` (gzip 1–9 with -1 for zlib's
/// default, lz4 1–17, zstd's scale; snappy has no levels), lz4 in Kafka's frame format.
pub fn compress(codec: i16, level: i32, input: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match codec {
        NONE => Ok(input.to_vec()),
        GZIP => {
            let level = if level < 0 { 6 } else { level as u32 };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(input)?;
            e.finish()
        }
        SNAPPY => snap::raw::Encoder::new()
            .compress_vec(input)
            .map_err(std::io::Error::other),
        LZ4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(level.max(0) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            e.write_all(input)?;
            let (out, result) = e.finish();
            result.map(|_| out)
        }
        ZSTD => zstd::encode_all(input, level),
        other => Err(std::io::Error::other(format!(
            "unknown compression codec {other}"
        ))),
    }
}

fn read_bounded(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    reader.take(limit as u64 + 1).read_to_end(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lz4_frame(data: &[u8]) -> Vec<u8> {
        let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        let (out, r) = e.finish();
        r.unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let data = b"logbridge ".repeat(1000);
        let packed = [
            (GZIP, gzip(&data)),
            (ZSTD, zstd::encode_all(&data[..], 3).unwrap()),
            (LZ4, lz4_frame(&data)),
            (
                SNAPPY,
                snap::raw::Encoder::new().compress_vec(&data).unwrap(),
            ),
        ];
        for (codec, bytes) in &packed {
            assert_eq!(
                decompress(*codec, bytes, data.len()).unwrap(),
                data,
                "{}",
                codec_name(*codec)
            );
            assert_eq!(
                decompress(*codec, bytes, data.len() - 1),
                Err(DecompressError::TooLarge {
                    limit: data.len() - 1
                }),
                "{}",
                codec_name(*codec)
            );
        }
        assert!(matches!(
            decompress(7, b"x", 10),
            Err(DecompressError::UnknownCodec(7))
        ));
        assert!(matches!(
            decompress(GZIP, b"not gzip", 10),
            Err(DecompressError::Corrupt { .. })
        ));
    }

    #[test]
    fn compressing_at_a_level_round_trips() {
        let data = b"compress me ".repeat(500);
        for (codec, level) in [(GZIP, 1), (GZIP, -1), (LZ4, 9), (ZSTD, 19), (SNAPPY, 0)] {
            let packed = compress(codec, level, &data).unwrap();
            assert!(packed.len() < data.len());
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn a_bomb_costs_at_most_the_limit() {
        // 64 MiB of zeros in about 2 KB of zstd: refused after 1 MiB of output.
        let bomb = zstd::encode_all(&vec![0u8; 64 << 20][..], 19).unwrap();
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            decompress(ZSTD, &bomb, 1 << 20),
            Err(DecompressError::TooLarge { limit: 1 << 20 })
        );
    }
}
