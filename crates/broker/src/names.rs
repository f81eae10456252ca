//! Names the broker accepts, as Kafka does.

use crate::error::{BrokerError, Result};

/// Longest topic name (Kafka's limit, so partition directory names fit in 255 bytes).
pub const MAX_TOPIC_NAME: usize = 249;

/// The internal topic holding committed offsets and group metadata.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// Whether `name` is one of the broker's internal topics
/// (`__consumer_offsets`, `__transaction_state`), which Metadata and
/// DescribeTopicPartitions report `is_internal`, as Kafka does.
pub fn is_internal(name: &str) -> bool {
    name == CONSUMER_OFFSETS || name == crate::txn::TRANSACTION_STATE
}

/// Checks a topic name: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(BrokerError::InvalidTopic {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Checks a group id: any non-empty string.
pub fn validate_group_id(group: &str) -> Result<()> {
    if group.is_empty() {
        return Err(BrokerError::InvalidGroupId(group.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka() {
        for ok in [
            "a",
            "stock-price-update",
            "A.b_c-9",
            &"x".repeat(249),
            "__consumer_offsets",
        ] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250), "a\0"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
