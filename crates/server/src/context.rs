//! What every handler can reach.

use std::sync::{Arc, Mutex};

use pubsub_broker::security::Principal;
use pubsub_broker::Broker;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::fetch_session::SessionCache;
use crate::listener::Listener;
use crate::metrics::Metrics;

/// Per-connection context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The broker.
    pub broker: Broker,
    /// Server settings.
    pub config: Arc<ServerConfig>,
    /// The listener the connection came in on: its protocol, SASL
    /// mechanisms and the address clients are told to connect to.
    pub listener: Arc<Listener>,
    /// The client's host, as Kafka reports it ("/127.0.0.1").
    pub client_host: String,
    /// Becomes true when the server shuts down (long polls end early).
    pub shutdown: watch::Receiver<bool>,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
    /// The fetch sessions of every connection.
    pub fetch_sessions: Arc<Mutex<SessionCache>>,
    /// Who the client is: `User:ANONYMOUS` until it authenticates. Shared
    /// by the clones of one connection's context, never across connections.
    pub principal: Arc<Mutex<Principal>>,
    /// Where the connection is in its SASL authentication (SASL listeners).
    pub sasl: Arc<Mutex<crate::sasl::SaslSession>>,
}

impl Ctx {
    /// The context of a connection from `peer` on the default PLAINTEXT
    /// listener (127.0.0.1:9092), counting into its own (unshared) metrics.
    pub fn new(
        broker: Broker,
        config: Arc<ServerConfig>,
        peer: std::net::IpAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Ctx {
        Ctx::with_metrics(broker, config, Arc::new(Metrics::new()), peer, shutdown)
    }

    /// The context of a connection from `peer`, counting into `metrics`,
    /// with a fetch session cache of its own.
    pub fn with_metrics(
        broker: Broker,
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        peer: std::net::IpAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Ctx {
        let fetch_sessions = Arc::new(Mutex::new(SessionCache::new(
            config.fetch_session_slots,
            config.fetch_session_eviction,
        )));
        Ctx {
            fetch_sessions,
            broker,
            config,
            listener: Arc::new(Listener::default()),
            client_host: format!("/{peer}"),
            shutdown,
            metrics,
            principal: Arc::new(Mutex::new(Principal::anonymous())),
            sasl: crate::sasl::new_session(),
        }
    }

    /// The connection's principal.
    pub fn principal(&self) -> Principal {
        self.principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records who the client authenticated as.
    pub fn set_principal(&self, principal: Principal) {
        *self
            .principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = principal;
    }
}

/// [`blocking`] as the broker's first-use opens call it
/// (`Broker::run_opens_with`): an open (file opens, maps, recovery) may
/// take long, wherever a handler first names a partition.
pub fn blocking_section(f: &mut dyn FnMut()) {
    blocking(f)
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
