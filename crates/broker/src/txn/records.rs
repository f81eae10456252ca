//! The records of `__transaction_state`, in Kafka's schemas so Kafka's own
//! tools read the topic (docs/FORMAT.md section 11):
//!
//! - key: int16 0 (the transaction-log record type), then TransactionLogKey
//!   version 0 `{transactionalId string}`;
//! - value: int16 version, then TransactionLogValue. Version 0 is
//!   `{producerId int64, producerEpoch int16, transactionTimeoutMs int32,
//!   transactionStatus int8, transactionPartitions nullable [topic string,
//!   partitionIds [int32]], lastUpdateTimestampMs int64, startTimestampMs
//!   int64}`; version 1 (written, as Kafka 4 writes it) is the same fields
//!   in the flexible encoding (compact strings and arrays, tagged fields)
//!   with tagged fields 0 previousProducerId (int64), 1 nextProducerId
//!   (int64) and 2 clientTransactionVersion (int16), each written only
//!   when not its default (-1, -1, 0). Kafka 4.1 writes tag 2 alone;
//!   pubsub also writes 0 and 1 when set, so a restart between a
//!   transaction version 2 decision at an exhausted epoch and its
//!   completion still rotates to the new producer id.
//!
//! A null value (a tombstone) forgets the transactional id.

use std::collections::BTreeMap;

use super::state::{TxnMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use crate::wire::{Reader, Writer};

/// The version of the values written.
pub const VALUE_VERSION: i16 = 1;

/// What is wrong with the bytes.
pub type DecodeResult<T> = Result<T, String>;

/// The key of a transactional id's record.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(0).string(transactional_id);
    w.finish()
}

/// The transactional id of a key (`Err` for another record type).
pub fn decode_key(bytes: &[u8]) -> DecodeResult<String> {
    let mut r = Reader::new(bytes);
    match r.i16()? {
        0 => r.string(),
        v => Err(format!("not a transaction log key (type {v})")),
    }
}

/// The partitions grouped by topic, as the value lists them.
fn by_topic(m: &TxnMetadata) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &m.partitions {
        topics.entry(t.as_str()).or_default().push(*p);
    }
    topics
}

/// The value of a transaction's record (version [`VALUE_VERSION`]). An
/// Empty transaction has a null partition list, as Kafka writes it.
pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(VALUE_VERSION)
        .i64(m.producer_id)
        .i16(m.producer_epoch)
        .i32(m.timeout_ms)
        .i8(m.state.id());
    if m.state == TxnState::Empty {
        w.compact_array_len(None);
    } else {
        let topics = by_topic(m);
        w.compact_array_len(Some(topics.len()));
        for (topic, partitions) in topics {
            w.compact_string(topic)
                .compact_array_len(Some(partitions.len()));
            for p in partitions {
                w.i32(p);
            }
            w.tagged_fields(&[]);
        }
    }
    w.i64(m.update_ms).i64(m.start_ms);
    let previous = m.previous_producer_id.to_be_bytes();
    let next = m.next_producer_id.to_be_bytes();
    let version = m.client_version.to_be_bytes();
    let mut tags: Vec<(u64, &[u8])> = Vec::with_capacity(3);
    if m.previous_producer_id != NO_PRODUCER_ID {
        tags.push((0, &previous));
    }
    if m.next_producer_id != NO_PRODUCER_ID {
        tags.push((1, &next));
    }
    if m.client_version != 0 {
        tags.push((2, &version));
    }
    w.tagged_fields(&tags);
    w.finish()
}

/// A value of version 0 or 1.
pub fn decode_value(bytes: &[u8]) -> DecodeResult<TxnMetadata> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    let flexible = match version {
        0 => false,
        1 => true,
        v => return Err(format!("unknown transaction log value version {v}")),
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.i8()?;
    let state =
        TxnState::from_id(status).ok_or_else(|| format!("unknown transaction status {status}"))?;
    let mut partitions = std::collections::BTreeSet::new();
    // A topic takes at least its name's length and its partitions' count.
    let topics = if flexible {
        r.compact_array_len(2)?
    } else {
        r.array_len(6)?
    };
    for _ in 0..topics {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = if flexible {
            r.compact_array_len(4)?
        } else {
            r.array_len(4)?
        };
        for _ in 0..n {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            r.tagged_fields(|_, _| Ok(()))?;
        }
    }
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut previous_producer_id = NO_PRODUCER_ID;
    let mut next_producer_id = NO_PRODUCER_ID;
    let mut client_version = 0;
    if flexible {
        r.tagged_fields(|tag, field| {
            match tag {
                0 => previous_producer_id = Reader::new(field).i64()?,
                1 => next_producer_id = Reader::new(field).i64()?,
                2 => client_version = Reader::new(field).i16()?,
                _ => {}
            }
            Ok(())
        })?;
    }
    if state == TxnState::Empty {
        partitions.clear();
    }
    Ok(TxnMetadata {
        producer_id,
        previous_producer_id,
        next_producer_id,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
        client_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(state: TxnState) -> TxnMetadata {
        let mut m = TxnMetadata::new(1234, 60_000, 1_700_000_000_000);
        m.producer_epoch = 3;
        m.state = state;
        if state != TxnState::Empty {
            m.partitions.insert(("orders".into(), 0));
            m.partitions.insert(("orders".into(), 2));
            m.partitions.insert(("__consumer_offsets".into(), 17));
            m.start_ms = 1_700_000_000_001;
        }
        m
    }

    #[test]
    fn key_is_type_zero_then_the_id() {
        let k = encode_key("tx-1");
        assert_eq!(k, [0, 0, 0, 4, b't', b'x', b'-', b'1']);
        assert_eq!(decode_key(&k).expect("a valid test value"), "tx-1");
        assert!(decode_key(&[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn value_v1_layout_of_an_empty_transaction() {
        let m = sample(TxnState::Empty);
        let v = encode_value(&m);
        let mut expected = vec![0, 1];
        expected.extend_from_slice(&1234i64.to_be_bytes());
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(0); // Empty
        expected.push(0); // null partitions
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        expected.extend_from_slice(&(-1i64).to_be_bytes());
        expected.push(0); // no tagged fields
        assert_eq!(v, expected);
    }

    #[test]
    fn value_v0_is_read() {
        let mut v = vec![0, 0];
        v.extend_from_slice(&55i64.to_be_bytes());
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&1000i32.to_be_bytes());
        v.push(1); // Ongoing
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&1i16.to_be_bytes());
        v.push(b't');
        v.extend_from_slice(&2i32.to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&5i32.to_be_bytes());
        v.extend_from_slice(&9i64.to_be_bytes());
        v.extend_from_slice(&8i64.to_be_bytes());
        let m = decode_value(&v).expect("a valid test value");
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.timeout_ms),
            (55, 2, 1000)
        );
        assert_eq!(m.state, TxnState::Ongoing);
        assert_eq!(
            m.partitions.iter().cloned().collect::<Vec<_>>(),
            vec![("t".to_string(), 0), ("t".to_string(), 5)]
        );
        assert_eq!((m.update_ms, m.start_ms), (9, 8));
    }

    #[test]
    fn tagged_fields_are_kafkas_and_unknown_ones_skipped() {
        let mut m = sample(TxnState::PrepareCommit);
        m.previous_producer_id = 77;
        m.next_producer_id = 78;
        m.client_version = 2;
        let mut v = encode_value(&m);
        let mut tags = vec![3, 0, 8];
        tags.extend_from_slice(&77i64.to_be_bytes());
        tags.extend_from_slice(&[1, 8]);
        tags.extend_from_slice(&78i64.to_be_bytes());
        tags.extend_from_slice(&[2, 2, 0, 2]);
        assert!(v.ends_with(&tags), "{v:?}");
        assert_eq!(decode_value(&v).expect("a valid test value"), m);
        // An unknown tag (9) after them is skipped.
        let n = v.len();
        v[n - tags.len()] = 4;
        v.extend_from_slice(&[9, 1, 5]);
        assert_eq!(decode_value(&v).expect("a valid test value"), m);
        // As Kafka 4.1 writes a transaction version 2 record: tag 2 alone.
        let mut kafka = encode_value(&sample(TxnState::Ongoing));
        kafka.pop();
        kafka.extend_from_slice(&[1, 2, 2, 0, 2]);
        let read = decode_value(&kafka).expect("a valid test value");
        assert_eq!(
            (
                read.client_version,
                read.previous_producer_id,
                read.next_producer_id
            ),
            (2, -1, -1)
        );
        for cut in 0..v.len() - 1 {
            assert!(decode_value(&v[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_value(&[0, 9]).is_err());
    }

    proptest! {
        #[test]
        fn values_round_trip(
            id in any::<i64>(), prev in -1i64..1000, next in -1i64..1000,
            client_version in 0i16..3, epoch in any::<i16>(),
            timeout in any::<i32>(), state in 0usize..6,
            parts in proptest::collection::btree_set(("[a-z]{1,5}", 0i32..50), 0..10),
            start in any::<i64>(), update in any::<i64>(),
        ) {
            let state = TxnState::ALL[state];
            let m = TxnMetadata {
                producer_id: id,
                previous_producer_id: prev,
                next_producer_id: next,
                producer_epoch: epoch,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms: timeout,
                state,
                partitions: if state == TxnState::Empty { Default::default() } else { parts },
                start_ms: start,
                update_ms: update,
                client_version,
            };
            prop_assert_eq!(decode_value(&encode_value(&m)).expect("a valid test value"), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_value(&bytes);
            let _ = decode_key(&bytes);
        }
    }
}
