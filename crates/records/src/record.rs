//! Records inside a batch: the decompressed record section and an iterator
//! over its records, borrowing keys, values and headers without copying.
//!
//! Record layout (all varints zig-zag; see docs/FORMAT.md):
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused, 0
//! timestampDelta  varlong  relative to the batch's baseTimestamp
//! offsetDelta     varint   relative to the batch's baseOffset
//! keyLength       varint   -1 = null key
//! key             bytes
//! valueLength     varint   -1 = null value (a tombstone)
//! value           bytes
//! headerCount     varint
//! headers         headerKeyLength varint, headerKey bytes (UTF-8),
//!                 headerValueLength varint (-1 = null), headerValue bytes
//! ```

use std::borrow::Cow;

use crate::batch::{Batch, TimestampType};
use crate::compression::{decompress, Compression};
use crate::error::{RecordsError, Result};
use crate::varint::{read_varint, read_varlong, VarintError};

/// The record section of one batch, decompressed if it was compressed.
#[derive(Debug, Clone)]
pub struct RecordSet<'a> {
    data: Cow<'a, [u8]>,
    count: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
}

impl<'a> RecordSet<'a> {
    pub(crate) fn new(batch: Batch<'a>, max_decompressed: usize) -> Result<Self> {
        let count = usize::try_from(batch.record_count())
            .map_err(|_| RecordsError::InvalidHeader("negative record count"))?;
        let data = match batch.compression()? {
            Compression::None => Cow::Borrowed(batch.records_bytes()),
            codec => Cow::Owned(decompress(codec, batch.records_bytes(), max_decompressed)?),
        };
        let log_append_time = match batch.timestamp_type() {
            TimestampType::LogAppendTime => Some(batch.max_timestamp()),
            TimestampType::CreateTime => None,
        };
        Ok(RecordSet {
            data,
            count,
            base_offset: batch.base_offset(),
            base_timestamp: batch.base_timestamp(),
            log_append_time,
        })
    }

    /// Number of records the batch header announces.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the batch holds no records (possible after compaction).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The uncompressed record bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Iterates the records. Yields an error (and stops) at the first
    /// malformed record, and if the bytes and the announced count disagree.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            rest: &self.data,
            remaining: self.count,
            index: 0,
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            log_append_time: self.log_append_time,
            failed: false,
        }
    }
}

/// One record, borrowing from its [`RecordSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute offset (batch baseOffset + offsetDelta).
    pub offset: i64,
    /// Absolute timestamp (the append time for LogAppendTime batches).
    pub timestamp: i64,
    /// offsetDelta as stored.
    pub offset_delta: i32,
    /// timestampDelta as stored.
    pub timestamp_delta: i64,
    /// Record attributes (unused by Kafka, kept verbatim).
    pub attributes: i8,
    /// The key; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` for a null value (a tombstone on compacted topics).
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: usize,
}

impl<'a> Record<'a> {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// Iterates the headers in order.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.headers,
            remaining: self.header_count,
        }
    }

    /// The headers as owned pairs (keys made UTF-8, lossily), as consumers
    /// hand them out.
    pub fn owned_headers(&self) -> Vec<(String, Option<Vec<u8>>)> {
        self.headers()
            .map(|h| {
                (
                    String::from_utf8_lossy(h.key).into_owned(),
                    h.value.map(<[u8]>::to_vec),
                )
            })
            .collect()
    }

    /// A null value: a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header key (UTF-8 by convention; not enforced).
    pub key: &'a [u8],
    /// Header value; `None` for null.
    pub value: Option<&'a [u8]>,
}

/// Iterator over a record's headers (already validated when the record was read).
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let mut cursor = Cursor {
            buf: self.rest,
            index: 0,
        };
        let header = parse_header(&mut cursor).ok()?;
        self.rest = cursor.buf;
        self.remaining -= 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Iterator over the records of a [`RecordSet`].
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    remaining: usize,
    index: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(RecordsError::MalformedRecord {
                index: self.index,
                reason: "bytes left after the announced record count",
            }));
        }
        let mut cursor = Cursor {
            buf: self.rest,
            index: self.index,
        };
        match parse_record(&mut cursor) {
            Ok(mut record) => {
                self.rest = cursor.buf;
                self.remaining -= 1;
                self.index += 1;
                record.offset = self.base_offset + i64::from(record.offset_delta);
                record.timestamp = self
                    .log_append_time
                    .unwrap_or_else(|| self.base_timestamp.wrapping_add(record.timestamp_delta));
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    index: usize,
}

impl<'a> Cursor<'a> {
    fn fail(&self, reason: &'static str) -> RecordsError {
        RecordsError::MalformedRecord {
            index: self.index,
            reason,
        }
    }

    fn varint(&mut self, what: &'static str) -> Result<i32> {
        match read_varint(self.buf) {
            Ok((v, n)) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            Err(VarintError::Truncated) | Err(VarintError::Overlong) => Err(self.fail(what)),
        }
    }

    fn varlong(&mut self, what: &'static str) -> Result<i64> {
        match read_varlong(self.buf) {
            Ok((v, n)) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            Err(_) => Err(self.fail(what)),
        }
    }

    fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < len {
            return Err(self.fail(what));
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// A length-prefixed byte string where -1 means null.
    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>> {
        let len = self.varint(what)?;
        match len {
            -1 => Ok(None),
            l if l < -1 => Err(self.fail(what)),
            l => self.bytes(l as usize, what).map(Some),
        }
    }
}

fn parse_header<'a>(c: &mut Cursor<'a>) -> Result<Header<'a>> {
    let key_len = c.varint("bad header key length")?;
    if key_len < 0 {
        return Err(c.fail("null or negative header key"));
    }
    let key = c.bytes(key_len as usize, "header key overruns the record")?;
    let value = c.nullable_bytes("header value overruns the record")?;
    Ok(Header { key, value })
}

fn parse_record<'a>(c: &mut Cursor<'a>) -> Result<Record<'a>> {
    let len = c.varint("bad record length")?;
    if len < 6 {
        return Err(c.fail("record length too small"));
    }
    let body = c.bytes(len as usize, "record overruns the batch")?;
    let mut r = Cursor {
        buf: body,
        index: c.index,
    };
    let attributes = r.bytes(1, "missing attributes")?[0] as i8;
    let timestamp_delta = r.varlong("bad timestamp delta")?;
    let offset_delta = r.varint("bad offset delta")?;
    if offset_delta < 0 {
        return Err(r.fail("negative offset delta"));
    }
    let key = r.nullable_bytes("key overruns the record")?;
    let value = r.nullable_bytes("value overruns the record")?;
    let header_count = r.varint("bad header count")?;
    if header_count < 0 {
        return Err(r.fail("negative header count"));
    }
    let headers = r.buf;
    for _ in 0..header_count {
        parse_header(&mut r)?;
    }
    if !r.buf.is_empty() {
        return Err(r.fail("bytes left inside the record after its headers"));
    }
    Ok(Record {
        offset: 0,
        timestamp: 0,
        offset_delta,
        timestamp_delta,
        attributes,
        key,
        value,
        headers,
        header_count: header_count as usize,
    })
}
