//! Length-prefixed frames: `int32 size` then `size` bytes. The size is
//! checked against the limit before anything is allocated.

use bytes::BytesMut;
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

/// Reads one frame's payload.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<BytesMut, FrameError> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > limit {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            limit,
        });
    }
    let mut buf = BytesMut::zeroed(size as usize);
    r.read_exact(&mut buf).await?;
    Ok(buf)
}
