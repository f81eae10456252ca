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

use tracing::warn;

use crate::error::{Result, StorageError};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::index::{IndexTracker, MemIndex, SegmentIndex};
use crate::layout::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

mod index_check;
mod read;

use index_check::rebuild;
pub(crate) use index_check::{check_indexes, scan_and_index, IndexCheck, SegmentData, MAX_SPAN};
pub(crate) use read::HeaderWalker;

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

    /// Opens both index files of segment `base` (creating missing ones,
    /// emptying them if `fresh`).
    pub fn open_index(&self, base: u64, fresh: bool) -> Result<SegmentIndex> {
        SegmentIndex::open(
            self.fs.as_ref(),
            &self.path(base, INDEX_SUFFIX),
            &self.path(base, TIME_INDEX_SUFFIX),
            self.max_index_bytes,
            fresh,
        )
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
        let index = ctx.open_index(base, true)?;
        Ok(Segment::new(
            Arc::clone(ctx),
            base,
            OnceCell::with_value(file),
            OnceCell::with_value(RwLock::new(index)),
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

    /// A segment recovery scanned: `file` holds `size` bytes of valid
    /// batches, and its indexes are written afresh from `entries`, the ones
    /// the scan built (room is made for a file of `allow_for` bytes). Sealed
    /// if `end_offset` is set.
    #[allow(clippy::too_many_arguments)]
    pub fn with_entries(
        ctx: &Arc<SegmentContext>,
        base: u64,
        file: Arc<dyn FileHandle>,
        size: u64,
        allow_for: u64,
        end_offset: Option<u64>,
        entries: &MemIndex,
        tracker: &IndexTracker,
    ) -> Result<Segment> {
        let mut index = ctx.open_index(base, true)?;
        index.allow_for(allow_for, ctx.index_interval);
        entries.write_to(&mut index)?;
        if end_offset.is_some() {
            tracker.on_seal(&mut index, base)?;
            index.trim()?;
            index.flush()?;
        }
        Ok(Segment::from_parts(
            ctx, base, file, index, size, end_offset, tracker,
        ))
    }

    /// Opens the last segment of a cleanly closed log for appending, given
    /// the check of its indexes the recovery plan made: they are rebuilt if
    /// it found a problem. Returns the segment and the indexing state to
    /// continue from.
    pub fn open_active(
        ctx: &Arc<SegmentContext>,
        base: u64,
        size: u64,
        check: &IndexCheck,
    ) -> Result<(Segment, IndexTracker)> {
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::ReadWrite)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let mut index = ctx.open_index(base, false)?;
        let tracker = match &check.problem {
            None => check.tracker,
            Some(reason) => {
                warn!(segment = %path.display(), %reason, "rebuilding the indexes of the active segment");
                let data = SegmentData {
                    file: file.as_ref(),
                    path: &path,
                    base,
                    size,
                    span: MAX_SPAN,
                    interval: ctx.index_interval,
                };
                rebuild(&mut index, data, false)?
            }
        };
        let seg = Segment::from_parts(ctx, base, file, index, size, None, &tracker);
        Ok((seg, tracker))
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

    fn load_sealed_index(&self) -> Result<SegmentIndex> {
        let base = self.base_offset;
        let span = self
            .end_offset()
            .map_or(MAX_SPAN, |end| end.saturating_sub(base));
        let mut index = self.ctx.open_index(base, false)?;
        let file = self.file()?;
        let data = SegmentData {
            file: file.as_ref(),
            path: self.path(),
            base,
            size: self.size(),
            span,
            interval: self.ctx.index_interval,
        };
        let check = check_indexes(&index.offsets, &index.times, data, true)?;
        if let Some(reason) = check.problem {
            warn!(segment = %self.path().display(), %reason, "rebuilding the indexes of a sealed segment");
            rebuild(&mut index, data, true)?;
        }
        let (ts, off) = match index.times.last() {
            Some(e) => (e.timestamp, base + u64::from(e.relative_offset)),
            None => (-1, base),
        };
        self.set_max_timestamp(ts, off);
        Ok(index)
    }

    /// Seals the segment: final time-index entry, indexes trimmed to size.
    pub fn seal(&self, tracker: &IndexTracker, end_offset: u64) -> Result<()> {
        let mut index = self.index()?.write();
        // A seal that fails (a trim without space) leaves the segment active
        // as it was: without the time entry the seal added.
        let times = index.times.len();
        let sealed = tracker
            .on_seal(&mut *index, self.base_offset)
            .and_then(|()| index.trim());
        if sealed.is_err() {
            index.times.truncate(times);
        }
        sealed?;
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
}
