//! The two sparse, memory-mapped indexes of a segment (Kafka's layout):
//!
//! - `.index`: 8-byte entries `relative offset u32 | file position u32`, one
//!   each time more than `index_interval_bytes` were appended since the last
//!   entry, mapping the last offset of a batch to the position where that
//!   batch starts.
//! - `.timeindex`: 12-byte entries `timestamp i64 | relative offset u32`,
//!   written at the same moments when the segment's largest timestamp has
//!   grown, plus once more when the segment is sealed, so the last entry
//!   holds the segment's largest timestamp.
//!
//! Index files are derived data: grown in steps up to `max_index_bytes` while
//! the segment is active, trimmed to their entries when it is sealed, never
//! checksummed, and rebuilt from the log whenever they look wrong.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

use crate::error::{Result, StorageError};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::handles::{Handles, MapToken};

/// Bytes per offset-index entry.
pub const OFFSET_ENTRY: usize = 8;
/// Bytes per time-index entry.
pub const TIME_ENTRY: usize = 12;

/// A memory-mapped file of fixed-size entries.
///
/// The file grows in steps (doubling, by writing zeros, so a full disk is a
/// clean ENOSPC error rather than a SIGBUS on a store into a sparse page) up
/// to `max_entries`, and is remapped each time. Its descriptor is closed
/// once mapped (the mapping stays valid); growing, trimming and fsyncing
/// reopen it for the moment they take.
#[derive(Debug)]
struct IndexFile {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    handles: Handles,
    mmap: MmapMut,
    /// Counts the map in the budget while it exists.
    _map: MapToken,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
    /// True when the file length was not a whole number of entries.
    ragged: bool,
}

/// What an index file holds, kept while it is unmapped so that mapping it
/// again needs no check (an active index's file is longer than its entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileShape {
    entries: usize,
    max_entries: usize,
    ragged: bool,
}

/// First growth step of an index file.
const INITIAL_BYTES: u64 = 8 << 10;

fn map(file: &dyn FileHandle, path: &Path) -> Result<MmapMut> {
    // SAFETY: the file belongs to this log: it is mapped only here, and is
    // never truncated below the mapped length while mapped (trimming and
    // growth remap under the exclusive lock of the index). Other processes
    // must not modify a live partition directory, as with any database.
    unsafe { MmapMut::map_mut(file.std_file()) }.map_err(|e| StorageError::io("mmap", path, e))
}

impl IndexFile {
    /// Opens (creating if missing, emptying if `fresh`) an index file that
    /// may grow to `max_bytes`, maps it and closes it.
    fn open(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        path: &Path,
        entry_size: usize,
        max_bytes: u64,
        fresh: bool,
    ) -> Result<Self> {
        let mode = if fresh {
            OpenMode::Truncate
        } else {
            OpenMode::ReadWrite
        };
        let file = handles
            .open(fs.as_ref(), path, mode, None)
            .map_err(|e| StorageError::io("open", path, e))?;
        let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
        let entries = (len / entry_size as u64) as usize;
        let shape = FileShape {
            entries,
            max_entries: ((max_bytes / entry_size as u64) as usize).max(entries),
            ragged: len % entry_size as u64 != 0,
        };
        IndexFile::map_open(fs, handles, path, file.as_ref(), entry_size, shape)
    }

    /// Maps an index file unmapped earlier, with the entries it had.
    fn remap(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        path: &Path,
        entry_size: usize,
        shape: FileShape,
    ) -> Result<Self> {
        let file = handles
            .open(fs.as_ref(), path, OpenMode::ReadWrite, None)
            .map_err(|e| StorageError::io("open", path, e))?;
        let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
        if len < (shape.entries * entry_size) as u64 {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                position: len,
                reason: format!(
                    "index file shrank to {len} bytes while unmapped; it held {} entries",
                    shape.entries
                ),
            });
        }
        IndexFile::map_open(fs, handles, path, file.as_ref(), entry_size, shape)
    }

    fn map_open(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        path: &Path,
        file: &dyn FileHandle,
        entry_size: usize,
        shape: FileShape,
    ) -> Result<Self> {
        let mmap = map(file, path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            fs: Arc::clone(fs),
            handles: handles.clone(),
            mmap,
            _map: handles.map_token(),
            entry_size,
            entries: shape.entries,
            max_entries: shape.max_entries,
            ragged: shape.ragged,
        })
    }

    fn shape(&self) -> FileShape {
        FileShape {
            entries: self.entries,
            max_entries: self.max_entries,
            ragged: self.ragged,
        }
    }

    /// The file, opened for the moment (for writing unless `read_only`).
    fn reopen(&self, read_only: bool) -> Result<Arc<dyn FileHandle>> {
        let mode = if read_only {
            OpenMode::ReadOnly
        } else {
            OpenMode::ReadWrite
        };
        self.handles
            .open(self.fs.as_ref(), &self.path, mode, None)
            .map_err(|e| StorageError::io("open", &self.path, e))
    }

    fn mapped_entries(&self) -> usize {
        self.mmap.len() / self.entry_size
    }

    fn entry(&self, i: usize) -> &[u8] {
        &self.mmap[i * self.entry_size..(i + 1) * self.entry_size]
    }

    /// Grows the file (zero-filled, really allocated) and remaps it.
    fn grow(&mut self) -> Result<()> {
        let max = (self.max_entries * self.entry_size) as u64;
        let file = self.reopen(false)?;
        let current = file
            .len()
            .map_err(|e| StorageError::io("stat", &self.path, e))?;
        let target = (current.max(INITIAL_BYTES / 2) * 2).min(max);
        let target = target - target % self.entry_size as u64;
        if target <= current {
            return Ok(());
        }
        let zeros = vec![0u8; (target - current).min(1 << 20) as usize];
        let mut at = current;
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            if let Err(e) = file.write_all_at(&zeros[..n], at) {
                // A full disk: give back the part that was added, so the
                // file stays as mapped and the next growth starts afresh.
                let _ = file.set_len(current);
                return Err(StorageError::io("extend", &self.path, e));
            }
            at += n as u64;
        }
        self.mmap = map(file.as_ref(), &self.path)?;
        Ok(())
    }

    /// Appends an entry; `Ok(false)` if the index is full.
    fn push(&mut self, bytes: &[u8]) -> Result<bool> {
        if self.entries >= self.max_entries {
            return Ok(false);
        }
        if self.entries >= self.mapped_entries() {
            self.grow()?;
            if self.entries >= self.mapped_entries() {
                return Ok(false);
            }
        }
        let at = self.entries * self.entry_size;
        self.mmap[at..at + self.entry_size].copy_from_slice(bytes);
        self.entries += 1;
        Ok(true)
    }

    /// Shrinks the file to its entries and maps exactly that.
    fn trim(&mut self) -> Result<()> {
        let len = (self.entries * self.entry_size) as u64;
        if self.mmap.len() as u64 == len && !self.ragged {
            return Ok(());
        }
        let file = self.reopen(false)?;
        let file_len = file
            .len()
            .map_err(|e| StorageError::io("stat", &self.path, e))?;
        if file_len == len {
            return Ok(());
        }
        // Pages past the new end are never touched between the cut and the
        // remap: this runs under the index's exclusive lock. (Under a
        // deferred sync the filesystem sync writes the kept pages.)
        if !crate::fs::syncs_deferred() {
            self.mmap
                .flush()
                .map_err(|e| StorageError::io("msync", &self.path, e))?;
        }
        file.set_len(len)
            .map_err(|e| StorageError::io("trim", &self.path, e))?;
        self.mmap = map(file.as_ref(), &self.path)?;
        self.ragged = false;
        Ok(())
    }

    /// Lets the index hold at least `max_bytes` worth of entries.
    fn allow(&mut self, max_bytes: u64) {
        self.max_entries = self
            .max_entries
            .max((max_bytes / self.entry_size as u64) as usize);
    }

    fn flush(&self) -> Result<()> {
        // A deferred sync (see `fs::DeferSyncs`) covers mapped pages too.
        if crate::fs::syncs_deferred() {
            return Ok(());
        }
        self.mmap
            .flush()
            .map_err(|e| StorageError::io("msync", &self.path, e))?;
        self.reopen(true)?
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.path, e))
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// A fixed-size index entry.
pub(crate) trait Entry: Copy + fmt::Debug {
    /// Bytes per entry on disk.
    const SIZE: usize;
    fn decode(b: &[u8]) -> Self;
    fn encode(&self, out: &mut [u8]);
}

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY;
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32_at(b, 0),
            position: u32_at(b, 4),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
}

/// One time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = TIME_ENTRY;
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64_at(b, 0),
            relative_offset: u32_at(b, 8),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
}

/// The bytes of an index file holding `entries`.
pub(crate) fn encode_entries<E: Entry>(entries: &[E]) -> Vec<u8> {
    let mut out = vec![0u8; entries.len() * E::SIZE];
    for (e, chunk) in entries.iter().zip(out.chunks_exact_mut(E::SIZE)) {
        e.encode(chunk);
    }
    out
}

/// An index file of entries of type `E`.
#[derive(Debug)]
pub(crate) struct Index<E> {
    inner: IndexFile,
    _entry: PhantomData<E>,
}

/// `.index`: relative offset -> file position.
pub(crate) type OffsetIndex = Index<OffsetEntry>;
/// `.timeindex`: largest timestamp so far -> relative offset.
pub(crate) type TimeIndex = Index<TimeEntry>;

/// Read access to the entries of an index file, mapped or read into memory
/// (what the consistency checks of docs/FORMAT.md 4.2 look at).
pub(crate) trait EntryList<E> {
    /// Entries held.
    fn count(&self) -> usize;
    /// Entry `i` (< `count`).
    fn get(&self, i: usize) -> E;
    /// True when the file length was not a whole number of entries.
    fn ragged(&self) -> bool;
    /// The last entry.
    fn last_entry(&self) -> Option<E> {
        self.count().checked_sub(1).map(|i| self.get(i))
    }
}

impl<E: Entry> EntryList<E> for Index<E> {
    fn count(&self) -> usize {
        self.len()
    }
    fn get(&self, i: usize) -> E {
        self.entry(i)
    }
    fn ragged(&self) -> bool {
        self.inner.ragged
    }
}

/// An index file's entries read without mapping or changing the file (a
/// missing file reads as empty, as opening it would create it empty).
#[derive(Debug)]
pub(crate) struct StoredIndex<E> {
    entries: Vec<E>,
    ragged: bool,
}

impl<E: Entry> StoredIndex<E> {
    /// No entries (what opening a missing file gives).
    pub fn empty() -> Self {
        StoredIndex {
            entries: Vec::new(),
            ragged: false,
        }
    }

    pub fn read(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        let file = match fs.open(path, OpenMode::ReadOnly) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(e) => return Err(StorageError::io("open", path, e)),
        };
        let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
        let whole = len - len % E::SIZE as u64;
        let mut bytes = vec![0u8; usize::try_from(whole).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| StorageError::io("read", path, e))?;
        Ok(StoredIndex {
            entries: bytes.chunks_exact(E::SIZE).map(E::decode).collect(),
            ragged: whole != len,
        })
    }
}

impl<E: Entry> EntryList<E> for StoredIndex<E> {
    fn count(&self) -> usize {
        self.entries.len()
    }
    fn get(&self, i: usize) -> E {
        self.entries[i]
    }
    fn ragged(&self) -> bool {
        self.ragged
    }
}

impl<E: Entry> Index<E> {
    pub fn open(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        path: &Path,
        max_bytes: u64,
        fresh: bool,
    ) -> Result<Self> {
        IndexFile::open(fs, handles, path, E::SIZE, max_bytes, fresh).map(|inner| Index {
            inner,
            _entry: PhantomData,
        })
    }

    fn remap(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        path: &Path,
        shape: FileShape,
    ) -> Result<Self> {
        IndexFile::remap(fs, handles, path, E::SIZE, shape).map(|inner| Index {
            inner,
            _entry: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        self.inner.entries
    }

    pub fn remaining(&self) -> usize {
        self.inner.max_entries.saturating_sub(self.inner.entries)
    }

    pub fn entry(&self, i: usize) -> E {
        E::decode(self.inner.entry(i))
    }

    pub fn last(&self) -> Option<E> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// The last entry for which `below` holds (entries are sorted, so
    /// `below` holds for a prefix).
    pub fn last_where(&self, below: impl Fn(&E) -> bool) -> Option<E> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if below(&self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.entry(i))
    }

    fn push_entry(&mut self, e: E) -> Result<bool> {
        let mut b = [0u8; 16];
        e.encode(&mut b[..E::SIZE]);
        self.inner.push(&b[..E::SIZE])
    }

    pub fn clear(&mut self) {
        self.inner.entries = 0;
    }

    /// Drops the entries from `len` on (zeroed, as never written): undoes the
    /// entries of an append that failed.
    pub fn truncate(&mut self, len: usize) {
        let len = len.min(self.inner.entries);
        let size = self.inner.entry_size;
        self.inner.mmap[len * size..self.inner.entries * size].fill(0);
        self.inner.entries = len;
    }

    pub fn trim(&mut self) -> Result<()> {
        self.inner.trim()
    }

    pub fn allow(&mut self, max_bytes: u64) {
        self.inner.allow(max_bytes)
    }

    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

impl OffsetIndex {
    /// The entry with the largest relative offset `<= target`.
    pub fn floor(&self, target: u32) -> Option<OffsetEntry> {
        self.last_where(|e| e.relative_offset <= target)
    }

    /// [`OffsetIndex::floor`] and the entry after it (the first with a
    /// relative offset `> target`), each if there is one.
    pub fn around(&self, target: u32) -> (Option<OffsetEntry>, Option<OffsetEntry>) {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).relative_offset <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let after = (lo < self.len()).then(|| self.entry(lo));
        (lo.checked_sub(1).map(|i| self.entry(i)), after)
    }

    pub fn push(&mut self, e: OffsetEntry) -> Result<bool> {
        self.push_entry(e)
    }
}

impl TimeIndex {
    /// The entry with the largest timestamp strictly below `target`: every
    /// record up to its offset is older than `target`.
    pub fn floor_before(&self, target: i64) -> Option<TimeEntry> {
        self.last_where(|e| e.timestamp < target)
    }

    /// Appends only if `timestamp` is larger than the last entry's (or the
    /// index is empty and it is not negative), as Kafka does.
    pub fn maybe_push(&mut self, e: TimeEntry) -> Result<bool> {
        if e.timestamp <= self.last().map_or(-1, |l| l.timestamp) {
            return Ok(true);
        }
        self.push_entry(e)
    }
}

/// Where the indexing rule's entries go: the mapped files of a segment, or
/// memory (for `check`).
pub(crate) trait IndexSink {
    /// Adds an offset entry (skipped if the index is full).
    fn add_offset(&mut self, e: OffsetEntry) -> Result<()>;
    /// Adds a time entry if its timestamp is larger than the last one's.
    fn add_time(&mut self, e: TimeEntry) -> Result<()>;
}

/// Index entries held in memory.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
}

impl MemIndex {
    /// Adds every entry to `sink` (writes an index built in memory to files).
    pub fn write_to(&self, sink: &mut impl IndexSink) -> Result<()> {
        for e in &self.offsets {
            sink.add_offset(*e)?;
        }
        for e in &self.times {
            sink.add_time(*e)?;
        }
        Ok(())
    }
}

impl IndexSink for MemIndex {
    fn add_offset(&mut self, e: OffsetEntry) -> Result<()> {
        self.offsets.push(e);
        Ok(())
    }
    fn add_time(&mut self, e: TimeEntry) -> Result<()> {
        if e.timestamp > self.times.last().map_or(-1, |l| l.timestamp) {
            self.times.push(e);
        }
        Ok(())
    }
}

/// The indexing rule, shared by append, recovery, rebuild, compaction and
/// `check`, so all of them produce identical indexes for identical data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexTracker {
    pub bytes_since_entry: u64,
    /// Largest batch maxTimestamp so far (-1 when none).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: u64,
}

/// Entries the rule produced for one batch.
pub(crate) type Entries = (OffsetEntry, TimeEntry);

impl IndexTracker {
    pub fn new(base_offset: u64) -> Self {
        IndexTracker {
            bytes_since_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
        }
    }

    /// Accounts for one batch of `len` bytes at `position`; returns the index
    /// entries it calls for, if any (the time entry is added only if its
    /// timestamp is larger than the time index's last).
    pub fn next(
        &mut self,
        base_offset: u64,
        position: u64,
        last_offset: u64,
        max_timestamp: i64,
        len: u64,
        interval: u64,
    ) -> Option<Entries> {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        let mut entries = None;
        if self.bytes_since_entry > interval {
            entries = Some((
                OffsetEntry {
                    relative_offset: (last_offset - base_offset) as u32,
                    position: position as u32,
                },
                self.seal_entry(base_offset),
            ));
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += len;
        entries
    }

    /// The final time-index entry written when a segment is sealed.
    pub fn seal_entry(&self, base_offset: u64) -> TimeEntry {
        TimeEntry {
            timestamp: self.max_timestamp,
            relative_offset: (self.offset_of_max_timestamp - base_offset) as u32,
        }
    }

    /// [`IndexTracker::next`], applied to `index`. An entry that does not
    /// fit (the log rolls before that happens) is skipped: lookups stay
    /// correct, only slower, and the next check rebuilds the index.
    #[allow(clippy::too_many_arguments)]
    pub fn on_batch(
        &mut self,
        index: &mut impl IndexSink,
        base_offset: u64,
        position: u64,
        last_offset: u64,
        max_timestamp: i64,
        len: u64,
        interval: u64,
    ) -> Result<()> {
        if let Some((o, t)) = self.next(
            base_offset,
            position,
            last_offset,
            max_timestamp,
            len,
            interval,
        ) {
            index.add_offset(o)?;
            index.add_time(t)?;
        }
        Ok(())
    }

    /// Adds the seal entry to `index`.
    pub fn on_seal(&self, index: &mut impl IndexSink, base_offset: u64) -> Result<()> {
        index.add_time(self.seal_entry(base_offset))
    }
}

/// The shapes of both index files of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexShape {
    offsets: FileShape,
    times: FileShape,
}

/// Both indexes of one segment.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    pub offsets: OffsetIndex,
    pub times: TimeIndex,
}

impl IndexSink for SegmentIndex {
    fn add_offset(&mut self, e: OffsetEntry) -> Result<()> {
        self.offsets.push(e).map(|_| ())
    }
    fn add_time(&mut self, e: TimeEntry) -> Result<()> {
        self.times.maybe_push(e).map(|_| ())
    }
}

impl SegmentIndex {
    /// Opens (creating if missing, emptying if `fresh`) both index files,
    /// each allowed to grow to `max_bytes`, and maps them (two maps of
    /// `handles`' budget, no descriptor).
    pub fn open(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        offsets: &Path,
        times: &Path,
        max_bytes: u64,
        fresh: bool,
    ) -> Result<Self> {
        handles.make_room(1, 2);
        Ok(SegmentIndex {
            offsets: OffsetIndex::open(fs, handles, offsets, max_bytes, fresh)?,
            times: TimeIndex::open(fs, handles, times, max_bytes, fresh)?,
        })
    }

    /// Maps again both index files unmapped when they had `shape`.
    pub fn remap(
        fs: &Arc<dyn FileSystem>,
        handles: &Handles,
        offsets: &Path,
        times: &Path,
        shape: IndexShape,
    ) -> Result<Self> {
        handles.make_room(1, 2);
        Ok(SegmentIndex {
            offsets: OffsetIndex::remap(fs, handles, offsets, shape.offsets)?,
            times: TimeIndex::remap(fs, handles, times, shape.times)?,
        })
    }

    /// What mapping the files again needs to know.
    pub fn shape(&self) -> IndexShape {
        IndexShape {
            offsets: self.offsets.inner.shape(),
            times: self.times.inner.shape(),
        }
    }

    pub fn trim(&mut self) -> Result<()> {
        self.offsets.trim()?;
        self.times.trim()
    }

    pub fn flush(&self) -> Result<()> {
        self.offsets.flush()?;
        self.times.flush()
    }

    pub fn clear(&mut self) {
        self.offsets.clear();
        self.times.clear();
    }

    /// Entries left before one of the two is full.
    pub fn remaining(&self) -> usize {
        self.offsets.remaining().min(self.times.remaining())
    }

    /// Lets both indexes hold the entries of a segment of `size` bytes with
    /// entries every `interval` bytes (rebuilds of old, larger segments).
    pub fn allow_for(&mut self, size: u64, interval: u64) {
        let entries = size / interval.max(1) + 2;
        self.offsets.allow(entries * OFFSET_ENTRY as u64);
        self.times.allow(entries * TIME_ENTRY as u64);
    }
}
