//! The file layer under the log. Every write, sync, rename and delete the log
//! makes goes through [`FileSystem`] and [`FileHandle`], so tests can put the
//! fault-injecting [`FaultFs`](crate::fault::FaultFs) underneath and prove that
//! a failed write or fsync is never acknowledged.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::ManuallyDrop;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use std::cell::Cell;

thread_local! {
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
    static CACHED_ONLY: Cell<bool> = const { Cell::new(false) };
    static FSYNCS: Cell<u64> = const { Cell::new(0) };
}

/// File and directory fsyncs [`RealFs`] made on this thread so far (those
/// deferred by [`defer_syncs`] not counted): what an operation costs in
/// fsyncs, for tests that count them.
pub fn fsyncs_on_this_thread() -> u64 {
    FSYNCS.with(Cell::get)
}

fn count_fsync() {
    FSYNCS.with(|n| n.set(n.get() + 1));
}

/// Runs `f` with this thread's batch-header reads (the lookups of
/// [`crate::Log::read_range`] and its kin) answered from the page cache
/// only: a read that would wait for the disk fails at once with
/// `ErrorKind::WouldBlock` ([`FileHandle::read_at_cached`]), and so does the
/// whole call. The caller then runs it again where it may block. A network
/// server's worker thread answers a consumer near the tail this way without
/// handing its core to another thread for a read the page cache holds.
/// Nested calls are fine.
pub fn from_page_cache_only<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CACHED_ONLY.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CACHED_ONLY.with(|c| c.replace(true)));
    f()
}

/// True inside [`from_page_cache_only`] on this thread.
pub(crate) fn page_cache_only() -> bool {
    CACHED_ONLY.with(Cell::get)
}

/// While alive, fsyncs (file and directory) made through [`RealFs`] on this
/// thread are skipped: the caller owes one [`sync_filesystem`] before it
/// relies on anything written meanwhile (before it answers a client, or
/// writes a file that says earlier writes are durable). A broker opening,
/// creating or closing thousands of partitions pays one filesystem sync
/// instead of several fsyncs per partition. Nested guards are fine.
#[derive(Debug)]
#[must_use = "syncs are deferred only while the guard lives"]
pub struct DeferSyncs {
    previous: bool,
}

/// Defers fsyncs on this thread until the guard drops (see [`DeferSyncs`]).
pub fn defer_syncs() -> DeferSyncs {
    DeferSyncs {
        previous: DEFERRED.with(|d| d.replace(true)),
    }
}

impl Drop for DeferSyncs {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.set(self.previous));
    }
}

/// True while this thread defers fsyncs.
pub fn syncs_deferred() -> bool {
    DEFERRED.with(Cell::get)
}

/// Makes everything written to the filesystem holding `path` durable: one
/// `syncfs(2)` (which, unlike `sync(2)`, reports writeback errors).
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call reads no user memory.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        dir.sync_all()
    }
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write; create if missing; keep contents.
    ReadWrite,
    /// Read and write; create, or empty an existing file.
    Truncate,
    /// Read only; the file must exist.
    ReadOnly,
}

/// An open file. Positional reads and writes, so one handle serves
/// concurrent readers and the single writer without a shared cursor.
#[allow(clippy::len_without_is_empty)] // a file, not a collection
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// Reads at `pos`; returns bytes read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// As [`FileHandle::read_at`] from the page cache only: fails with
    /// `ErrorKind::WouldBlock` rather than wait for the disk (Linux
    /// `preadv2(RWF_NOWAIT)`; may return fewer bytes, those cached). The
    /// default cannot tell, and always fails so.
    fn read_at_cached(&self, _buf: &mut [u8], _pos: u64) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    /// Writes all of `buf` at `pos`, or fails (possibly after a partial write).
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// fdatasync: data and the metadata needed to read it back.
    fn sync_data(&self) -> io::Result<()>;
    /// Asks the kernel to start writing `len` bytes at `pos` back to disk,
    /// without waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`).
    /// A hint that keeps dirty pages from piling up until the kernel
    /// throttles every writer at once; it guarantees nothing.
    fn start_writeback(&self, _pos: u64, _len: u64) {}
    /// Truncates or extends.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current length.
    fn len(&self) -> io::Result<u64>;
    /// The OS file, for memory-mapping indexes.
    fn std_file(&self) -> &File;
    /// Closes the descriptor now and returns what close(2) reports (on NFS
    /// and FUSE a failed writeback can surface here and nowhere else). Only
    /// the handle's last owner calls it, right before dropping it; the
    /// handle is unusable afterwards. The default does nothing: the file
    /// closes when dropped.
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Fills `buf` from `pos`, failing with `UnexpectedEof` at end of file.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        crate::scan::read_exact(self, buf, pos)
    }
}

/// File-system operations the log needs besides reading and writing files.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Deletes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory, making renames, creations and deletions in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// A real file.
#[derive(Debug)]
pub struct RealFile {
    file: ManuallyDrop<File>,
    /// Set once [`FileHandle::close`] closed the descriptor.
    closed: bool,
}

impl RealFile {
    /// Wraps an open file.
    pub fn new(file: File) -> Self {
        RealFile {
            file: ManuallyDrop::new(file),
            closed: false,
        }
    }

    fn check_open(&self) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        Ok(())
    }
}

impl Drop for RealFile {
    fn drop(&mut self) {
        if !self.closed {
            // SAFETY: dropped exactly once, here; never used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.file) }
        }
    }
}

impl FileHandle for RealFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.check_open()?;
        self.file.read_at(buf, pos)
    }
    #[cfg(target_os = "linux")]
    fn read_at_cached(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.check_open()?;
        let offset = libc::off_t::try_from(pos).map_err(io::Error::other)?;
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: `iov` names `buf`, valid for writes of its length for the
        // call; the descriptor is open (checked above, held by `self`).
        let n = unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        match usize::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => {
                let e = io::Error::last_os_error();
                // Not supported by this kernel or file system: cannot tell.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)
                ) {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Err(e)
                }
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.check_open()?;
        self.file.write_all_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check_open()?;
        if syncs_deferred() {
            return Ok(());
        }
        count_fsync();
        self.file.sync_data()
    }
    #[cfg(target_os = "linux")]
    fn start_writeback(&self, pos: u64, len: u64) {
        use std::os::fd::AsRawFd;
        if self.closed {
            return;
        }
        let (Ok(pos), Ok(len)) = (libc::off64_t::try_from(pos), libc::off64_t::try_from(len))
        else {
            return;
        };
        // SAFETY: a valid open descriptor; the call reads no user memory.
        // Failure only means no early writeback (fsync still reports errors).
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), pos, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_open()?;
        self.file.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.check_open()?;
        Ok(self.file.metadata()?.len())
    }
    fn std_file(&self) -> &File {
        &self.file
    }
    fn close(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        // SAFETY: the descriptor is owned by `self.file`, which is never
        // dropped or used once `closed` is set, so it is closed exactly once.
        let rc = unsafe { libc::close(self.file.as_raw_fd()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl FileSystem for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::ReadWrite => options.read(true).write(true).create(true),
            OpenMode::Truncate => options.read(true).write(true).create(true).truncate(true),
            OpenMode::ReadOnly => options.read(true),
        };
        Ok(Arc::new(RealFile::new(options.open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if syncs_deferred() {
            return Ok(());
        }
        count_fsync();
        File::open(dir)?.sync_all()
    }
}
