//! Reading a segment: finding the batch that holds an offset or a
//! timestamp through the indexes, reading whole batches, and walking batch
//! headers without reading whole batches.

use std::path::Path;

use pubsub_records::{Batch, BatchHeader, HEADER_LEN};

use crate::error::{Result, StorageError};
use crate::fs::FileHandle;
use crate::segment::Segment;

impl Segment {
    /// File position from which to scan for `offset` (from the offset index).
    pub fn scan_start(&self, offset: u64) -> Result<u64> {
        let rel = offset
            .saturating_sub(self.base_offset)
            .min(u64::from(u32::MAX)) as u32;
        let index = self.index()?;
        let index = index.read();
        Ok(index
            .offsets
            .floor(rel)
            .map_or(0, |e| u64::from(e.position)))
    }

    /// [`Segment::scan_start`] for `offset`, and where the batch of the
    /// next index entry starts (if there is one): the batch holding `offset`
    /// starts in between, or at that position. No next position when the
    /// floor entry's batch ends at `offset` (it holds it).
    fn index_around(&self, offset: u64) -> Result<(u64, Option<u64>)> {
        let rel = offset
            .saturating_sub(self.base_offset)
            .min(u64::from(u32::MAX)) as u32;
        let index = self.index()?;
        let index = index.read();
        let (floor, after) = index.offsets.around(rel);
        let exact = floor.is_some_and(|e| e.relative_offset == rel);
        Ok((
            floor.map_or(0, |e| u64::from(e.position)),
            after.filter(|_| !exact).map(|e| u64::from(e.position)),
        ))
    }

    /// The batch holding `offset`, or the first batch after it (offsets
    /// removed by compaction leave gaps); `None` if the segment holds nothing
    /// at or after `offset`.
    ///
    /// Index entries name a batch's last offset, so the floor entry of the
    /// offset after a batch (where a consumer reading in order asks next)
    /// is that batch, and the walk from it needs a second read when the
    /// batch is longer than one read of the walk. The entry after the
    /// floor is then tried first: if its batch holds `offset` it is the
    /// answer (offsets only grow along the file), in one read; if not (an
    /// unindexed batch lies between, or a compaction gap), the walk from
    /// the floor follows, one read spent for nothing.
    pub fn find_batch(&self, offset: u64) -> Result<Option<(u64, BatchHeader)>> {
        let size = self.size();
        let (start, after) = self.index_around(offset)?;
        let file = self.file()?;
        let path = self.path();
        let far = |at: u64| at.saturating_sub(start) > (WALK_BUF - HEADER_LEN) as u64;
        if let Some(at) = after.filter(|&at| far(at) && at < size) {
            let mut walker = HeaderWalker::new(file.as_ref(), path, at, size);
            if let Some((pos, header)) = walker.next()? {
                if header.base_offset.max(0) as u64 <= offset
                    && header.last_offset() as u64 >= offset
                {
                    return Ok(Some((pos, header)));
                }
            }
        }
        let mut walker = HeaderWalker::new(file.as_ref(), path, start, size);
        while let Some((pos, header)) = walker.next()? {
            if header.last_offset() as u64 >= offset {
                return Ok(Some((pos, header)));
            }
        }
        Ok(None)
    }

    /// Reads whole batches from `pos` (where a batch of `first_len` bytes
    /// starts) into `out` (cleared first): the first batch always, then as
    /// many more as fit in `max_bytes`. Reuses `out`'s allocation.
    pub fn read_batches_into(
        &self,
        pos: u64,
        first_len: usize,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let size = self.size();
        let available = size.saturating_sub(pos);
        let want = (max_bytes as u64).max(first_len as u64).min(available) as usize;
        // Resizing (not clearing) keeps the bytes already there, so a reused
        // buffer is not zeroed again on every read.
        out.resize(want, 0);
        let file = self.file()?;
        let path = self.path();
        file.read_exact_at(out, pos)
            .map_err(|e| StorageError::io("read", path, e))?;
        // Keep whole batches only.
        let mut end = 0usize;
        while end < out.len() {
            match pubsub_records::batch_len(&out[end..]) {
                Ok(len) if end + len <= out.len() => end += len,
                Ok(_) => break,
                Err(pubsub_records::RecordsError::Truncated { .. }) => break,
                Err(e) => {
                    return Err(StorageError::Corrupt {
                        path: path.to_path_buf(),
                        position: pos + end as u64,
                        reason: e.to_string(),
                    })
                }
            }
        }
        out.truncate(end);
        Ok(())
    }

    /// First record at or after `timestamp`, and at or after `min_offset`
    /// (the log start offset), in this segment: its offset, timestamp and
    /// its batch's partitionLeaderEpoch.
    pub fn find_timestamp(
        &self,
        timestamp: i64,
        min_offset: u64,
        max_decompressed: usize,
    ) -> Result<Option<(u64, i64, i32)>> {
        let start = {
            let index = self.index()?;
            let index = index.read();
            match index.times.floor_before(timestamp) {
                None => 0,
                Some(e) => {
                    let after = u64::from(e.relative_offset) + 1;
                    let rel = after.min(u64::from(u32::MAX)) as u32;
                    index
                        .offsets
                        .floor(rel)
                        .map_or(0, |o| u64::from(o.position))
                }
            }
        };
        let size = self.size();
        let file = self.file()?;
        let path = self.path();
        let mut walker = HeaderWalker::new(file.as_ref(), path, start, size);
        while let Some((pos, header)) = walker.next()? {
            if header.max_timestamp < timestamp || (header.last_offset() as u64) < min_offset {
                continue;
            }
            let found = self.first_record(pos, header.len, max_decompressed, |offset, ts| {
                ts >= timestamp && offset >= min_offset
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The first record carrying exactly `timestamp` in the batch holding
    /// `offset` (the batch where the segment's largest timestamp was seen):
    /// its offset and its batch's partitionLeaderEpoch. A LogAppendTime batch
    /// gives every record its maxTimestamp, so its first offset.
    pub fn first_with_timestamp(
        &self,
        offset: u64,
        timestamp: i64,
        max_decompressed: usize,
    ) -> Result<Option<(u64, i32)>> {
        let Some((pos, header)) = self.find_batch(offset)? else {
            return Ok(None);
        };
        let found =
            self.first_record(pos, header.len, max_decompressed, |_, ts| ts == timestamp)?;
        Ok(found.map(|(offset, _, epoch)| (offset, epoch)))
    }

    /// The first record of the batch of `len` bytes at `pos` that `wanted`
    /// (offset, timestamp) accepts: its offset, timestamp and the batch's
    /// partitionLeaderEpoch.
    fn first_record(
        &self,
        pos: u64,
        len: usize,
        max_decompressed: usize,
        wanted: impl Fn(u64, i64) -> bool,
    ) -> Result<Option<(u64, i64, i32)>> {
        let file = self.file()?;
        let path = self.path();
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, pos)
            .map_err(|e| StorageError::io("read", path, e))?;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.to_path_buf(),
            position: pos,
            reason,
        };
        let batch = Batch::parse(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let records = batch
            .records(max_decompressed)
            .map_err(|e| corrupt(e.to_string()))?;
        for record in records.iter() {
            let record = record.map_err(|e| corrupt(e.to_string()))?;
            if wanted(record.offset as u64, record.timestamp) {
                return Ok(Some((
                    record.offset as u64,
                    record.timestamp,
                    batch.partition_leader_epoch(),
                )));
            }
        }
        Ok(None)
    }
}

/// Walks batch headers of a segment without reading whole batches.
#[derive(Debug)]
pub(crate) struct HeaderWalker<'a> {
    file: &'a dyn FileHandle,
    path: &'a Path,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

/// Bytes read at a time while walking headers: index entries are about
/// `index_interval_bytes` (4 KiB) apart.
const WALK_BUF: usize = 4 << 10;

impl<'a> HeaderWalker<'a> {
    pub fn new(file: &'a dyn FileHandle, path: &'a Path, from: u64, end: u64) -> Self {
        HeaderWalker {
            file,
            path,
            pos: from,
            end,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Where the next header starts.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next header and its position; `None` at the end. A header that
    /// does not parse, or a batch running past the end, is `Corrupt`.
    pub fn next(&mut self) -> Result<Option<(u64, BatchHeader)>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let pos = self.pos;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.path.to_path_buf(),
            position: pos,
            reason,
        };
        let left = self.end - pos;
        if left < HEADER_LEN as u64 {
            return Err(corrupt(format!("{left} trailing bytes are not a batch")));
        }
        let buffered = pos >= self.buf_start
            && pos + HEADER_LEN as u64 <= self.buf_start + self.buf.len() as u64;
        if !buffered {
            let n = (WALK_BUF as u64).min(left) as usize;
            self.buf.resize(n, 0);
            let read = if crate::fs::page_cache_only() {
                read_exact_cached(self.file, &mut self.buf, pos)
            } else {
                self.file.read_exact_at(&mut self.buf, pos)
            };
            read.map_err(|e| StorageError::io("read", self.path, e))?;
            self.buf_start = pos;
        }
        let at = (pos - self.buf_start) as usize;
        let header = BatchHeader::parse(&self.buf[at..]).map_err(|e| corrupt(e.to_string()))?;
        if header.len as u64 > left {
            return Err(corrupt(format!(
                "batch of {} bytes runs past the end of the data",
                header.len
            )));
        }
        self.pos += header.len as u64;
        Ok(Some((pos, header)))
    }
}

/// Fills `buf` from `pos` with [`FileHandle::read_at_cached`]: from the page
/// cache, or `WouldBlock`.
fn read_exact_cached(
    file: &dyn FileHandle,
    mut buf: &mut [u8],
    mut pos: u64,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.read_at_cached(buf, pos) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where a run of whole batches ends, found without reading the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchRun {
    /// Exclusive end position of the last batch in the run.
    pub end: u64,
    /// The offset after the run: the last batch's last offset + 1, or the
    /// base offset of the first batch left out when the walk read it (the
    /// two differ only where compaction left a gap between them).
    pub next_offset: u64,
}

impl Segment {
    /// The whole batches from `pos` (where the batch `first` starts) that fit
    /// in `max_bytes`, the first always (even if larger). Found from the
    /// offset index (the last indexed batch starting below the budget's
    /// end) and a walk of batch headers from there: a read of about one
    /// index interval, not of the batches.
    pub(crate) fn batch_run(
        &self,
        pos: u64,
        first: &BatchHeader,
        max_bytes: usize,
    ) -> Result<BatchRun> {
        let size = self.size();
        let first_end = pos + first.len as u64;
        let mut run = BatchRun {
            end: first_end,
            next_offset: (first.last_offset() as u64).saturating_add(1),
        };
        let limit = pos.saturating_add(max_bytes as u64).min(size);
        if first_end >= limit {
            return Ok(run);
        }
        // Every batch before an indexed position below `limit` ends at or
        // before it, so fits: the walk starts there.
        let from = {
            let index = self.index()?;
            let index = index.read();
            index
                .offsets
                .last_where(|e| u64::from(e.position) < limit)
                .map_or(first_end, |e| u64::from(e.position).max(first_end))
        };
        run.end = from;
        let file = self.file()?;
        let mut walker = HeaderWalker::new(file.as_ref(), self.path(), from, size);
        // A batch starting at or past `limit` cannot fit (a batch is never
        // empty): the walk ends there without reading its header, which
        // for batches larger than the walk's read is a `pread` saved per
        // fetch (the usual case: the index's last entry below `limit` is
        // the last batch that fits).
        while walker.position() < limit {
            let Some((at, header)) = walker.next()? else {
                break;
            };
            let end = at + header.len as u64;
            if end > limit {
                run.next_offset = header.base_offset.max(0) as u64;
                break;
            }
            run.end = end;
            run.next_offset = (header.last_offset() as u64).saturating_add(1);
        }
        Ok(run)
    }
}
