//! The transaction coordinator: every transactional id of the broker, the
//! transaction protocol (InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, the transaction timeout),
//! and its persistence in `__transaction_state`.
//!
//! Each transactional id is a state machine ([`state`]) behind its own lock.
//! Transitions are pure; what one decides is made durable through a
//! [`TxnStore`] while that id's lock is held, and adopted only then, so
//! nothing is acknowledged before it is stored. A commit or abort is two
//! phases: PrepareCommit (PrepareAbort) is logged first — the decision —
//! then a COMMIT (ABORT) marker is written to every partition of the
//! transaction, then CompleteCommit (CompleteAbort) is logged. A decision
//! whose markers did not all land (a full disk, a crash) is completed by
//! [`TransactionCoordinator::tick`], after a restart too: markers are
//! idempotent, so writing one twice is harmless. Time is passed in (`now`,
//! wall-clock ms, the clock the records carry); the broker's clock thread
//! calls [`TransactionCoordinator::tick`], which also aborts transactions
//! past their timeout.

pub mod records;
pub mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{info, warn};

use crate::error::{BrokerError, Result};
pub use state::{InitStep, TxnMetadata, TxnRefusal, TxnState};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE: &str = "__transaction_state";

/// Transaction coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// Longest `transaction.timeout.ms` a producer may ask for
    /// (`transaction.max.timeout.ms`, 15 min).
    pub max_timeout: Duration,
    /// Partitions of `__transaction_state`
    /// (`transaction.state.log.num.partitions`, 50).
    pub state_topic_partitions: u32,
    /// Segment size of `__transaction_state`
    /// (`transaction.state.log.segment.bytes`, 100 MiB).
    pub state_topic_segment_bytes: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout: Duration::from_secs(15 * 60),
            state_topic_partitions: 50,
            state_topic_segment_bytes: 100 << 20,
        }
    }
}

/// Where the coordinator makes its decisions durable and applies them (the
/// broker: `__transaction_state`, the partitions' logs, the producer-id
/// counter).
pub trait TxnStore {
    /// Appends `value` (`None`: a tombstone) for `transactional_id` to its
    /// `__transaction_state` partition; returns once durable.
    fn persist_txn(&self, transactional_id: &str, value: Option<Vec<u8>>) -> Result<()>;
    /// Appends a COMMIT (`commit`) or ABORT marker of the producer to a
    /// partition; returns once durable. A partition that no longer exists
    /// is the unknown-topic error (the coordinator skips it).
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<()>;
    /// A producer id never handed out before.
    fn new_producer_id(&self) -> Result<i64>;
}

/// One transactional id: `None` until its first InitProducerId is durable.
type Slot = Arc<Mutex<Option<TxnMetadata>>>;

/// Every transactional id of the broker.
#[derive(Debug)]
pub struct TransactionCoordinator {
    txns: Mutex<BTreeMap<String, Slot>>,
    config: TxnConfig,
}

/// What a locked slot holds: the id's metadata, or
/// INVALID_PRODUCER_ID_MAPPING while it has none.
fn metadata<'a>(id: &str, slot: &'a Option<TxnMetadata>) -> Result<&'a TxnMetadata> {
    slot.as_ref()
        .ok_or_else(|| refused(id, TxnRefusal::InvalidProducerIdMapping))
}

fn refused(transactional_id: &str, refusal: TxnRefusal) -> BrokerError {
    BrokerError::Transaction {
        transactional_id: transactional_id.to_string(),
        refusal,
    }
}

impl TransactionCoordinator {
    /// An empty coordinator.
    pub fn new(config: TxnConfig) -> Self {
        TransactionCoordinator {
            txns: Mutex::new(BTreeMap::new()),
            config,
        }
    }

    /// Rebuilds transactions from `__transaction_state` records, in log
    /// order (the last record of an id wins; a tombstone forgets it).
    /// Decided transactions are completed by the next [`Self::tick`].
    pub fn load(&self, records: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
        let mut txns = self.txns.lock();
        for (key, value) in records {
            let id = match records::decode_key(&key) {
                Ok(id) => id,
                Err(e) => {
                    warn!(error = %e, "skipping an unreadable __transaction_state key");
                    continue;
                }
            };
            match value.map(|v| records::decode_value(&v)) {
                None => {
                    txns.remove(&id);
                }
                Some(Ok(m)) => {
                    txns.insert(id, Arc::new(Mutex::new(Some(m))));
                }
                Some(Err(e)) => {
                    warn!(transactional_id = %id, error = %e, "skipping an unreadable transaction record")
                }
            }
        }
    }

    fn slot(&self, id: &str) -> Option<Slot> {
        self.txns.lock().get(id).cloned()
    }

    /// The slot of an id whose first InitProducerId is durable, or
    /// INVALID_PRODUCER_ID_MAPPING.
    fn known(&self, id: &str) -> Result<Slot> {
        self.slot(id)
            .ok_or_else(|| refused(id, TxnRefusal::InvalidProducerIdMapping))
    }

    fn slot_or_create(&self, id: &str) -> Slot {
        Arc::clone(self.txns.lock().entry(id.to_string()).or_default())
    }

    /// Persists `next` and adopts it.
    fn transit(
        store: &dyn TxnStore,
        id: &str,
        slot: &mut Option<TxnMetadata>,
        next: TxnMetadata,
    ) -> Result<()> {
        store.persist_txn(id, Some(records::encode_value(&next)))?;
        *slot = Some(next);
        Ok(())
    }

    /// Writes the markers of a decided transaction, then logs its
    /// completion. On failure the decision stays (logged), to be completed
    /// again later.
    fn complete(
        store: &dyn TxnStore,
        id: &str,
        slot: &mut Option<TxnMetadata>,
        now: i64,
    ) -> Result<()> {
        let Some(m) = slot.as_ref().filter(|m| m.state.is_prepared()) else {
            return Ok(());
        };
        let commit = m.state == TxnState::PrepareCommit;
        for (topic, partition) in &m.partitions {
            match store.write_marker(topic, *partition, m.producer_id, m.producer_epoch, commit) {
                Ok(()) => {}
                Err(BrokerError::UnknownTopicOrPartition { .. }) => {
                    // Deleted since it joined: nothing there to mark.
                    info!(
                        transactional_id = id,
                        topic, partition, "skipping the marker of a deleted partition"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let next = m.complete(now).map_err(|r| refused(id, r))?;
        Self::transit(store, id, slot, next)
    }

    /// InitProducerId with a transactional id: its producer id and a new
    /// epoch, fencing the previous producer (its ongoing transaction is
    /// aborted with the bumped epoch first). `expected` is the producer id
    /// and epoch the client holds (KIP-360), `None` for a new producer.
    pub fn init_producer_id(
        &self,
        store: &dyn TxnStore,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
    ) -> Result<(i64, i16)> {
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let max = i64::try_from(self.config.max_timeout.as_millis()).unwrap_or(i64::MAX);
        if timeout_ms <= 0 || i64::from(timeout_ms) > max {
            return Err(refused(id, TxnRefusal::InvalidTransactionTimeout));
        }
        let slot = self.slot_or_create(id);
        let mut slot = slot.lock();
        // A fence aborts the ongoing transaction, then the request runs
        // again on the aborted one (Kafka answers CONCURRENT_TRANSACTIONS
        // and the client retries: the same outcome, one round trip less).
        for _ in 0..2 {
            let current = match slot.as_ref() {
                Some(m) => m.clone(),
                None => TxnMetadata::new(store.new_producer_id()?, timeout_ms, now),
            };
            let mut fresh_id = None;
            let mut new_id = || match store.new_producer_id() {
                Ok(id) => Some(id),
                Err(e) => {
                    fresh_id = Some(e);
                    None
                }
            };
            let step = current.init_producer_id(timeout_ms, expected, now, &mut new_id);
            if let Some(e) = fresh_id {
                return Err(e);
            }
            match step.map_err(|r| refused(id, r))? {
                InitStep::Ready(next) => {
                    let answer = (next.producer_id, next.producer_epoch);
                    Self::transit(store, id, &mut slot, next)?;
                    return Ok(answer);
                }
                InitStep::FenceFirst(aborting) => {
                    info!(
                        transactional_id = id,
                        producer_id = aborting.producer_id,
                        epoch = aborting.producer_epoch,
                        "fencing the previous producer: aborting its transaction"
                    );
                    Self::transit(store, id, &mut slot, aborting)?;
                    if let Err(e) = Self::complete(store, id, &mut slot, now) {
                        warn!(transactional_id = id, error = %e, "aborting the fenced transaction failed; retried at the next tick");
                        return Err(refused(id, TxnRefusal::ConcurrentTransactions));
                    }
                }
            }
        }
        Err(refused(id, TxnRefusal::ConcurrentTransactions))
    }

    /// AddPartitionsToTxn: the partitions join the ongoing transaction
    /// (starting one), durable before this returns.
    pub fn add_partitions(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<()> {
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let slot = self.known(id)?;
        let mut slot = slot.lock();
        let next = metadata(id, &slot)?
            .add_partitions(producer_id, epoch, partitions, now)
            .map_err(|r| refused(id, r))?;
        match next {
            Some(next) => Self::transit(store, id, &mut slot, next),
            None => Ok(()),
        }
    }

    /// AddPartitionsToTxn with `verify_only`: for each partition, whether
    /// it is in the producer's ongoing transaction (INVALID_TXN_STATE when
    /// not), without changing anything.
    pub fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>> {
        let slot = self.known(id)?;
        let slot = slot.lock();
        let m = metadata(id, &slot)?;
        m.check_producer(producer_id, epoch)
            .map_err(|r| refused(id, r))?;
        Ok(partitions
            .iter()
            .map(|p| m.state == TxnState::Ongoing && m.partitions.contains(p))
            .collect())
    }

    /// Runs `write` while the producer's ongoing transaction holds
    /// `partition` (TxnOffsetCommit: the group's `__consumer_offsets`
    /// partition, added by AddOffsetsToTxn), keeping the transaction from
    /// ending meanwhile, so its marker cannot land before the write.
    /// Refused as the transaction's checks refuse a stale producer, and
    /// INVALID_TXN_STATE when the partition is not in an ongoing one.
    pub fn while_holding<T>(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
        write: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let slot = self.known(id)?;
        let slot = slot.lock();
        let m = metadata(id, &slot)?;
        m.check_producer(producer_id, epoch)
            .map_err(|r| refused(id, r))?;
        if m.state != TxnState::Ongoing || !m.partitions.contains(partition) {
            return Err(refused(id, TxnRefusal::InvalidTxnState));
        }
        write()
    }

    /// EndTxn: commits or aborts the ongoing transaction. Returns once the
    /// decision is durable; the markers and the completion follow at once,
    /// or at the next tick if writing them failed (the decision stands).
    pub fn end_txn(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<()> {
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let slot = self.known(id)?;
        let mut slot = slot.lock();
        let Some(prepared) = metadata(id, &slot)?
            .end(producer_id, epoch, commit, true, now)
            .map_err(|r| refused(id, r))?
        else {
            return Ok(());
        };
        Self::transit(store, id, &mut slot, prepared)?;
        if let Err(e) = Self::complete(store, id, &mut slot, now) {
            warn!(transactional_id = id, error = %e, "writing transaction markers failed; retried at the next tick");
        }
        Ok(())
    }

    /// Advances timers: completes decided transactions whose markers are
    /// missing, and aborts (fencing the producer) ongoing transactions
    /// past their timeout. Ids busy with a request are left to the next
    /// tick. Returns how many transactions it ended.
    pub fn tick(&self, store: &dyn TxnStore, now: i64) -> usize {
        let slots: Vec<(String, Slot)> = self
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let mut ended = 0;
        for (id, slot) in slots {
            let Some(mut slot) = slot.try_lock() else {
                continue;
            };
            let Some(m) = slot.clone() else { continue };
            if m.timed_out(now) {
                let Ok(aborting) = m.fence(now) else { continue };
                info!(
                    transactional_id = %id,
                    producer_id = m.producer_id,
                    timeout_ms = m.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                if let Err(e) = Self::transit(store, &id, &mut slot, aborting) {
                    warn!(transactional_id = %id, error = %e, "aborting a timed-out transaction failed");
                    continue;
                }
            }
            if slot.as_ref().is_some_and(|m| m.state.is_prepared()) {
                match Self::complete(store, &id, &mut slot, now) {
                    Ok(()) => ended += 1,
                    Err(e) => {
                        warn!(transactional_id = %id, error = %e, "completing a transaction failed; retried at the next tick")
                    }
                }
            }
        }
        ended
    }

    /// One transactional id's transaction (`None`: unknown).
    pub fn describe(&self, id: &str) -> Option<TxnMetadata> {
        self.slot(id).and_then(|s| s.lock().clone())
    }

    /// How many transactional ids have a transaction.
    pub fn len(&self) -> usize {
        let slots: Vec<Slot> = self.txns.lock().values().cloned().collect();
        slots.iter().filter(|s| s.lock().is_some()).count()
    }

    /// No transactional id has a transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
