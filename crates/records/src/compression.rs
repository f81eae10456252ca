//! The five codecs of a RecordBatch's attributes (bits 0-2) and how their
//! payloads are (de)compressed.
//!
//! Wire details that matter for interoperability:
//! - gzip: RFC 1952 members (several concatenated members are accepted).
//! - snappy: Java clients send the xerial "snappy-java" framing (a 16-byte
//!   header, then blocks each prefixed by a big-endian i32 length); librdkafka
//!   may send a raw snappy block. Both are read; xerial framing is written,
//!   because every client reads it.
//! - lz4: the LZ4 frame format with independent 64 KiB blocks and no
//!   checksums, as Kafka's Java client writes it.
//! - zstd: a standard zstd frame.
//!
//! Decompression is always bounded: the caller gives the largest decompressed
//! size it accepts, and no decoder allocates past it (a 6-byte raw snappy
//! payload can claim 4 GiB).

use std::fmt;
use std::io::{Read, Write};

use crate::error::{RecordsError, Result};

/// Compression codec of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records are stored as they are.
    #[default]
    None,
    /// gzip (codec id 1).
    Gzip,
    /// snappy (codec id 2).
    Snappy,
    /// lz4 frame (codec id 3).
    Lz4,
    /// zstd (codec id 4).
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id as stored in bits 0-2 of the batch attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec named by a codec id.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordsError::UnknownCodec(other)),
        }
    }

    /// The name Kafka uses in configs (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = RecordsError;

    fn from_str(s: &str) -> Result<Self> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| RecordsError::UnknownCodecName(s.to_string()))
    }
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
const XERIAL_BLOCK: usize = 32 * 1024;

/// Compresses `data` with `codec`. `Compression::None` returns a copy.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let fail = |reason: String| RecordsError::Compression { codec, reason };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 64),
                flate2::Compression::default(),
            );
            enc.write_all(data).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 64);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| fail(e.to_string()))?;
                let len = i32::try_from(compressed.len()).map_err(|e| fail(e.to_string()))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(data.len() / 2 + 64),
            );
            enc.write_all(data).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

/// Decompresses `data` compressed with `codec`, refusing to produce more than
/// `limit` bytes. `Compression::None` returns a copy (still bounded).
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let fail = |reason: String| RecordsError::Decompression { codec, reason };
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(RecordsError::DecompressedTooLarge { limit });
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), limit, codec),
        Compression::Snappy => {
            if data.len() >= XERIAL_HEADER_LEN && data[..8] == XERIAL_MAGIC {
                decompress_xerial(&data[XERIAL_HEADER_LEN..], limit)
            } else {
                let mut out = Vec::new();
                decompress_raw_snappy(data, limit, &mut out)?;
                Ok(out)
            }
        }
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), limit, codec),
        Compression::Zstd => {
            // The window is memory the decoder allocates up front: never more
            // than the output we accept (zstd's minimum window is 1 KiB).
            let window = limit.max(1 << 10) as u64;
            let decoder =
                ruzstd::decoding::StreamingDecoder::new_with_max_window_size(data, window)
                    .map_err(|e| fail(e.to_string()))?;
            read_bounded(decoder, limit, codec)
        }
    }
}

fn read_bounded(reader: impl Read, limit: usize, codec: Compression) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(bound)
        .read_to_end(&mut out)
        .map_err(|e| RecordsError::Decompression {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(RecordsError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking the claimed length first.
fn decompress_raw_snappy(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<()> {
    let fail = |reason: String| RecordsError::Decompression {
        codec: Compression::Snappy,
        reason,
    };
    let claimed = snap::raw::decompress_len(block).map_err(|e| fail(e.to_string()))?;
    if claimed > limit.saturating_sub(out.len()) {
        return Err(RecordsError::DecompressedTooLarge { limit });
    }
    let start = out.len();
    out.resize(start + claimed, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| fail(e.to_string()))?;
    out.truncate(start + written);
    Ok(())
}

fn decompress_xerial(mut blocks: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while !blocks.is_empty() {
        let Some((len_bytes, rest)) = blocks.split_first_chunk::<4>() else {
            return Err(RecordsError::Decompression {
                codec: Compression::Snappy,
                reason: "truncated xerial block length".into(),
            });
        };
        let len = i32::from_be_bytes(*len_bytes);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| RecordsError::Decompression {
                codec: Compression::Snappy,
                reason: format!("xerial block length {len} out of range"),
            })?;
        decompress_raw_snappy(&rest[..len], limit, &mut out)?;
        blocks = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in Compression::ALL {
            let packed = compress(codec, &data).expect("compress");
            let unpacked = decompress(codec, &packed, data.len()).expect("decompress");
            assert_eq!(unpacked, data, "{codec}");
            if codec != Compression::None {
                assert!(packed.len() < data.len(), "{codec} did not compress");
            }
        }
    }

    #[test]
    fn every_codec_honours_the_limit() {
        let data = sample();
        for codec in Compression::ALL {
            let packed = compress(codec, &data).expect("compress");
            let err = decompress(codec, &packed, data.len() - 1).expect_err("over limit");
            assert_eq!(
                err,
                RecordsError::DecompressedTooLarge {
                    limit: data.len() - 1
                },
                "{codec}"
            );
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("raw");
        assert_eq!(
            decompress(Compression::Snappy, &raw, data.len()).expect("raw"),
            data
        );
    }

    #[test]
    fn snappy_claiming_four_gib_is_refused_without_allocating() {
        // A varint length of 0xFFFFFFFF followed by nothing.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err = decompress(Compression::Snappy, &bomb, 1 << 20).expect_err("bomb");
        assert_eq!(err, RecordsError::DecompressedTooLarge { limit: 1 << 20 });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in Compression::ALL.into_iter().skip(1) {
            let garbage = [0x13u8; 64];
            assert!(decompress(codec, &garbage, 1 << 20).is_err(), "{codec}");
        }
    }

    #[test]
    fn names_parse() {
        for codec in Compression::ALL {
            assert_eq!(codec.name().parse::<Compression>(), Ok(codec));
            assert_eq!(Compression::from_id(codec.id()), Ok(codec));
        }
        assert!(Compression::from_id(5).is_err());
    }
}
