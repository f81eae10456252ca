//! The one error type of the client crate, and Kafka's error codes as this
//! client reports them: names, numbers and retriability all come from
//! [`kafka_protocol::error::ResponseError`].

use kafka_protocol::error::ResponseError;

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
    #[error("{context}: {} (error code {}){}", pubsub_records::kafka_error_name(error.code()), error.code(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was asked.
        context: String,
        /// The error (its code: `error.code()`).
        error: ResponseError,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The topic does not exist.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// The security settings cannot work (a missing file, a mismatch), or
    /// the SASL exchange went wrong on the broker's side.
    #[error("{0}")]
    Security(String),
    /// The TLS handshake failed (an untrusted or mismatched certificate...).
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The address.
        addr: String,
        /// Why, as rustls says it.
        reason: String,
    },
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// `Err(Kafka)` unless `code` is 0.
pub fn check(code: i16, context: impl FnOnce() -> String, message: Option<&str>) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Kafka {
            context: context(),
            error,
            message: message.map(str::to_string),
        }),
    }
}

/// [`check`] for an answer about `topic`, where UNKNOWN_TOPIC_OR_PARTITION
/// is [`ClientError::UnknownTopic`].
pub fn check_topic(
    code: i16,
    topic: &str,
    context: impl FnOnce() -> String,
    message: Option<&str>,
) -> Result<()> {
    if code == ResponseError::UnknownTopicOrPartition.code() {
        return Err(ClientError::UnknownTopic(topic.to_string()));
    }
    check(code, context, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_print_name_and_code() {
        let e = check(36, || "creating topic t".into(), Some("exists")).expect_err("an error");
        assert_eq!(
            e.to_string(),
            "creating topic t: TOPIC_ALREADY_EXISTS (error code 36): exists"
        );
        assert!(check(0, || unreachable!(), None).is_ok());
        assert!(matches!(
            check_topic(3, "t", || "x".into(), None),
            Err(ClientError::UnknownTopic(t)) if t == "t"
        ));
    }
}
