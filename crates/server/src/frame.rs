//! Length-prefixed frames: `int32 size` then `size` bytes. The size is
//! checked against the limit before anything is allocated for the frame.
//!
//! Frames are read into a buffer and split off it, so a frame is copied
//! once (socket to buffer) and the request decoder's byte slices (records
//! included) point into it. Once a frame's size is known, reads stop at its
//! end, and a large frame leaves the reader as the only owner of its
//! buffer: the produce handler then rewrites offsets in the records where
//! they are, instead of copying them (see `handlers::produce`). Bytes of
//! the next frame that arrive with a frame's start (read before its size
//! is known) are the only ones ever copied, to a buffer of their own.
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// A negative or oversized length prefix.
    #[error("frame of {size} bytes refused (limit {limit})")]
    TooLarge {
        /// Declared size.
        size: i64,
        /// The limit.
        limit: usize,
    },
    /// The connection broke or ended inside a frame.
    #[error("reading a frame: {0}")]
    Io(#[from] std::io::Error),
}

/// Bytes asked of the socket at least per read while no frame's size is
/// known (pipelined small requests come in together).
const READ_CHUNK: usize = 64 << 10;
/// At most this much more room per read, however large the frame.
const GROW_LIMIT: usize = 8 << 20;
/// Frames at least this large get a buffer of their own.
pub const OWN_BUFFER: usize = 32 << 10;

/// Reads frames off a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    limit: usize,
    /// Size of the last frame, prefix included: a client tends to send
    /// requests of one size, so the next read asks for as much.
    last: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of at most `limit` bytes (length prefix excluded).
    pub fn new(inner: R, limit: usize) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
            limit,
            last: 0,
        }
    }

    /// Changes the largest frame accepted from the next one on (a SASL
    /// connection's limit grows once it is authenticated).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The next frame's payload.
    pub async fn next(&mut self) -> Result<BytesMut, FrameError> {
        loop {
            let (want, room) = match self.declared() {
                Some(size) => {
                    let size = size?;
                    if self.buf.len() >= 4 + size {
                        return Ok(self.split(size));
                    }
                    // Up to the frame's end and no further.
                    let rest = 4 + size - self.buf.len();
                    (rest, rest)
                }
                // The size is not in yet: a chunk as large as the last
                // frame, with room for a frame somewhat larger still.
                None => {
                    let want = READ_CHUNK.max(self.last) - self.buf.len();
                    (want, want + want / 8)
                }
            };
            // Memory follows the bytes that arrive: a large declared size
            // alone does not allocate all of it.
            let want = want.min(GROW_LIMIT);
            self.buf.reserve(room.min(GROW_LIMIT + GROW_LIMIT / 8));
            let mut limited = (&mut self.buf).limit(want);
            let n = self.inner.read_buf(&mut limited).await?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    FrameError::Closed
                } else {
                    FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }

    /// Splits the buffered frame of `size` bytes off the buffer.
    fn split(&mut self, size: usize) -> BytesMut {
        self.last = 4 + size;
        self.buf.advance(4);
        let frame = self.buf.split_to(size);
        if size >= OWN_BUFFER {
            // What follows the frame (nothing, or the start of the next
            // one, at most a chunk) moves to a new buffer, so the frame is
            // the only owner of its allocation.
            self.buf = if self.buf.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(&self.buf[..])
            };
        }
        frame
    }

    /// The buffered frame's declared size, once its prefix is in.
    fn declared(&self) -> Option<Result<usize, FrameError>> {
        let prefix: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        let size = i32::from_be_bytes(prefix);
        Some(match usize::try_from(size) {
            Ok(n) if n <= self.limit => Ok(n),
            _ => Err(FrameError::TooLarge {
                size: i64::from(size),
                limit: self.limit,
            }),
        })
    }
}
