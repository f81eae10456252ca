//! The Kafka wire protocol on tokio.
//!
//! [`run`] takes a bound listener, an open [`Broker`] and a shutdown future
//! (so tests can drive it); [`run_listeners`] takes several, each with its
//! [`Listener`] (name, protocol, advertised address, TLS). The server
//! accepts connections on all of them up to the configured limit
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
pub mod authorize;
pub mod codes;
pub mod config;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod error_answer;
pub mod fetch_response;
pub mod fetch_session;
pub mod frame;
pub mod handlers;
pub mod listener;
pub mod metrics;
#[cfg(target_os = "linux")]
pub mod pipe;
pub mod sasl;
pub mod sender;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use pubsub_broker::Broker;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use config::{SecurityProtocol, ServerConfig, NODE_ID};
pub use context::Ctx;
pub use dispatch::{dispatch, Reply, SUPPORTED};
pub use error::ServerError;
pub use listener::{Bound, Listener};
pub use metrics::Metrics;
pub use tls::{Tls, TlsFiles};

/// Serves Kafka clients on `listener` (PLAINTEXT, advertising its own
/// address) until `shutdown` completes.
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
    let bound = match Bound::plaintext(listener) {
        Ok(bound) => bound,
        Err(e) => {
            tracing::error!(error = %e, "reading the listen address");
            return;
        }
    };
    run_listeners(vec![bound], broker, config, metrics, shutdown).await
}

/// Serves Kafka clients on every listener of `listeners` until `shutdown`
/// completes, counting into `metrics`. `server.max_connections` bounds the
/// connections of all listeners together.
pub async fn run_listeners(
    listeners: Vec<Bound>,
    broker: Broker,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    // A partition's first-use open leaves the worker (see `blocking`).
    broker.run_opens_with(context::blocking_section);
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    // One fetch session cache for every connection, as Kafka's.
    let fetch_sessions = Arc::new(std::sync::Mutex::new(fetch_session::SessionCache::new(
        config.fetch_session_slots,
        config.fetch_session_eviction,
    )));
    let mut connections = JoinSet::new();
    // One accepting task per listener, handing connections to this loop.
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel(16);
    let mut acceptors = JoinSet::new();
    for bound in listeners {
        let tx = accepted_tx.clone();
        acceptors.spawn(async move {
            let mut accepts = Accepts::new("kafka");
            loop {
                let (stream, peer) = accepts.next(&bound.socket).await;
                if tx
                    .send((stream, peer, Arc::clone(&bound.listener)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    drop(accepted_tx);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some((stream, peer, listener)) = accepted.recv() => {
                metrics.connection_accepted();
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    metrics.connection_refused();
                    tracing::warn!(%peer, limit = config.max_connections, "too many connections: closing the new one");
                    drop(stream);
                    continue;
                };
                let mut ctx = Ctx::with_metrics(
                    broker.clone(),
                    Arc::clone(&config),
                    Arc::clone(&metrics),
                    peer.ip(),
                    stop_rx.clone(),
                );
                ctx.listener = listener;
                ctx.fetch_sessions = Arc::clone(&fetch_sessions);
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
    // Stop accepting: the tasks own the sockets, which close with them.
    acceptors.shutdown().await;
    drop(accepted);
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

/// How often a listener says that accepting fails, at most.
const ACCEPT_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The state of one listener's accepts across the `select!` loop that
/// polls them (which drops and recreates the accept future whenever another
/// branch fires, so the state cannot live in the future).
#[derive(Debug)]
pub(crate) struct Accepts {
    which: &'static str,
    /// The pause before the next try after a failure (zero: accepting).
    pause: std::time::Duration,
    /// No accept before this.
    resume_at: Option<tokio::time::Instant>,
    /// When a failure was last logged.
    warned_at: Option<tokio::time::Instant>,
    /// Failures since then.
    unreported: u64,
}

impl Accepts {
    pub(crate) fn new(which: &'static str) -> Accepts {
        Accepts {
            which,
            pause: std::time::Duration::ZERO,
            resume_at: None,
            warned_at: None,
            unreported: 0,
        }
    }

    /// The next connection on `listener`. A failed accept (out of file
    /// descriptors and the like) is retried after a pause that doubles from
    /// 10 ms up to a second while failures continue, so a listener never
    /// spins or stops on it; it is logged once a minute at most (with the
    /// count since), not per failure: with descriptors short, accepts fail
    /// and succeed in turn as connections close. Storage keeps its open
    /// files within a budget that leaves a reserve for connections, so
    /// running out means more clients than `server.max_connections` allows
    /// for, or a low limit.
    pub(crate) async fn next(
        &mut self,
        listener: &TcpListener,
    ) -> (tokio::net::TcpStream, std::net::SocketAddr) {
        loop {
            if let Some(at) = self.resume_at {
                tokio::time::sleep_until(at).await;
                self.resume_at = None;
            }
            match listener.accept().await {
                Ok(accepted) => {
                    self.pause = std::time::Duration::ZERO;
                    return accepted;
                }
                Err(e) => {
                    self.unreported += 1;
                    let now = tokio::time::Instant::now();
                    if self
                        .warned_at
                        .is_none_or(|at| now.duration_since(at) >= ACCEPT_WARN_EVERY)
                    {
                        let out_of_fds =
                            matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                        let hint = if out_of_fds {
                            "out of file descriptors: pausing accepts until connections close"
                        } else {
                            "pausing accepts"
                        };
                        tracing::warn!(
                            error = %e,
                            listener = self.which,
                            failures = self.unreported,
                            "accept failed: {hint} (said at most once a minute)"
                        );
                        self.warned_at = Some(now);
                        self.unreported = 0;
                    }
                    self.pause = (self.pause * 2).clamp(
                        std::time::Duration::from_millis(10),
                        std::time::Duration::from_secs(1),
                    );
                    self.resume_at = Some(now + self.pause);
                }
            }
        }
    }
}
