//! Length-prefixed frames: `int32 size` then `size` bytes. The size is
//! checked against the limit before anything is allocated for the frame.
//!
//! Frames are read into one growing buffer and split off it, so a frame is
//! copied once (socket to buffer) and the request decoder's byte slices
//! (records included) point into it. (Produce then copies each
//! partition's records once more, because storage rewrites offsets in place.)

use bytes::{Buf, BytesMut};
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

/// Bytes asked of the socket per read when no larger frame is pending.
const READ_CHUNK: usize = 256 << 10;
/// At most this much more room per read, however large the frame.
const GROW_LIMIT: usize = 8 << 20;

/// Reads frames off a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    limit: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of at most `limit` bytes (length prefix excluded).
    pub fn new(inner: R, limit: usize) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
            limit,
        }
    }

    /// The next frame's payload.
    pub async fn next(&mut self) -> Result<BytesMut, FrameError> {
        loop {
            let want = match self.declared() {
                Some(size) => {
                    let size = size?;
                    if self.buf.len() >= 4 + size {
                        self.buf.advance(4);
                        return Ok(self.buf.split_to(size));
                    }
                    4 + size - self.buf.len()
                }
                None => 4 - self.buf.len(),
            };
            // Memory follows the bytes that arrive: a large declared size
            // alone does not allocate all of it.
            self.buf.reserve(want.clamp(READ_CHUNK, GROW_LIMIT));
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    FrameError::Closed
                } else {
                    FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
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
