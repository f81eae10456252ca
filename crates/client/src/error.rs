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
    #[error("{context}: {} (error code {}){}", code_name(error.code()), error.code(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
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
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Kafka's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`; `NONE`
/// for 0 and `UNKNOWN` for a code kafka-protocol does not know.
///
/// kafka-protocol names its variants after Kafka's own (`Errors.java`) in
/// CamelCase (`UnknownTopicOrPartition`), and its `Display` prints that
/// CamelCase, so the UPPER_SNAKE name is derived here from the variant, once:
/// every word (starting at a capital letter) upper-cased, joined by `_`.
pub fn code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(_)) => "UNKNOWN".to_string(),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

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
    fn names_are_kafkas_upper_snake_names() {
        for (code, name) in [
            (-1, "UNKNOWN_SERVER_ERROR"),
            (0, "NONE"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (36, "TOPIC_ALREADY_EXISTS"),
            (45, "OUT_OF_ORDER_SEQUENCE_NUMBER"),
            (48, "INVALID_TXN_STATE"),
            (56, "KAFKA_STORAGE_ERROR"),
            (69, "GROUP_ID_NOT_FOUND"),
            (87, "INVALID_RECORD"),
            (106, "FETCH_SESSION_TOPIC_ID_ERROR"),
            (1000, "UNKNOWN"),
        ] {
            assert_eq!(code_name(code), name, "code {code}");
        }
        // Every known code has a name of words, none empty.
        for code in -1..=133 {
            let name = code_name(code);
            assert!(
                name.split('_')
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase())),
                "{code}: {name}"
            );
        }
    }

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
