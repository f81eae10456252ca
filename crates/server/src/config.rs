//! Settings of the protocol server (the broker has its own).

use std::time::Duration;

/// How the server protects itself (what each listener is: [`crate::listener::Listener`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
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
    /// A TLS handshake not done in this long closes the connection.
    pub tls_handshake_timeout: Duration,
    /// How long a failed SASL authentication waits before its answer and
    /// the close (Kafka `connection.failed.authentication.delay.ms`, 100 ms).
    pub failed_authentication_delay: Duration,
    /// ACL enforcement (`[auth]`): off by default, every request allowed.
    pub authorizer: pubsub_broker::security::acl::AuthorizerConfig,
    /// The `transaction.version` feature level ApiVersions finalizes (1 or
    /// 2; Kafka's `kafka-features upgrade/downgrade --feature
    /// transaction.version=N`): 2 lets clients use KIP-890's transaction
    /// version 2, 1 keeps them on the explicit AddPartitionsToTxn path.
    pub transaction_version: i16,
}

/// A listener's security protocol, with Kafka's names (the vocabulary the
/// client shares).
pub use pubsub_records::security::SecurityProtocol;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_request_bytes: 100 << 20,
            max_connections: 1000,
            idle_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            fetch_session_slots: crate::fetch_session::DEFAULT_SLOTS,
            fetch_session_eviction: crate::fetch_session::DEFAULT_EVICTION,
            tls_handshake_timeout: Duration::from_secs(10),
            failed_authentication_delay: Duration::from_millis(100),
            authorizer: Default::default(),
            transaction_version: crate::handlers::api_versions::TRANSACTION_VERSION_MAX,
        }
    }
}

/// The broker id pubsub answers with: a single node.
pub const NODE_ID: i32 = 0;
