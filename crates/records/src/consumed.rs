//! A record as consumers hand it out: copied out of its batch, with the
//! topic and partition it was read from. The embedded consumer and the
//! wire client both return this one type.

use std::sync::Arc;

use crate::record::Record;

/// A record as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms since the epoch.
    pub timestamp: i64,
    /// Key (`None`: null).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: null, a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, in order (keys made UTF-8, lossily).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ConsumerRecord {
    /// `record`, read from `partition` of `topic`, copied out of its batch.
    pub fn copied_from(topic: &Arc<str>, partition: i32, record: &Record<'_>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::clone(topic),
            partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            headers: record.owned_headers(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, BatchBuilder, Header, NewRecord};

    #[test]
    fn a_consumer_record_copies_every_field() {
        let mut b = BatchBuilder::new();
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(b"v"),
            headers: &[
                Header {
                    key: b"h",
                    value: Some(b"1"),
                },
                Header {
                    key: b"n",
                    value: None,
                },
            ],
        })
        .expect("push");
        let bytes = b.build().expect("build");
        let batch = Batch::parse(&bytes).expect("parse");
        let set = batch.records(1 << 20).expect("records");
        let r = set.iter().next().expect("one").expect("record");
        let topic: Arc<str> = Arc::from("t");
        assert_eq!(
            ConsumerRecord::copied_from(&topic, 3, &r),
            ConsumerRecord {
                topic,
                partition: 3,
                offset: 0,
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(b"v".to_vec()),
                headers: vec![("h".into(), Some(b"1".to_vec())), ("n".into(), None)],
            }
        );
    }
}
