//! The one error type of the client crate.

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker could not be reached.
    #[error("cannot reach broker {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The broker did not answer in time.
    #[error("the broker did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The connection broke or the broker closed it.
    #[error("connection to the broker lost: {0}")]
    Io(#[from] std::io::Error),
    /// The broker does not speak a version of an API this client needs.
    #[error("the broker does not support {api} versions {min}..={max}")]
    Unsupported {
        /// API name.
        api: String,
        /// Lowest version this client speaks.
        min: i16,
        /// Highest version this client speaks.
        max: i16,
    },
    /// A request could not be encoded or an answer decoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {name} (error code {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was asked.
        context: String,
        /// The Kafka error code.
        code: i16,
        /// The code's name.
        name: &'static str,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The topic does not exist.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Names of the Kafka error codes this client reports.
pub fn code_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        12 => "OFFSET_METADATA_TOO_LARGE",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        19 => "NOT_ENOUGH_REPLICAS",
        21 => "INVALID_REQUIRED_ACKS",
        22 => "ILLEGAL_GENERATION",
        23 => "INCONSISTENT_GROUP_PROTOCOL",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        26 => "INVALID_SESSION_TIMEOUT",
        27 => "REBALANCE_IN_PROGRESS",
        32 => "INVALID_TIMESTAMP",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        44 => "POLICY_VIOLATION",
        56 => "KAFKA_STORAGE_ERROR",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        79 => "MEMBER_ID_REQUIRED",
        87 => "INVALID_RECORD",
        _ => "UNKNOWN",
    }
}

/// `Err(Kafka)` unless `code` is 0.
pub fn check(code: i16, context: impl FnOnce() -> String, message: Option<&str>) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(ClientError::Kafka {
        context: context(),
        code,
        name: code_name(code),
        message: message.map(str::to_string),
    })
}
