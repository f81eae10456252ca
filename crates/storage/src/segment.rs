//! One segment: a `.log` file of batches and its two indexes.
//!
//! Sealed segments open lazily: their file is opened and their indexes mapped
//! on first use, so a log of thousands of segments opens in milliseconds and
//! holds no descriptors or mappings for segments nobody reads. When indexes
//! are first loaded they are checked against the log (sizes, ordering, and a
//! replay of the indexing rule over the unindexed tail) and rebuilt if wrong.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use parking_lot::RwLock;

use pubsub_records::{Batch, BatchHeader, HEADER_LEN};
use tracing::warn;

use crate::error::{Result, StorageError};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::index::{IndexSink, IndexTracker, OffsetIndex, SegmentIndex, TimeIndex};
use crate::layout::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::scan::{scan, ScanSummary};

/// What every segment of one log shares.
#[derive(Debug)]
pub(crate) struct SegmentContext {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub max_index_bytes: u64,
    pub index_interval: u64,
}

impl SegmentContext {
    pub fn path(&self, base: u64, suffix: &str) -> PathBuf {
        segment_path(&self.dir, base, suffix)
    }
}

/// Scans the first `len` bytes of the segment at `path` (validating every
/// batch, see `scan`) and feeds the indexing rule's entries to `sink`.
pub(crate) fn scan_and_index(
    file: &dyn FileHandle,
    path: &Path,
    len: u64,
    base: u64,
    interval: u64,
    sink: &mut impl IndexSink,
) -> Result<(ScanSummary, IndexTracker)> {
    let mut tracker = IndexTracker::new(base);
    let mut failure = None;
    let summary = scan(file, len, base, |b| {
        if failure.is_none() {
            failure = tracker
                .on_batch(
                    sink,
                    base,
                    b.position,
                    b.batch.last_offset() as u64,
                    b.batch.max_timestamp(),
                    b.batch.len() as u64,
                    interval,
                )
                .err();
        }
    })
    .map_err(|e| StorageError::io("read", path, e))?;
    match failure {
        Some(e) => Err(e),
        None => Ok((summary, tracker)),
    }
}

/// Marks "no end offset yet" (the active segment).
const OPEN_END: u64 = u64::MAX;

/// One segment of a log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: u64,
    /// The `.log` file's path (kept: error paths need it, hot paths must
    /// not format it).
    path: PathBuf,
    ctx: Arc<SegmentContext>,
    file: OnceCell<Arc<dyn FileHandle>>,
    index: OnceCell<RwLock<SegmentIndex>>,
    /// Bytes readers may see: only whole, written batches.
    size: AtomicU64,
    /// Exclusive end offset once sealed (the next segment's base).
    end_offset: AtomicU64,
    /// Largest batch maxTimestamp and the last offset of its batch.
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicU64,
}

/// What a scan of a segment found, with its rebuilt indexes.
#[derive(Debug)]
pub(crate) struct Rescan {
    pub file: Arc<dyn FileHandle>,
    pub index: SegmentIndex,
    pub summary: ScanSummary,
    pub tracker: IndexTracker,
    pub file_len: u64,
}

/// What replaying the indexing rule over the unindexed tail found.
#[derive(Debug)]
struct TailReplay {
    problem: Option<String>,
    bytes_since_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: u64,
}

impl Segment {
    fn new(
        ctx: Arc<SegmentContext>,
        base_offset: u64,
        file: OnceCell<Arc<dyn FileHandle>>,
        index: OnceCell<RwLock<SegmentIndex>>,
        size: u64,
        end_offset: u64,
    ) -> Self {
        Segment {
            base_offset,
            path: ctx.path(base_offset, LOG_SUFFIX),
            ctx,
            file,
            index,
            size: AtomicU64::new(size),
            end_offset: AtomicU64::new(end_offset),
            max_timestamp: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicU64::new(base_offset),
        }
    }

    /// A brand-new, empty active segment.
    pub fn create(ctx: &Arc<SegmentContext>, base: u64) -> Result<Segment> {
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::Truncate)
            .map_err(|e| StorageError::io("create", &path, e))?;
        let offsets = OffsetIndex::open(
            ctx.fs.as_ref(),
            &ctx.path(base, INDEX_SUFFIX),
            ctx.max_index_bytes,
            true,
        )?;
        let times = TimeIndex::open(
            ctx.fs.as_ref(),
            &ctx.path(base, TIME_INDEX_SUFFIX),
            ctx.max_index_bytes,
            true,
        )?;
        Ok(Segment::new(
            Arc::clone(ctx),
            base,
            OnceCell::with_value(file),
            OnceCell::with_value(RwLock::new(SegmentIndex { offsets, times })),
            0,
            OPEN_END,
        ))
    }

    /// A sealed segment, opened lazily.
    pub fn sealed(ctx: &Arc<SegmentContext>, base: u64, size: u64, end_offset: u64) -> Segment {
        Segment::new(
            Arc::clone(ctx),
            base,
            OnceCell::new(),
            OnceCell::new(),
            size,
            end_offset,
        )
    }

    /// A segment whose file and indexes are already open (recovery, compaction).
    pub fn from_parts(
        ctx: &Arc<SegmentContext>,
        base: u64,
        file: Arc<dyn FileHandle>,
        index: SegmentIndex,
        size: u64,
        end_offset: Option<u64>,
        tracker: &IndexTracker,
    ) -> Segment {
        let seg = Segment::new(
            Arc::clone(ctx),
            base,
            OnceCell::with_value(file),
            OnceCell::with_value(RwLock::new(index)),
            size,
            end_offset.unwrap_or(OPEN_END),
        );
        seg.set_max_timestamp(tracker.max_timestamp, tracker.offset_of_max_timestamp);
        seg
    }

    /// Opens the last segment of a cleanly closed log for appending. Returns
    /// the segment, the indexing state to continue from, and why the indexes
    /// had to be rebuilt, if they had to.
    pub fn open_active(
        ctx: &Arc<SegmentContext>,
        base: u64,
        size: u64,
    ) -> Result<(Segment, IndexTracker, Option<String>)> {
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::ReadWrite)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let seg = Segment::new(
            Arc::clone(ctx),
            base,
            OnceCell::with_value(file),
            OnceCell::new(),
            size,
            OPEN_END,
        );
        let mut index = seg.open_index_files()?;
        let file = seg.file()?;
        let mut problem = index
            .offsets
            .inconsistency(size, u64::from(u32::MAX) + 1)
            .or_else(|| index.times.inconsistency(u64::from(u32::MAX) + 1));
        let mut tracker = IndexTracker::new(base);
        if problem.is_none() {
            let tail = seg.replay_tail(&index, file.as_ref(), size, false)?;
            problem = tail.problem;
            let (ts, off) = match index.times.last() {
                Some(e) => (e.timestamp, base + u64::from(e.relative_offset)),
                None => (-1, base),
            };
            tracker.bytes_since_entry = tail.bytes_since_entry;
            if tail.max_timestamp > ts {
                tracker.max_timestamp = tail.max_timestamp;
                tracker.offset_of_max_timestamp = tail.offset_of_max_timestamp;
            } else {
                tracker.max_timestamp = ts;
                tracker.offset_of_max_timestamp = off;
            }
        }
        if let Some(reason) = &problem {
            warn!(segment = %path.display(), %reason, "rebuilding the indexes of the active segment");
            tracker = seg.rebuild(&mut index, file.as_ref(), size, false)?;
        }
        seg.set_max_timestamp(tracker.max_timestamp, tracker.offset_of_max_timestamp);
        let _ = seg.index.set(RwLock::new(index));
        Ok((seg, tracker, problem))
    }

    /// Scans a segment's whole file, validating every batch and building
    /// fresh indexes for the valid prefix (recovery after an unclean stop).
    pub fn rescan(ctx: &Arc<SegmentContext>, base: u64) -> Result<Rescan> {
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::ReadWrite)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let file_len = file.len().map_err(|e| StorageError::io("stat", &path, e))?;
        let mut index = SegmentIndex {
            offsets: OffsetIndex::open(
                ctx.fs.as_ref(),
                &ctx.path(base, INDEX_SUFFIX),
                ctx.max_index_bytes,
                true,
            )?,
            times: TimeIndex::open(
                ctx.fs.as_ref(),
                &ctx.path(base, TIME_INDEX_SUFFIX),
                ctx.max_index_bytes,
                true,
            )?,
        };
        index.allow_for(file_len, ctx.index_interval);
        let (summary, tracker) = scan_and_index(
            file.as_ref(),
            &path,
            file_len,
            base,
            ctx.index_interval,
            &mut index,
        )?;
        Ok(Rescan {
            file,
            index,
            summary,
            tracker,
            file_len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes visible to readers.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Makes `size` bytes visible to readers (after they were written).
    pub fn publish(&self, size: u64) {
        self.size.store(size, Ordering::Release);
    }

    /// Exclusive end offset, if sealed.
    pub fn end_offset(&self) -> Option<u64> {
        match self.end_offset.load(Ordering::Acquire) {
            OPEN_END => None,
            end => Some(end),
        }
    }

    pub fn set_max_timestamp(&self, ts: i64, offset: u64) {
        self.offset_of_max_timestamp
            .store(offset, Ordering::Release);
        self.max_timestamp.store(ts, Ordering::Release);
    }

    /// Largest timestamp in the segment (-1 if none) and the last offset of
    /// its batch. Loads the indexes of a sealed segment.
    pub fn max_timestamp(&self) -> Result<(i64, u64)> {
        self.index()?;
        Ok((
            self.max_timestamp.load(Ordering::Acquire),
            self.offset_of_max_timestamp.load(Ordering::Acquire),
        ))
    }

    /// The segment's file, opened on first use.
    pub fn file(&self) -> Result<&Arc<dyn FileHandle>> {
        self.file.get_or_try_init(|| {
            let path = self.path();
            self.ctx
                .fs
                .open(path, OpenMode::ReadOnly)
                .map_err(|e| StorageError::io("open", path, e))
        })
    }

    /// The segment's indexes, loaded (and checked, and if need be rebuilt) on
    /// first use.
    pub fn index(&self) -> Result<&RwLock<SegmentIndex>> {
        self.index
            .get_or_try_init(|| self.load_sealed_index().map(RwLock::new))
    }

    fn open_index_files(&self) -> Result<SegmentIndex> {
        let c = &self.ctx;
        Ok(SegmentIndex {
            offsets: OffsetIndex::open(
                c.fs.as_ref(),
                &c.path(self.base_offset, INDEX_SUFFIX),
                c.max_index_bytes,
                false,
            )?,
            times: TimeIndex::open(
                c.fs.as_ref(),
                &c.path(self.base_offset, TIME_INDEX_SUFFIX),
                c.max_index_bytes,
                false,
            )?,
        })
    }

    fn load_sealed_index(&self) -> Result<SegmentIndex> {
        let size = self.size();
        let base = self.base_offset;
        let span = self
            .end_offset()
            .map_or(u64::from(u32::MAX) + 1, |end| end.saturating_sub(base));
        let mut index = self.open_index_files()?;
        let file = self.file()?;
        let mut problem = index
            .offsets
            .inconsistency(size, span)
            .or_else(|| index.times.inconsistency(span));
        if problem.is_none() {
            problem = self.replay_tail(&index, file.as_ref(), size, true)?.problem;
        }
        if let Some(reason) = problem {
            warn!(segment = %self.path().display(), %reason, "rebuilding the indexes of a sealed segment");
            self.rebuild(&mut index, file.as_ref(), size, true)?;
        }
        let (ts, off) = match index.times.last() {
            Some(e) => (e.timestamp, base + u64::from(e.relative_offset)),
            None => (-1, base),
        };
        self.set_max_timestamp(ts, off);
        Ok(index)
    }

    /// Replays the indexing rule from the last offset-index entry to the end
    /// of the data: no entry may be missing, and a sealed segment's time index
    /// must end with its largest timestamp.
    fn replay_tail(
        &self,
        index: &SegmentIndex,
        file: &dyn FileHandle,
        size: u64,
        sealed: bool,
    ) -> Result<TailReplay> {
        let base = self.base_offset;
        let last_entry = index.offsets.last();
        let start = last_entry.map_or(0, |e| u64::from(e.position));
        let mut replay = TailReplay {
            problem: None,
            bytes_since_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
        };
        let path = self.path();
        let mut walker = HeaderWalker::new(file, path, start, size);
        let mut first = last_entry;
        loop {
            let (pos, header) = match walker.next() {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(StorageError::Corrupt { reason, .. }) => {
                    replay.problem = Some(format!("log tail does not parse: {reason}"));
                    return Ok(replay);
                }
                Err(e) => return Err(e),
            };
            if let Some(entry) = first.take() {
                if header.last_offset() as u64 != base + u64::from(entry.relative_offset) {
                    replay.problem = Some(format!(
                        "last offset-index entry does not match the batch at position {pos}"
                    ));
                    return Ok(replay);
                }
            } else if replay.bytes_since_entry > self.ctx.index_interval {
                replay.problem = Some(format!(
                    "offset index lacks an entry for the batch at position {pos}"
                ));
                return Ok(replay);
            }
            replay.bytes_since_entry += header.len as u64;
            if header.max_timestamp > replay.max_timestamp {
                replay.max_timestamp = header.max_timestamp;
                replay.offset_of_max_timestamp = header.last_offset() as u64;
            }
        }
        if first.is_some() {
            replay.problem = Some("last offset-index entry points at no batch".into());
        } else if sealed
            && replay.max_timestamp >= 0
            && index.times.last().map_or(-1, |e| e.timestamp) < replay.max_timestamp
        {
            replay.problem = Some("time index lacks the segment's largest timestamp".into());
        }
        Ok(replay)
    }

    /// Rebuilds both indexes from the log, validating every batch. Invalid
    /// data here is corruption: the segment's data was complete when it was
    /// sealed or cleanly closed.
    fn rebuild(
        &self,
        index: &mut SegmentIndex,
        file: &dyn FileHandle,
        size: u64,
        sealed: bool,
    ) -> Result<IndexTracker> {
        let base = self.base_offset;
        index.clear();
        index.allow_for(size, self.ctx.index_interval);
        let path = self.path();
        let (summary, tracker) =
            scan_and_index(file, path, size, base, self.ctx.index_interval, index)?;
        if let Some(stop) = summary.stop {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                position: stop.position,
                reason: stop.reason,
            });
        }
        if sealed {
            tracker.on_seal(index, base)?;
            index.trim()?;
        }
        index.flush()?;
        Ok(tracker)
    }

    /// Seals the segment: final time-index entry, indexes trimmed to size.
    pub fn seal(&self, tracker: &IndexTracker, end_offset: u64) -> Result<()> {
        let mut index = self.index()?.write();
        tracker.on_seal(&mut *index, self.base_offset)?;
        index.trim()?;
        drop(index);
        self.end_offset.store(end_offset, Ordering::Release);
        Ok(())
    }

    /// fsyncs the log file and, if loaded, the indexes.
    pub fn sync(&self, with_index: bool) -> Result<()> {
        let path = self.path();
        self.file()?
            .sync_data()
            .map_err(|e| StorageError::io("fsync", path, e))?;
        if with_index {
            if let Some(index) = self.index.get() {
                index.read().flush()?;
            }
        }
        Ok(())
    }

    /// Deletes the segment's files: the log first, so a crash part-way leaves
    /// only orphan indexes, which open removes.
    pub fn delete_files(&self) -> Result<()> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = self.ctx.path(self.base_offset, suffix);
            match self.ctx.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("delete", &path, e)),
            }
        }
        Ok(())
    }

    /// File position from which to scan for `offset` (from the offset index).
    pub fn scan_start(&self, offset: u64) -> Result<u64> {
        let rel = offset
            .saturating_sub(self.base_offset)
            .min(u64::from(u32::MAX)) as u32;
        let index = self.index()?.read();
        Ok(index
            .offsets
            .floor(rel)
            .map_or(0, |e| u64::from(e.position)))
    }

    /// The batch holding `offset`, or the first batch after it (offsets
    /// removed by compaction leave gaps); `None` if the segment holds nothing
    /// at or after `offset`.
    pub fn find_batch(&self, offset: u64) -> Result<Option<(u64, BatchHeader)>> {
        let size = self.size();
        let start = self.scan_start(offset)?;
        let file = self.file()?;
        let path = self.path();
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

    /// First record at or after `timestamp` in this segment: its offset and
    /// timestamp.
    pub fn find_timestamp(
        &self,
        timestamp: i64,
        max_decompressed: usize,
    ) -> Result<Option<(u64, i64)>> {
        let start = {
            let index = self.index()?.read();
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
            if header.max_timestamp < timestamp {
                continue;
            }
            let mut bytes = vec![0u8; header.len];
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
                if record.timestamp >= timestamp {
                    return Ok(Some((record.offset as u64, record.timestamp)));
                }
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
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(|e| StorageError::io("read", self.path, e))?;
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
