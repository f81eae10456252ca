//! Fewer wake-ups while a large answer arrives over loopback: the socket's
//! low-water mark (`SO_RCVLOWAT`).
//!
//! A fetch answer of many MiB reaches the socket a segment at a time. A
//! reader faster than the broker empties the socket, sleeps, and is woken
//! by the next segment: on loopback about 8 wake-ups a MiB, each paid on
//! both sides (the broker's CPU runs the receive path of the segment it
//! sends, wake-up included). With the socket's low-water mark at a good
//! part of what is still to come, the kernel wakes the reader only once
//! that much has arrived (docs/BENCHMARKS.md, "Large answers woke the
//! client once per segment").
//!
//! The mark must never exceed what is still to come of the frame being
//! read, or the reader would wait for bytes the broker will not send
//! before its next request: it is set per frame, lowered for the frame's
//! tail and put back to 1 when the frame is read (and again before the
//! next frame's size, in case a read was abandoned half-way).
//!
//! A blocking read with the mark raised can sleep in the kernel until a
//! whole mark more than it has already copied has arrived, which can be
//! more than is coming: a blocking socket is read with [`read_when_ready`]
//! (`poll`, which honours the mark as a non-blocking reader's readiness
//! does, then a read that does not sleep).
//!
//! Lowering the mark wakes a reader whose queued bytes now reach it (the
//! kernel checks at the `setsockopt`, Linux 4.18 and later; a kernel
//! before that could leave a non-blocking reader waiting for a wake-up
//! that already passed).
//!
//! pubsub's client sets the mark only toward a loopback peer, where the
//! saving was measured. Over a real network, with segments that fill their
//! buffers less densely, a mark near the receive buffer's size could hold
//! the reader back on kernels that do not wake early when the receive
//! window runs out.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Frames shorter than this are read with the default mark of one byte.
pub const MIN_FRAME: usize = 64 << 10;
/// The highest mark set: the reader wakes about once per this much. A
/// mark of the whole frame was slower (no copy overlaps the arrival); 128
/// and 256 KiB did about as well as each other (docs/BENCHMARKS.md).
pub const MAX_MARK: usize = 256 << 10;

/// The mark for a read with `left` bytes of a `total`-byte frame (or run
/// of bytes known to be coming) still in the socket: the smaller of `left`
/// and [`MAX_MARK`] when `total` is at least [`MIN_FRAME`], else 1.
pub fn mark_for(total: usize, left: usize) -> usize {
    if total >= MIN_FRAME {
        left.clamp(1, MAX_MARK)
    } else {
        1
    }
}

/// The low-water mark of one TCP socket, as last set: only a change is a
/// system call.
#[derive(Debug)]
pub struct LowWater {
    /// What the kernel holds; `None` after a failed call, so that the next
    /// one is made whatever it asks.
    mark: Option<usize>,
}

impl Default for LowWater {
    fn default() -> Self {
        LowWater::new()
    }
}

impl LowWater {
    /// For a socket whose mark is the default (1).
    pub fn new() -> LowWater {
        LowWater { mark: Some(1) }
    }

    /// Sets `fd`'s mark to [`mark_for`]`(total, left)` before a read.
    pub fn before_read(&mut self, fd: BorrowedFd<'_>, total: usize, left: usize) {
        self.set(fd, mark_for(total, left));
    }

    /// Puts `fd`'s mark back to 1.
    pub fn reset(&mut self, fd: BorrowedFd<'_>) {
        self.set(fd, 1);
    }

    /// The mark last set (`None` if the last call failed).
    pub fn mark(&self) -> Option<usize> {
        self.mark
    }

    fn set(&mut self, fd: BorrowedFd<'_>, mark: usize) {
        if self.mark != Some(mark) {
            self.mark = set_mark(fd, mark).ok().map(|()| mark);
        }
    }
}

/// Sets `SO_RCVLOWAT` of socket `fd` to `mark` bytes: readiness (and a
/// blocking read, see the module doc) waits until that many have arrived
/// or the peer closed. The kernel caps the mark at half the largest
/// receive buffer (`net.ipv4.tcp_rmem`).
pub fn set_mark(fd: BorrowedFd<'_>, mark: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(mark).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is borrowed, so open for the call; the option value is
    // a c_int that outlives the call, and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads from blocking socket `fd` as a non-blocking reader does: waits
/// with `poll` until it is readable as its mark says (that many bytes
/// queued, the peer gone, or the kernel waking early because the receive
/// window or memory ran short), then takes what is queued without
/// sleeping in the kernel (`MSG_DONTWAIT`). Returns 0 at the end of the
/// stream.
pub fn read_when_ready(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, `fd` borrowed for the call.
        if unsafe { libc::poll(&mut pollfd, 1, -1) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: `buf` is valid for writes of its length; `fd` borrowed.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            return Err(e);
        }
    }
}

/// The socket's `SO_RCVLOWAT` as the kernel reports it (for tests).
#[cfg(test)]
pub(crate) fn mark_of(fd: BorrowedFd<'_>) -> usize {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is borrowed, so open; `value` and `len` are valid for writes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", io::Error::last_os_error());
    usize::try_from(value).expect("a mark is positive")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use super::*;

    /// The largest mark the kernel keeps: half of `tcp_rmem`'s maximum.
    fn kernel_cap() -> usize {
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
            .map_or(usize::MAX, |max| max / 2)
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let s = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        (s, peer)
    }

    #[test]
    fn the_mark_is_set_for_large_frames_lowered_for_their_tail_and_put_back() {
        let (s, _peer) = pair();
        let mut lw = LowWater::new();

        lw.before_read(s.as_fd(), 8 << 20, 8 << 20);
        assert_eq!(
            mark_of(s.as_fd()),
            MAX_MARK.min(kernel_cap()),
            "a large frame's body"
        );
        lw.before_read(s.as_fd(), 8 << 20, 10_000);
        assert_eq!(
            mark_of(s.as_fd()),
            10_000,
            "its tail: no more than is still to come"
        );
        lw.before_read(s.as_fd(), 8 << 20, 0);
        assert_eq!(mark_of(s.as_fd()), 1, "nothing left in the socket");
        lw.before_read(s.as_fd(), MIN_FRAME, MIN_FRAME);
        assert_eq!(
            mark_of(s.as_fd()),
            MIN_FRAME,
            "a frame of the smallest size marked"
        );
        lw.reset(s.as_fd());
        assert_eq!(mark_of(s.as_fd()), 1, "put back");
        lw.before_read(s.as_fd(), MIN_FRAME - 1, MIN_FRAME - 1);
        assert_eq!(mark_of(s.as_fd()), 1, "a smaller frame is read as it comes");
    }

    #[test]
    fn a_failed_call_is_made_again_next_time() {
        let (s, _peer) = pair();
        let mut lw = LowWater::new();
        lw.before_read(s.as_fd(), 1 << 20, 1 << 20);
        assert_eq!(lw.mark(), Some(MAX_MARK));
        // A descriptor that is not a socket: the call fails.
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        lw.reset(file.as_fd());
        assert_eq!(lw.mark(), None, "a failure leaves the mark unknown");
        lw.reset(s.as_fd());
        assert_eq!(
            (lw.mark(), mark_of(s.as_fd())),
            (Some(1), 1),
            "the same value asked again is set"
        );
    }

    /// A blocking socket read with the mark at what is still to come,
    /// half of it already queued when the read starts, returns once the rest
    /// is in. A plain blocking `read` can sleep in the kernel for a whole
    /// mark beyond what it has copied, more than is coming (it then waits
    /// out its 120 s timeout, and this test's 20 s bound fails it).
    #[test]
    fn a_blocking_socket_read_when_ready_gets_the_tail_of_a_run() {
        const RUN: usize = 300_000;
        let (s, mut peer) = pair();
        let (first_half_sent, first_half_in) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            peer.write_all(&vec![7u8; RUN / 2]).expect("first half");
            first_half_sent.send(()).expect("signal");
            std::thread::sleep(std::time::Duration::from_millis(100));
            peer.write_all(&vec![7u8; RUN - RUN / 2])
                .expect("second half");
            peer
        });
        s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .expect("timeout");
        let (done, result) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lw = LowWater::new();
            first_half_in.recv().expect("first half queued");
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0;
            while got < RUN {
                lw.before_read(s.as_fd(), RUN, RUN - got);
                match read_when_ready(s.as_fd(), &mut buf).expect("read") {
                    0 => break,
                    n => got += n,
                }
            }
            lw.reset(s.as_fd());
            done.send(got).expect("result");
            s
        });
        let got = result
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the reads returned: none slept for bytes that were not coming");
        assert_eq!(got, RUN, "nothing beyond the run was asked for");
        drop(reader.join().expect("reader"));
        drop(writer.join().expect("writer"));
    }
}
