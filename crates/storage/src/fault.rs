//! A fault-injecting file layer for tests: makes fsyncs fail, writes run out
//! of space part-way, file creation run out of space, opens find no
//! descriptor (EMFILE), or the "process" die
//! after a given number of operations (every later write, sync, rename and
//! delete fails and changes nothing), so every step of a multi-file protocol
//! can be interrupted.
//!
//! Memory-mapped index writes bypass this layer; indexes are derived data and
//! are rebuilt from the log after any failure.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::fs::{FileHandle, FileSystem, OpenMode, RealFs};

/// What to break. Shared between the test and the [`FaultFs`] under the log.
#[derive(Debug, Default)]
pub struct FaultPlan {
    fail_syncs: AtomicBool,
    /// Errno of a failing fsync; 0 = an EIO-like error.
    sync_errno: AtomicI32,
    fail_closes: AtomicBool,
    /// Bytes that may still be written before ENOSPC; negative = unlimited.
    write_budget: AtomicI64,
    /// Files that may still be created (opened with `Truncate`) before
    /// ENOSPC; negative = unlimited.
    create_budget: AtomicI64,
    /// Errno with which opens of matching files fail; 0 = none.
    open_errno: AtomicI32,
    /// The end of the names of the files whose opens fail ("" = all).
    open_suffix: Mutex<String>,
    /// Errno with which a `set_len` that shrinks a file fails; 0 = none.
    shrink_errno: AtomicI32,
    /// Mutating operations allowed before the simulated crash; negative = never.
    ops_before_crash: AtomicI64,
    ops: AtomicU64,
    crashed: AtomicBool,
    syncs: AtomicU64,
    /// Reads (`read_at` calls) of any file.
    reads: AtomicU64,
    /// Every file opened, in order.
    opened: Mutex<Vec<std::path::PathBuf>>,
    hold: Mutex<bool>,
    /// fsyncs blocked by `hold` now.
    waiting: AtomicU64,
    released: Condvar,
}

impl FaultPlan {
    /// A plan that breaks nothing (yet).
    pub fn new() -> Arc<Self> {
        Arc::new(FaultPlan {
            write_budget: AtomicI64::new(-1),
            create_budget: AtomicI64::new(-1),
            ops_before_crash: AtomicI64::new(-1),
            ..FaultPlan::default()
        })
    }

    /// Makes every fsync (file or directory) fail with EIO.
    pub fn fail_syncs(&self, fail: bool) {
        self.sync_errno.store(0, Ordering::SeqCst);
        self.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Makes every fsync (file or directory) fail with `errno` (ENOSPC, as
    /// writeback that found no space reports it).
    pub fn fail_syncs_with(&self, errno: i32) {
        self.sync_errno.store(errno, Ordering::SeqCst);
        self.fail_syncs.store(true, Ordering::SeqCst);
    }

    /// Makes closing a file report EIO (after closing it), as NFS does for
    /// a writeback that failed.
    pub fn fail_closes(&self, fail: bool) {
        self.fail_closes.store(fail, Ordering::SeqCst);
    }

    /// Lets `bytes` more bytes be written, then fails writes with ENOSPC
    /// (after writing what fits, as a real full disk does).
    pub fn limit_writes(&self, bytes: u64) {
        self.write_budget
            .store(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Removes the write limit.
    pub fn unlimited_writes(&self) {
        self.write_budget.store(-1, Ordering::SeqCst);
    }

    /// Lets `files` more files be created (opened with
    /// [`OpenMode::Truncate`]: segments, indexes, checkpoint temp files),
    /// then fails creation with ENOSPC, as a directory that cannot grow does.
    pub fn limit_creates(&self, files: u64) {
        self.create_budget
            .store(i64::try_from(files).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Removes the creation limit.
    pub fn unlimited_creates(&self) {
        self.create_budget.store(-1, Ordering::SeqCst);
    }

    fn create(&self) -> io::Result<()> {
        let left = self.create_budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        if left > 0 {
            self.create_budget.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Makes every open of a file whose name ends with `suffix` ("" for
    /// every file) fail with `errno` (EMFILE, as a process out of
    /// descriptors sees it) before anything is opened or created; 0 lets
    /// them succeed again.
    pub fn fail_opens_with(&self, errno: i32, suffix: &str) {
        *self.open_suffix.lock() = suffix.to_string();
        self.open_errno.store(errno, Ordering::SeqCst);
    }

    fn open(&self, path: &Path) -> io::Result<()> {
        self.opened.lock().push(path.to_path_buf());
        let errno = self.open_errno.load(Ordering::SeqCst);
        if errno != 0
            && path
                .to_string_lossy()
                .ends_with(self.open_suffix.lock().as_str())
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(())
    }

    /// Makes every `set_len` that shrinks a file (a trim, a cut) fail with
    /// `errno` (ENOSPC: a copy-on-write file system may need space to free
    /// some); 0 lets them succeed again.
    pub fn fail_shrinks_with(&self, errno: i32) {
        self.shrink_errno.store(errno, Ordering::SeqCst);
    }

    /// Lets `ops` more mutating operations (write, sync, set_len, rename,
    /// remove, open for writing) succeed, then "crashes": all later ones fail.
    pub fn crash_after(&self, ops: u64) {
        self.ops_before_crash
            .store(i64::try_from(ops).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Mutating operations performed so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// File fsyncs that reached the disk (directory fsyncs not counted).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Reads of files so far (`read_at` calls; a read the kernel answers
    /// short counts once per call). Memory-mapped index reads are not seen.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Opens so far of files whose names end with `suffix` (".log",
    /// ".index", "" for all).
    pub fn opens(&self, suffix: &str) -> usize {
        let opened = self.opened.lock();
        opened
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .count()
    }

    /// While held, every file fsync blocks until [`FaultPlan::release_syncs`]
    /// (lets a test line up many waiters behind one fsync).
    pub fn hold_syncs(&self) {
        *self.hold.lock() = true;
    }

    /// Lets held fsyncs proceed.
    pub fn release_syncs(&self) {
        *self.hold.lock() = false;
        self.released.notify_all();
    }

    /// fsyncs blocked by [`FaultPlan::hold_syncs`] now (a test waits for
    /// one to be in flight).
    pub fn syncs_waiting(&self) -> u64 {
        self.waiting.load(Ordering::SeqCst)
    }

    fn wait_if_held(&self) {
        let mut held = self.hold.lock();
        if *held {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *held {
                self.released.wait(&mut held);
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// True once the simulated crash happened.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    fn mutate(&self) -> io::Result<()> {
        if self.crashed() {
            return Err(crash());
        }
        let left = self.ops_before_crash.load(Ordering::SeqCst);
        if left == 0 {
            self.crashed.store(true, Ordering::SeqCst);
            return Err(crash());
        }
        if left > 0 {
            self.ops_before_crash.store(left - 1, Ordering::SeqCst);
        }
        self.ops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.mutate()?;
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(match self.sync_errno.load(Ordering::SeqCst) {
                0 => io::Error::other("injected fsync failure (EIO)"),
                errno => io::Error::from_raw_os_error(errno),
            });
        }
        Ok(())
    }
}

fn crash() -> io::Error {
    io::Error::other("injected crash: the process is gone")
}

/// A [`FileSystem`] that obeys a [`FaultPlan`] on top of the real one.
#[derive(Debug, Clone)]
pub struct FaultFs {
    plan: Arc<FaultPlan>,
}

impl FaultFs {
    /// A fault-injecting file system driven by `plan`.
    pub fn new(plan: Arc<FaultPlan>) -> Self {
        FaultFs { plan }
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Arc<dyn FileHandle>,
    plan: Arc<FaultPlan>,
}

impl FileHandle for FaultFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.plan.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_at(buf, pos)
    }

    fn read_at_cached(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.plan.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_at_cached(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.plan.mutate()?;
        let budget = self.plan.write_budget.load(Ordering::SeqCst);
        if budget < 0 || budget as u64 >= buf.len() as u64 {
            if budget >= 0 {
                self.plan
                    .write_budget
                    .fetch_sub(buf.len() as i64, Ordering::SeqCst);
            }
            return self.inner.write_all_at(buf, pos);
        }
        // A full disk: write what fits, then fail.
        let fits = budget as usize;
        self.inner.write_all_at(&buf[..fits], pos)?;
        self.plan.write_budget.store(0, Ordering::SeqCst);
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.plan.wait_if_held();
        self.plan.sync()?;
        self.inner.sync_data()?;
        self.plan.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.plan.mutate()?;
        let errno = self.plan.shrink_errno.load(Ordering::SeqCst);
        if errno != 0 && len < self.inner.len()? {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn std_file(&self) -> &File {
        self.inner.std_file()
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.close()?;
        }
        if self.plan.fail_closes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected failure on close (EIO)"));
        }
        Ok(())
    }
}

impl FileSystem for FaultFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        self.plan.open(path)?;
        if mode != OpenMode::ReadOnly {
            self.plan.mutate()?;
        }
        if mode == OpenMode::Truncate {
            self.plan.create()?;
        }
        let inner = RealFs.open(path, mode)?;
        Ok(Arc::new(FaultFile {
            inner,
            plan: Arc::clone(&self.plan),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.plan.mutate()?;
        RealFs.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.plan.mutate()?;
        RealFs.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.plan.sync()?;
        RealFs.sync_dir(dir)
    }
}
