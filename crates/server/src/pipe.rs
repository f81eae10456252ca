//! Pipes for `splice(2)`: the page-cache pages of a fetch's records go from
//! a segment file into a pipe and from the pipe into the socket, with no
//! copy through user space ([`crate::sender::SendMode::Splice`]).
//!
//! `sendfile(2)` does the same through a pipe of the kernel's own, 16 pages
//! (64 KiB) at a time. Moving a MiB per call through a pipe of 1 MiB made
//! consumes over loopback 1.05-1.25x faster, with 0.79x the broker's CPU
//! per GB at 8 partitions (Linux 6.18; docs/BENCHMARKS.md, "splice").
//!
//! Each pipe is two descriptors, so they are pooled, not kept per
//! connection: a send takes one from the pool and gives it back once it is
//! empty again. A pipe that still holds bytes when its send fails (the
//! socket closed under it) is closed instead, so no stray bytes reach the
//! next connection. At most [`PIPES`] exist at once; a send that finds none
//! free, or cannot make one (out of descriptors; a system that only makes
//! small pipes), uses `sendfile` (no pipe needed), counted in
//! `pubsub_fetch_sendfile_fallbacks_total`. [`DESCRIPTORS`] is what the pool
//! can hold, counted in the connection reserve next to the storage budget.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Most pipes alive at once (idle in the pool or held by a send).
pub const PIPES: usize = 16;

/// Descriptors the pool may hold: two per pipe.
pub const DESCRIPTORS: usize = 2 * PIPES;

/// The size asked of each pipe: Linux's default `pipe-max-size`, what an
/// unprivileged process may set.
const PIPE_BYTES: i32 = 1 << 20;

/// The smallest pipe worth splicing through.
const MIN_PIPE_BYTES: usize = 256 << 10;

/// Pipes not in use.
static IDLE: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());

/// Pipes alive, idle or held.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Sends that found no pipe.
static FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// Set once a pipe could not be made as needed: no more are tried (the
/// system's limits do not change under a running broker often enough to
/// retry on every send).
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// A non-blocking pipe and how many bytes it holds.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes spliced in and not yet out.
    pub held: usize,
}

impl Pipe {
    /// The read end's descriptor.
    pub fn read_fd(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// The write end's descriptor.
    pub fn write_fd(&self) -> i32 {
        self.write.as_raw_fd()
    }

    /// Most bytes one fill should ask for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A new pipe: non-blocking both ends, resized to 1 MiB. A pipe the
    /// system will not make at least [`MIN_PIPE_BYTES`] (a lowered
    /// `pipe-max-size`, or a user over `pipe-user-pages-soft`, whose new
    /// pipes get two pages) is refused: two splices per few KiB would cost
    /// more than `sendfile`.
    fn open() -> std::io::Result<Pipe> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is valid for two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both are open descriptors owned by none.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on an open descriptor; a failure leaves the pipe as
        // it was and is read back below.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
        // SAFETY: as above.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(size).unwrap_or(0);
        if capacity < MIN_PIPE_BYTES {
            return Err(std::io::Error::other(format!(
                "the system makes pipes of {capacity} bytes, under {MIN_PIPE_BYTES}"
            )));
        }
        Ok(Pipe {
            read,
            write,
            capacity,
            held: 0,
        })
    }
}

/// A pipe taken from the pool for one send; back to the pool when dropped
/// empty, closed when dropped holding bytes.
#[derive(Debug)]
pub struct Lease(Option<Pipe>);

impl std::ops::Deref for Lease {
    type Target = Pipe;
    fn deref(&self) -> &Pipe {
        self.0
            .as_ref()
            .expect("a lease holds its pipe until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Pipe {
        self.0
            .as_mut()
            .expect("a lease holds its pipe until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(pipe) = self.0.take() else { return };
        if pipe.held == 0 {
            if let Ok(mut idle) = IDLE.lock() {
                idle.push(pipe);
                return;
            }
        }
        drop(pipe);
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An idle pipe, or a new one while fewer than [`PIPES`] exist; `None`
/// when all are in use or a pipe cannot be made (out of descriptors, or
/// only small pipes: then none is tried again).
pub fn take() -> Option<Lease> {
    if let Some(pipe) = IDLE.lock().ok().and_then(|mut idle| idle.pop()) {
        return Some(Lease(Some(pipe)));
    }
    let counted = !UNAVAILABLE.load(Ordering::Relaxed)
        && LIVE
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < PIPES).then_some(n + 1)
            })
            .is_ok();
    if !counted {
        FALLBACKS.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    match Pipe::open() {
        Ok(pipe) => Some(Lease(Some(pipe))),
        Err(e) => {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            FALLBACKS.fetch_add(1, Ordering::Relaxed);
            if e.raw_os_error().is_none() {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "fetch answers use sendfile, not splice");
            } else {
                tracing::debug!(error = %e, "no pipe for splice; sending with sendfile");
            }
            None
        }
    }
}

/// Pipes alive now, idle or held (for tests).
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Sends so far that found no pipe and used `sendfile` (the metric
/// `pubsub_fetch_sendfile_fallbacks_total`).
pub fn fallbacks() -> usize {
    FALLBACKS.load(Ordering::Relaxed)
}
