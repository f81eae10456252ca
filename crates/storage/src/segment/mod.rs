//! One segment: a `.log` file of batches and its two indexes.
//!
//! Sealed segments open lazily: their file is opened and their indexes mapped
//! on first use, so a log of thousands of segments opens in milliseconds and
//! holds no descriptors or mappings for segments nobody reads. When indexes
//! are first loaded they are checked against the log (sizes, ordering, and a
//! replay of the indexing rule over the unindexed tail) and rebuilt if wrong.
//!
//! Open files and index maps of every segment, the active one included, are
//! entries of the [`Handles`] cache: closed or unmapped when the budget
//! needs room and nobody holds them, reopened (remapped, without a new
//! check) on the next use.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use tracing::warn;

use crate::error::{Result, StorageError};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::handles::{self, CacheState, Cached, CachedFile, CloseErrors, Handles};
use crate::index::{IndexShape, IndexTracker, MemIndex, SegmentIndex};
use crate::layout::{segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX};
use crate::txn_index::{self, AbortedTxn, Entries};

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
    /// The descriptor and map budget the log's segments live under.
    pub handles: Handles,
    /// Failures reported when the log's files were closed.
    pub close_errors: Arc<CloseErrors>,
}

impl SegmentContext {
    pub fn path(&self, base: u64, suffix: &str) -> PathBuf {
        segment_path(&self.dir, base, suffix)
    }

    /// Opens both index files of segment `base` (creating missing ones,
    /// emptying them if `fresh`).
    pub fn open_index(&self, base: u64, fresh: bool) -> Result<SegmentIndex> {
        SegmentIndex::open(
            &self.fs,
            &self.handles,
            &self.path(base, INDEX_SUFFIX),
            &self.path(base, TIME_INDEX_SUFFIX),
            self.max_index_bytes,
            fresh,
        )
    }

    fn cached_file(&self, base: u64, writable: bool) -> Arc<CachedFile> {
        CachedFile::new(
            self.path(base, LOG_SUFFIX),
            Arc::clone(&self.fs),
            self.handles.clone(),
            Arc::clone(&self.close_errors),
            writable,
        )
    }
}

/// The active segment's `.log`, open for writing, and its two index files,
/// mapped: what a clean open checks and then keeps, so each file is opened
/// once (the plan checks the mapped entries, not a copy read before).
#[derive(Debug)]
pub(crate) struct ActiveFiles {
    pub file: Arc<dyn FileHandle>,
    pub index: SegmentIndex,
}

impl ActiveFiles {
    /// Opens the `.log` of the segment at `base` for writing and maps its
    /// index files (creating missing ones empty, as the open would).
    pub fn open(ctx: &SegmentContext, base: u64) -> Result<ActiveFiles> {
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::ReadWrite)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let index = ctx.open_index(base, false)?;
        Ok(ActiveFiles { file, index })
    }
}

/// A segment's indexes: mapped while in use or while the budget has room.
#[derive(Debug, Default)]
struct CachedIndex {
    slot: Mutex<IndexSlot>,
    state: CacheState,
}

#[derive(Debug, Default)]
enum IndexSlot {
    /// Never loaded: the first load checks the files against the log.
    #[default]
    Unloaded,
    Mapped(Arc<RwLock<SegmentIndex>>),
    /// Unmapped by the budget; mapped again as it was.
    Unmapped(IndexShape),
}

impl Cached for CachedIndex {
    fn state(&self) -> &CacheState {
        &self.state
    }
    fn cost(&self) -> (usize, usize) {
        (0, 2)
    }
    fn evict(&self) -> bool {
        let Some(mut slot) = self.slot.try_lock() else {
            return false;
        };
        let shape = match &*slot {
            IndexSlot::Mapped(index) if Arc::strong_count(index) == 1 => {
                // Nobody else holds it, so nobody holds its lock.
                index.read().shape()
            }
            _ => return false,
        };
        *slot = IndexSlot::Unmapped(shape);
        self.state.evicted();
        true
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
    file: Arc<CachedFile>,
    index: Arc<CachedIndex>,
    /// Bytes readers may see: only whole, written batches.
    size: AtomicU64,
    /// Exclusive end offset once sealed (the next segment's base).
    end_offset: AtomicU64,
    /// Largest batch maxTimestamp and the last offset of its batch.
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicU64,
    /// `max_timestamp` is known (the indexes were loaded once).
    timestamps_known: AtomicBool,
    /// The aborted transactions of the `.txnindex`, once read (memory
    /// only: the file is opened just to read or append), and whether the
    /// file was whole.
    txns: Mutex<Option<(Entries, bool)>>,
}

impl Segment {
    /// A segment; `file` and `index` are cached if given (just opened).
    fn new(
        ctx: Arc<SegmentContext>,
        base_offset: u64,
        file: Option<Arc<dyn FileHandle>>,
        index: Option<SegmentIndex>,
        size: u64,
        end_offset: u64,
    ) -> Self {
        let cached_file = ctx.cached_file(base_offset, end_offset == OPEN_END);
        if let Some(f) = file {
            cached_file.put(f);
        }
        let cached_index = Arc::new(CachedIndex::default());
        let known = index.is_some();
        if let Some(index) = index {
            *cached_index.slot.lock() = IndexSlot::Mapped(Arc::new(RwLock::new(index)));
            cached_index.state.touch();
            handles::list(&ctx.handles, &cached_index);
        }
        Segment {
            base_offset,
            path: ctx.path(base_offset, LOG_SUFFIX),
            ctx,
            file: cached_file,
            index: cached_index,
            size: AtomicU64::new(size),
            end_offset: AtomicU64::new(end_offset),
            max_timestamp: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicU64::new(base_offset),
            timestamps_known: AtomicBool::new(known),
            txns: Mutex::new(None),
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
            Some(file),
            Some(index),
            0,
            OPEN_END,
        ))
    }

    /// A sealed segment, opened lazily.
    pub fn sealed(ctx: &Arc<SegmentContext>, base: u64, size: u64, end_offset: u64) -> Segment {
        Segment::new(Arc::clone(ctx), base, None, None, size, end_offset)
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
            Some(file),
            Some(index),
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
    ///
    /// `opened`: the `.log` (for writing) and the mapped indexes, when the
    /// plan checked them so (see [`ActiveFiles`]); otherwise they are
    /// opened here.
    pub fn open_active(
        ctx: &Arc<SegmentContext>,
        base: u64,
        size: u64,
        check: &IndexCheck,
        opened: Option<ActiveFiles>,
    ) -> Result<(Segment, IndexTracker)> {
        let path = ctx.path(base, LOG_SUFFIX);
        let ActiveFiles { file, mut index } = match opened {
            Some(opened) => opened,
            None => ActiveFiles::open(ctx, base)?,
        };
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
        self.timestamps_known.store(true, Ordering::Release);
    }

    /// Largest timestamp in the segment (-1 if none) and the last offset of
    /// its batch. Loads the indexes of a sealed segment.
    pub fn max_timestamp(&self) -> Result<(i64, u64)> {
        if !self.timestamps_known.load(Ordering::Acquire) {
            self.index()?;
        }
        Ok((
            self.max_timestamp.load(Ordering::Acquire),
            self.offset_of_max_timestamp.load(Ordering::Acquire),
        ))
    }

    /// The segment's file, opened on first use and reopened after the
    /// budget closed it. Holding the handle keeps the descriptor open
    /// (eviction only drops the cache's reference).
    pub fn file(&self) -> Result<Arc<dyn FileHandle>> {
        self.file
            .get()
            .map_err(|e| StorageError::io("open", self.path(), e))
    }

    /// The segment's indexes, loaded (and checked, and if need be rebuilt) on
    /// first use, mapped again after the budget unmapped them. Holding the
    /// handle keeps them mapped.
    pub fn index(&self) -> Result<Arc<RwLock<SegmentIndex>>> {
        self.index.state.touch();
        let mut slot = self.index.slot.lock();
        let index = match &*slot {
            IndexSlot::Mapped(index) => return Ok(Arc::clone(index)),
            _ if self.file.is_retired() => {
                return Err(StorageError::io(
                    "open",
                    self.path(),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "segment removed from the log",
                    ),
                ))
            }
            IndexSlot::Unloaded => self.load_sealed_index()?,
            IndexSlot::Unmapped(shape) => SegmentIndex::remap(
                &self.ctx.fs,
                &self.ctx.handles,
                &self.ctx.path(self.base_offset, INDEX_SUFFIX),
                &self.ctx.path(self.base_offset, TIME_INDEX_SUFFIX),
                *shape,
            )?,
        };
        let index = Arc::new(RwLock::new(index));
        *slot = IndexSlot::Mapped(Arc::clone(&index));
        handles::list(&self.ctx.handles, &self.index);
        Ok(index)
    }

    /// The segment left its log (retention, compaction): its files are
    /// never reopened; holders of open handles keep reading them.
    pub fn retire(&self) {
        self.file.retire();
    }

    /// True once the segment left its log.
    pub fn is_retired(&self) -> bool {
        self.file.is_retired()
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
        let index = self.index()?;
        let mut index = index.write();
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
        self.file.seal();
        self.end_offset.store(end_offset, Ordering::Release);
        Ok(())
    }

    /// fsyncs the log file and, if loaded, the indexes.
    /// A retired segment is skipped: its files are gone.
    pub fn sync(&self, with_index: bool) -> Result<()> {
        if self.is_retired() {
            return Ok(());
        }
        let path = self.path();
        self.file()?
            .sync_data()
            .map_err(|e| StorageError::io("fsync", path, e))?;
        if with_index {
            let mapped = match &*self.index.slot.lock() {
                IndexSlot::Unloaded => return Ok(()),
                IndexSlot::Mapped(index) => Some(Arc::clone(index)),
                IndexSlot::Unmapped(_) => None,
            };
            match mapped {
                Some(index) => index.read().flush()?,
                // Unmapped since written: the dirty pages are in the page
                // cache; an fsync of a new descriptor writes them back
                // (no need to map them again).
                None => {
                    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                        let path = self.ctx.path(self.base_offset, suffix);
                        self.ctx
                            .handles
                            .open(self.ctx.fs.as_ref(), &path, OpenMode::ReadOnly, None)
                            .map_err(|e| StorageError::io("open", &path, e))?
                            .sync_data()
                            .map_err(|e| StorageError::io("fsync", &path, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The aborted transactions whose ABORT marker is in this segment (read
    /// from the `.txnindex` on first use).
    pub fn aborted_txns(&self) -> Result<Entries> {
        let mut slot = self.txns.lock();
        Ok(Arc::clone(&self.load_txns(&mut slot)?.0))
    }

    /// The aborted transactions of the segment's index if it was read
    /// already (kept once read), without touching the disk.
    pub(crate) fn loaded_aborted_txns(&self) -> Option<Entries> {
        self.txns.lock().as_ref().map(|(e, _)| Arc::clone(e))
    }

    /// Whether the segment's index lists any aborted transaction.
    pub(crate) fn has_aborted_txns(&self) -> bool {
        self.aborted_txns().map_or(true, |e| !e.is_empty())
    }

    /// The `.txnindex` was read whole (no torn or corrupt tail); true until
    /// it is read.
    pub fn aborted_txns_whole(&self) -> bool {
        self.txns.lock().as_ref().is_none_or(|(_, whole)| *whole)
    }

    fn load_txns<'a>(&self, slot: &'a mut Option<(Entries, bool)>) -> Result<&'a (Entries, bool)> {
        if slot.is_none() {
            let path = self.ctx.path(self.base_offset, TXN_INDEX_SUFFIX);
            let (entries, whole) = txn_index::read(self.ctx.fs.as_ref(), &path)?;
            if !whole {
                warn!(index = %path.display(), "a transaction index has a torn or unreadable tail");
            }
            *slot = Some((Arc::new(entries), whole));
        }
        slot.as_ref().ok_or_else(|| StorageError::Closed {
            dir: self.ctx.dir.clone(),
        })
    }

    /// Appends one entry to the `.txnindex`, durably.
    pub fn add_aborted_txn(&self, txn: &AbortedTxn) -> Result<()> {
        let mut slot = self.txns.lock();
        let (entries, _) = self.load_txns(&mut slot)?;
        let path = self.ctx.path(self.base_offset, TXN_INDEX_SUFFIX);
        txn_index::append(
            self.ctx.fs.as_ref(),
            &self.ctx.dir,
            &path,
            entries.len(),
            txn,
        )?;
        let mut next = (**entries).clone();
        next.push(*txn);
        *slot = Some((Arc::new(next), true));
        Ok(())
    }

    /// Replaces the `.txnindex` with `entries`, durably.
    pub fn set_aborted_txns(&self, entries: Vec<AbortedTxn>) -> Result<()> {
        let mut slot = self.txns.lock();
        let path = self.ctx.path(self.base_offset, TXN_INDEX_SUFFIX);
        txn_index::rewrite(self.ctx.fs.as_ref(), &self.ctx.dir, &path, &entries)?;
        *slot = Some((Arc::new(entries), true));
        Ok(())
    }

    /// Deletes the segment's files: the log first, so a crash part-way leaves
    /// only orphan indexes, which open removes.
    pub fn delete_files(&self) -> Result<()> {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pubsub_records::{BatchBuilder, NewRecord};

    use crate::fs::RealFs;
    use crate::handles::{HandleLimits, Handles};
    use crate::{Log, LogConfig};

    /// Descriptors of this process open on files under `dir`.
    fn open_fds_under(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("fds")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    /// Memory maps of this process of files under `dir`.
    fn maps_under(dir: &std::path::Path) -> usize {
        let dir = dir.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/maps")
            .expect("maps")
            .lines()
            .filter(|l| l.contains(dir.as_str()))
            .count()
    }

    fn batch(value: &[u8]) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(value),
            headers: &[],
        })
        .expect("push");
        b.build().expect("build")
    }

    #[test]
    fn a_held_file_and_index_stay_open_while_the_budget_evicts_and_close_once_let_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let handles = Handles::new(HandleLimits {
            descriptors: 1,
            maps: 2,
        });
        let open = |name: &str| {
            Log::open_budgeted(
                dir.path().join(name),
                LogConfig::default(),
                Arc::new(RealFs),
                handles.clone(),
            )
            .expect("open")
            .0
        };
        let a = open("a");
        let mut bytes = batch(b"held bytes");
        a.append(&mut bytes).expect("append");
        let seg = Arc::clone(&a.segment_list()[0]);
        let file = seg.file().expect("file");
        let index = seg.index().expect("index");

        // Another log needs the whole budget: a's file and index are in use.
        let b = open("b");
        b.append(&mut batch(b"other")).expect("append");
        // Really open: a's descriptor and a's two maps, over the budget.
        let a_dir = dir.path().join("a");
        assert_eq!(open_fds_under(&a_dir), 1);
        assert_eq!(maps_under(&a_dir), 2);
        let stats = handles.stats();
        assert!(stats.descriptors >= 1 && stats.maps >= 2, "{stats:?}");
        let mut read = vec![0u8; bytes.len()];
        file.read_exact_at(&mut read, 0).expect("read held file");
        assert_eq!(read, bytes);
        assert_eq!(index.read().offsets.len(), 0);

        // Let go: the next use of b closes them.
        drop(file);
        drop(index);
        let before = handles.stats().evictions;
        b.append(&mut batch(b"more")).expect("append");
        let stats = handles.stats();
        assert!(stats.descriptors <= 1, "{stats:?}");
        assert!(stats.maps <= 2, "{stats:?}");
        assert!(stats.evictions > before, "{stats:?}");
        assert_eq!(open_fds_under(&a_dir), 0);
        assert_eq!(maps_under(&a_dir), 0);
        // a reads its bytes back, reopening what was closed.
        assert_eq!(a.read(0, 1 << 20).expect("read").records, bytes);
    }
}
