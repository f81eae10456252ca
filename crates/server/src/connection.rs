//! One client connection: a reader that decodes and dispatches requests in
//! order, and a writer that sends the answers in that same order, until the
//! client leaves, misbehaves, idles out or the server shuts down.
//!
//! The two halves let a client pipeline: while an `acks=all` produce waits
//! for its fsync, the reader already appends the next requests (whose
//! fsync is then shared), and the writer sends each answer as soon as it
//! and every answer before it are ready. The writer is a
//! [`FrameSender`]: Fetch records go from the segment files to the socket
//! with `sendfile` (see [`crate::sender`]).
//!
//! On a TLS listener the connection first completes a TLS handshake (within
//! `tls_handshake_timeout`); one that fails is logged, counted
//! (`pubsub_tls_handshake_failures_total`) and closed, touching nothing else.
//! A client certificate (mutual TLS) makes the connection's principal
//! `User:` plus its subject. Requests then go through the TLS session, and
//! Fetch records are copied into it rather than sent with `sendfile`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pubsub_broker::security::Principal;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::context::Ctx;
use crate::dispatch::{dispatch, Reply};
use crate::error::ServerError;
use crate::frame::{FrameError, FrameReader};
use crate::metrics::{api_slot, Metrics};
use crate::sender::{FrameSender, SendMode};

/// Requests read but not yet answered, per connection. librdkafka keeps
/// up to 5 produce requests in flight per partition leader with
/// idempotence on and many more without; past this the reader waits.
const MAX_IN_FLIGHT: usize = 64;

/// A request's answer, and what the latency histogram needs.
#[derive(Debug)]
struct Answer {
    reply: Reply,
    /// The API's metrics slot.
    slot: Option<usize>,
    /// When the request's frame was read.
    read_at: Instant,
}

/// Serves one connection to the end. Errors are logged here.
pub async fn serve(ctx: Ctx, stream: TcpStream, peer: SocketAddr) {
    let result = match ctx.listener.tls.clone() {
        None => run(&ctx, stream).await,
        Some(tls) => match handshake(&ctx, &tls, stream, peer).await {
            Some(session) => run_tls(&ctx, session).await,
            None => return,
        },
    };
    if let Err(
        ServerError::Malformed(_)
        | ServerError::UnknownApi(_)
        | ServerError::UnsupportedVersion { .. }
        | ServerError::Frame(FrameError::TooLarge { .. }),
    ) = &result
    {
        ctx.metrics.protocol_error();
    }
    match result {
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

/// The TLS handshake, within the configured timeout; `None` (logged and
/// counted) if it failed.
async fn handshake(
    ctx: &Ctx,
    tls: &crate::tls::Tls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<crate::tls::TlsConnection> {
    let listener = &ctx.listener.name;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "connection dropped before the TLS handshake");
        return None;
    }
    let accepted = tokio::time::timeout(
        ctx.config.tls_handshake_timeout,
        tls.acceptor().accept(crate::tls::buffered(stream)),
    )
    .await;
    let session = match accepted {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            ctx.metrics.tls_handshake_failed();
            tracing::info!(%peer, listener = %listener, error = %e, "TLS handshake failed: closing the connection");
            return None;
        }
        Err(_) => {
            ctx.metrics.tls_handshake_failed();
            tracing::info!(%peer, listener = %listener, timeout = ?ctx.config.tls_handshake_timeout, "TLS handshake timed out: closing the connection");
            return None;
        }
    };
    let (_, conn) = session.get_ref();
    let subject = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| crate::tls::subject_name(cert.as_ref()));
    match subject {
        Some(Some(name)) => {
            let principal = Principal::user(name);
            tracing::debug!(%peer, listener = %listener, principal = %principal, "TLS client authenticated by certificate");
            ctx.set_principal(principal);
        }
        Some(None) => {
            // The verifier accepted it, so this is not expected; refuse
            // rather than serve an unnamed client.
            ctx.metrics.tls_handshake_failed();
            tracing::info!(%peer, listener = %listener, "client certificate subject unreadable: closing the connection");
            return None;
        }
        None => {}
    }
    Some(session)
}

async fn run(ctx: &Ctx, stream: TcpStream) -> Result<(), ServerError> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    // Plaintext: records go from the segment files to the socket (sendfile).
    serve_halves(ctx, read, FrameSender::new(write, SendMode::plaintext())).await
}

async fn run_tls(ctx: &Ctx, session: crate::tls::TlsConnection) -> Result<(), ServerError> {
    let (read, write) = tokio::io::split(session);
    serve_halves(ctx, read, FrameSender::over(write)).await
}

async fn serve_halves(
    ctx: &Ctx,
    read: impl AsyncRead + Unpin,
    writer: FrameSender,
) -> Result<(), ServerError> {
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    // Both halves run in this task. When the reader stops (the client
    // left, broke the protocol or the server stops) the writer still sends
    // what was already accepted; when the writer fails, the reader stops.
    let (read_result, write_result) = tokio::join!(
        read_requests(ctx, read, tx),
        write_replies(writer, rx, &ctx.metrics)
    );
    write_result?;
    read_result
}

async fn read_requests(
    ctx: &Ctx,
    read: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Answer>,
) -> Result<(), ServerError> {
    let mut frames = FrameReader::new(read, ctx.config.max_request_bytes);
    let mut shutdown: watch::Receiver<bool> = ctx.shutdown.clone();
    let idle: Duration = ctx.config.idle_timeout;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        frames.set_limit(crate::sasl::frame_limit(ctx));
        let frame = tokio::select! {
            r = tokio::time::timeout(idle, frames.next()) => match r {
                Ok(frame) => frame?,
                Err(_) => return Err(ServerError::Idle),
            },
            _ = shutdown.changed() => return Ok(()),
            // The writer gave up: the socket is gone.
            _ = tx.closed() => return Ok(()),
        };
        let read_at = Instant::now();
        let slot = (frame.len() >= 2)
            .then(|| api_slot(i16::from_be_bytes([frame[0], frame[1]])))
            .flatten();
        let reply = dispatch(ctx, frame).await?;
        let answer = Answer {
            reply,
            slot,
            read_at,
        };
        if tx.send(answer).await.is_err() {
            return Ok(());
        }
        // A failed authentication: its answer goes out, then the close.
        if crate::sasl::must_close(ctx) {
            return Ok(());
        }
    }
}

async fn write_replies(
    mut writer: FrameSender,
    mut rx: mpsc::Receiver<Answer>,
    metrics: &Metrics,
) -> Result<(), ServerError> {
    while let Some(answer) = rx.recv().await {
        let frame = answer.reply.resolve().await?;
        if let Some(slot) = answer.slot {
            metrics.answered(slot, answer.read_at.elapsed());
        }
        if let Some(frame) = frame {
            writer.send(frame).await?;
        }
        // Answers already queued go out with this one, in one flush.
        if rx.is_empty() {
            writer.flush().await?;
        }
    }
    // Every answer sent: end the stream (TLS: close_notify).
    writer.close().await?;
    Ok(())
}
