//! Encodes records into a RecordBatch v2: what the embedded producer, the
//! compactor, the network clients and the tests use to make batches.
//!
//! Records are encoded after a gap the size of the batch header, in one
//! buffer; an uncompressed batch's header is then written into the gap and
//! the CRC-32C computed over the buffer as it is, so building copies each
//! value once (into the buffer) and reads it once more (the CRC). The
//! buffer can be handed back with [`BatchBuilder::reusing`] for the next
//! batch, so a producer that builds one batch after another allocates none.

use crate::batch::{
    compute_crc, TimestampType, ATTRIBUTES, BASE_OFFSET, BASE_SEQUENCE, BASE_TIMESTAMP,
    BATCH_LENGTH, CRC, HEADER_LEN, LAST_OFFSET_DELTA, LOG_OVERHEAD, MAGIC, MAGIC_OFFSET,
    MAX_TIMESTAMP, PARTITION_LEADER_EPOCH, PRODUCER_EPOCH, PRODUCER_ID, RECORD_COUNT,
};
use crate::compression::{compress, Compression};
use crate::error::{RecordsError, Result};
use crate::record::Header;
use crate::varint::{varint_len, varlong_len, write_varint, write_varlong};

/// A record to encode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [Header<'a>],
}

/// Builds one RecordBatch v2.
///
/// Records get offset deltas 0, 1, 2... unless placed explicitly with
/// [`BatchBuilder::push_at`] (compaction keeps original offsets). The base
/// timestamp is the first record's unless set.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    timestamp_type: TimestampType,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    base_timestamp: Option<i64>,
    max_timestamp: Option<i64>,
    max_timestamp_override: Option<i64>,
    last_offset_delta: Option<i32>,
    last_offset_delta_override: Option<i32>,
    /// [`HEADER_LEN`] bytes for the header, then the encoded records.
    buf: Vec<u8>,
    count: i32,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty, uncompressed, non-idempotent batch at base offset 0.
    pub fn new() -> Self {
        Self::reusing(Vec::new())
    }

    /// As [`BatchBuilder::new`], encoding into `buf` (its contents are
    /// dropped, its allocation kept): pass the buffer of a batch that is no
    /// longer needed to build the next without allocating.
    pub fn reusing(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.resize(HEADER_LEN, 0);
        BatchBuilder {
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            base_timestamp: None,
            max_timestamp: None,
            max_timestamp_override: None,
            last_offset_delta: None,
            last_offset_delta_override: None,
            buf,
            count: 0,
        }
    }

    /// Makes room for `bytes` more bytes of records without reallocating.
    pub fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    /// Compresses the records with `codec`.
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Sets the timestamp type bit.
    pub fn timestamp_type(mut self, ty: TimestampType) -> Self {
        self.timestamp_type = ty;
        self
    }

    /// Sets baseOffset (a broker overwrites it on append anyway).
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    /// Sets partitionLeaderEpoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Marks the batch as written by an idempotent producer.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets the transactional bit.
    pub fn transactional(mut self, yes: bool) -> Self {
        self.transactional = yes;
        self
    }

    /// Sets the control bit: the batch holds transaction markers
    /// (see [`crate::control`]), not data.
    pub fn control(mut self, yes: bool) -> Self {
        self.control = yes;
        self
    }

    /// Uses `ts` as baseTimestamp instead of the first record's timestamp.
    /// Must be called before the first record is pushed.
    pub fn base_timestamp(mut self, ts: i64) -> Self {
        self.base_timestamp = Some(ts);
        self
    }

    /// Forces maxTimestamp (kept by compaction for a batch it empties).
    pub fn max_timestamp(mut self, ts: i64) -> Self {
        self.max_timestamp_override = Some(ts);
        self
    }

    /// Forces lastOffsetDelta (compaction keeps a batch's original offset span).
    /// Must not be below the delta of the last record pushed.
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.last_offset_delta_override = Some(delta);
        self
    }

    /// Number of records pushed so far.
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// True when no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built now without compression.
    pub fn uncompressed_len(&self) -> usize {
        self.buf.len()
    }

    /// Appends a record at the next offset delta.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<()> {
        let delta = match self.last_offset_delta {
            None => 0,
            Some(d) => d
                .checked_add(1)
                .ok_or(RecordsError::Build("too many records for one batch"))?,
        };
        self.push_at(delta, record)
    }

    /// Appends a record at an explicit offset delta, which must be larger than
    /// the previous record's.
    pub fn push_at(&mut self, offset_delta: i32, record: &NewRecord<'_>) -> Result<()> {
        if offset_delta < 0 || self.last_offset_delta.is_some_and(|d| offset_delta <= d) {
            return Err(RecordsError::Build("offset deltas must increase"));
        }
        let base_ts = *self.base_timestamp.get_or_insert(record.timestamp);
        let ts_delta = record.timestamp.wrapping_sub(base_ts);
        let len_of = |b: Option<&[u8]>| -> Result<(i32, usize)> {
            match b {
                None => Ok((-1, 1)),
                Some(b) => {
                    let l = i32::try_from(b.len())
                        .map_err(|_| RecordsError::Build("field longer than i32::MAX"))?;
                    Ok((l, varint_len(l) + b.len()))
                }
            }
        };
        let (key_len, key_size) = len_of(record.key)?;
        let (value_len, value_size) = len_of(record.value)?;
        let header_count = i32::try_from(record.headers.len())
            .map_err(|_| RecordsError::Build("too many headers"))?;
        let mut headers_size = varint_len(header_count);
        for h in record.headers {
            let (_, k) = len_of(Some(h.key))?;
            let (_, v) = len_of(h.value)?;
            headers_size += k + v;
        }
        let body = 1
            + varlong_len(ts_delta)
            + varint_len(offset_delta)
            + key_size
            + value_size
            + headers_size;
        let body = i32::try_from(body).map_err(|_| RecordsError::Build("record too large"))?;

        let out = &mut self.buf;
        out.reserve(body as usize + 5);
        write_varint(out, body);
        out.push(0); // attributes
        write_varlong(out, ts_delta);
        write_varint(out, offset_delta);
        write_varint(out, key_len);
        out.extend_from_slice(record.key.unwrap_or_default());
        write_varint(out, value_len);
        out.extend_from_slice(record.value.unwrap_or_default());
        write_varint(out, header_count);
        for h in record.headers {
            write_varint(out, h.key.len() as i32);
            out.extend_from_slice(h.key);
            match h.value {
                None => write_varint(out, -1),
                Some(v) => {
                    write_varint(out, v.len() as i32);
                    out.extend_from_slice(v);
                }
            }
        }
        self.count += 1;
        self.last_offset_delta = Some(offset_delta);
        self.max_timestamp = Some(
            self.max_timestamp
                .map_or(record.timestamp, |m| m.max(record.timestamp)),
        );
        Ok(())
    }

    /// Encodes the batch: header, (compressed) records, CRC-32C.
    pub fn build(self) -> Result<Vec<u8>> {
        let last_delta = match (self.last_offset_delta_override, self.last_offset_delta) {
            (Some(forced), Some(used)) if forced < used => {
                return Err(RecordsError::Build(
                    "lastOffsetDelta below the last record's offset delta",
                ))
            }
            (Some(forced), _) => forced,
            (None, Some(used)) => used,
            (None, None) => 0,
        };
        if last_delta < 0 {
            return Err(RecordsError::Build("negative lastOffsetDelta"));
        }
        let mut out = match self.compression {
            // The records are already in place after the header's gap.
            Compression::None => self.buf,
            codec => {
                let compressed = compress(codec, &self.buf[HEADER_LEN..])?;
                let mut out = Vec::with_capacity(HEADER_LEN + compressed.len());
                out.resize(HEADER_LEN, 0);
                out.extend_from_slice(&compressed);
                out
            }
        };
        let total = out.len();
        let batch_length = i32::try_from(total - LOG_OVERHEAD)
            .map_err(|_| RecordsError::Build("batch larger than i32::MAX"))?;
        let base_ts = self.base_timestamp.unwrap_or(-1);
        let max_ts = self
            .max_timestamp_override
            .or(self.max_timestamp)
            .unwrap_or(base_ts);
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= crate::batch::TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= crate::batch::TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= crate::batch::CONTROL_BIT;
        }

        out[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&self.base_offset.to_be_bytes());
        out[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        out[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[MAGIC_OFFSET] = MAGIC as u8;
        out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        out[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&last_delta.to_be_bytes());
        out[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&base_ts.to_be_bytes());
        out[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_ts.to_be_bytes());
        out[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&self.producer_id.to_be_bytes());
        out[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&self.base_sequence.to_be_bytes());
        out[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&self.count.to_be_bytes());
        let crc = compute_crc(&out);
        out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}
