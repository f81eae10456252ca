//! One transactional id's transaction, as Kafka's TransactionMetadata keeps
//! it, and every transition of it as a pure function: each returns the
//! metadata to make durable next (or Kafka's refusal), and changes nothing.
//! The coordinator persists what a transition returns before it adopts it.

use std::collections::BTreeSet;
use std::fmt;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// The states of a transaction, with Kafka's ids (the `TransactionStatus`
/// byte of `__transaction_state`) and names (DescribeTransactions,
/// ListTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction: the producer id and epoch are handed out.
    Empty,
    /// Partitions (or a group's offsets) joined; not ended yet.
    Ongoing,
    /// Commit decided and durable; markers are being written.
    PrepareCommit,
    /// Abort decided and durable; markers are being written.
    PrepareAbort,
    /// Every COMMIT marker written.
    CompleteCommit,
    /// Every ABORT marker written.
    CompleteAbort,
    /// The transactional id expired (its tombstone follows).
    Dead,
    /// An ongoing transaction being aborted because a new producer (or the
    /// timeout) fenced it; never written to the log.
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in id order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's id of the state.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a Kafka id.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named so (case-insensitive, as ListTransactions filters).
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The states a transaction may move to this one from (Kafka's
    /// validPreviousStates).
    pub fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            // Transaction version 2 may abort with no transaction open.
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// A decided transaction whose markers may still be missing.
    pub fn is_prepared(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the coordinator refused a request: each is the Kafka error of the
/// same name, the one Kafka's coordinator answers in that case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnRefusal {
    /// INVALID_REQUEST (42): an empty transactional id, a producer id
    /// without an epoch.
    InvalidRequest,
    /// INVALID_TRANSACTION_TIMEOUT (50): not in (0, the broker maximum].
    InvalidTransactionTimeout,
    /// CONCURRENT_TRANSACTIONS (51): the previous transaction is still
    /// completing; retry.
    ConcurrentTransactions,
    /// PRODUCER_FENCED (90): another producer (a newer epoch) owns the
    /// transactional id. Clients of request versions that predate it get
    /// INVALID_PRODUCER_EPOCH (47).
    ProducerFenced,
    /// INVALID_PRODUCER_ID_MAPPING (49): the producer id is not the
    /// transactional id's (or the id is unknown).
    InvalidProducerIdMapping,
    /// INVALID_TXN_STATE (48): the request does not fit the transaction's
    /// state (EndTxn with no transaction, commit after abort).
    InvalidTxnState,
}

impl fmt::Display for TxnRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnRefusal::InvalidRequest => "invalid request",
            TxnRefusal::InvalidTransactionTimeout => "invalid transaction timeout",
            TxnRefusal::ConcurrentTransactions => "the previous transaction is still completing",
            TxnRefusal::ProducerFenced => "the producer is fenced by a newer epoch",
            TxnRefusal::InvalidProducerIdMapping => "the producer id is not the transactional id's",
            TxnRefusal::InvalidTxnState => "invalid transaction state for the request",
        })
    }
}

/// The result of a transition: the next metadata, or the refusal.
pub type Transit = Result<TxnMetadata, TxnRefusal>;

/// A transaction's metadata (what `__transaction_state` stores per
/// transactional id, plus the last epoch handed out, kept in memory only
/// so a retried InitProducerId gets the same answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id in use.
    pub producer_id: i64,
    /// The id before the last rotation (epoch exhaustion), or -1.
    pub previous_producer_id: i64,
    /// The id a decided transaction version 2 transaction rotates to when
    /// it completes (its epoch was exhausted), or -1.
    pub next_producer_id: i64,
    /// The epoch in use (-1 before the first InitProducerId completes).
    pub producer_epoch: i16,
    /// The epoch before the last bump, for retried InitProducerIds and for
    /// the producer a fence bumped past (not persisted; -1 when unknown).
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// Partitions in the transaction (the group offsets' partition of
    /// `__consumer_offsets` included).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the transaction started (wall-clock ms; -1 with none).
    pub start_ms: i64,
    /// When the metadata last changed (wall-clock ms).
    pub update_ms: i64,
    /// The transaction version the client spoke in the request that last
    /// changed the transaction (Kafka's `clientTransactionVersion`): 0
    /// for AddPartitionsToTxn v0-3, AddOffsetsToTxn and EndTxn v0-4, 2 for
    /// EndTxn v5 and for partitions added implicitly (KIP-890).
    pub client_version: i16,
}

/// The transaction version of KIP-890 part 2: an epoch bump at every
/// EndTxn and partitions added implicitly by the transactional writes.
pub const TXN_VERSION_2: i16 = 2;

/// Whether an epoch is the last usable one of its producer id (Kafka bumps
/// to a new producer id from `i16::MAX - 1`, keeping `i16::MAX` for
/// fencing).
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// What an InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Persist this (state Empty), then answer its producer id and epoch.
    Ready(TxnMetadata),
    /// An ongoing transaction is fenced first: persist this (PrepareAbort
    /// with the epoch bumped), write the ABORT markers, complete it, then
    /// run the InitProducerId again.
    FenceFirst(TxnMetadata),
}

impl TxnMetadata {
    /// A transactional id seen for the first time: a fresh producer id, no
    /// epoch yet, no transaction.
    pub fn new(producer_id: i64, timeout_ms: i32, now: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now,
            client_version: 0,
        }
    }

    fn moved_to(&self, state: TxnState, now: i64) -> Transit {
        if !state.valid_previous().contains(&self.state) {
            return Err(TxnRefusal::InvalidTxnState);
        }
        let mut next = self.clone();
        next.state = state;
        next.update_ms = now;
        Ok(next)
    }

    /// InitProducerId: `expected` is the producer id and epoch the client
    /// sent (KIP-360), `None` for a new producer; `new_producer_id` gives
    /// a fresh id when the epoch is exhausted.
    pub fn init_producer_id(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        new_producer_id: &mut dyn FnMut() -> Option<i64>,
    ) -> Result<InitStep, TxnRefusal> {
        let valid_id = |(id, epoch): (i64, i16)| {
            self.producer_epoch == NO_PRODUCER_EPOCH
                || id == self.producer_id
                || (id == self.previous_producer_id && epoch_exhausted(epoch))
        };
        if !expected.is_none_or(valid_id) {
            return Err(TxnRefusal::ProducerFenced);
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(TxnRefusal::ConcurrentTransactions)
            }
            TxnState::Ongoing => self.fence(now).map(InitStep::FenceFirst),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                if epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == self.producer_epoch)
                {
                    let id = new_producer_id().ok_or(TxnRefusal::ConcurrentTransactions)?;
                    let mut next = self.moved_to(TxnState::Empty, now)?;
                    next.previous_producer_id = self.producer_id;
                    next.producer_id = id;
                    next.producer_epoch = 0;
                    next.last_producer_epoch = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    next.timeout_ms = timeout_ms;
                    next.partitions.clear();
                    next.start_ms = -1;
                    return Ok(InitStep::Ready(next));
                }
                let bumped = self.producer_epoch.saturating_add(1);
                let (epoch, last) = match expected {
                    None => (bumped, NO_PRODUCER_EPOCH),
                    Some((_, e))
                        if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch =>
                    {
                        (bumped, self.producer_epoch)
                    }
                    // A retry whose answer was lost, or the fenced producer
                    // recovering: the same answer again. Never the epoch
                    // reserved for fencing (a fence at the last usable one
                    // reaches it): that producer is fenced, and the next
                    // new producer rotates the id.
                    Some((_, e))
                        if e == self.last_producer_epoch && self.producer_epoch < i16::MAX =>
                    {
                        (self.producer_epoch, self.last_producer_epoch)
                    }
                    Some(_) => return Err(TxnRefusal::ProducerFenced),
                };
                let mut next = self.moved_to(TxnState::Empty, now)?;
                next.producer_epoch = epoch;
                next.last_producer_epoch = last;
                next.timeout_ms = timeout_ms;
                next.partitions.clear();
                next.start_ms = -1;
                Ok(InitStep::Ready(next))
            }
            // Never kept: Dead metadata is removed, a fence is never stored.
            TxnState::Dead | TxnState::PrepareEpochFence => Err(TxnRefusal::ConcurrentTransactions),
        }
    }

    /// Fences the ongoing transaction (a new producer or the timeout): its
    /// epoch bumped, straight to PrepareAbort, as Kafka logs it. At the
    /// last epoch a client may hold (`i16::MAX - 1`) the bump reaches
    /// `i16::MAX`, the epoch kept for fencing: the ABORT markers carry it,
    /// so the zombie's epoch is refused at its partitions, and the next
    /// InitProducerId rotates the id (Kafka's `prepareFenceProducerEpoch`).
    /// Only at `i16::MAX` itself is the epoch kept (Kafka refuses that
    /// fence as an overflow; no client holds that epoch).
    ///
    /// The fenced epoch stays as the last one: Kafka 4.x aborts a fenced
    /// transaction at the broker's transaction version (2), whose abort
    /// records the epoch it bumps from. So the fenced producer itself may
    /// still recover with InitProducerId naming that epoch (KIP-360: a
    /// producer bumping its own epoch after an abortable error): it is
    /// answered the bumped epoch, as a retry is. A new producer's InitProducerId
    /// (no epoch named) clears it, fencing the old one for good.
    pub fn fence(&self, now: i64) -> Transit {
        let fencing = self.moved_to(TxnState::PrepareEpochFence, now)?;
        let mut next = fencing.moved_to(TxnState::PrepareAbort, now)?;
        if self.producer_epoch < i16::MAX {
            next.producer_epoch = self.producer_epoch + 1;
        }
        next.last_producer_epoch = self.producer_epoch;
        Ok(next)
    }

    /// Checks a request's producer id and epoch against the transaction
    /// (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit).
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnRefusal> {
        if self.producer_id != producer_id {
            Err(TxnRefusal::InvalidProducerIdMapping)
        } else if self.producer_epoch != epoch {
            Err(TxnRefusal::ProducerFenced)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's offsets
    /// partition): `Ok(None)` when every partition is in already.
    /// `client_version` is the transaction version the request speaks
    /// (recorded when the transaction changes).
    pub fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        client_version: i16,
        now: i64,
    ) -> Result<Option<TxnMetadata>, TxnRefusal> {
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(TxnRefusal::ConcurrentTransactions)
            }
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => {
                return Ok(None)
            }
            _ => {}
        }
        let fresh = matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        let mut next = self.moved_to(TxnState::Ongoing, now)?;
        if fresh {
            next.partitions.clear();
            next.start_ms = now;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.client_version = client_version;
        Ok(Some(next))
    }

    /// EndTxn: `Ok(None)` when the transaction already ended that way (a
    /// retry). `from_client` is false for the coordinator's own aborts,
    /// which may carry a newer epoch.
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        from_client: bool,
        now: i64,
    ) -> Result<Option<TxnMetadata>, TxnRefusal> {
        if self.producer_id != producer_id {
            return Err(TxnRefusal::InvalidProducerIdMapping);
        }
        if (from_client && epoch != self.producer_epoch) || epoch < self.producer_epoch {
            return Err(TxnRefusal::ProducerFenced);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let target = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                let mut next = self.moved_to(target, now)?;
                next.client_version = 0;
                Ok(Some(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(TxnRefusal::ConcurrentTransactions)
            }
            _ => Err(TxnRefusal::InvalidTxnState),
        }
    }

    /// EndTxn of transaction version 2 (EndTxn v5, KIP-890), as Kafka 4.x
    /// decides it: the decision bumps the epoch (the markers carry the
    /// bumped one, so no marker of this transaction can end the next), and
    /// at an exhausted epoch names the producer id the completion rotates
    /// to (`new_producer_id`). An abort needs no open transaction. A retry
    /// of an EndTxn already decided (the client still holds the epoch
    /// before the bump, or the last epoch of the id rotated away) is
    /// `Ok(None)`: its answer is the current producer id and epoch.
    pub fn end_v2(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
        new_producer_id: &mut dyn FnMut() -> Option<i64>,
    ) -> Result<Option<TxnMetadata>, TxnRefusal> {
        use TxnState::*;
        let retry_on_overflow = self.previous_producer_id == producer_id
            && producer_id != NO_PRODUCER_ID
            && epoch == i16::MAX - 1
            && self.producer_epoch == 0;
        let retry_on_bump = i32::from(self.producer_epoch) == i32::from(epoch) + 1;
        let valid_epoch = match self.state {
            PrepareCommit | PrepareAbort => retry_on_bump,
            CompleteCommit | CompleteAbort => {
                retry_on_bump || retry_on_overflow || epoch == self.producer_epoch
            }
            Ongoing | Empty | Dead | PrepareEpochFence => epoch == self.producer_epoch,
        };
        if self.producer_id != producer_id && !retry_on_overflow {
            return Err(TxnRefusal::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnRefusal::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let target = if commit { PrepareCommit } else { PrepareAbort };
        match (self.state, commit) {
            (Ongoing, _) => {}
            (CompleteCommit, true) | (CompleteAbort, false) if retry => return Ok(None),
            (CompleteCommit, false) | (CompleteAbort, false) | (Empty, false) if !retry => {}
            (PrepareCommit, true) | (PrepareAbort, false) => {
                return Err(TxnRefusal::ConcurrentTransactions)
            }
            _ => return Err(TxnRefusal::InvalidTxnState),
        }
        let empty = self.state != Ongoing;
        let mut next = self.moved_to(target, now)?;
        if epoch_exhausted(self.producer_epoch) {
            next.next_producer_id = new_producer_id().ok_or(TxnRefusal::ConcurrentTransactions)?;
        }
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.last_producer_epoch = self.producer_epoch;
        next.client_version = TXN_VERSION_2;
        if empty {
            // Nothing was added: the abort starts and ends now.
            next.partitions.clear();
            next.start_ms = now;
        }
        Ok(Some(next))
    }

    /// The markers are all written: PrepareCommit -> CompleteCommit,
    /// PrepareAbort -> CompleteAbort, no partitions left.
    pub fn complete(&self, now: i64) -> Transit {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Err(TxnRefusal::InvalidTxnState),
        };
        let mut next = self.moved_to(state, now)?;
        next.partitions.clear();
        if self.next_producer_id != NO_PRODUCER_ID {
            // Transaction version 2 at epoch exhaustion: the markers carried
            // the old id at the last epoch; the producer goes on with the
            // new id at epoch 0.
            next.previous_producer_id = self.producer_id;
            next.producer_id = self.next_producer_id;
            next.next_producer_id = NO_PRODUCER_ID;
            next.producer_epoch = 0;
        }
        Ok(next)
    }

    /// Whether an ongoing transaction has outlived its timeout at `now`.
    pub fn timed_out(&self, now: i64) -> bool {
        self.state == TxnState::Ongoing
            && self.start_ms.saturating_add(i64::from(self.timeout_ms)) < now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing(epoch: i16) -> TxnMetadata {
        let mut m = TxnMetadata::new(7, 60_000, 0);
        m.producer_epoch = epoch;
        m.add_partitions(7, epoch, &[("t".into(), 0)], 0, 10)
            .expect("a valid test value")
            .expect("a valid test value")
    }

    fn ready(step: Result<InitStep, TxnRefusal>) -> TxnMetadata {
        match step {
            Ok(InitStep::Ready(m)) => m,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn no_id() -> Option<i64> {
        None
    }

    #[test]
    fn state_ids_and_names_round_trip() {
        for s in TxnState::ALL {
            assert_eq!(TxnState::from_id(s.id()), Some(s));
            assert_eq!(TxnState::from_name(&s.name().to_lowercase()), Some(s));
        }
        assert_eq!(TxnState::from_id(8), None);
    }

    #[test]
    fn first_init_gives_epoch_zero_then_bumps() {
        let m = TxnMetadata::new(7, 1000, 0);
        let m = ready(m.init_producer_id(1000, None, 1, &mut no_id));
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (7, 0, TxnState::Empty)
        );
        let m = ready(m.init_producer_id(2000, None, 2, &mut no_id));
        assert_eq!((m.producer_epoch, m.timeout_ms), (1, 2000));
    }

    #[test]
    fn init_with_expected_epoch_bumps_and_a_retry_gets_the_same_answer() {
        let mut m = TxnMetadata::new(7, 1000, 0);
        m.producer_epoch = 4;
        let bumped = ready(m.init_producer_id(1000, Some((7, 4)), 1, &mut no_id));
        assert_eq!(bumped.producer_epoch, 5);
        let retry = ready(bumped.init_producer_id(1000, Some((7, 4)), 2, &mut no_id));
        assert_eq!(retry.producer_epoch, 5);
        assert_eq!(
            bumped.init_producer_id(1000, Some((7, 2)), 2, &mut no_id),
            Err(TxnRefusal::ProducerFenced)
        );
        assert_eq!(
            bumped.init_producer_id(1000, Some((8, 5)), 2, &mut no_id),
            Err(TxnRefusal::ProducerFenced)
        );
    }

    #[test]
    fn init_during_a_transaction_fences_it_with_a_bumped_epoch() {
        let m = ongoing(3);
        match m.init_producer_id(1000, None, 20, &mut no_id) {
            Ok(InitStep::FenceFirst(f)) => {
                assert_eq!((f.state, f.producer_epoch), (TxnState::PrepareAbort, 4));
                assert_eq!(f.partitions, m.partitions);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exhausted_epoch_rotates_the_producer_id() {
        let mut m = TxnMetadata::new(7, 1000, 0);
        m.producer_epoch = i16::MAX - 1;
        let mut ids = Some(99);
        let next = ready(m.init_producer_id(1000, Some((7, i16::MAX - 1)), 1, &mut || ids.take()));
        assert_eq!(
            (
                next.producer_id,
                next.previous_producer_id,
                next.producer_epoch
            ),
            (99, 7, 0)
        );
        // The producer retrying (its answer lost) gets the same answer.
        let again = ready(next.init_producer_id(1000, Some((7, i16::MAX - 1)), 2, &mut no_id));
        assert_eq!((again.producer_id, again.producer_epoch), (99, 0));
        // Without an expected epoch, a new producer: a new id at once.
        let mut ids = Some(100);
        let fresh = ready(m.init_producer_id(1000, None, 1, &mut || ids.take()));
        assert_eq!((fresh.producer_id, fresh.last_producer_epoch), (100, -1));
    }

    #[test]
    fn add_partitions_checks_the_producer_and_state() {
        let mut m = TxnMetadata::new(7, 1000, 0);
        m.producer_epoch = 0;
        let p = [("t".to_string(), 1)];
        assert_eq!(
            m.add_partitions(8, 0, &p, 0, 1),
            Err(TxnRefusal::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.add_partitions(7, 1, &p, 0, 1),
            Err(TxnRefusal::ProducerFenced)
        );
        let o = m
            .add_partitions(7, 0, &p, 0, 5)
            .expect("a valid test value")
            .expect("a valid test value");
        assert_eq!((o.state, o.start_ms), (TxnState::Ongoing, 5));
        assert_eq!(o.add_partitions(7, 0, &p, 0, 6), Ok(None));
        let prepared = o
            .end(7, 0, true, true, 7)
            .expect("a valid test value")
            .expect("a valid test value");
        assert_eq!(
            prepared.add_partitions(7, 0, &p, 0, 8),
            Err(TxnRefusal::ConcurrentTransactions)
        );
    }

    #[test]
    fn end_refusals_are_kafkas() {
        let mut empty = TxnMetadata::new(7, 1000, 0);
        empty.producer_epoch = 2;
        assert_eq!(
            empty.end(7, 2, true, true, 1),
            Err(TxnRefusal::InvalidTxnState)
        );
        assert_eq!(
            empty.end(7, 1, true, true, 1),
            Err(TxnRefusal::ProducerFenced)
        );
        assert_eq!(
            empty.end(6, 2, true, true, 1),
            Err(TxnRefusal::InvalidProducerIdMapping)
        );
        let o = ongoing(2);
        let pc = o
            .end(7, 2, true, true, 3)
            .expect("a valid test value")
            .expect("a valid test value");
        assert_eq!(pc.state, TxnState::PrepareCommit);
        assert_eq!(
            pc.end(7, 2, true, true, 4),
            Err(TxnRefusal::ConcurrentTransactions)
        );
        assert_eq!(
            pc.end(7, 2, false, true, 4),
            Err(TxnRefusal::InvalidTxnState)
        );
        let cc = pc.complete(5).expect("a valid test value");
        assert!(cc.partitions.is_empty());
        assert_eq!(cc.end(7, 2, true, true, 6), Ok(None));
        assert_eq!(
            cc.end(7, 2, false, true, 6),
            Err(TxnRefusal::InvalidTxnState)
        );
        // The coordinator's own abort may carry a newer epoch.
        assert!(o.end(7, 3, false, false, 4).is_ok());
        assert_eq!(o.end(7, 3, false, true, 4), Err(TxnRefusal::ProducerFenced));
    }

    #[test]
    fn timeout_counts_from_the_start() {
        let o = ongoing(0);
        assert!(!o.timed_out(10 + 60_000));
        assert!(o.timed_out(10 + 60_001));
        let f = o.fence(70_000).expect("a valid test value");
        assert_eq!(f.producer_epoch, 1);
        assert!(!f.timed_out(i64::MAX));
    }
}
