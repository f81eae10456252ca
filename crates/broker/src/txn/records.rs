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
//!   with tagged fields 0 previousProducerId, 1 nextProducerId and
//!   2 clientTransactionVersion, each written only when not its default.
//!
//! A null value (a tombstone) forgets the transactional id.

use std::collections::BTreeMap;

use super::state::{TxnMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

/// The version of the values written.
pub const VALUE_VERSION: i16 = 1;

/// What is wrong with the bytes.
pub type DecodeResult<T> = Result<T, String>;

/// The key of a transactional id's record.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

/// The transactional id of a key (`Err` for another record type).
pub fn decode_key(bytes: &[u8]) -> DecodeResult<String> {
    let mut r = Reader(bytes);
    match r.i16()? {
        0 => r.string(),
        v => Err(format!("not a transaction log key (type {v})")),
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_string(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
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
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.id() as u8);
    if m.state == TxnState::Empty {
        put_uvarint(&mut out, 0);
    } else {
        let topics = by_topic(m);
        put_uvarint(&mut out, topics.len() as u64 + 1);
        for (topic, partitions) in topics {
            put_compact_string(&mut out, topic);
            put_uvarint(&mut out, partitions.len() as u64 + 1);
            for p in partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
            put_uvarint(&mut out, 0);
        }
    }
    out.extend_from_slice(&m.update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    let tagged = m.previous_producer_id != NO_PRODUCER_ID;
    put_uvarint(&mut out, u64::from(tagged));
    if tagged {
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 8);
        out.extend_from_slice(&m.previous_producer_id.to_be_bytes());
    }
    out
}

/// A value of version 0 or 1.
pub fn decode_value(bytes: &[u8]) -> DecodeResult<TxnMetadata> {
    let mut r = Reader(bytes);
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
    let topics = if flexible {
        r.compact_len()?
    } else {
        r.array_len()?
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = if flexible {
            r.compact_len()?
        } else {
            r.array_len()?
        };
        for _ in 0..n.unwrap_or(0) {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            r.skip_tagged()?;
        }
    }
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut previous_producer_id = NO_PRODUCER_ID;
    if flexible {
        let n = r.uvarint()?;
        for _ in 0..n {
            let tag = r.uvarint()?;
            let size = usize::try_from(r.uvarint()?).map_err(|e| e.to_string())?;
            let field = r.take(size)?;
            if tag == 0 {
                previous_producer_id = Reader(field).i64()?;
            }
        }
    }
    if state == TxnState::Empty {
        partitions.clear();
    }
    Ok(TxnMetadata {
        producer_id,
        previous_producer_id,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
    })
}

/// Reads Kafka primitives; fails cleanly on short or bad input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.0.len() < n {
            return Err(format!("needed {n} bytes, {} left", self.0.len()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn fixed<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }
    fn i8(&mut self) -> DecodeResult<i8> {
        Ok(i8::from_be_bytes(self.fixed()?))
    }
    fn i16(&mut self) -> DecodeResult<i16> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }
    fn i32(&mut self) -> DecodeResult<i32> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }
    fn i64(&mut self) -> DecodeResult<i64> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }
    fn utf8(b: &[u8]) -> DecodeResult<String> {
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
    fn string(&mut self) -> DecodeResult<String> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| "null where a string is required")?;
        Self::utf8(self.take(len)?)
    }
    fn uvarint(&mut self) -> DecodeResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }
    /// An array length (`None` for null), bounded by the bytes left.
    fn bounded(&self, n: usize) -> DecodeResult<usize> {
        if n > self.0.len() {
            return Err(format!("array of {n} cannot fit in {} bytes", self.0.len()));
        }
        Ok(n)
    }
    fn array_len(&mut self) -> DecodeResult<Option<usize>> {
        let n = self.i32()?;
        match usize::try_from(n) {
            Ok(n) => self.bounded(n).map(Some),
            Err(_) => Ok(None),
        }
    }
    fn compact_len(&mut self) -> DecodeResult<Option<usize>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => {
                let n = usize::try_from(n - 1).map_err(|e| e.to_string())?;
                self.bounded(n).map(Some)
            }
        }
    }
    fn compact_string(&mut self) -> DecodeResult<String> {
        let n = self
            .compact_len()?
            .ok_or("null where a string is required")?;
        Self::utf8(self.take(n)?)
    }
    fn skip_tagged(&mut self) -> DecodeResult<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|e| e.to_string())?;
            self.take(size)?;
        }
        Ok(())
    }
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
    fn unknown_tagged_fields_are_skipped_and_bad_bytes_refused() {
        let mut m = sample(TxnState::Ongoing);
        m.previous_producer_id = 77;
        let mut v = encode_value(&m);
        assert_eq!(decode_value(&v).expect("a valid test value"), m);
        // Add tag 2 (clientTransactionVersion = 2) after tag 0.
        let n = v.len();
        v.truncate(n - 11);
        v.extend_from_slice(&[2, 0, 8]);
        v.extend_from_slice(&77i64.to_be_bytes());
        v.extend_from_slice(&[2, 2, 0, 2]);
        assert_eq!(decode_value(&v).expect("a valid test value"), m);
        for cut in 0..v.len() - 1 {
            assert!(decode_value(&v[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_value(&[0, 9]).is_err());
    }

    proptest! {
        #[test]
        fn values_round_trip(
            id in any::<i64>(), prev in -1i64..1000, epoch in any::<i16>(),
            timeout in any::<i32>(), state in 0usize..6,
            parts in proptest::collection::btree_set(("[a-z]{1,5}", 0i32..50), 0..10),
            start in any::<i64>(), update in any::<i64>(),
        ) {
            let state = TxnState::ALL[state];
            let m = TxnMetadata {
                producer_id: id,
                previous_producer_id: prev,
                producer_epoch: epoch,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms: timeout,
                state,
                partitions: if state == TxnState::Empty { Default::default() } else { parts },
                start_ms: start,
                update_ms: update,
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
