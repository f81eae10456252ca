//! Fetch responses whose records stay in the segment files.
//!
//! kafka_protocol's encoder wants every partition's records as `Bytes` in
//! memory and copies them into one buffer: a fetch of 8 partitions of 1 MiB
//! was read from the files (pread), copied into the response buffer and
//! copied again into the socket, three passes over every byte in user
//! space. This encoder writes the same bytes as a list of [`Chunk`]s: the
//! encoded fields in memory, and each partition's records as a
//! [`FileRange`] of its segment file, which the connection writer sends
//! with `sendfile(2)` on a plaintext socket (the kernel moves page-cache
//! pages to the socket; no user-space copy) or copies on a transport that
//! cannot (TLS, later: [`Chunk::File`] is read into memory there, see
//! [`ResponseFrame::to_bytes`]).
//!
//! Why our own encoder rather than patching kafka_protocol's output: the
//! records sit mid-partition, between fields and tagged fields, behind a
//! length whose encoding depends on the version (INT32 or an unsigned
//! varint of length + 1); a patch would have to find that spot in encoded
//! bytes. The encoder is short, covers exactly the versions served (4 to
//! 12, see [`crate::dispatch::SUPPORTED`]; others are refused) and a test
//! proves it byte-identical to kafka_protocol's over every version and
//! randomized responses (`fetch_response::tests`). The small nested
//! structures (aborted transactions, the tagged diverging epoch, current
//! leader and snapshot id) are still encoded by kafka_protocol.
//!
//! Which partitions are file-backed is given by a [`FetchFiles`] map keyed
//! by (topic, partition), not by position, so a handler may drop or reorder
//! partitions (fetch sessions) after reading; the handler answers each
//! partition once (a partition a request names twice is read once, from
//! its last position, as Kafka does). A file-backed partition's `records`
//! field in the response is ignored.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use pubsub_broker::FileRange;

use crate::error::ServerError;

/// The Fetch versions this encoder writes.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// First flexible (compact, tagged) version of Fetch.
const FLEXIBLE: i16 = 12;

/// In-memory records at least this long are sent as their own chunk
/// rather than copied into the encoded fields.
const INLINE_MAX: usize = 4096;

/// The records of file-backed partitions, by (topic, partition).
pub type FetchFiles = HashMap<(TopicName, i32), FileRange>;

/// A piece of a response frame.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Bytes in memory.
    Bytes(Bytes),
    /// Bytes of a segment file.
    File(FileRange),
}

impl Chunk {
    /// Bytes in the chunk.
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::File(r) => r.len(),
        }
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One response frame, size prefix included, as chunks to send in order.
#[derive(Debug, Clone, Default)]
pub struct ResponseFrame {
    chunks: Vec<Chunk>,
}

impl ResponseFrame {
    /// A frame wholly in memory.
    pub fn from_bytes(bytes: Bytes) -> Self {
        ResponseFrame {
            chunks: vec![Chunk::Bytes(bytes)],
        }
    }

    /// A frame of these chunks, in order (the caller makes them a frame:
    /// size prefix first).
    pub fn from_chunks(chunks: Vec<Chunk>) -> Self {
        ResponseFrame { chunks }
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Consumes the frame into its chunks.
    pub fn into_chunks(self) -> Vec<Chunk> {
        self.chunks
    }

    /// Bytes in the frame, size prefix included.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// Whether the frame is empty (never, for an encoded response).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in memory: file chunks are read (the copying path).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for c in &self.chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(r) => r.read_into(&mut out)?,
            }
        }
        Ok(out)
    }
}

/// Builds the chunk list: encoded fields accumulate in `buf` until a file
/// range or a long in-memory records field cuts them.
struct Builder {
    chunks: Vec<Chunk>,
    buf: BytesMut,
}

impl Builder {
    fn cut(&mut self, chunk: Chunk) {
        if !self.buf.is_empty() {
            self.chunks.push(Chunk::Bytes(self.buf.split().freeze()));
        }
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
    }

    fn finish(mut self) -> Vec<Chunk> {
        self.cut(Chunk::Bytes(Bytes::new()));
        self.chunks
    }
}

fn enc(e: impl std::fmt::Display) -> ServerError {
    ServerError::Encode(e.to_string())
}

/// Writes an array or map length: INT32, or an unsigned varint of n + 1
/// (0 for null) in flexible versions.
fn put_len(buf: &mut BytesMut, version: i16, len: Option<usize>) -> Result<(), ServerError> {
    if version >= FLEXIBLE {
        let v = match len {
            None => 0,
            Some(n) => u32::try_from(n + 1).map_err(enc)?,
        };
        put_uvarint(buf, v);
    } else {
        let v = match len {
            None => -1,
            Some(n) => i32::try_from(n).map_err(enc)?,
        };
        buf.put_i32(v);
    }
    Ok(())
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_string(buf: &mut BytesMut, version: i16, s: &StrBytes) -> Result<(), ServerError> {
    let bytes = s.as_bytes();
    if version >= FLEXIBLE {
        put_len(buf, version, Some(bytes.len()))?;
    } else {
        buf.put_i16(i16::try_from(bytes.len()).map_err(enc)?);
    }
    buf.put_slice(bytes);
    Ok(())
}

/// A struct kafka_protocol encodes, as a tagged field: tag, size, body.
fn put_tagged<T: Encodable>(
    buf: &mut BytesMut,
    version: i16,
    tag: u32,
    value: &T,
) -> Result<(), ServerError> {
    put_uvarint(buf, tag);
    let size = value.compute_size(version).map_err(enc)?;
    put_uvarint(buf, u32::try_from(size).map_err(enc)?);
    value.encode(buf, version).map_err(enc)
}

/// Tagged fields kafka_protocol keeps but does not know, after the known
/// ones, from tag `from` on (ordered by tag; as kafka_protocol, tags below
/// `from` are counted but not written: never set here).
fn put_unknown(
    buf: &mut BytesMut,
    from: i32,
    unknown: &std::collections::BTreeMap<i32, Bytes>,
) -> Result<(), ServerError> {
    for (tag, value) in unknown.range(from..) {
        put_uvarint(buf, u32::try_from(*tag).map_err(enc)?);
        put_uvarint(buf, u32::try_from(value.len()).map_err(enc)?);
        buf.put_slice(value);
    }
    Ok(())
}

/// Encodes a whole Fetch response frame (size, header, body) as chunks,
/// with the records of the partitions in `files` left in their files.
/// Byte for byte what [`crate::dispatch::encode_response`] writes for the
/// same response with those records in memory.
pub fn encode(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponse,
    files: &FetchFiles,
) -> Result<ResponseFrame, ServerError> {
    if !VERSIONS.contains(&version) {
        return Err(enc(format!("Fetch v{version} is not encoded here")));
    }
    let mut b = Builder {
        chunks: Vec::new(),
        buf: BytesMut::with_capacity(256),
    };
    // The size, patched once the length is known.
    b.buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut b.buf, ApiKey::Fetch.response_header_version(version))
        .map_err(enc)?;
    b.buf.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        b.buf.put_i16(resp.error_code);
        b.buf.put_i32(resp.session_id);
    } else if resp.session_id != 0 {
        return Err(enc("a session id needs Fetch v7"));
    }
    put_len(&mut b.buf, version, Some(resp.responses.len()))?;
    for topic in &resp.responses {
        put_string(&mut b.buf, version, &topic.topic.0)?;
        put_len(&mut b.buf, version, Some(topic.partitions.len()))?;
        for p in &topic.partitions {
            let file = files.get(&(topic.topic.clone(), p.partition_index));
            partition(&mut b, version, p, file)?;
        }
        if version >= FLEXIBLE {
            put_uvarint(&mut b.buf, len_u32(topic.unknown_tagged_fields.len())?);
            put_unknown(&mut b.buf, 0, &topic.unknown_tagged_fields)?;
        }
    }
    if version >= FLEXIBLE {
        // node_endpoints is a v16+ field: never written here.
        put_uvarint(&mut b.buf, len_u32(resp.unknown_tagged_fields.len())?);
        put_unknown(&mut b.buf, 1, &resp.unknown_tagged_fields)?;
    }
    let mut chunks = b.finish();
    let total: u64 = chunks.iter().map(Chunk::len).sum();
    let size = i32::try_from(total - 4).map_err(|_| enc("response larger than 2 GiB"))?;
    // The first chunk always holds the size and the header.
    match chunks.first_mut() {
        Some(Chunk::Bytes(first)) if first.len() >= 4 => {
            let mut patched = BytesMut::from(&first[..]);
            patched[..4].copy_from_slice(&size.to_be_bytes());
            *first = patched.freeze();
        }
        _ => return Err(enc("response frame without a header")),
    }
    Ok(ResponseFrame { chunks })
}

fn len_u32(n: usize) -> Result<u32, ServerError> {
    u32::try_from(n).map_err(enc)
}

fn partition(
    b: &mut Builder,
    version: i16,
    p: &PartitionData,
    file: Option<&FileRange>,
) -> Result<(), ServerError> {
    let buf = &mut b.buf;
    buf.put_i32(p.partition_index);
    buf.put_i16(p.error_code);
    buf.put_i64(p.high_watermark);
    buf.put_i64(p.last_stable_offset);
    if version >= 5 {
        buf.put_i64(p.log_start_offset);
    }
    match &p.aborted_transactions {
        None => put_len(buf, version, None)?,
        Some(list) => {
            put_len(buf, version, Some(list.len()))?;
            for t in list {
                t.encode(buf, version).map_err(enc)?;
            }
        }
    }
    if version >= 11 {
        buf.put_i32(p.preferred_read_replica.0);
    } else if p.preferred_read_replica.0 != -1 {
        return Err(enc("a preferred read replica needs Fetch v11"));
    }
    match (file, &p.records) {
        (Some(range), _) => {
            let len = usize::try_from(range.len()).map_err(enc)?;
            put_len(buf, version, Some(len))?;
            b.cut(Chunk::File(range.clone()));
        }
        (None, None) => put_len(buf, version, None)?,
        (None, Some(records)) => {
            put_len(buf, version, Some(records.len()))?;
            if records.len() >= INLINE_MAX {
                b.cut(Chunk::Bytes(records.clone()));
            } else {
                buf.put_slice(records);
            }
        }
    }
    if version >= FLEXIBLE {
        let buf = &mut b.buf;
        let diverging = p.diverging_epoch != Default::default();
        let leader = p.current_leader != Default::default();
        let snapshot = p.snapshot_id != Default::default();
        let known = usize::from(diverging) + usize::from(leader) + usize::from(snapshot);
        put_uvarint(buf, len_u32(known + p.unknown_tagged_fields.len())?);
        if diverging {
            put_tagged(buf, version, 0, &p.diverging_epoch)?;
        }
        if leader {
            put_tagged(buf, version, 1, &p.current_leader)?;
        }
        if snapshot {
            put_tagged(buf, version, 2, &p.snapshot_id)?;
        }
        put_unknown(buf, 3, &p.unknown_tagged_fields)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
