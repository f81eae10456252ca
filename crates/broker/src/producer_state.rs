//! Idempotent producers: per (producer id, partition) the broker keeps the
//! epoch and the last five batches' sequence ranges and offsets, so a retry
//! of one of them is answered with its original offsets and appended once,
//! and anything out of sequence is refused.
//!
//! Transactions: a transactional batch of a producer with no open
//! transaction here opens one at its base offset, and the producer's COMMIT
//! or ABORT marker ends it. The first offset of the oldest open transaction
//! is the partition's last stable offset (LSO): `read_committed` readers
//! stop there. A marker or a write with an epoch older than the producer's
//! is refused; a marker with a newer epoch bumps it (fencing the old one).
//!
//! The state is rebuilt from the log's batch headers at open (from a
//! snapshot when there is one), so duplicates stay detected and open
//! transactions stay open across restarts.
//!
//! Expiry, as Kafka's `producer.id.expiration.ms`: a producer with no
//! transaction open here whose last batch or marker is older than
//! [`PRODUCER_ID_EXPIRATION_MS`] (by its timestamp) is forgotten, every
//! [`PRODUCER_EXPIRY_CHECK`] (Kafka also checks when a log loads; the state
//! a snapshot or the log gives back is first checked 10 minutes after the
//! start). A producer unknown
//! here (expired, its batches deleted, or new) may start at any sequence,
//! as in Kafka.

use std::collections::{HashMap, VecDeque};

use pubsub_records::BatchHeader;
use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

/// Batches remembered per producer (Kafka's max.in.flight with idempotence).
pub const REMEMBERED_BATCHES: usize = 5;

/// How long a producer idle here is remembered (Kafka's
/// `producer.id.expiration.ms` default, 1 day).
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;

/// How often the broker forgets expired producers (Kafka's
/// `producer.id.expiration.check.interval.ms` default, 10 minutes).
pub const PRODUCER_EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(600);

/// What was appended for one batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    /// baseSequence.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset given to the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The batch's maxTimestamp (-1 in snapshots written before it was kept).
    #[serde(default = "no_timestamp")]
    pub timestamp: i64,
}

fn no_timestamp() -> i64 {
    -1
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Sequence of its last record appended.
    pub last_sequence: i32,
    /// maxTimestamp of its last batch appended.
    pub last_timestamp: i64,
    /// Offset of its last record appended.
    pub last_offset: u64,
    /// First offset of its open transaction, if one is open.
    pub txn_first: Option<u64>,
    /// Whether a transaction marker of it was appended (Kafka then knows
    /// the coordinator epoch the marker carried).
    pub marked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// First offset of the producer's open transaction (snapshot version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    txn_first: Option<u64>,
    /// A marker of the producer was appended (its coordinator epoch, always
    /// 0 here, is then known to DescribeProducers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    marked: bool,
    /// maxTimestamp of its last marker here (-1, or absent: none, or a
    /// snapshot written before it was kept).
    #[serde(default = "no_timestamp", skip_serializing_if = "is_no_timestamp")]
    marker_timestamp: i64,
}

fn is_no_timestamp(t: &i64) -> bool {
    *t == -1
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            txn_first: None,
            marked: false,
            marker_timestamp: -1,
        }
    }

    /// The timestamp of its last batch or marker, whichever is later (-1:
    /// unknown).
    fn last_timestamp(&self) -> i64 {
        let batch = self.batches.back().map_or(-1, |b| b.timestamp);
        batch.max(self.marker_timestamp)
    }
}

/// A transaction ended by a marker: what the aborted-transaction index
/// records when it was an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction (the marker's when it wrote
    /// nothing here).
    pub first_offset: u64,
    /// The marker's offset.
    pub marker_offset: u64,
    /// The last stable offset right after it ended.
    pub last_stable_offset: u64,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Next in sequence: append it.
    Append,
    /// A retry of a batch already appended: answer with its offsets.
    Duplicate(BatchMeta),
}

/// The sequence after `seq` (sequences wrap at i32::MAX to 0).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Producer state of one partition.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Decides what to do with a batch from `producer_id`.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck> {
        // A producer starting a newer epoch begins at 0; one unknown here
        // (never seen, expired, or its batches deleted) at any sequence,
        // as in Kafka.
        let expected = match self.producers.get(&producer_id) {
            None => return Ok(SequenceCheck::Append),
            Some(entry) if epoch < entry.epoch => {
                return Err(BrokerError::InvalidProducerEpoch {
                    producer_id,
                    epoch,
                    current: entry.epoch,
                });
            }
            Some(entry) if epoch == entry.epoch => {
                if let Some(dup) = entry
                    .batches
                    .iter()
                    .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
                {
                    return Ok(SequenceCheck::Duplicate(*dup));
                }
                entry.batches.back().map_or(0, |b| next_seq(b.last_seq))
            }
            _ => 0,
        };
        if first_seq != expected {
            return Err(BrokerError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first_seq,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// The sequence the next batch of `producer_id` at `epoch` must start
    /// at (0 for a producer never seen here or at a newer epoch): how the
    /// group coordinator numbers the transactional batches it writes.
    pub fn next_sequence(&self, producer_id: i64, epoch: i16) -> i32 {
        match self.producers.get(&producer_id) {
            Some(entry) if entry.epoch == epoch => {
                entry.batches.back().map_or(0, |b| next_seq(b.last_seq))
            }
            _ => 0,
        }
    }

    /// Records an appended batch.
    pub fn record(&mut self, producer_id: i64, epoch: i16, meta: BatchMeta) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(meta);
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// A transactional batch was appended at `base_offset`: it opens the
    /// producer's transaction here unless one is open.
    pub fn begin_txn(&mut self, producer_id: i64, base_offset: u64) {
        if let Some(entry) = self.producers.get_mut(&producer_id) {
            entry.txn_first.get_or_insert(base_offset);
        }
    }

    /// Whether a marker of `producer_id` at `epoch` may be written: not when
    /// the producer has a newer epoch (a fenced coordinator or zombie).
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<()> {
        match self.producers.get(&producer_id) {
            Some(entry) if epoch < entry.epoch => Err(BrokerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// A marker of `producer_id` at `epoch`, stamped `timestamp`, was
    /// appended at `offset`: ends its open transaction (if any) and adopts
    /// a newer epoch (sequences start again at 0 under it). Returns the
    /// ended transaction.
    pub fn end_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        offset: u64,
        timestamp: i64,
    ) -> EndedTxn {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        entry.marker_timestamp = entry.marker_timestamp.max(timestamp);
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.marked = true;
        let first_offset = entry.txn_first.take().unwrap_or(offset);
        let last_stable_offset = self.first_open_txn().unwrap_or(offset + 1);
        EndedTxn {
            producer_id,
            first_offset,
            marker_offset: offset,
            last_stable_offset,
        }
    }

    /// Forgets the producers with no transaction open here whose last
    /// batch or marker is stamped before `cutoff_ms`; returns how many.
    pub fn expire(&mut self, cutoff_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| e.txn_first.is_some() || e.last_timestamp() >= cutoff_ms);
        before - self.producers.len()
    }

    /// First offset of the oldest open transaction.
    pub fn first_open_txn(&self) -> Option<u64> {
        self.producers.values().filter_map(|e| e.txn_first).min()
    }

    /// The open transactions: (producer id, first offset), by first offset.
    pub fn open_txns(&self) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = self
            .producers
            .iter()
            .filter_map(|(&pid, e)| Some((pid, e.txn_first?)))
            .collect();
        out.sort_by_key(|&(pid, first)| (first, pid));
        out
    }

    /// Every producer with a batch remembered, by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .filter_map(|(&producer_id, e)| {
                e.batches.back().map(|b| ActiveProducer {
                    producer_id,
                    epoch: e.epoch,
                    last_sequence: b.last_seq,
                    last_timestamp: b.timestamp,
                    last_offset: b.last_offset,
                    txn_first: e.txn_first,
                    marked: e.marked,
                })
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Replays one batch header from the log (rebuilding at open); returns
    /// the transaction a marker ended.
    pub fn replay(&mut self, h: &BatchHeader) -> Option<EndedTxn> {
        if h.producer_id < 0 {
            return None;
        }
        if self
            .producers
            .get(&h.producer_id)
            .is_some_and(|e| h.producer_epoch < e.epoch)
        {
            return None;
        }
        if h.is_control() {
            if !h.is_transactional() {
                return None;
            }
            let offset = h.base_offset.max(0) as u64;
            return Some(self.end_txn(h.producer_id, h.producer_epoch, offset, h.max_timestamp));
        }
        if h.base_sequence < 0 {
            return None;
        }
        self.record(
            h.producer_id,
            h.producer_epoch,
            BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                base_offset: h.base_offset as u64,
                last_offset: h.last_offset() as u64,
                timestamp: h.max_timestamp,
            },
        );
        if h.is_transactional() {
            self.begin_txn(h.producer_id, h.base_offset.max(0) as u64);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first: i32, last: i32, off: u64) -> BatchMeta {
        BatchMeta {
            first_seq: first,
            last_seq: last,
            base_offset: off,
            last_offset: off + (last - first) as u64,
            timestamp: 1,
        }
    }

    #[test]
    fn sequences_duplicates_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 4).expect("first"), SequenceCheck::Append);
        assert_eq!(
            s.check(8, 0, 3, 4).expect("unknown"),
            SequenceCheck::Append,
            "a producer unknown here starts anywhere"
        );
        s.record(7, 0, meta(0, 4, 100));
        assert!(matches!(
            s.check(7, 0, 6, 7),
            Err(BrokerError::OutOfOrderSequence {
                expected: 5,
                got: 6,
                ..
            })
        ));
        assert_eq!(s.check(7, 0, 5, 9).expect("next"), SequenceCheck::Append);
        assert_eq!(
            s.check(7, 0, 0, 4).expect("retry"),
            SequenceCheck::Duplicate(meta(0, 4, 100))
        );
        for i in 1..=5 {
            s.record(7, 0, meta(i * 5, i * 5 + 4, 100 + i as u64 * 5));
        }
        // Only the last five batches are remembered.
        assert!(s.check(7, 0, 0, 4).is_err());
        assert!(matches!(
            s.check(7, 0, 25, 29).expect("dup"),
            SequenceCheck::Duplicate(_)
        ));
        // A newer epoch restarts at 0; older epochs are fenced.
        assert_eq!(s.check(7, 1, 0, 0).expect("bump"), SequenceCheck::Append);
        s.record(7, 1, meta(0, 0, 500));
        assert!(matches!(
            s.check(7, 0, 30, 30),
            Err(BrokerError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn markers_and_writes_of_an_older_epoch_are_refused() {
        let mut s = ProducerStates::default();
        s.record(4, 2, meta(0, 0, 10));
        s.begin_txn(4, 10);
        // A marker of an older epoch (a fenced coordinator's, a delayed one)
        // is refused and ends nothing.
        assert!(matches!(
            s.check_marker(4, 1),
            Err(BrokerError::InvalidProducerEpoch { current: 2, .. })
        ));
        assert_eq!(s.first_open_txn(), Some(10));
        // The marker of a newer epoch (the coordinator fencing the
        // producer) ends the transaction and adopts its epoch: writes and
        // markers of the old epoch are refused from then on.
        s.check_marker(4, 3).expect("newer");
        let ended = s.end_txn(4, 3, 11, 1);
        assert_eq!((ended.first_offset, ended.marker_offset), (10, 11));
        assert_eq!(s.first_open_txn(), None);
        assert!(matches!(
            s.check(4, 2, 1, 1),
            Err(BrokerError::InvalidProducerEpoch { current: 3, .. })
        ));
        assert!(s.check_marker(4, 2).is_err());
        // Same epoch: a marker is accepted (transaction version 1 markers
        // carry the producer's epoch), and writes start again at 0.
        s.check_marker(4, 3).expect("same epoch");
        assert_eq!(
            s.check(4, 3, 0, 0).expect("new epoch"),
            SequenceCheck::Append
        );
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut s = ProducerStates::default();
        s.record(
            1,
            0,
            BatchMeta {
                timestamp: 100,
                ..meta(0, 0, 0)
            },
        );
        s.record(
            2,
            0,
            BatchMeta {
                timestamp: 300,
                ..meta(0, 0, 1)
            },
        );
        s.record(
            3,
            0,
            BatchMeta {
                timestamp: 100,
                ..meta(0, 0, 2)
            },
        );
        s.begin_txn(3, 2);
        // A marker counts as activity.
        s.end_txn(4, 0, 3, 250);
        assert_eq!(s.expire(200), 1);
        let left: Vec<i64> = s.active().iter().map(|a| a.producer_id).collect();
        assert_eq!(left, [2, 3], "4 has no batch to list");
        assert_eq!(s.next_sequence(4, 0), 0);
        assert!(s.check_marker(4, 0).is_ok());
        assert_eq!(s.expire(260), 1, "the marker-only producer goes");
        assert!(s.producers.contains_key(&3), "its transaction is open");
    }

    #[test]
    fn sequences_wrap() {
        let mut s = ProducerStates::default();
        s.record(1, 0, meta(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(1, 0, 0, 3).expect("wrapped"), SequenceCheck::Append);
    }
}
