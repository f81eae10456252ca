//! The write side of a connection: response frames out, in order, with
//! record bytes sent from the segment files.
//!
//! A frame is a list of chunks ([`crate::fetch_response`]): bytes in memory
//! and file ranges. Bytes gather in a buffer so that answers to pipelined
//! requests leave in one write (the caller flushes when no answer is
//! waiting). A file range goes straight from the page cache to the socket
//! (plaintext TCP on Linux): with `splice(2)` through a pooled 1 MiB pipe
//! ([`SendMode::Splice`], the default: [`crate::pipe`] says why it beats
//! `sendfile`), or with `sendfile(2)` ([`SendMode::Sendfile`], also what
//! a splice falls back to when no pipe is free). The buffer goes first, with `MSG_MORE` so the kernel packs the frame's header with
//! the records that follow rather than pushing a small segment on its own
//! (the socket has `TCP_NODELAY`). That write is the only one with
//! `MSG_MORE`: any other may be the last of a frame, whose tail the kernel
//! would then hold back (corked) until more data or an acknowledgement
//! came. Ranges under [`SENDFILE_MIN`] are
//! copied into the buffer instead: for a few KiB a `pread` costs no more
//! than a `sendfile`, and many small partitions then leave in one write.
//!
//! [`SendMode::Copy`] reads every range into the buffer and writes it: the
//! path for a transport that must see the bytes (TLS: [`FrameSender::over`]
//! takes any `AsyncWrite` and always copies) and for systems without
//! Linux's `sendfile`. All three modes write the same bytes
//! (tested in `tests/server/zero_copy.rs` of the server's test binary).
//!
//! `sendfile` (and a splice into the pipe) reads the disk when the range
//! is not in the page cache, which
//! must not stall the worker's other connections: such a range is sent
//! under [`blocking`] (`block_in_place`). A range wholly in the page cache
//! (asked of the kernel once per range with `cachestat(2)`, Linux 6.5+) is
//! sent on the worker itself: `block_in_place` hands the worker's core to
//! another thread and back, futex wakes and context switches that cost more
//! than the send of a few hundred KiB from memory. Where `cachestat` is not
//! available, every range goes under [`blocking`], as before. A page evicted
//! between the check and the send is read from disk on the worker: one read,
//! the rare case.
//!
//! A range whose file is truncated under the send (recovery or a
//! leader-epoch truncation rewriting the tail) makes `sendfile` come up
//! short. The frame's size prefix has already gone out, so the stream
//! cannot be repaired: the connection is closed (an error), as Kafka does;
//! the client reconnects and fetches again. Deleting a segment (retention,
//! DeleteRecords, compaction) does not truncate it, and the range holds the
//! file open, so those sends complete.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use pubsub_broker::FileRange;

use crate::context::blocking;
use crate::fetch_response::{Chunk, ResponseFrame};

/// Bytes gathered before a write.
pub const BUFFER: usize = 256 << 10;

/// File ranges shorter than this are copied into the buffer.
pub const SENDFILE_MIN: u64 = 16 << 10;

/// How file ranges reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// `sendfile(2)` from the page cache (Linux); small ranges copied.
    Sendfile,
    /// `splice(2)` from the page cache into a pooled 1 MiB pipe and from
    /// there into the socket (Linux); small ranges copied; `sendfile` when
    /// no pipe is free ([`crate::pipe`]).
    Splice,
    /// Read into memory, then written.
    Copy,
}

impl SendMode {
    /// The mode for a plaintext TCP socket on this system.
    pub fn plaintext() -> Self {
        if cfg!(target_os = "linux") {
            SendMode::Splice
        } else {
            SendMode::Copy
        }
    }
}

/// Where the frames go.
enum Out {
    /// A plaintext TCP socket, written with system calls (`send`,
    /// `sendfile`).
    Tcp(OwnedWriteHalf),
    /// Any byte stream (TLS): written and flushed through `AsyncWrite`.
    Stream(Box<dyn AsyncWrite + Send + Sync + Unpin>),
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Out::Tcp(_) => "Tcp",
            Out::Stream(_) => "Stream",
        })
    }
}

/// Writes response frames to one connection.
#[derive(Debug)]
pub struct FrameSender {
    out: Out,
    buf: Vec<u8>,
    mode: SendMode,
}

impl FrameSender {
    /// A sender on the TCP socket `stream`.
    pub fn new(stream: OwnedWriteHalf, mode: SendMode) -> Self {
        FrameSender {
            out: Out::Tcp(stream),
            buf: Vec::with_capacity(BUFFER),
            mode,
        }
    }

    /// A sender on any byte stream (a TLS session): records are copied.
    pub fn over(stream: impl AsyncWrite + Send + Sync + Unpin + 'static) -> Self {
        FrameSender {
            out: Out::Stream(Box::new(stream)),
            buf: Vec::with_capacity(BUFFER),
            mode: SendMode::Copy,
        }
    }

    /// Queues `frame`; bytes may stay buffered until [`FrameSender::flush`].
    pub async fn send(&mut self, frame: ResponseFrame) -> io::Result<()> {
        for chunk in frame.into_chunks() {
            match chunk {
                Chunk::Bytes(b) => self.bytes(b).await?,
                Chunk::File(r) if self.mode != SendMode::Copy && r.len() >= SENDFILE_MIN => {
                    self.write_buffer(true).await?;
                    self.send_range(&r).await?;
                }
                Chunk::File(r) => self.copy(&r).await?,
            }
        }
        Ok(())
    }

    /// Writes whatever is buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.write_buffer(false).await
    }

    /// Writes whatever is buffered and ends the stream: a TLS session
    /// sends its close_notify alert (RFC 8446 6.1, as Kafka's SSL
    /// transport does), so the client sees a clean end rather than a
    /// truncation; a TCP socket's write side is shut down when it is
    /// dropped.
    pub async fn close(&mut self) -> io::Result<()> {
        self.flush().await?;
        match &mut self.out {
            Out::Stream(w) => w.shutdown().await,
            Out::Tcp(_) => Ok(()),
        }
    }

    async fn bytes(&mut self, b: Bytes) -> io::Result<()> {
        if self.buf.len() + b.len() > BUFFER {
            self.write_buffer(false).await?;
        }
        if b.len() >= BUFFER {
            self.write_all(&b, false).await
        } else {
            self.buf.extend_from_slice(&b);
            Ok(())
        }
    }

    /// The copying path: the range read into the buffer (or, if larger
    /// than the buffer, into its own allocation) and written from there.
    async fn copy(&mut self, r: &FileRange) -> io::Result<()> {
        let len = usize::try_from(r.len()).map_err(io::Error::other)?;
        if self.buf.len() + len > BUFFER {
            self.write_buffer(false).await?;
        }
        if len >= BUFFER {
            let mut own = Vec::new();
            blocking(|| r.read_into(&mut own))?;
            self.write_all(&own, false).await
        } else {
            let buf = &mut self.buf;
            blocking(|| r.read_into(buf))
        }
    }

    async fn write_buffer(&mut self, more: bool) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_all(&buf, more).await;
        self.buf = buf;
        self.buf.clear();
        result
    }

    /// Writes all of `bytes`; `more`: further data follows at once (a
    /// stream is flushed unless it does).
    async fn write_all(&mut self, mut bytes: &[u8], more: bool) -> io::Result<()> {
        if let Out::Stream(w) = &mut self.out {
            w.write_all(bytes).await?;
            if !more {
                w.flush().await?;
            }
            return Ok(());
        }
        while !bytes.is_empty() {
            let n = self.raw_send(bytes, more).await?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    async fn raw_send(&self, bytes: &[u8], more: bool) -> io::Result<usize> {
        let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
        self.on_socket(|fd| {
            // SAFETY: `bytes` is valid for reads of its length for the call.
            byte_count(unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) })
        })
        .await
    }

    #[cfg(not(target_os = "linux"))]
    async fn raw_send(&self, bytes: &[u8], _more: bool) -> io::Result<usize> {
        self.on_socket(|fd| {
            // SAFETY: `bytes` is valid for reads of its length for the call.
            byte_count(unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), 0) })
        })
        .await
    }

    /// A file range in a zero-copy mode: through a pooled pipe with
    /// `splice` in [`SendMode::Splice`] when one is free, else `sendfile`.
    async fn send_range(&mut self, r: &FileRange) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.mode == SendMode::Splice {
            if let Some(pipe) = crate::pipe::take() {
                return self.splice(r, pipe).await;
            }
        }
        self.sendfile(r).await
    }

    /// Sends `r` through `pipe`: up to the pipe's size spliced in from the
    /// file, then spliced out to the socket until the pipe is empty, and
    /// again. The file side reads the disk when pages are not cached, so
    /// it runs as `sendfile` does (on the worker only when cached); the
    /// socket side waits for room like any write. A failure leaves the
    /// bytes in the pipe, which the lease then closes.
    #[cfg(target_os = "linux")]
    async fn splice(&self, r: &FileRange, mut pipe: crate::pipe::Lease) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let file_fd = r.file().std_file().as_raw_fd();
        let end = r.pos() + r.len();
        let mut pos = r.pos();
        let cached = in_page_cache(r.file().std_file(), pos, r.len()) == Some(true);
        while pos < end || pipe.held > 0 {
            if pipe.held == 0 {
                let mut offset = libc::loff_t::try_from(pos).map_err(io::Error::other)?;
                let count = usize::try_from((end - pos).min(pipe.capacity() as u64))
                    .map_err(io::Error::other)?;
                let pipe_in = pipe.write_fd();
                let mut fill = || {
                    // SAFETY: the file (held by the range) and the pipe are
                    // open for the call; `offset` is a valid pointer. The
                    // pipe is empty, so the call never waits for room.
                    byte_count(unsafe {
                        libc::splice(
                            file_fd,
                            &mut offset,
                            pipe_in,
                            std::ptr::null_mut(),
                            count,
                            0,
                        )
                    })
                };
                let filled = if cached { fill() } else { blocking(fill) }?;
                if filled == 0 {
                    return Err(truncated(pos, end));
                }
                pos += filled as u64;
                pipe.held = filled;
            }
            let (pipe_out, held) = (pipe.read_fd(), pipe.held);
            // More of the range follows: let the kernel fill whole segments.
            let flags = libc::SPLICE_F_NONBLOCK | if pos < end { libc::SPLICE_F_MORE } else { 0 };
            let sent = self
                .on_socket(|fd| {
                    // SAFETY: the pipe and the socket are open for the call;
                    // no offsets (neither is seekable).
                    byte_count(unsafe {
                        libc::splice(
                            pipe_out,
                            std::ptr::null_mut(),
                            fd,
                            std::ptr::null_mut(),
                            held,
                            flags,
                        )
                    })
                })
                .await?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket took no bytes from the pipe",
                ));
            }
            pipe.held -= sent.min(held);
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    async fn sendfile(&self, r: &FileRange) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let file_fd = r.file().std_file().as_raw_fd();
        let end = r.pos() + r.len();
        let mut pos = r.pos();
        let cached = in_page_cache(r.file().std_file(), pos, r.len()) == Some(true);
        while pos < end {
            let mut offset = libc::off_t::try_from(pos).map_err(io::Error::other)?;
            // At most what one call moves (Linux caps a call at ~2 GiB).
            let count = usize::try_from((end - pos).min(1 << 30)).map_err(io::Error::other)?;
            let sent = self
                .on_socket(|fd| {
                    let mut send = || {
                        // SAFETY: both descriptors are open for the call (the
                        // range holds the file); `offset` is a valid pointer.
                        // errno is read here, on the thread of the call,
                        // before anything else can overwrite it.
                        byte_count(unsafe { libc::sendfile(fd, file_fd, &mut offset, count) })
                    };
                    // Pages not in the page cache are read from disk in the
                    // call: off the runtime's worker, as any disk read (the
                    // socket is non-blocking, so only the disk can block).
                    if cached {
                        send()
                    } else {
                        blocking(send)
                    }
                })
                .await?;
            if sent == 0 {
                return Err(truncated(pos, end));
            }
            pos += sent as u64;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    async fn sendfile(&mut self, r: &FileRange) -> io::Result<()> {
        self.copy(r).await?;
        self.write_buffer(false).await
    }

    /// Runs a non-blocking socket call when the socket is writable, until
    /// it does not say "would block"; its result as a byte count (the call
    /// turns its return value into one with [`byte_count`] at once).
    async fn on_socket(&self, mut call: impl FnMut(i32) -> io::Result<usize>) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;
        let Out::Tcp(stream) = &self.out else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a system call on a stream that is not a TCP socket",
            ));
        };
        let sock: &tokio::net::TcpStream = stream.as_ref();
        let fd = sock.as_raw_fd();
        loop {
            sock.writable().await?;
            let result = sock.try_io(Interest::WRITABLE, || call(fd));
            match result {
                Ok(n) => return Ok(n),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether every page of `len` bytes at `pos` of `file` is in the page
/// cache, as `cachestat(2)` (Linux 6.5+) counts them; `None` when the kernel
/// cannot tell (an older kernel, a seccomp filter), which is then not asked
/// again, or off Linux.
pub fn in_page_cache(file: &std::fs::File, pos: u64, len: u64) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        /// `cachestat`'s number, the same on every Linux architecture.
        const SYS_CACHESTAT: libc::c_long = 451;
        static UNAVAILABLE: AtomicBool = AtomicBool::new(false);
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        #[repr(C)]
        #[derive(Default)]
        struct Stat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return None;
        }
        if len == 0 {
            return Some(true);
        }
        // SAFETY: sysconf has no preconditions.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|&p| p > 0)?;
        let last = pos.checked_add(len - 1)? / page;
        let pages = last - pos / page + 1;
        let range = Range { off: pos, len };
        let mut stat = Stat::default();
        // SAFETY: `range` and `stat` are valid for the call, laid out as the
        // kernel's `struct cachestat_range` and `struct cachestat`; flags 0.
        let r = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd(),
                &range as *const Range,
                &mut stat as *mut Stat,
                0u32,
            )
        };
        if r != 0 {
            UNAVAILABLE.store(true, Ordering::Relaxed);
            return None;
        }
        Some(stat.nr_cache >= pages)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, pos, len);
        None
    }
}

#[cfg(target_os = "linux")]
/// The error of a send whose segment file ended before the range did
/// (logged: the connection closes on it).
fn truncated(position: u64, end: u64) -> io::Error {
    tracing::warn!(
        position,
        end,
        "a segment file shrank under a fetch response; closing the connection"
    );
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "segment file truncated under a send",
    )
}

/// A system call's return value as a byte count, or the error its `errno`
/// names: called right after the call, on its thread, so that nothing run
/// in between (a runtime's bookkeeping after [`blocking`], a log line) can
/// overwrite `errno`.
fn byte_count(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
