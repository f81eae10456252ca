//! One client connection: read a frame, dispatch it, write the response, in
//! order, until the client leaves, misbehaves, idles out or the server
//! shuts down.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::context::Ctx;
use crate::dispatch::{dispatch, Reply};
use crate::error::ServerError;
use crate::frame::{read_frame, FrameError};

/// Socket buffer sizes: large enough for a 1 MiB produce batch per read.
const READ_BUFFER: usize = 256 << 10;
const WRITE_BUFFER: usize = 256 << 10;

/// Serves one connection to the end. Errors are logged here.
pub async fn serve(ctx: Ctx, stream: TcpStream, peer: SocketAddr) {
    match run(&ctx, stream).await {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(ServerError::Frame(FrameError::Closed)) => {
            tracing::debug!(%peer, "client disconnected")
        }
        Err(e @ (ServerError::Frame(FrameError::Io(_)) | ServerError::Write(_))) => {
            tracing::debug!(%peer, error = %e, "connection dropped")
        }
        Err(e) => tracing::warn!(%peer, error = %e, "closing connection"),
    }
}

async fn run(ctx: &Ctx, stream: TcpStream) -> Result<(), ServerError> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, read);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, write);
    let mut shutdown: watch::Receiver<bool> = ctx.shutdown.clone();
    let idle: Duration = ctx.config.idle_timeout;
    let limit = ctx.config.max_request_bytes;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let frame = tokio::select! {
            r = tokio::time::timeout(idle, read_frame(&mut reader, limit)) => match r {
                Ok(frame) => frame?,
                Err(_) => return Err(ServerError::Idle),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        match dispatch(ctx, frame).await? {
            Reply::Frame(bytes) => writer.write_all(&bytes).await?,
            Reply::Nothing => {}
        }
        // Pipelined requests already read are answered before one flush.
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}
