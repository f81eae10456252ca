//! The one error type of the `pubsub` command: each variant prints as one
//! clear line.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A config file or environment variable could not be read or parsed.
    #[error("configuration from {source_name}: {reason}")]
    Config {
        /// The file or variable.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting has a value that cannot work.
    #[error("setting {key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The broker could not open or close its data directory.
    #[error(transparent)]
    Broker(#[from] pubsub_broker::BrokerError),
    /// A call to a broker failed.
    #[error(transparent)]
    Client(#[from] pubsub_client::ClientError),
    /// Arguments that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// Binding the listener or starting the runtime failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A partition log could not be read (`pubsub log check`).
    #[error(transparent)]
    Storage(#[from] pubsub_storage::StorageError),
    /// `pubsub log check` found something opening the broker would change.
    #[error("{0}")]
    Unhealthy(String),
}
