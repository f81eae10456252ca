//! What every handler can reach.

use std::sync::Arc;

use pubsub_broker::Broker;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// Per-connection context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The broker.
    pub broker: Broker,
    /// Server settings.
    pub config: Arc<ServerConfig>,
    /// The client's host, as Kafka reports it ("/127.0.0.1").
    pub client_host: String,
    /// Becomes true when the server shuts down (long polls end early).
    pub shutdown: watch::Receiver<bool>,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
}

impl Ctx {
    /// The context of a connection from `peer`, counting into its own
    /// (unshared) metrics.
    pub fn new(
        broker: Broker,
        config: Arc<ServerConfig>,
        peer: std::net::IpAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Ctx {
        Ctx::with_metrics(broker, config, Arc::new(Metrics::new()), peer, shutdown)
    }

    /// The context of a connection from `peer`, counting into `metrics`.
    pub fn with_metrics(
        broker: Broker,
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        peer: std::net::IpAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Ctx {
        Ctx {
            broker,
            config,
            client_host: format!("/{peer}"),
            shutdown,
            metrics,
        }
    }
}

/// Runs `f`, which may block on disk (an fsync), without stalling the
/// other connections on this runtime thread.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
