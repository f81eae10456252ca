//! Settings of the protocol server (the broker has its own).

use std::time::Duration;

/// How the server listens and protects itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Host clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: u16,
    /// Largest request accepted, in bytes (Kafka `socket.request.max.bytes`,
    /// 100 MiB). A larger length prefix closes the connection before anything
    /// is allocated.
    pub max_request_bytes: usize,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed (Kafka
    /// `connections.max.idle.ms`, 10 min).
    pub idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Fetch sessions kept (Kafka `max.incremental.fetch.session.cache.slots`,
    /// 1000); 0 declines sessions.
    pub fetch_session_slots: usize,
    /// How long a fetch session is kept before a bigger one may take its
    /// place, and how long unused before any new one may (Kafka: 120 s).
    pub fetch_session_eviction: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            max_request_bytes: 100 << 20,
            max_connections: 1000,
            idle_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            fetch_session_slots: crate::fetch_session::DEFAULT_SLOTS,
            fetch_session_eviction: crate::fetch_session::DEFAULT_EVICTION,
        }
    }
}

/// The broker id pubsub answers with: a single node.
pub const NODE_ID: i32 = 0;
