//! The budget of open descriptors and memory maps that the logs of a process
//! share ([`Handles`]).
//!
//! A segment's `.log` file and its two index maps are a cache, not a fixed
//! cost: they are opened (mapped) on first use, counted, and closed
//! (unmapped) again when the budget needs room, least recently used first,
//! so a partition nobody touches costs no descriptor and no map once others
//! need them. Index files hold no descriptor at all once mapped (a mapping
//! stays valid after its file is closed); growing or trimming an index
//! reopens its file for the moment it takes.
//!
//! # Rules
//!
//! - Every descriptor and map a segment holds is counted while it really
//!   exists: files are wrapped so that the count drops when the last user
//!   drops its handle (the fd closes then), maps when they are unmapped.
//! - Eviction only drops the cache's own reference, and only from an entry
//!   nobody else holds ([`Arc::strong_count`] of 1, checked under the
//!   entry's lock, the only place new references come from). A reader (or
//!   a sendfile, or the writeback thread) that holds a file keeps it open:
//!   the budget is exceeded by the handles in use, never broken under them.
//! - Least recently used goes first, approximated by the clock algorithm
//!   (the kernel's page cache does the same): using an entry sets a flag,
//!   with no lock shared between logs; the sweep gives a flagged entry a
//!   second chance and evicts the first unflagged, unused one. Entries are
//!   taken out of the sweep while closed and put back when reopened.
//! - Eviction never blocks on an entry's lock (it skips a busy one), so it
//!   can run from any thread, holding any log's locks. Lock order: an
//!   entry's lock, then the clock's (opening an entry makes room while
//!   holding its lock); the sweep holds the clock's lock and only
//!   `try_lock`s entries.
//! - Reopening may fail for want of a descriptor or of memory (EMFILE,
//!   ENFILE, ENOMEM: handles in use exceed the budget, or other processes
//!   use the system's): the operation that needed it fails with nothing
//!   written and the log is not poisoned
//!   ([`crate::StorageError::is_out_of_handles`]); the next one reopens.
//! - An index file opened for a moment (to map, grow, trim or fsync it) is
//!   counted while open; the files recovery scans and checkpoint writes open
//!   for a moment are not: they come out of the reserve the budget leaves.
//!
//! # Durability of an evicted active segment
//!
//! The active segment's `.log` file is evictable too: the next append (or
//! fsync round) reopens it. Data written through a descriptor that was then
//! closed is still in the inode's page cache, and an fsync on any
//! descriptor of the inode writes it back: Linux keeps dirty pages and
//! writeback errors per inode, not per descriptor. What must not happen is
//! that a failed writeback is reported once, to nobody, so that a later
//! fsync succeeds and data that never reached the disk is acknowledged (the
//! reason a failed fsync poisons the log, see DESIGN.md):
//!
//! - Since Linux 4.16 a writeback error nobody has seen yet is reported to
//!   the next fsync of any descriptor, including one opened after the error
//!   (`errseq`), so reopening and fsyncing reports it on local file systems,
//!   where close(2) does not look at writeback errors.
//! - Where close(2) does report them (NFS, FUSE flush on close), the error
//!   is taken: the last owner of a descriptor closes it explicitly
//!   ([`FileHandle::close`]) and records a failure in its log's
//!   [`CloseErrors`]; the log checks it before every append and after every
//!   fsync round, and poisons itself, so the data written through that
//!   descriptor is never acknowledged as durable.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use crate::fs::{FileHandle, FileSystem, OpenMode};

/// Descriptors kept for everything that is not a segment file when the
/// budget is derived from the limits (checkpoints, recovery scans, index
/// files while they grow, temporary files, the process's own).
pub const RESERVED_DESCRIPTORS: usize = 128;
/// The smallest descriptor budget derived from limits, whatever the reserve.
pub const MIN_DESCRIPTORS: usize = 32;
/// `vm.max_map_count` when it cannot be read (the Linux default).
pub const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

/// How many descriptors and maps the segments of all logs sharing a
/// [`Handles`] may keep open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleLimits {
    /// Open segment files (`.log`; index files are closed once mapped).
    pub descriptors: usize,
    /// Memory maps (two per segment whose indexes are mapped).
    pub maps: usize,
}

impl HandleLimits {
    /// A budget derived from the process's limits: the soft RLIMIT_NOFILE
    /// minus `reserved` descriptors (for connections and other files; at
    /// most half the limit is reserved, and at least [`MIN_DESCRIPTORS`]
    /// are left), and `vm.max_map_count` minus a margin of an eighth (at
    /// least 1,024) for the allocator, thread stacks and libraries.
    pub fn from_system(reserved: usize) -> HandleLimits {
        HandleLimits::derive(soft_nofile(), max_map_count(), reserved)
    }

    /// [`HandleLimits::from_system`] for given limits.
    pub fn derive(nofile: usize, max_map_count: usize, reserved: usize) -> HandleLimits {
        let reserved = reserved.min(nofile / 2);
        let margin = (max_map_count / 8).max(1024);
        HandleLimits {
            descriptors: nofile.saturating_sub(reserved).max(MIN_DESCRIPTORS),
            maps: max_map_count.saturating_sub(margin).max(64),
        }
    }
}

/// The soft RLIMIT_NOFILE (1024 if it cannot be read; `usize::MAX` when
/// unlimited).
pub fn soft_nofile() -> usize {
    nofile_limits().map_or(1024, |(soft, _)| soft)
}

/// The soft and hard RLIMIT_NOFILE.
pub fn nofile_limits() -> io::Result<(usize, usize)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes only `lim`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let size = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            usize::MAX
        } else {
            usize::try_from(v).unwrap_or(usize::MAX)
        }
    };
    Ok((size(lim.rlim_cur), size(lim.rlim_max)))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit
/// before and after.
pub fn raise_nofile_limit() -> io::Result<(usize, usize)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes only `lim`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur != lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: reads only `lim`, a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (after, _) = nofile_limits()?;
    Ok((usize::try_from(before).unwrap_or(usize::MAX), after))
}

/// `vm.max_map_count`, or [`DEFAULT_MAX_MAP_COUNT`] if it cannot be read.
pub fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT)
}

/// What is open under a [`Handles`] budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleStats {
    /// The budget.
    pub limits: HandleLimits,
    /// Segment file descriptors open now (held by the cache or by readers).
    pub descriptors: usize,
    /// Index maps now.
    pub maps: usize,
    /// Files closed and maps unmapped to stay within the budget, since the
    /// budget was made.
    pub evictions: u64,
}

/// A budget of open descriptors and maps shared by logs, with the cache of
/// their segments' open files and index maps. Cheap to clone (shared).
#[derive(Clone)]
pub struct Handles {
    budget: Arc<Budget>,
}

impl fmt::Debug for Handles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handles")
            .field("stats", &self.stats())
            .finish()
    }
}

struct Budget {
    max_descriptors: AtomicUsize,
    max_maps: AtomicUsize,
    descriptors: AtomicUsize,
    maps: AtomicUsize,
    evictions: AtomicU64,
    /// Open entries in clock order.
    ring: Mutex<VecDeque<Weak<dyn Cached>>>,
}

impl Handles {
    /// A budget of its own.
    pub fn new(limits: HandleLimits) -> Handles {
        Handles {
            budget: Arc::new(Budget {
                max_descriptors: AtomicUsize::new(limits.descriptors),
                max_maps: AtomicUsize::new(limits.maps),
                descriptors: AtomicUsize::new(0),
                maps: AtomicUsize::new(0),
                evictions: AtomicU64::new(0),
                ring: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// The process-wide budget, used by every log opened without one of
    /// its own. It starts as [`HandleLimits::from_system`] with
    /// [`RESERVED_DESCRIPTORS`] set aside (limits are not raised); a daemon
    /// that raised its limits sets it again with [`Handles::set_limits`].
    pub fn process() -> &'static Handles {
        static PROCESS: OnceLock<Handles> = OnceLock::new();
        PROCESS.get_or_init(|| Handles::new(HandleLimits::from_system(RESERVED_DESCRIPTORS)))
    }

    /// Changes the budget; files and maps over a smaller one are closed as
    /// they become unused.
    pub fn set_limits(&self, limits: HandleLimits) {
        self.budget
            .max_descriptors
            .store(limits.descriptors, Ordering::Relaxed);
        self.budget.max_maps.store(limits.maps, Ordering::Relaxed);
        self.make_room(0, 0);
    }

    /// The budget.
    pub fn limits(&self) -> HandleLimits {
        HandleLimits {
            descriptors: self.budget.max_descriptors.load(Ordering::Relaxed),
            maps: self.budget.max_maps.load(Ordering::Relaxed),
        }
    }

    /// What is open now.
    pub fn stats(&self) -> HandleStats {
        HandleStats {
            limits: self.limits(),
            descriptors: self.budget.descriptors.load(Ordering::Relaxed),
            maps: self.budget.maps.load(Ordering::Relaxed),
            evictions: self.budget.evictions.load(Ordering::Relaxed),
        }
    }

    /// Closes least recently used entries nobody holds until `descriptors`
    /// more files and `maps` more maps fit (or nothing more can be closed).
    pub(crate) fn make_room(&self, descriptors: usize, maps: usize) {
        let b = &*self.budget;
        let over_fds = || {
            b.descriptors.load(Ordering::Relaxed) + descriptors
                > b.max_descriptors.load(Ordering::Relaxed)
        };
        let over_maps =
            || b.maps.load(Ordering::Relaxed) + maps > b.max_maps.load(Ordering::Relaxed);
        if !over_fds() && !over_maps() {
            return;
        }
        let mut ring = b.ring.lock();
        // Two rounds: the first may only clear "recently used" flags.
        let mut steps = ring.len() * 2 + 1;
        while steps > 0 && (over_fds() || over_maps()) {
            steps -= 1;
            let Some(weak) = ring.pop_front() else {
                break;
            };
            let Some(entry) = weak.upgrade() else {
                continue;
            };
            let state = entry.state();
            if state.referenced.swap(false, Ordering::Relaxed) {
                ring.push_back(weak);
                continue;
            }
            let (fds, mapped) = entry.cost();
            let useful = (over_fds() && fds > 0) || (over_maps() && mapped > 0);
            if useful && entry.evict() {
                b.evictions.fetch_add(1, Ordering::Relaxed);
            } else {
                ring.push_back(weak);
            }
        }
    }

    /// Puts an entry that was just opened into the clock.
    fn list(&self, entry: Weak<dyn Cached>, state: &CacheState) {
        if state.listed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut ring = self.budget.ring.lock();
        ring.push_back(entry);
        // Entries of dropped segments leave when the sweep meets them; sweep
        // them out here if no pressure ever runs it.
        let live = self.budget.descriptors.load(Ordering::Relaxed)
            + self.budget.maps.load(Ordering::Relaxed);
        if ring.len() > 2 * live + 1024 {
            ring.retain(|w| w.strong_count() > 0);
        }
    }

    /// Counts `file` as open until its last user drops it; a failure that
    /// closing it reports goes to `errors`.
    pub(crate) fn track(
        &self,
        file: Arc<dyn FileHandle>,
        path: &Path,
        errors: Option<Arc<CloseErrors>>,
    ) -> Arc<dyn FileHandle> {
        self.budget.descriptors.fetch_add(1, Ordering::Relaxed);
        Arc::new(OpenFile {
            inner: file,
            path: path.to_path_buf(),
            budget: Arc::clone(&self.budget),
            errors,
        })
    }

    /// Opens a file, making room for it first, and counts it.
    pub(crate) fn open(
        &self,
        fs: &dyn FileSystem,
        path: &Path,
        mode: OpenMode,
        errors: Option<Arc<CloseErrors>>,
    ) -> io::Result<Arc<dyn FileHandle>> {
        self.make_room(1, 0);
        let file = fs.open(path, mode)?;
        Ok(self.track(file, path, errors))
    }

    /// Counts one map until the token drops.
    pub(crate) fn map_token(&self) -> MapToken {
        self.budget.maps.fetch_add(1, Ordering::Relaxed);
        MapToken {
            budget: Arc::clone(&self.budget),
        }
    }
}

/// One counted map; dropped with the map.
pub(crate) struct MapToken {
    budget: Arc<Budget>,
}

impl fmt::Debug for MapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MapToken")
    }
}

impl Drop for MapToken {
    fn drop(&mut self) {
        self.budget.maps.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The first failure a log's descriptors reported when closed (see the
/// module doc): the log poisons itself when it finds one.
#[derive(Debug, Default)]
pub(crate) struct CloseErrors {
    first: OnceLock<(PathBuf, io::ErrorKind, String)>,
}

impl CloseErrors {
    fn record(&self, path: &Path, e: &io::Error) {
        if self
            .first
            .set((path.to_path_buf(), e.kind(), e.to_string()))
            .is_ok()
        {
            tracing::error!(file = %path.display(), error = %e, "closing a segment file reported a failed writeback");
        }
    }

    /// The first failure, as the error of a close.
    pub fn get(&self) -> Option<(PathBuf, io::Error)> {
        self.first
            .get()
            .map(|(p, kind, msg)| (p.clone(), io::Error::new(*kind, msg.clone())))
    }
}

/// A counted open file.
struct OpenFile {
    inner: Arc<dyn FileHandle>,
    path: PathBuf,
    budget: Arc<Budget>,
    errors: Option<Arc<CloseErrors>>,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile")
            .field("path", &self.path)
            .finish()
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            if let Err(e) = inner.close() {
                match &self.errors {
                    Some(errors) => errors.record(&self.path, &e),
                    None => {
                        tracing::warn!(file = %self.path.display(), error = %e, "closing a file failed")
                    }
                }
            }
        }
        self.budget.descriptors.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FileHandle for OpenFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn read_at_cached(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at_cached(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn start_writeback(&self, pos: u64, len: u64) {
        self.inner.start_writeback(pos, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn std_file(&self) -> &File {
        self.inner.std_file()
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }
}

/// The clock state of a cache entry.
#[derive(Debug, Default)]
pub(crate) struct CacheState {
    /// Used since the sweep last passed.
    referenced: AtomicBool,
    /// In the clock (open).
    listed: AtomicBool,
}

impl CacheState {
    /// Notes that the entry left the clock (called by `evict`, under the
    /// entry's lock, so a reopen racing with it lists it again).
    pub fn evicted(&self) {
        self.listed.store(false, Ordering::Release);
    }

    /// Marks the entry recently used.
    pub fn touch(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }
}

/// Something the budget can close.
pub(crate) trait Cached: Send + Sync {
    fn state(&self) -> &CacheState;
    /// Descriptors and maps that evicting it would free.
    fn cost(&self) -> (usize, usize);
    /// Drops the cache's reference if nobody else holds one, without
    /// blocking, and calls [`CacheState::evicted`]; true if it did.
    fn evict(&self) -> bool;
}

/// Puts `entry`, just opened, into `handles`' clock.
pub(crate) fn list<C: Cached + 'static>(handles: &Handles, entry: &Arc<C>) {
    let weak: Weak<dyn Cached> = Arc::downgrade(entry) as Weak<dyn Cached>;
    handles.list(weak, entry.state());
}

/// A segment's `.log` file: open while in use or while the budget has room.
pub(crate) struct CachedFile {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    handles: Handles,
    errors: Arc<CloseErrors>,
    /// Reopen for writing (the active segment) or reading.
    writable: AtomicBool,
    /// Removed from its log: never reopened.
    retired: AtomicBool,
    open: Mutex<Option<Arc<dyn FileHandle>>>,
    state: CacheState,
}

impl fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFile")
            .field("path", &self.path)
            .field("open", &self.open.lock().is_some())
            .finish()
    }
}

impl CachedFile {
    /// A file opened on first use (`writable`: for appending).
    pub fn new(
        path: PathBuf,
        fs: Arc<dyn FileSystem>,
        handles: Handles,
        errors: Arc<CloseErrors>,
        writable: bool,
    ) -> Arc<CachedFile> {
        Arc::new(CachedFile {
            path,
            fs,
            handles,
            errors,
            writable: AtomicBool::new(writable),
            retired: AtomicBool::new(false),
            open: Mutex::new(None),
            state: CacheState::default(),
        })
    }

    /// Caches `file`, already open (raw from the file layer), and counts it.
    pub fn put(self: &Arc<Self>, file: Arc<dyn FileHandle>) {
        let file = self
            .handles
            .track(file, &self.path, Some(Arc::clone(&self.errors)));
        let mut open = self.open.lock();
        *open = Some(file);
        self.state.touch();
        list(&self.handles, self);
        drop(open);
        self.handles.make_room(0, 0);
    }

    /// The open file (reopened if it was closed). Holding it keeps it open.
    pub fn get(self: &Arc<Self>) -> io::Result<Arc<dyn FileHandle>> {
        self.state.touch();
        let mut open = self.open.lock();
        if let Some(f) = open.as_ref() {
            return Ok(Arc::clone(f));
        }
        if self.retired.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "segment removed from the log",
            ));
        }
        let mode = if self.writable.load(Ordering::Acquire) {
            OpenMode::ReadWrite
        } else {
            OpenMode::ReadOnly
        };
        let file = self.handles.open(
            self.fs.as_ref(),
            &self.path,
            mode,
            Some(Arc::clone(&self.errors)),
        )?;
        *open = Some(Arc::clone(&file));
        list(&self.handles, self);
        Ok(file)
    }

    /// Future reopens are for reading only.
    pub fn seal(&self) {
        self.writable.store(false, Ordering::Release);
    }

    /// The segment left its log: the file is never reopened.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

impl Cached for CachedFile {
    fn state(&self) -> &CacheState {
        &self.state
    }
    fn cost(&self) -> (usize, usize) {
        (1, 0)
    }
    fn evict(&self) -> bool {
        let Some(mut open) = self.open.try_lock() else {
            return false;
        };
        match open.as_ref() {
            Some(f) if Arc::strong_count(f) == 1 => {
                *open = None;
                self.state.evicted();
                true
            }
            _ => false,
        }
    }
}
