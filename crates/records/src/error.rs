//! The one error type of this crate.

use crate::Compression;

/// Everything that can be wrong with the bytes of a record batch.
///
/// Every variant describes bad *input*: nothing in this crate does I/O, so an
/// error always means "these bytes are not a valid RecordBatch v2".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The buffer ends before the batch (or a field of it) does.
    #[error("truncated: needed {needed} bytes, only {available} available")]
    Truncated {
        /// Bytes needed to go on.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The batchLength field is too small to hold a v2 header, or negative.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The magic byte is not 2; only RecordBatch v2 is supported.
    #[error("unsupported magic byte {0}: only RecordBatch v2 (magic 2) is supported")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the bytes.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC field of the batch header.
        stored: u32,
        /// CRC-32C of attributes..end as computed now.
        computed: u32,
    },
    /// A header field holds an impossible value.
    #[error("invalid batch header: {0}")]
    InvalidHeader(&'static str),
    /// Compression bits name a codec that does not exist (5, 6 or 7).
    #[error("unknown compression codec id {0}")]
    UnknownCodec(u8),
    /// A codec name that is not none, gzip, snappy, lz4 or zstd.
    #[error("unknown compression {0:?}: expected none, gzip, snappy, lz4 or zstd")]
    UnknownCodecName(String),
    /// The compressed payload could not be decompressed.
    #[error("{codec} decompression failed: {reason}")]
    Decompression {
        /// Codec of the batch.
        codec: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// Compressing a payload failed (only possible for broken encoders).
    #[error("{codec} compression failed: {reason}")]
    Compression {
        /// Codec asked for.
        codec: Compression,
        /// What the encoder said.
        reason: String,
    },
    /// Decompressing would exceed the caller's bound on decompressed size.
    #[error("decompressed payload exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The bound that was given.
        limit: usize,
    },
    /// A record inside the batch is malformed.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Position of the record in the batch (0-based).
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A control record is not a well-formed transaction marker.
    #[error("invalid control record: {0}")]
    InvalidControlRecord(&'static str),
    /// The builder was asked for something a batch cannot hold.
    #[error("cannot build batch: {0}")]
    Build(&'static str),
}

/// Result alias used throughout the crate.
pub type Result<T, E = RecordsError> = std::result::Result<T, E>;
