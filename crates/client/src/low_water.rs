//! Fewer wake-ups while a large answer arrives: `SO_RCVLOWAT` on a plain
//! TCP connection.
//!
//! A fetch answer of many MiB reaches the socket a segment at a time. A
//! reader faster than the broker empties the socket, sleeps, and is woken
//! by the next segment: on loopback about 8 wake-ups a MiB, each paid on
//! both sides (the broker's CPU runs the receive path of the segment it
//! sends, wake-up included). With the socket's low-water mark at a good
//! part of what is still to come, the kernel wakes the reader only once
//! that much has arrived (docs/BENCHMARKS.md, "8 MiB fetches").
//!
//! The mark must never exceed what is still to come of the frame being
//! read, or the reader would wait for bytes the broker will not send
//! before its next request: it is set per frame, lowered for the frame's
//! tail and put back to 1 before the next frame's size is read.

use std::os::fd::RawFd;

/// Frames shorter than this are read with the default mark of one byte.
pub const MIN_FRAME: usize = 64 << 10;
/// The highest mark set: the reader wakes about once per this much. A
/// mark of the whole frame was slower (no copy overlaps the arrival); 128
/// and 256 KiB did about as well as each other (docs/BENCHMARKS.md).
pub const MAX_MARK: usize = 256 << 10;

/// The low-water mark of one plain TCP socket, as last set.
#[derive(Debug)]
pub struct LowWater {
    fd: RawFd,
    mark: usize,
}

impl LowWater {
    /// For `fd`, a connected TCP socket whose mark is the default (1).
    pub fn new(fd: RawFd) -> LowWater {
        LowWater { fd, mark: 1 }
    }

    /// Sets the mark for a read with `left` bytes of a `size`-byte frame
    /// still in the socket: the smaller of `left` and [`MAX_MARK`] for a
    /// frame of at least [`MIN_FRAME`], else 1. Only a change is a system
    /// call; a failed one leaves the mark at 1.
    pub fn before_read(&mut self, size: usize, left: usize) {
        let want = if size >= MIN_FRAME {
            left.clamp(1, MAX_MARK)
        } else {
            1
        };
        if want != self.mark {
            self.set(want);
        }
    }

    /// Puts the mark back to 1 (before a frame's size is read).
    pub fn reset(&mut self) {
        if self.mark != 1 {
            self.set(1);
        }
    }

    fn set(&mut self, mark: usize) {
        self.mark = if set_mark(self.fd, mark).is_ok() {
            mark
        } else {
            1
        };
    }
}

/// Sets `SO_RCVLOWAT` of socket `fd` to `mark` bytes: a read waits until
/// that many have arrived (or the peer closed), and the kernel wakes the
/// reader no earlier.
pub fn set_mark(fd: RawFd, mark: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(mark).unwrap_or(libc::c_int::MAX);
    // SAFETY: the caller's `fd` is an open socket (a closed or wrong one
    // gets an error back); the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::*;

    /// The socket's `SO_RCVLOWAT` as the kernel reports it.
    fn mark_of(s: &TcpStream) -> usize {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `s` is an open socket; `value` and `len` are valid for writes.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        usize::try_from(value).expect("a mark is positive")
    }

    #[test]
    fn the_mark_is_set_for_large_frames_lowered_for_their_tail_and_put_back() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let s = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let mut lw = LowWater::new(s.as_raw_fd());

        lw.before_read(8 << 20, 8 << 20);
        assert_eq!(mark_of(&s), MAX_MARK, "a large frame's body");
        lw.before_read(8 << 20, 10_000);
        assert_eq!(
            mark_of(&s),
            10_000,
            "its tail: no more than is still to come"
        );
        lw.before_read(8 << 20, 0);
        assert_eq!(mark_of(&s), 1, "nothing left in the socket");
        lw.before_read(MIN_FRAME, MIN_FRAME);
        assert_eq!(
            mark_of(&s),
            MIN_FRAME,
            "a frame of the smallest size marked"
        );
        lw.reset();
        assert_eq!(mark_of(&s), 1, "before the next frame's size");
        lw.before_read(MIN_FRAME - 1, MIN_FRAME - 1);
        assert_eq!(mark_of(&s), 1, "a smaller frame is read as it comes");
    }
}
