//! A zero-copy view over one RecordBatch v2, and in-place rewrites of the
//! fields the broker owns (baseOffset, partitionLeaderEpoch, LogAppendTime).
//!
//! Layout (big-endian; see docs/FORMAT.md):
//!
//! ```text
//! offset len field
//!  0      8  baseOffset            i64
//!  8      4  batchLength           i32  bytes after this field
//! 12      4  partitionLeaderEpoch  i32
//! 16      1  magic                 i8   = 2
//! 17      4  crc                   u32  CRC-32C of bytes 21..end
//! 21      2  attributes            i16
//! 23      4  lastOffsetDelta       i32
//! 27      8  baseTimestamp         i64
//! 35      8  maxTimestamp          i64
//! 43      8  producerId            i64
//! 51      2  producerEpoch         i16
//! 53      4  baseSequence          i32
//! 57      4  recordCount           i32
//! 61      -  records (possibly compressed)
//! ```

use std::fmt;

use crate::compression::Compression;
use crate::error::{RecordsError, Result};
use crate::record::RecordSet;

/// Bytes of the fixed v2 header, records excluded.
pub const HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes not counted by batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// The only supported magic byte.
pub const MAGIC: i8 = 2;

pub(crate) const BASE_OFFSET: usize = 0;
pub(crate) const BATCH_LENGTH: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC: usize = 17;
pub(crate) const ATTRIBUTES: usize = 21;
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
pub(crate) const BASE_TIMESTAMP: usize = 27;
pub(crate) const MAX_TIMESTAMP: usize = 35;
pub(crate) const PRODUCER_ID: usize = 43;
pub(crate) const PRODUCER_EPOCH: usize = 51;
pub(crate) const BASE_SEQUENCE: usize = 53;
pub(crate) const RECORD_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;

/// The smallest encoded record: a 1-byte length and six 1-byte fields.
const MIN_RECORD_LEN: usize = 7;

/// How a batch's timestamps were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch: every record's timestamp
    /// is the batch's maxTimestamp.
    LogAppendTime,
}

pub(crate) fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// Total length (header included) of the batch that starts `buf`, read from its
/// first 12 bytes. Checks only that the length is plausible for a v2 batch.
pub fn batch_len(buf: &[u8]) -> Result<usize> {
    if buf.len() < LOG_OVERHEAD {
        return Err(RecordsError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let length = i32_at(buf, BATCH_LENGTH);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(RecordsError::InvalidLength(length));
    }
    Ok(LOG_OVERHEAD + length as usize)
}

/// CRC-32C over `attributes..end` of a batch, the span the CRC field covers.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// The fixed header fields of a batch, copied out of its first
/// [`HEADER_LEN`] bytes: enough to walk a log without reading the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// baseOffset.
    pub base_offset: i64,
    /// Total length in bytes, header included (batchLength + 12).
    pub len: usize,
    /// partitionLeaderEpoch.
    pub partition_leader_epoch: i32,
    /// lastOffsetDelta.
    pub last_offset_delta: i32,
    /// maxTimestamp.
    pub max_timestamp: i64,
    /// recordCount.
    pub record_count: i32,
    /// attributes.
    pub attributes: i16,
    /// producerId.
    pub producer_id: i64,
    /// producerEpoch.
    pub producer_epoch: i16,
    /// baseSequence.
    pub base_sequence: i32,
}

/// The sequence number of a batch's last record: `base + delta`, wrapping
/// past i32::MAX to 0 as Kafka does; -1 (no sequence) stays -1.
fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    if base < 0 {
        return base;
    }
    let last = i64::from(base) + i64::from(last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl BatchHeader {
    /// Sequence number of the last record (wrapping at i32::MAX like Kafka).
    pub fn last_sequence(&self) -> i32 {
        last_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Reads the header at the start of `buf`, which needs only the first
    /// [`HEADER_LEN`] bytes of the batch. Checks length and magic.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let len = batch_len(buf)?;
        if buf.len() < HEADER_LEN {
            return Err(RecordsError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != MAGIC {
            return Err(RecordsError::UnsupportedMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: i64_at(buf, BASE_OFFSET),
            len,
            partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            record_count: i32_at(buf, RECORD_COUNT),
            attributes: i16_at(buf, ATTRIBUTES),
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16_at(buf, PRODUCER_EPOCH),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
        })
    }

    /// A control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Part of a transaction (attributes bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Offset of the last record slot.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// A read-only view of exactly one RecordBatch v2.
///
/// Construction checks the length and the magic byte; the CRC and the
/// records are checked only when asked (`validate`, `records`), so a view is
/// cheap enough to build on every read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Batch<'a> {
    bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Views the batch at the start of `buf` (which may hold more after it).
    pub fn parse(buf: &'a [u8]) -> Result<Batch<'a>> {
        let len = batch_len(buf)?;
        if buf.len() < len {
            return Err(RecordsError::Truncated {
                needed: len,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != MAGIC {
            return Err(RecordsError::UnsupportedMagic(magic));
        }
        Ok(Batch { bytes: &buf[..len] })
    }

    /// The batch's bytes, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Length in bytes, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Never true: a batch holds at least its header. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Offset of the first record (as assigned by the broker).
    pub fn base_offset(&self) -> i64 {
        i64_at(self.bytes, BASE_OFFSET)
    }
    /// The batchLength field: bytes after it.
    pub fn batch_length(&self) -> i32 {
        i32_at(self.bytes, BATCH_LENGTH)
    }
    /// partitionLeaderEpoch.
    pub fn partition_leader_epoch(&self) -> i32 {
        i32_at(self.bytes, PARTITION_LEADER_EPOCH)
    }
    /// Magic byte (always 2 for a parsed batch).
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_OFFSET] as i8
    }
    /// The stored CRC-32C.
    pub fn crc(&self) -> u32 {
        i32_at(self.bytes, CRC) as u32
    }
    /// Raw attributes.
    pub fn attributes(&self) -> i16 {
        i16_at(self.bytes, ATTRIBUTES)
    }
    /// Compression codec named by the attributes.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_id((self.attributes() & COMPRESSION_MASK) as u8)
    }
    /// Timestamp type named by the attributes.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    /// A control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// lastOffsetDelta: last offset minus base offset.
    pub fn last_offset_delta(&self) -> i32 {
        i32_at(self.bytes, LAST_OFFSET_DELTA)
    }
    /// Offset of the last record slot of the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    /// baseTimestamp: timestamp of the first record (CreateTime).
    pub fn base_timestamp(&self) -> i64 {
        i64_at(self.bytes, BASE_TIMESTAMP)
    }
    /// maxTimestamp: the largest record timestamp (or the append time).
    pub fn max_timestamp(&self) -> i64 {
        i64_at(self.bytes, MAX_TIMESTAMP)
    }
    /// producerId, -1 when not idempotent.
    pub fn producer_id(&self) -> i64 {
        i64_at(self.bytes, PRODUCER_ID)
    }
    /// producerEpoch.
    pub fn producer_epoch(&self) -> i16 {
        i16_at(self.bytes, PRODUCER_EPOCH)
    }
    /// baseSequence, -1 when not idempotent.
    pub fn base_sequence(&self) -> i32 {
        i32_at(self.bytes, BASE_SEQUENCE)
    }
    /// Sequence number of the last record (wrapping at i32::MAX like Kafka).
    pub fn last_sequence(&self) -> i32 {
        last_sequence(self.base_sequence(), self.last_offset_delta())
    }
    /// recordCount.
    pub fn record_count(&self) -> i32 {
        i32_at(self.bytes, RECORD_COUNT)
    }
    /// The (possibly compressed) records section.
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
    /// CRC-32C of the covered span as it is now.
    pub fn computed_crc(&self) -> u32 {
        compute_crc(self.bytes)
    }

    /// Checks the CRC only.
    pub fn validate_crc(&self) -> Result<()> {
        let (stored, computed) = (self.crc(), self.computed_crc());
        if stored != computed {
            return Err(RecordsError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    /// Checks everything that can be checked without decompressing: the CRC,
    /// a known codec, and header fields that agree with each other. Batches
    /// cleaned by compaction may hold fewer records than offsets.
    pub fn validate(&self) -> Result<()> {
        self.validate_crc()?;
        self.validate_header()
    }

    /// The header checks of [`Batch::validate`], without the CRC.
    pub fn validate_header(&self) -> Result<()> {
        let codec = self.compression()?;
        let delta = self.last_offset_delta();
        let count = self.record_count();
        if self.base_offset() < 0 {
            return Err(RecordsError::InvalidHeader("negative base offset"));
        }
        if delta < 0 {
            return Err(RecordsError::InvalidHeader("negative lastOffsetDelta"));
        }
        if count < 0 {
            return Err(RecordsError::InvalidHeader("negative record count"));
        }
        if i64::from(count) > i64::from(delta) + 1 {
            return Err(RecordsError::InvalidHeader(
                "more records than offsets in the batch",
            ));
        }
        if codec == Compression::None
            && (count as usize).saturating_mul(MIN_RECORD_LEN) > self.records_bytes().len()
        {
            return Err(RecordsError::InvalidHeader(
                "record count does not fit in the batch",
            ));
        }
        if count > 0 && codec == Compression::None && self.records_bytes().is_empty() {
            return Err(RecordsError::InvalidHeader("records missing"));
        }
        Ok(())
    }

    /// The checks a broker makes on a batch a producer sends: `validate`, plus
    /// one record per offset, at least one record, and no control batch.
    pub fn validate_for_append(&self) -> Result<()> {
        self.validate_crc()?;
        self.validate_for_append_header()
    }

    /// The checks of [`Batch::validate_for_append`] without the CRC (for
    /// batches built in this process, whose CRC was just computed).
    pub fn validate_for_append_header(&self) -> Result<()> {
        self.validate_header()?;
        let count = self.record_count();
        if count == 0 {
            return Err(RecordsError::InvalidHeader("batch holds no records"));
        }
        if i64::from(count) != i64::from(self.last_offset_delta()) + 1 {
            return Err(RecordsError::InvalidHeader(
                "lastOffsetDelta does not match the record count",
            ));
        }
        Ok(())
    }

    /// The records, decompressed if needed (never more than
    /// `max_decompressed` bytes). Iterate them with [`RecordSet::iter`].
    pub fn records(&self, max_decompressed: usize) -> Result<RecordSet<'a>> {
        RecordSet::new(*self, max_decompressed)
    }
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("len", &self.len())
            .field("record_count", &self.record_count())
            .field("attributes", &self.attributes())
            .field("max_timestamp", &self.max_timestamp())
            .field("producer_id", &self.producer_id())
            .finish()
    }
}

/// A mutable view of one batch, for the fields a broker rewrites.
#[derive(Debug)]
pub struct BatchMut<'a> {
    bytes: &'a mut [u8],
}

impl<'a> BatchMut<'a> {
    /// Views the batch at the start of `buf` (which may hold more after it).
    pub fn parse(buf: &'a mut [u8]) -> Result<BatchMut<'a>> {
        let len = Batch::parse(buf)?.len();
        Ok(BatchMut {
            bytes: &mut buf[..len],
        })
    }

    /// Read access to the same batch.
    pub fn as_batch(&self) -> Batch<'_> {
        Batch { bytes: self.bytes }
    }

    /// Sets baseOffset. Outside the CRC span: the CRC stays valid.
    pub fn set_base_offset(&mut self, offset: i64) {
        self.bytes[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
    }

    /// Sets partitionLeaderEpoch. Outside the CRC span: the CRC stays valid.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.bytes[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&epoch.to_be_bytes());
    }

    /// Marks the batch as LogAppendTime with `now` as its maxTimestamp, as a
    /// broker does for topics with `message.timestamp.type=LogAppendTime`.
    /// Both fields are inside the CRC span, so the CRC is recomputed.
    pub fn set_log_append_time(&mut self, now: i64) {
        let attributes = i16_at(self.bytes, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
        self.bytes[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        self.bytes[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
        let crc = compute_crc(self.bytes);
        self.bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterates the batches laid end to end in a buffer (a log segment, a fetch
/// response, a produce request's records).
///
/// Yields each batch whose length and magic are sane; yields one error and
/// then stops at the first that is not (a partial trailing batch gives
/// [`RecordsError::Truncated`]). CRCs are not checked here.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> Batches<'a> {
    /// Iterates `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Batches {
            rest: buf,
            position: 0,
            failed: false,
        }
    }

    /// Byte position (in the original buffer) of the next batch.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match Batch::parse(self.rest) {
            Ok(batch) => {
                self.rest = &self.rest[batch.len()..];
                self.position += batch.len();
                Some(Ok(batch))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
