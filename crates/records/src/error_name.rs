//! Kafka's names for its error codes (`UNKNOWN_TOPIC_OR_PARTITION`), shared
//! by the client's messages and the server's metric labels.
//!
//! The codes, their retriability and their variants come from
//! `kafka_protocol::error::ResponseError`, which names each variant after
//! Kafka's own (`Errors.java`) in CamelCase (`UnknownTopicOrPartition`) and
//! prints that CamelCase; Kafka's UPPER_SNAKE spelling is derived here from the
//! variant, once.

use kafka_protocol::error::ResponseError;

/// Kafka's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`; `NONE`
/// for 0 and `UNKNOWN` for a code kafka-protocol does not know: every word of
/// the variant (starting at a capital letter) upper-cased, joined by `_`.
pub fn kafka_error_name(code: i16) -> String {
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

#[cfg(test)]
mod tests {
    use super::kafka_error_name;

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
            assert_eq!(kafka_error_name(code), name, "code {code}");
        }
        // Every known code has a name of words, none empty.
        for code in -1..=133 {
            let name = kafka_error_name(code);
            assert!(
                name.split('_')
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase())),
                "{code}: {name}"
            );
        }
    }
}
