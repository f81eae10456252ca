//! The Kafka wire protocol on tokio.
//!
//! [`run`] takes a bound listener, an open [`Broker`] and a shutdown future
//! (so tests can drive it), accepts connections up to the configured limit
//! and serves each on its own task: requests of one connection are answered
//! in order; connections are served concurrently. Each API has its own
//! module under [`handlers`]; broker errors become Kafka error codes in
//! [`codes`].
//!
//! When the shutdown future completes the server stops accepting, lets
//! in-flight requests finish (long polls end early), waits up to the grace
//! period for connections to close, and returns. Closing the broker (flush,
//! clean-shutdown marker) is the caller's job.
//!
//! [`run_with_metrics`] counts into a [`Metrics`] the caller also hands to
//! [`metrics::http::serve`], which answers Prometheus scrapes.

pub mod alloc;
pub mod codes;
pub mod config;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod frame;
pub mod handlers;
pub mod metrics;

use std::future::Future;
use std::sync::Arc;

use pubsub_broker::Broker;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use config::{ServerConfig, NODE_ID};
pub use context::Ctx;
pub use dispatch::{dispatch, Reply, SUPPORTED};
pub use error::ServerError;
pub use metrics::Metrics;

/// Serves Kafka clients on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    broker: Broker,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    run_with_metrics(listener, broker, config, Arc::new(Metrics::new()), shutdown).await
}

/// [`run`], counting connections, requests, latencies and error codes into
/// `metrics`.
pub async fn run_with_metrics(
    listener: TcpListener,
    broker: Broker,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (stream, peer) = accept(&listener, "kafka") => {
                metrics.connection_accepted();
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    metrics.connection_refused();
                    tracing::warn!(%peer, limit = config.max_connections, "too many connections: closing the new one");
                    drop(stream);
                    continue;
                };
                let ctx = Ctx::with_metrics(
                    broker.clone(),
                    Arc::clone(&config),
                    Arc::clone(&metrics),
                    peer.ip(),
                    stop_rx.clone(),
                );
                connections.spawn(async move {
                    let metrics = Arc::clone(&ctx.metrics);
                    let open = metrics.connection_opened();
                    connection::serve(ctx, stream, peer).await;
                    drop(open);
                    drop(permit);
                });
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, "waiting for in-flight requests");
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "grace period over: dropping connections"
        );
        connections.shutdown().await;
    }
}

/// The next connection on `listener`. A failed accept (out of file
/// descriptors and the like) is logged once per run of failures and
/// retried after a pause that doubles up to a second, so a listener never
/// spins, floods the log or stops on it. Storage keeps its open files within
/// a budget that leaves a reserve for connections, so running out means
/// more clients than `server.max_connections` allows for, or a low limit.
pub(crate) async fn accept(
    listener: &TcpListener,
    which: &'static str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    let mut pause = std::time::Duration::from_millis(10);
    let mut failures = 0u64;
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                if failures > 0 {
                    tracing::info!(listener = which, failures, "accepting connections again");
                }
                return accepted;
            }
            Err(e) => {
                if failures == 0 {
                    let hint = if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE)
                    {
                        "out of file descriptors: pausing accepts until connections close"
                    } else {
                        "pausing accepts"
                    };
                    tracing::warn!(error = %e, listener = which, "accept failed: {hint}");
                }
                failures += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}
