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
//! transaction, then CompleteCommit (CompleteAbort) is logged. EndTxn is
//! answered once the decision is durable and the markers appended (as
//! Kafka answers before its markers): their fsyncs run in the background,
//! and the store's background worker logs the completion as soon as they
//! are durable ([`TxnStore::complete_in_background`]); the id's next
//! request, or the tick, if it comes first, waits for them and logs it
//! before doing anything else, so the next transaction's records always
//! follow durable markers and the completion. A decision whose markers did
//! not all land (a full disk, a crash) is completed by
//! [`TransactionCoordinator::tick`], after a restart too: markers are
//! idempotent, so writing one twice is harmless. Time is passed in (`now`,
//! wall-clock ms, the clock the records carry); the broker's clock thread
//! calls [`TransactionCoordinator::tick`], which also aborts transactions
//! past their timeout.

pub mod records;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{debug, info, warn};

use crate::error::{BrokerError, Result};
use crate::names::CONSUMER_OFFSETS;
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
    /// How long a transactional id with no transaction in progress is kept
    /// after its last change (`transactional.id.expiration.ms`, 7 days);
    /// then the tick removes it (a tombstone in `__transaction_state`).
    pub id_expiration: Duration,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout: Duration::from_secs(15 * 60),
            state_topic_partitions: 50,
            state_topic_segment_bytes: 100 << 20,
            id_expiration: Duration::from_secs(7 * 24 * 3600),
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
    /// [`TxnStore::write_marker`] to every partition of `partitions`, one
    /// result each, in order; returns once every marker written is durable
    /// (a store may append them all first and fsync them in parallel).
    fn write_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<()>> {
        partitions
            .iter()
            .map(|(t, p)| self.write_marker(t, *p, producer_id, producer_epoch, commit))
            .collect()
    }
    /// Appends a marker to every partition of `partitions` like
    /// [`TxnStore::write_markers`], one result each, in order, but returns
    /// before their fsyncs, which the store starts at once in the
    /// background: each [`OwedSync`] waits for its marker's. The default
    /// store has no background: it writes them durable, and owes nothing.
    fn append_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<Box<dyn OwedSync>>> {
        Durable::all(self.write_markers(partitions, producer_id, producer_epoch, commit))
    }
    /// Appends a completion (CompleteCommit, CompleteAbort) of
    /// `transactional_id` without waiting for its fsync: it becomes durable
    /// with the next flush of its partition. Lost in a crash, the decision
    /// before it is reloaded and completed again (markers are idempotent);
    /// and no later record of the id (the next transaction's) can be
    /// durable without it, as it lies before it in the same partition and
    /// a log is made durable as a prefix.
    fn persist_txn_completion(&self, transactional_id: &str, value: Vec<u8>) -> Result<()> {
        self.persist_txn(transactional_id, Some(value))
    }
    /// The coordinator left `transactional_id`'s markers landing
    /// ([`TxnStore::append_markers`]; its decision is not complete yet): a
    /// store with a background worker completes it as soon as they are
    /// durable, by calling [`TransactionCoordinator::complete_landed`], so
    /// `__transaction_state` holds the completion without waiting for the
    /// id's next request or the tick. The default store has no worker:
    /// those complete it.
    fn complete_in_background(&self, transactional_id: &str) {
        let _ = transactional_id;
    }
    /// A producer id never handed out before.
    fn new_producer_id(&self) -> Result<i64>;
    /// Appends `value` for `transactional_id` like [`TxnStore::persist_txn`]
    /// but returns before its fsync, which the store starts at once in the
    /// background; the returned [`OwedSync`] waits for it. The default
    /// store has no background: it persists, and owes nothing.
    fn persist_txn_owed(
        &self,
        transactional_id: &str,
        value: Vec<u8>,
    ) -> Result<Box<dyn OwedSync>> {
        self.persist_txn(transactional_id, Some(value))?;
        Ok(Box::new(Durable))
    }
}

/// The fsync a record appended to `__transaction_state` still owes
/// ([`TxnStore::persist_txn_owed`]).
pub trait OwedSync: Send + Sync + std::fmt::Debug {
    /// Blocks until the record is durable (one fsync serves every waiter).
    fn wait(&self) -> Result<()>;
    /// Whether the record is known durable already (nothing to wait for).
    fn is_durable(&self) -> bool {
        false
    }
}

/// A record durable already.
#[derive(Debug)]
pub struct Durable;

impl Durable {
    /// Results of writes made durable already, as owing nothing.
    pub fn all(written: Vec<Result<()>>) -> Vec<Result<Box<dyn OwedSync>>> {
        written
            .into_iter()
            .map(|r| r.map(|()| Box::new(Durable) as Box<dyn OwedSync>))
            .collect()
    }
}

impl OwedSync for Durable {
    fn wait(&self) -> Result<()> {
        Ok(())
    }
    fn is_durable(&self) -> bool {
        true
    }
}

/// One transactional id: `None` until its first InitProducerId is durable.
type Slot = Arc<Mutex<Option<TxnMetadata>>>;

/// Markers of a decided transaction still missing after a failed attempt:
/// which partitions have theirs already (not written again) and when to
/// try the others next (the tick backs off, doubling the wait).
#[derive(Debug, Default)]
struct MarkerRetry {
    /// The decision this is about: producer id, epoch, commit.
    decision: (i64, i16, bool),
    written: BTreeSet<(String, i32)>,
    failures: u32,
    next_ms: i64,
}

/// The markers of a decision that EndTxn answered before their fsyncs
/// ([`TransactionCoordinator::end_transaction`]): appended to every
/// partition, each with the fsync it still owes, or the error appending it
/// met. [`TransactionCoordinator::complete`] waits for them (writing again
/// the ones that failed) before it logs the completion.
#[derive(Debug)]
struct Landing {
    /// The decision these markers are of: producer id, epoch, commit.
    decision: (i64, i16, bool),
    markers: Vec<((String, i32), Result<SharedSync>)>,
}

/// A landing marker's fsync, shared by the coordinator's waiters.
type SharedSync = Arc<dyn OwedSync>;

/// One marker's outcome per partition (what [`TxnStore::write_markers`]
/// answers, with the partition).
type MarkerResults = Vec<((String, i32), Result<()>)>;

/// First wait after a failed marker write; doubled per failure up to
/// [`MARKER_RETRY_MAX_MS`].
const MARKER_RETRY_MS: i64 = 100;
const MARKER_RETRY_MAX_MS: i64 = 30_000;

/// Every transactional id of the broker.
#[derive(Debug)]
pub struct TransactionCoordinator {
    txns: Mutex<BTreeMap<String, Slot>>,
    /// Decided transactions whose markers failed, by transactional id.
    retries: Mutex<HashMap<String, MarkerRetry>>,
    /// The fsync each id's last AddPartitionsToTxn record still owes
    /// ([`TransactionCoordinator::add_partitions_owed`]): awaited before the
    /// transaction's first write (in [`TransactionCoordinator::verified`])
    /// and covered by the id's next fsynced record.
    owed: Mutex<HashMap<String, Box<dyn OwedSync>>>,
    /// Decided transactions whose markers are appended but may not be
    /// durable yet, by transactional id: completed by the store's
    /// background worker ([`Self::complete_landed`]), the id's next
    /// request or the tick, whichever comes first.
    landing: Mutex<HashMap<String, Landing>>,
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
            retries: Mutex::new(HashMap::new()),
            owed: Mutex::new(HashMap::new()),
            landing: Mutex::new(HashMap::new()),
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
                // Dead: the id expired and its tombstone follows (or was
                // lost to a crash): forgotten either way, so it can be used
                // again.
                Some(Ok(m)) if m.state == TxnState::Dead => {
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

    /// Removes `slot` from the map if it is still `id`'s and holds nothing
    /// (the request that created it was refused or failed), so unknown ids
    /// leave nothing behind.
    fn forget_if_empty(&self, id: &str, slot: &Slot) {
        let mut txns = self.txns.lock();
        let unused = txns
            .get(id)
            .is_some_and(|s| Arc::ptr_eq(s, slot) && s.try_lock().is_some_and(|m| m.is_none()));
        if unused {
            txns.remove(id);
        }
    }

    /// Persists `next` and adopts it. Its fsync covers every earlier
    /// record of the id (one `__transaction_state` partition, durable as a
    /// prefix), so nothing is owed for it after.
    fn transit(
        &self,
        store: &dyn TxnStore,
        id: &str,
        slot: &mut Option<TxnMetadata>,
        next: TxnMetadata,
    ) -> Result<()> {
        store.persist_txn(id, Some(records::encode_value(&next)))?;
        *slot = Some(next);
        self.owed.lock().remove(id);
        Ok(())
    }

    /// Waits until the id's last AddPartitionsToTxn record is durable (the
    /// caller holds the id's lock). A failed fsync stays owed: the log
    /// refuses writes until reopened, and so does every write waiting here.
    fn settle_owed(&self, id: &str) -> Result<()> {
        let Some(owed) = self.owed.lock().remove(id) else {
            return Ok(());
        };
        if let Err(e) = owed.wait() {
            self.owed.lock().entry(id.to_string()).or_insert(owed);
            return Err(e);
        }
        Ok(())
    }

    /// Writes the markers of a decided transaction, then logs its
    /// completion. On failure the decision stays (logged), to be completed
    /// again later: the partitions whose markers landed are remembered and
    /// not written again, the first failure of a decision is logged (the
    /// retries only at debug level) and the tick waits longer after each.
    fn complete(
        &self,
        store: &dyn TxnStore,
        id: &str,
        slot: &mut Option<TxnMetadata>,
        now: i64,
    ) -> Result<()> {
        let Some(m) = slot.as_ref().filter(|m| m.state.is_prepared()) else {
            return Ok(());
        };
        let commit = m.state == TxnState::PrepareCommit;
        let decision = (m.producer_id, m.producer_epoch, commit);
        let mut written = {
            let mut retries = self.retries.lock();
            match retries.get_mut(id) {
                Some(r) if r.decision == decision => std::mem::take(&mut r.written),
                _ => BTreeSet::new(),
            }
        };
        // This attempt: the markers left landing by EndTxn, once durable,
        // or else those still missing, written now.
        let attempt = match self.landed(id, decision) {
            Some(landed) => landed,
            None => {
                let pending: Vec<(String, i32)> = m
                    .partitions
                    .iter()
                    .filter(|p| !written.contains(*p))
                    .cloned()
                    .collect();
                let results =
                    store.write_markers(&pending, m.producer_id, m.producer_epoch, commit);
                pending.into_iter().zip(results).collect()
            }
        };
        let mut failed = None;
        for ((topic, partition), result) in attempt {
            match result {
                Ok(()) => {}
                Err(BrokerError::UnknownTopicOrPartition { .. }) => {
                    // Deleted since it joined: nothing there to mark.
                    info!(
                        transactional_id = id,
                        topic, partition, "skipping the marker of a deleted partition"
                    );
                }
                Err(e) => {
                    if failed.is_none() {
                        failed = Some((topic, partition, e));
                    }
                    continue;
                }
            }
            written.insert((topic, partition));
        }
        if let Some((topic, partition, e)) = failed {
            let mut retries = self.retries.lock();
            let r = retries.entry(id.to_string()).or_default();
            if r.decision != decision {
                *r = MarkerRetry {
                    decision,
                    ..MarkerRetry::default()
                };
            }
            r.written = written;
            r.failures = r.failures.saturating_add(1);
            let wait = MARKER_RETRY_MS
                .saturating_mul(1 << r.failures.min(16).saturating_sub(1))
                .min(MARKER_RETRY_MAX_MS);
            r.next_ms = now.saturating_add(wait);
            if r.failures == 1 {
                warn!(transactional_id = id, topic, partition, error = %e, "writing a transaction marker failed; retried with backoff");
            } else {
                debug!(transactional_id = id, topic, partition, failures = r.failures, error = %e, "writing a transaction marker failed again");
            }
            return Err(e);
        }
        let next = m.complete(now).map_err(|r| refused(id, r))?;
        store.persist_txn_completion(id, records::encode_value(&next))?;
        *slot = Some(next);
        if let Some(r) = self.retries.lock().remove(id) {
            if r.failures > 0 {
                info!(
                    transactional_id = id,
                    failures = r.failures,
                    "transaction markers written after failed attempts"
                );
            }
        }
        Ok(())
    }

    /// Appends the markers of the decision `m` (just made durable) to
    /// every partition of its transaction and leaves them landing: their
    /// fsyncs run in the background while EndTxn is answered, and the
    /// completion waits for them ([`Self::settle_landing`]). A crash
    /// before they are durable reloads the decision, which the tick
    /// completes again (markers are idempotent).
    /// Returns whether every marker is durable already (a store without
    /// background writes them durable): then nothing is left landing.
    fn land(&self, store: &dyn TxnStore, id: &str, m: &TxnMetadata) -> bool {
        let partitions: Vec<(String, i32)> = m.partitions.iter().cloned().collect();
        let commit = m.state == TxnState::PrepareCommit;
        let markers = store.append_markers(&partitions, m.producer_id, m.producer_epoch, commit);
        let landing = Landing {
            decision: (m.producer_id, m.producer_epoch, commit),
            markers: partitions
                .into_iter()
                .zip(markers.into_iter().map(|m| m.map(Arc::from)))
                .collect(),
        };
        let durable = landing
            .markers
            .iter()
            .all(|(_, m)| m.as_ref().is_ok_and(|m| m.is_durable()));
        self.landing.lock().insert(id.to_string(), landing);
        durable
    }

    /// Waits for the markers of `decision` left landing by [`Self::land`]
    /// (`None` if there are none): one result per partition of the
    /// transaction, as if [`Self::complete`] had just written them (a
    /// failed one is written again after the backoff).
    fn landed(&self, id: &str, decision: (i64, i16, bool)) -> Option<MarkerResults> {
        let landing = self.landing.lock().remove(id)?;
        if landing.decision != decision {
            return None;
        }
        let waited = landing
            .markers
            .into_iter()
            .map(|(partition, marker)| (partition, marker.and_then(|s| s.wait())))
            .collect();
        Some(waited)
    }

    /// What `m`, a decision whose markers are landing, is once they are
    /// durable: waits for their fsyncs and returns the completed
    /// transaction, without adopting it (the store's background worker,
    /// the id's next request or the tick logs the completion; a crash
    /// before that completes it again).
    /// `None` when `m` has no markers landing or one of them failed. For
    /// the readers without a store: DescribeTransactions, and a late
    /// write, which is refused as after the completion (INVALID_TXN_STATE).
    fn landed_view(&self, id: &str, m: &TxnMetadata) -> Option<TxnMetadata> {
        if !m.state.is_prepared() {
            return None;
        }
        let decision = (
            m.producer_id,
            m.producer_epoch,
            m.state == TxnState::PrepareCommit,
        );
        let syncs: Vec<SharedSync> = {
            let landing = self.landing.lock();
            let l = landing.get(id).filter(|l| l.decision == decision)?;
            l.markers
                .iter()
                .map(|(_, s)| s.as_ref().ok().cloned())
                .collect::<Option<_>>()?
        };
        if syncs.iter().any(|s| s.wait().is_err()) {
            return None;
        }
        m.complete(m.update_ms).ok()
    }

    /// Completes the id's decision whose markers are landing (the caller
    /// holds the id's lock): waits for their fsyncs, then logs the
    /// completion, so the id's request that follows EndTxn sees the
    /// transaction ended and the next transaction's records land after
    /// its markers (a partition's log is durable as a prefix). If a marker
    /// cannot be written the decision stays for the tick, and the request
    /// sees it still completing (CONCURRENT_TRANSACTIONS), as after any
    /// failed marker.
    fn settle_landing(
        &self,
        store: &dyn TxnStore,
        id: &str,
        slot: &mut Option<TxnMetadata>,
        now: i64,
    ) {
        if !self.landing.lock().contains_key(id) {
            return;
        }
        if let Err(e) = self.complete(store, id, slot, now) {
            debug!(transactional_id = id, error = %e, "completing a transaction whose markers were landing failed; retried at the next tick");
        }
    }

    /// Completes `id`'s decision whose markers EndTxn left landing: waits
    /// until they are durable, then logs the completion (a marker that
    /// failed is written again by the tick, after the backoff, as when a
    /// request completes it). What a store's background worker calls
    /// ([`TxnStore::complete_in_background`]); nothing to do when a request
    /// of the id, or the tick, completed it first.
    pub fn complete_landed(&self, store: &dyn TxnStore, id: &str, now: i64) {
        let Some(slot) = self.slot(id) else { return };
        let mut slot = slot.lock();
        self.settle_landing(store, id, &mut slot, now);
    }

    /// Whether the tick should wait before retrying `id`'s markers.
    fn backing_off(&self, id: &str, now: i64) -> bool {
        self.retries.lock().get(id).is_some_and(|r| r.next_ms > now)
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
        let answer = self.init_in_slot(store, id, &slot, timeout_ms, expected, now);
        if answer.is_err() {
            self.forget_if_empty(id, &slot);
        }
        answer
    }

    fn init_in_slot(
        &self,
        store: &dyn TxnStore,
        id: &str,
        slot: &Slot,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
    ) -> Result<(i64, i16)> {
        let mut slot = slot.lock();
        self.settle_landing(store, id, &mut slot, now);
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
                    self.transit(store, id, &mut slot, next)?;
                    return Ok(answer);
                }
                InitStep::FenceFirst(aborting) => {
                    info!(
                        transactional_id = id,
                        producer_id = aborting.producer_id,
                        epoch = aborting.producer_epoch,
                        "fencing the previous producer: aborting its transaction"
                    );
                    self.transit(store, id, &mut slot, aborting)?;
                    if let Err(e) = self.complete(store, id, &mut slot, now) {
                        debug!(transactional_id = id, error = %e, "aborting the fenced transaction failed; retried at the next tick");
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
        self.add_partitions_at(store, id, producer_id, epoch, partitions, 0, now)
    }

    /// [`Self::add_partitions`] of a client speaking transaction version
    /// `client_version` (2 for AddPartitionsToTxn v4+, recorded with the
    /// transaction).
    #[allow(clippy::too_many_arguments)]
    pub fn add_partitions_at(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        client_version: i16,
        now: i64,
    ) -> Result<()> {
        let request = (producer_id, epoch, partitions, client_version);
        self.add_partitions_then(store, id, request, now, |slot, next| {
            self.transit(store, id, slot, next)
        })
    }

    /// What both AddPartitionsToTxn paths share: checks `request`
    /// (producer id, epoch, partitions, client transaction version)
    /// against the ongoing transaction of `id` under its lock, then hands
    /// the changed metadata to `write` (not called when nothing changes).
    fn add_partitions_then(
        &self,
        store: &dyn TxnStore,
        id: &str,
        request: (i64, i16, &[(String, i32)], i16),
        now: i64,
        write: impl FnOnce(&mut Option<TxnMetadata>, TxnMetadata) -> Result<()>,
    ) -> Result<()> {
        let (producer_id, epoch, partitions, client_version) = request;
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let slot = self.known(id)?;
        let mut slot = slot.lock();
        self.settle_landing(store, id, &mut slot, now);
        let next = metadata(id, &slot)?
            .add_partitions(producer_id, epoch, partitions, client_version, now)
            .map_err(|r| refused(id, r))?;
        match next {
            Some(next) => write(&mut slot, next),
            None => Ok(()),
        }
    }

    /// AddPartitionsToTxn of a wire client: as [`Self::add_partitions`],
    /// but answered once the record is appended, its fsync running in the
    /// background meanwhile. The partitions join at once; what makes them
    /// durable first is [`Self::verified`], which waits for that fsync
    /// before the transaction's first write to any partition: a partition's
    /// transactional records are never on disk while the coordinator's
    /// record naming the partition may not be, so a crash cannot leave a
    /// transaction in a log that the reloaded coordinator does not know
    /// (and would never end). Lost in a crash before that write, the join
    /// is refused to the producer's next write (INVALID_TXN_STATE), which
    /// aborts. Callers whose writes do not pass through
    /// [`Self::verified`] use [`Self::add_partitions`].
    pub fn add_partitions_owed(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<()> {
        let request = (producer_id, epoch, partitions, 0);
        self.add_partitions_then(store, id, request, now, |slot, next| {
            let owed = store.persist_txn_owed(id, records::encode_value(&next))?;
            *slot = Some(next);
            // A later record's fsync covers an earlier one: the newest is kept.
            self.owed.lock().insert(id.to_string(), owed);
            Ok(())
        })
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

    /// A transactional write (KIP-890 part 1): runs `append` only if
    /// `partition` is in the ongoing transaction of `id` under this
    /// producer id and epoch, holding the id's lock meanwhile, so no EndTxn
    /// (nor the timeout) can write the transaction's markers between the
    /// check and the append. A late write of an ended transaction is
    /// refused with INVALID_TXN_STATE instead of opening a transaction no
    /// one will end (or being committed by the next one's marker); a
    /// decided transaction still writing its markers refuses with
    /// CONCURRENT_TRANSACTIONS. TxnOffsetCommit writes through it too (the
    /// group's `__consumer_offsets` partition, added by AddOffsetsToTxn),
    /// so the transaction's marker cannot land before its offsets.
    pub fn verified<T>(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: (&str, i32),
        append: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.verified_or_added(None, id, producer_id, epoch, partition, 0, append)
    }

    /// [`Self::verified`], where a write of transaction version 2 (Produce
    /// v12+, TxnOffsetCommit v5+: `implicit` holds the store) also adds its
    /// partition to the transaction, starting one if none is open, with
    /// AddPartitionsToTxn's checks (KIP-890 part 2, as Kafka's partition
    /// leader asks its coordinator): the addition is durable before the
    /// append, both under the id's lock.
    #[allow(clippy::too_many_arguments)]
    pub fn verified_or_added<T>(
        &self,
        implicit: Option<&dyn TxnStore>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: (&str, i32),
        now: i64,
        append: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let slot = self.known(id)?;
        let mut slot = slot.lock();
        if let Some(store) = implicit {
            self.settle_landing(store, id, &mut slot, now);
        }
        let view = match implicit {
            None => self.landed_view(id, metadata(id, &slot)?),
            Some(_) => None,
        };
        let m = match &view {
            Some(view) => view,
            None => metadata(id, &slot)?,
        };
        m.check_producer(producer_id, epoch)
            .map_err(|r| refused(id, r))?;
        let (topic, index) = partition;
        let inside = m.partitions.iter().any(|(t, p)| t == topic && *p == index);
        match (m.state, implicit) {
            (TxnState::Ongoing, _) if inside => {
                self.settle_owed(id)?;
                append()
            }
            (s, _) if s.is_prepared() => Err(refused(id, TxnRefusal::ConcurrentTransactions)),
            (_, Some(store)) => {
                let joined = [(topic.to_string(), index)];
                let next = m
                    .add_partitions(producer_id, epoch, &joined, state::TXN_VERSION_2, now)
                    .map_err(|r| refused(id, r))?;
                // Durable before the append (transit fsyncs, which also
                // covers an earlier record still owed).
                match next {
                    Some(next) => self.transit(store, id, &mut slot, next)?,
                    None => self.settle_owed(id)?,
                }
                append()
            }
            _ => Err(refused(id, TxnRefusal::InvalidTxnState)),
        }
    }

    /// EndTxn of transaction version 1 (EndTxn v0-4): commits or aborts
    /// the ongoing transaction at the producer's epoch. Returns once the
    /// decision is durable and its markers appended; their fsyncs and the
    /// completion follow in the store's background, or at the id's next
    /// request or tick if one comes first (at once for a transaction with
    /// consumer offsets), or at a later tick if writing them failed (the
    /// decision stands).
    pub fn end_txn(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<()> {
        self.end_transaction(store, id, producer_id, epoch, commit, false, now)
            .map(|_| ())
    }

    /// EndTxn, of transaction version 2 when `v2` (EndTxn v5, KIP-890:
    /// the epoch bumped by the decision, a new producer id once the epoch
    /// is exhausted). Returns the producer id and epoch the producer goes
    /// on with, once the decision is durable.
    #[allow(clippy::too_many_arguments)]
    pub fn end_transaction(
        &self,
        store: &dyn TxnStore,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
        now: i64,
    ) -> Result<(i64, i16)> {
        if id.is_empty() {
            return Err(refused(id, TxnRefusal::InvalidRequest));
        }
        let slot = self.known(id)?;
        let mut slot = slot.lock();
        self.settle_landing(store, id, &mut slot, now);
        let current = metadata(id, &slot)?;
        let decided = if v2 {
            let mut failed = None;
            let mut new_id = || match store.new_producer_id() {
                Ok(id) => Some(id),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            };
            let decided = current.end_v2(producer_id, epoch, commit, now, &mut new_id);
            if let Some(e) = failed {
                return Err(e);
            }
            decided
        } else {
            current.end(producer_id, epoch, commit, true, now)
        };
        let Some(prepared) = decided.map_err(|r| refused(id, r))? else {
            // A retry of a decided EndTxn: the current id and epoch.
            return Ok((current.producer_id, current.producer_epoch));
        };
        // What the producer goes on with: the completion's id and epoch.
        let answer = if prepared.next_producer_id != state::NO_PRODUCER_ID {
            (prepared.next_producer_id, 0)
        } else {
            (prepared.producer_id, prepared.producer_epoch)
        };
        // Answered once the decision is durable, as Kafka does: its markers
        // land in the background, where the store completes the decision
        // once they are durable; the id's next request, if it comes first,
        // waits for them and completes it (`settle_landing`). A transaction with consumer offsets completes
        // first: the group applies them when its marker is durable, and a
        // consumer that commits, then fetches, expects to see them.
        let offsets = prepared
            .partitions
            .iter()
            .any(|(t, _)| t == CONSUMER_OFFSETS);
        self.transit(store, id, &mut slot, prepared)?;
        let landing = match slot.as_ref() {
            Some(m) if !offsets => !self.land(store, id, m),
            _ => false,
        };
        if landing {
            store.complete_in_background(id);
        } else {
            if let Err(e) = self.complete(store, id, &mut slot, now) {
                debug!(transactional_id = id, error = %e, "writing transaction markers failed; retried at the next tick");
            }
        }
        Ok(answer)
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
            if self.expired(&m, now) {
                // Kafka's transactional id expiration: a tombstone, then
                // the id is forgotten (a later InitProducerId starts anew).
                if let Err(e) = store.persist_txn(&id, None) {
                    warn!(transactional_id = %id, error = %e, "expiring a transactional id failed; retried at the next tick");
                    continue;
                }
                info!(transactional_id = %id, "transactional id expired");
                // Requests already holding this slot see Dead and are told
                // to retry (CONCURRENT_TRANSACTIONS): the retry finds no slot.
                let mut dead = m;
                dead.state = TxnState::Dead;
                *slot = Some(dead);
                self.txns.lock().remove(&id);
                self.owed.lock().remove(&id);
                continue;
            }
            if m.timed_out(now) {
                let Ok(aborting) = m.fence(now) else { continue };
                info!(
                    transactional_id = %id,
                    producer_id = m.producer_id,
                    timeout_ms = m.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                if let Err(e) = self.transit(store, &id, &mut slot, aborting) {
                    warn!(transactional_id = %id, error = %e, "aborting a timed-out transaction failed");
                    continue;
                }
            }
            if slot.as_ref().is_some_and(|m| m.state.is_prepared()) && !self.backing_off(&id, now) {
                // A failure is logged by complete(), once per decision.
                if self.complete(store, &id, &mut slot, now).is_ok() {
                    ended += 1;
                }
            }
        }
        ended
    }

    /// Whether an id with no transaction in progress has been idle longer
    /// than `transactional.id.expiration.ms`.
    fn expired(&self, m: &TxnMetadata, now: i64) -> bool {
        let idle = matches!(
            m.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        let expiration = i64::try_from(self.config.id_expiration.as_millis()).unwrap_or(i64::MAX);
        idle && m.update_ms.saturating_add(expiration) <= now
    }

    /// One transactional id's transaction (`None`: unknown); a decision
    /// whose markers are landing is shown complete once they are durable.
    pub fn describe(&self, id: &str) -> Option<TxnMetadata> {
        let m = self.slot(id).and_then(|s| s.lock().clone())?;
        Some(self.landed_view(id, &m).unwrap_or(m))
    }

    /// Every transactional id with a transaction, by id (ListTransactions).
    /// Ids busy with a request are read once it is done with them.
    pub fn list(&self) -> Vec<(String, TxnMetadata)> {
        let slots: Vec<(String, Slot)> = self
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        slots
            .into_iter()
            .filter_map(|(id, slot)| {
                let m = slot.lock().clone()?;
                let m = self.landed_view(&id, &m).unwrap_or(m);
                Some((id, m))
            })
            .collect()
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
