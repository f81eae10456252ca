//! The coordinator over an in-memory store: what it persists, which
//! markers it writes, and that reloading what it persisted gives back the
//! same transactions.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;

/// A `__transaction_state` record: key, value.
type Record = (Vec<u8>, Option<Vec<u8>>);
/// A marker written: topic, partition, producer id, epoch, commit.
type Marker = (String, i32, i64, i16, bool);

/// A store that keeps everything in memory and can be made to fail.
#[derive(Default)]
struct MemStore {
    log: RefCell<Vec<Record>>,
    markers: RefCell<Vec<Marker>>,
    next_id: Cell<i64>,
    fail_markers: Cell<bool>,
    fail_log: Cell<bool>,
    /// Markers to this topic fail.
    fail_topic: RefCell<Option<String>>,
    /// Marker writes asked for, failed ones included.
    attempts: Cell<usize>,
    /// How many records of `log` are durable: a crash keeps these only.
    durable: Arc<AtomicUsize>,
    /// The fsync a record written by `persist_txn_owed` owes fails.
    fail_owed: Cell<bool>,
    /// `append_markers` appends without fsync (the broker's way), where
    /// the default writes them durable.
    landing: Cell<bool>,
    /// How many of `markers` are durable when `landing` is on (before,
    /// every marker is durable once written).
    markers_durable: Arc<AtomicUsize>,
    /// The fsyncs owed by landing markers fail.
    fail_landing: Cell<bool>,
    /// For each completion record logged: whether every marker written
    /// was durable then.
    completions: RefCell<Vec<bool>>,
    /// The ids whose completion the coordinator left to the store's
    /// background (`complete_in_background`), in order.
    background: RefCell<Vec<String>>,
}

/// The fsync of the first `upto` records of a [`MemStore`]'s log.
#[derive(Debug)]
struct MemSync {
    durable: Arc<AtomicUsize>,
    upto: usize,
    fails: bool,
}

impl OwedSync for MemSync {
    fn wait(&self) -> Result<()> {
        if self.fails {
            return Err(BrokerError::Timeout("fsync failed"));
        }
        self.durable.fetch_max(self.upto, Ordering::SeqCst);
        Ok(())
    }
}

impl MemStore {
    /// What a crash leaves of the log: its durable records.
    fn after_crash(&self) -> Vec<Record> {
        let durable = self.durable.load(Ordering::SeqCst);
        self.log.borrow()[..durable].to_vec()
    }
}

impl TxnStore for MemStore {
    fn persist_txn(&self, id: &str, value: Option<Vec<u8>>) -> Result<()> {
        if self.fail_log.get() {
            return Err(BrokerError::Timeout("log down"));
        }
        let state = value
            .as_ref()
            .and_then(|v| records::decode_value(v).ok())
            .map(|m| m.state);
        if matches!(
            state,
            Some(TxnState::CompleteCommit | TxnState::CompleteAbort)
        ) {
            let all = !self.landing.get()
                || self.markers_durable.load(Ordering::SeqCst) == self.markers.borrow().len();
            self.completions.borrow_mut().push(all);
        }
        self.log.borrow_mut().push((records::encode_key(id), value));
        self.durable
            .store(self.log.borrow().len(), Ordering::SeqCst);
        Ok(())
    }
    fn persist_txn_owed(&self, id: &str, value: Vec<u8>) -> Result<Box<dyn OwedSync>> {
        if self.fail_log.get() {
            return Err(BrokerError::Timeout("log down"));
        }
        self.log
            .borrow_mut()
            .push((records::encode_key(id), Some(value)));
        Ok(Box::new(MemSync {
            durable: Arc::clone(&self.durable),
            upto: self.log.borrow().len(),
            fails: self.fail_owed.get(),
        }))
    }
    fn write_marker(&self, t: &str, p: i32, id: i64, e: i16, commit: bool) -> Result<()> {
        if t == "gone" {
            return Err(BrokerError::unknown_topic(t, Some(p)));
        }
        self.attempts.set(self.attempts.get() + 1);
        if self.fail_topic.borrow().as_deref() == Some(t) {
            return Err(BrokerError::Timeout("disk full"));
        }
        if self.fail_markers.get() {
            return Err(BrokerError::Timeout("disk full"));
        }
        self.markers
            .borrow_mut()
            .push((t.to_string(), p, id, e, commit));
        Ok(())
    }
    fn append_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<Box<dyn OwedSync>>> {
        if !self.landing.get() {
            return Durable::all(self.write_markers(
                partitions,
                producer_id,
                producer_epoch,
                commit,
            ));
        }
        partitions
            .iter()
            .map(|(t, p)| {
                self.markers.borrow_mut().push((
                    t.clone(),
                    *p,
                    producer_id,
                    producer_epoch,
                    commit,
                ));
                Ok(Box::new(MemSync {
                    durable: Arc::clone(&self.markers_durable),
                    upto: self.markers.borrow().len(),
                    fails: self.fail_landing.get(),
                }) as Box<dyn OwedSync>)
            })
            .collect()
    }
    fn complete_in_background(&self, id: &str) {
        self.background.borrow_mut().push(id.to_string());
    }
    fn new_producer_id(&self) -> Result<i64> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Ok(id)
    }
}

fn refusal(r: Result<impl std::fmt::Debug>) -> TxnRefusal {
    match r {
        Err(BrokerError::Transaction { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn coordinator() -> TransactionCoordinator {
    TransactionCoordinator::new(TxnConfig::default())
}

fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

fn reloaded(store: &MemStore) -> TransactionCoordinator {
    let c = coordinator();
    c.load(store.log.borrow().clone());
    c
}

#[test]
fn commit_logs_prepare_then_markers_then_complete() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, epoch) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    assert_eq!((pid, epoch), (0, 0));
    c.add_partitions(&s, "tx", pid, epoch, &parts(&[("a", 0), ("b", 1)]), 2)
        .expect("a valid test value");
    c.end_txn(&s, "tx", pid, epoch, true, 3)
        .expect("a valid test value");
    let states: Vec<TxnState> = s
        .log
        .borrow()
        .iter()
        .map(|(_, v)| {
            records::decode_value(v.as_ref().expect("a valid test value"))
                .expect("a valid test value")
                .state
        })
        .collect();
    assert_eq!(
        states,
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
    assert_eq!(
        *s.markers.borrow(),
        [
            ("a".to_string(), 0, 0, 0, true),
            ("b".to_string(), 1, 0, 0, true)
        ]
    );
    // A retried commit is answered success and writes nothing.
    c.end_txn(&s, "tx", pid, epoch, true, 4)
        .expect("a valid test value");
    assert_eq!(s.markers.borrow().len(), 2);
    assert_eq!(
        refusal(c.end_txn(&s, "tx", pid, epoch, false, 4)),
        TxnRefusal::InvalidTxnState
    );
}

#[test]
fn bad_requests_get_kafkas_errors() {
    let (c, s) = (coordinator(), MemStore::default());
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 0, None, 1)),
        TxnRefusal::InvalidTransactionTimeout
    );
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 900_001, None, 1)),
        TxnRefusal::InvalidTransactionTimeout
    );
    assert_eq!(
        refusal(c.init_producer_id(&s, "", 1000, None, 1)),
        TxnRefusal::InvalidRequest
    );
    assert_eq!(
        refusal(c.end_txn(&s, "nobody", 1, 0, true, 1)),
        TxnRefusal::InvalidProducerIdMapping
    );
    let (pid, epoch) = c
        .init_producer_id(&s, "tx", 1000, None, 1)
        .expect("a valid test value");
    assert_eq!(
        refusal(c.end_txn(&s, "tx", pid, epoch, true, 2)),
        TxnRefusal::InvalidTxnState
    );
    assert_eq!(
        refusal(c.add_partitions(&s, "tx", pid + 1, epoch, &parts(&[("a", 0)]), 2)),
        TxnRefusal::InvalidProducerIdMapping
    );
    assert_eq!(
        refusal(c.add_partitions(&s, "tx", pid, epoch + 1, &parts(&[("a", 0)]), 2)),
        TxnRefusal::ProducerFenced
    );
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e0) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions(&s, "tx", pid, e0, &parts(&[("a", 0)]), 2)
        .expect("a valid test value");
    let (pid2, e2) = c
        .init_producer_id(&s, "tx", 60_000, None, 3)
        .expect("a valid test value");
    assert_eq!((pid2, e2), (pid, e0 + 2));
    // The abort carried the fencing epoch.
    assert_eq!(
        *s.markers.borrow(),
        [("a".to_string(), 0, pid, e0 + 1, false)]
    );
    assert_eq!(
        refusal(c.end_txn(&s, "tx", pid, e0, true, 4)),
        TxnRefusal::ProducerFenced
    );
    assert_eq!(
        refusal(c.add_partitions(&s, "tx", pid, e0, &parts(&[("a", 0)]), 4)),
        TxnRefusal::ProducerFenced
    );
}

#[test]
fn a_decision_whose_markers_fail_is_completed_by_the_tick_and_after_a_reload() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions(&s, "tx", pid, e, &parts(&[("a", 0), ("gone", 0)]), 2)
        .expect("a valid test value");
    s.fail_markers.set(true);
    // The decision is durable: the commit is acknowledged.
    c.end_txn(&s, "tx", pid, e, true, 3)
        .expect("a valid test value");
    assert_eq!(
        c.describe("tx").expect("a valid test value").state,
        TxnState::PrepareCommit
    );
    assert_eq!(
        refusal(c.add_partitions(&s, "tx", pid, e, &parts(&[("a", 1)]), 4)),
        TxnRefusal::ConcurrentTransactions
    );
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 60_000, None, 4)),
        TxnRefusal::ConcurrentTransactions
    );
    // A restart here: the reloaded coordinator completes it.
    let after = reloaded(&s);
    assert_eq!(
        after.describe("tx").expect("a valid test value").state,
        TxnState::PrepareCommit
    );
    s.fail_markers.set(false);
    assert_eq!(after.tick(&s, 5), 1);
    assert_eq!(
        after.describe("tx").expect("a valid test value").state,
        TxnState::CompleteCommit
    );
    assert_eq!(*s.markers.borrow(), [("a".to_string(), 0, pid, e, true)]);
    // So does the original once its backoff is over, writing the
    // (idempotent) marker again.
    assert_eq!(c.tick(&s, 6), 0);
    assert_eq!(c.tick(&s, 1_000), 1);
    assert_eq!(
        c.describe("tx").expect("a valid test value").state,
        TxnState::CompleteCommit
    );
}

#[test]
fn the_timeout_aborts_and_fences() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e) = c
        .init_producer_id(&s, "tx", 1000, None, 0)
        .expect("a valid test value");
    c.add_partitions(&s, "tx", pid, e, &parts(&[("a", 0)]), 100)
        .expect("a valid test value");
    assert_eq!(c.tick(&s, 1100), 0);
    assert_eq!(c.tick(&s, 1101), 1);
    let m = c.describe("tx").expect("a valid test value");
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::CompleteAbort, e + 1)
    );
    assert_eq!(
        *s.markers.borrow(),
        [("a".to_string(), 0, pid, e + 1, false)]
    );
    assert_eq!(
        refusal(c.end_txn(&s, "tx", pid, e, true, 1200)),
        TxnRefusal::ProducerFenced
    );
    // Survives a reload: the abort is not redone. The last epoch is not
    // logged (Kafka's transaction log value has no field for it either).
    let after = reloaded(&s);
    assert_eq!(after.tick(&s, 5000), 0);
    let logged = TxnMetadata {
        last_producer_epoch: -1,
        ..m
    };
    assert_eq!(after.describe("tx"), Some(logged));
}

#[test]
fn the_producer_of_a_timed_out_transaction_recovers_with_its_epoch_until_a_new_one_starts() {
    let (c, s) = (coordinator(), MemStore::default());
    c.init_producer_id(&s, "tx", 1000, None, 0)
        .expect("a valid test value");
    // At epoch 1, so that an older epoch exists.
    let (pid, e) = c
        .init_producer_id(&s, "tx", 1000, None, 0)
        .expect("a valid test value");
    assert_eq!(e, 1);
    c.add_partitions(&s, "tx", pid, e, &parts(&[("a", 0)]), 100)
        .expect("a valid test value");
    assert_eq!(c.tick(&s, 1101), 1);
    // KIP-360 naming the fenced epoch: the bumped one, without a second
    // bump (Kafka 4.x answers so), as often as it is asked.
    for now in [1200, 1300] {
        assert_eq!(
            c.init_producer_id(&s, "tx", 1000, Some((pid, e)), now)
                .expect("a valid test value"),
            (pid, e + 1)
        );
    }
    // An older epoch is fenced.
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 1000, Some((pid, e - 1)), 1400)),
        TxnRefusal::ProducerFenced
    );
    // A new producer bumps and forgets the fenced epoch.
    assert_eq!(
        c.init_producer_id(&s, "tx", 1000, None, 1500)
            .expect("a valid test value"),
        (pid, e + 2)
    );
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 1000, Some((pid, e)), 1600)),
        TxnRefusal::ProducerFenced
    );
}

#[test]
fn nothing_is_adopted_that_was_not_persisted() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e) = c
        .init_producer_id(&s, "tx", 1000, None, 0)
        .expect("a valid test value");
    s.fail_log.set(true);
    assert!(c
        .add_partitions(&s, "tx", pid, e, &parts(&[("a", 0)]), 1)
        .is_err());
    assert_eq!(
        c.describe("tx").expect("a valid test value").state,
        TxnState::Empty
    );
    assert!(c.init_producer_id(&s, "tx", 1000, None, 1).is_err());
    assert_eq!(
        c.describe("tx").expect("a valid test value").producer_epoch,
        e
    );
}

/// Whether `to` follows `from` in at most `steps` of Kafka's transitions
/// (one request may take several: a fence aborts, completes, then bumps).
fn reachable(from: TxnState, to: TxnState, steps: usize) -> bool {
    let mut frontier = vec![from];
    for _ in 0..steps {
        let mut next = Vec::new();
        for s in &frontier {
            for t in TxnState::ALL {
                if t.valid_previous().contains(s) {
                    if t == to {
                        return true;
                    }
                    next.push(t);
                }
            }
        }
        frontier = next;
    }
    false
}

/// One client request in a random run.
#[derive(Debug, Clone)]
enum Op {
    Init(u8, bool),
    Add(u8, u8),
    End(u8, bool),
    Tick(u16),
    MarkersFail(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..2, any::<bool>()).prop_map(|(t, keep)| Op::Init(t, keep)),
        (0u8..2, 0u8..4).prop_map(|(t, p)| Op::Add(t, p)),
        (0u8..2, any::<bool>()).prop_map(|(t, c)| Op::End(t, c)),
        (0u16..3000).prop_map(Op::Tick),
        any::<bool>().prop_map(Op::MarkersFail),
    ]
}

proptest! {
    /// Whatever clients do: states only move along Kafka's transitions,
    /// epochs of a producer id never go down, every marker belongs to a
    /// partition its producer added (at that epoch, or one below for a
    /// fence), and reloading the log gives back exactly the coordinator's
    /// state.
    #[test]
    fn random_requests_keep_the_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let (c, s) = (coordinator(), MemStore::default());
        let ids = ["t0", "t1"];
        let mut held: [Option<(i64, i16)>; 2] = [None, None];
        let mut now = 0i64;
        let mut added: std::collections::BTreeSet<(String, i32, i64, i16)> = Default::default();
        for op in ops {
            now += 10;
            let before: Vec<Option<TxnMetadata>> = ids.iter().map(|id| c.describe(id)).collect();
            match op {
                Op::Init(t, keep) => {
                    let expected = if keep { held[t as usize] } else { None };
                    if let Ok(r) = c.init_producer_id(&s, ids[t as usize], 500, expected, now) {
                        held[t as usize] = Some(r);
                    }
                }
                Op::Add(t, p) => {
                    if let Some((pid, e)) = held[t as usize] {
                        let ps = [(format!("p{}", p % 2), i32::from(p))];
                        if c.add_partitions(&s, ids[t as usize], pid, e, &ps, now).is_ok() {
                            added.insert((ps[0].0.clone(), ps[0].1, pid, e));
                        }
                    }
                }
                Op::End(t, commit) => {
                    if let Some((pid, e)) = held[t as usize] {
                        let _ = c.end_txn(&s, ids[t as usize], pid, e, commit, now);
                    }
                }
                Op::Tick(dt) => {
                    now += i64::from(dt);
                    c.tick(&s, now);
                }
                Op::MarkersFail(f) => s.fail_markers.set(f),
            }
            for (i, id) in ids.iter().enumerate() {
                let after = c.describe(id);
                if let (Some(b), Some(a)) = (&before[i], &after) {
                    if a != b {
                        prop_assert!(
                            reachable(b.state, a.state, 4),
                            "{:?} -> {:?}", b.state, a.state
                        );
                        if a.producer_id == b.producer_id {
                            prop_assert!(a.producer_epoch >= b.producer_epoch);
                        }
                    }
                }
            }
        }
        for (t, p, pid, e, _) in s.markers.borrow().iter() {
            // A marker's epoch is the adding epoch, or one above it (a fence).
            prop_assert!(
                added.contains(&(t.clone(), *p, *pid, *e))
                    || added.contains(&(t.clone(), *p, *pid, *e - 1)),
                "marker for {t}-{p} of {pid}/{e} never added"
            );
        }
        let after = reloaded(&s);
        for id in ids {
            let mut mine = c.describe(id);
            let mut theirs = after.describe(id);
            for m in [&mut mine, &mut theirs].into_iter().flatten() {
                m.last_producer_epoch = -1;
            }
            prop_assert_eq!(mine, theirs);
        }
    }
}

#[test]
fn a_dead_id_is_forgotten_at_load_and_can_be_used_again() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, _) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    // The id expired: its Dead record is logged, the tombstone never was
    // (a crash in between).
    let mut dead = c.describe("tx").expect("known");
    dead.state = TxnState::Dead;
    s.log.borrow_mut().push((
        records::encode_key("tx"),
        Some(records::encode_value(&dead)),
    ));
    let c = reloaded(&s);
    assert!(c.describe("tx").is_none());
    assert!(c.is_empty());
    let (again, epoch) = c
        .init_producer_id(&s, "tx", 60_000, None, 2)
        .expect("the id is usable again");
    assert_ne!(again, pid);
    assert_eq!(epoch, 0);
}

#[test]
fn refused_and_failed_requests_leave_no_slot_behind() {
    let (c, s) = (coordinator(), MemStore::default());
    // Nothing durable: refused, and no slot kept for the id.
    s.fail_log.set(true);
    assert!(c.init_producer_id(&s, "a", 60_000, None, 1).is_err());
    assert!(c.txns.lock().is_empty());
    s.fail_log.set(false);
    // Unknown ids in the other requests create nothing either.
    assert_eq!(
        refusal(c.end_txn(&s, "b", 1, 0, true, 2)),
        TxnRefusal::InvalidProducerIdMapping
    );
    assert_eq!(
        refusal(c.add_partitions(&s, "b", 1, 0, &parts(&[("t", 0)]), 2)),
        TxnRefusal::InvalidProducerIdMapping
    );
    assert!(c.txns.lock().is_empty());
    // A known id keeps its slot after a refused InitProducerId.
    c.init_producer_id(&s, "a", 60_000, None, 3)
        .expect("a valid test value");
    assert_eq!(
        refusal(c.init_producer_id(&s, "a", 60_000, Some((99, 5)), 4)),
        TxnRefusal::ProducerFenced
    );
    assert_eq!(c.txns.lock().len(), 1);
    assert_eq!(c.len(), 1);
}

#[test]
fn a_failing_marker_is_retried_with_backoff_and_the_others_not_rewritten() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, epoch) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions(&s, "tx", pid, epoch, &parts(&[("a", 0), ("b", 0)]), 2)
        .expect("a valid test value");
    *s.fail_topic.borrow_mut() = Some("b".to_string());
    // The decision is durable; b's marker fails.
    c.end_txn(&s, "tx", pid, epoch, true, 1_000)
        .expect("a valid test value");
    assert_eq!(s.attempts.get(), 2);
    // Ticks within the backoff try nothing; after it, only b again.
    assert_eq!(c.tick(&s, 1_000), 0);
    assert_eq!(c.tick(&s, 1_099), 0);
    assert_eq!(s.attempts.get(), 2);
    assert_eq!(c.tick(&s, 1_100), 0);
    assert_eq!(s.attempts.get(), 3);
    // The wait doubles: 200 ms after the second failure.
    assert_eq!(c.tick(&s, 1_299), 0);
    assert_eq!(s.attempts.get(), 3);
    assert_eq!(c.tick(&s, 1_300), 0);
    assert_eq!(s.attempts.get(), 4);
    assert_eq!(
        c.describe("tx").expect("known").state,
        TxnState::PrepareCommit
    );
    // Once b can be written, the transaction completes; a's marker was
    // written once only.
    *s.fail_topic.borrow_mut() = None;
    assert_eq!(c.tick(&s, 1_700), 1);
    assert_eq!(
        *s.markers.borrow(),
        [
            ("a".to_string(), 0, pid, epoch, true),
            ("b".to_string(), 0, pid, epoch, true)
        ]
    );
    assert_eq!(
        c.describe("tx").expect("known").state,
        TxnState::CompleteCommit
    );
    assert!(c.retries.lock().is_empty());
}

#[test]
fn idle_transactional_ids_expire_with_a_tombstone() {
    let config = TxnConfig {
        id_expiration: std::time::Duration::from_millis(1_000),
        ..TxnConfig::default()
    };
    let (c, s) = (TransactionCoordinator::new(config), MemStore::default());
    let (idle, _) = c
        .init_producer_id(&s, "idle", 60_000, None, 0)
        .expect("a valid test value");
    let (busy, epoch) = c
        .init_producer_id(&s, "busy", 60_000, None, 0)
        .expect("a valid test value");
    c.add_partitions(&s, "busy", busy, epoch, &parts(&[("a", 0)]), 500)
        .expect("a valid test value");
    // Not idle long enough yet.
    c.tick(&s, 999);
    assert_eq!(c.len(), 2);
    // idle expires (a tombstone logged); busy's transaction is ongoing
    // (its own timeout is 60 s), so it stays.
    c.tick(&s, 1_000);
    assert!(c.describe("idle").is_none());
    assert_eq!(c.len(), 1);
    let last = s.log.borrow().last().cloned().expect("a record");
    assert_eq!(last, (records::encode_key("idle"), None));
    // Reloaded, the id is gone too; used again, it gets a new producer id.
    let c2 = reloaded(&s);
    assert!(c2.describe("idle").is_none());
    let (again, epoch) = c
        .init_producer_id(&s, "idle", 60_000, None, 1_001)
        .expect("a valid test value");
    assert_ne!(again, idle);
    assert_eq!(epoch, 0);
}

/// AddPartitionsToTxn answered before its record is durable: the
/// transaction's first write waits for that record, so whenever a write
/// ran, a crash keeps a coordinator that knows the partition is in the
/// transaction (and will end it there).
#[test]
fn a_transactions_first_write_waits_until_its_partitions_are_durable() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions_owed(&s, "tx", pid, e, &parts(&[("a", 0)]), 2)
        .expect("a valid test value");
    // Answered, not yet durable: a crash now forgets the join, and the
    // producer's write is refused by the reloaded coordinator.
    let crashed = coordinator();
    crashed.load(s.after_crash());
    assert_eq!(
        refusal(crashed.verified("tx", pid, e, ("a", 0), || Ok(()))),
        TxnRefusal::InvalidTxnState
    );
    // The write runs only once the join is durable.
    let known_when_written = c
        .verified("tx", pid, e, ("a", 0), || {
            let reloaded = coordinator();
            reloaded.load(s.after_crash());
            Ok(reloaded.describe("tx").is_some_and(|m| {
                m.state == TxnState::Ongoing && m.partitions.contains(&("a".to_string(), 0))
            }))
        })
        .expect("a valid test value");
    assert!(
        known_when_written,
        "a write ran before its partition's join was durable"
    );
    // A second join is owed again; its fsync failing refuses the write,
    // which is never run, and keeps refusing it.
    s.fail_owed.set(true);
    c.add_partitions_owed(&s, "tx", pid, e, &parts(&[("b", 0)]), 3)
        .expect("a valid test value");
    let mut ran = false;
    for _ in 0..2 {
        assert!(c
            .verified("tx", pid, e, ("b", 0), || {
                ran = true;
                Ok(())
            })
            .is_err());
    }
    assert!(
        !ran,
        "a write ran although its partition's join is not durable"
    );
    // The decision's fsync covers the owed record: the transaction ends
    // in both partitions, and a reload after a crash agrees.
    c.end_txn(&s, "tx", pid, e, false, 4)
        .expect("a valid test value");
    assert_eq!(
        *s.markers.borrow(),
        [
            ("a".to_string(), 0, pid, e, false),
            ("b".to_string(), 0, pid, e, false)
        ]
    );
    let crashed = coordinator();
    crashed.load(s.after_crash());
    assert_eq!(
        crashed.describe("tx").map(|m| m.state),
        Some(TxnState::CompleteAbort)
    );
    assert!(c.verified("tx", pid, e, ("b", 0), || Ok(())).is_err());
}

/// The state of the last `__transaction_state` record.
fn last_record(s: &MemStore) -> TxnMetadata {
    let log = s.log.borrow();
    let (_, value) = log.last().expect("a record");
    records::decode_value(value.as_ref().expect("a value")).expect("a valid record")
}

#[test]
fn transaction_version_2_bumps_the_epoch_at_every_end_and_answers_retries_as_kafka() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, e0) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions_at(&s, "tx", pid, e0, &parts(&[("a", 0)]), 2, 2)
        .expect("a valid test value");
    let (pid1, e1) = c
        .end_transaction(&s, "tx", pid, e0, true, true, 3)
        .expect("a valid test value");
    assert_eq!((pid1, e1), (pid, e0 + 1));
    // The marker carries the bumped epoch: no marker of this transaction
    // can be mistaken for one of the next (which writes at e0 + 1 too,
    // but is ended by a marker at e0 + 2).
    assert_eq!(
        *s.markers.borrow(),
        [("a".to_string(), 0, pid, e0 + 1, true)]
    );
    let done = last_record(&s);
    assert_eq!(
        (done.state, done.producer_epoch, done.client_version),
        (TxnState::CompleteCommit, e1, 2)
    );
    // The client retrying with the epoch it sent (its answer lost): the
    // same answer, nothing written; an abort of it is refused.
    let records = s.log.borrow().len();
    assert_eq!(
        c.end_transaction(&s, "tx", pid, e0, true, true, 4)
            .expect("a valid test value"),
        (pid, e1)
    );
    assert_eq!(s.log.borrow().len(), records);
    assert_eq!(
        refusal(c.end_transaction(&s, "tx", pid, e0, false, true, 4)),
        TxnRefusal::InvalidTxnState
    );
    // An older epoch still is fenced; a commit with nothing open is not a
    // retry at the current epoch.
    assert_eq!(
        refusal(c.end_transaction(&s, "tx", pid, e0.wrapping_sub(1), true, true, 4)),
        TxnRefusal::ProducerFenced
    );
    assert_eq!(
        refusal(c.end_transaction(&s, "tx", pid, e1, true, true, 4)),
        TxnRefusal::InvalidTxnState
    );
    // An abort needs no transaction: it bumps the epoch too, no markers.
    assert_eq!(
        c.end_transaction(&s, "tx", pid, e1, false, true, 5)
            .expect("a valid test value"),
        (pid, e1 + 1)
    );
    assert_eq!(s.markers.borrow().len(), 1);
    assert_eq!(last_record(&s).state, TxnState::CompleteAbort);
    // Reloaded, the same.
    let again = reloaded(&s).describe("tx").expect("a valid test value");
    assert_eq!(
        (again.producer_epoch, again.state, again.client_version),
        (e1 + 1, TxnState::CompleteAbort, 2)
    );
    // A version 1 EndTxn of the next transaction keeps the epoch.
    c.add_partitions(&s, "tx", pid, e1 + 1, &parts(&[("a", 0)]), 6)
        .expect("a valid test value");
    assert_eq!(
        c.end_transaction(&s, "tx", pid, e1 + 1, true, false, 7)
            .expect("a valid test value"),
        (pid, e1 + 1)
    );
    assert_eq!(last_record(&s).client_version, 0);
}

#[test]
fn transaction_version_2_rotates_the_producer_id_at_epoch_exhaustion() {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, _) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    // The producer at the last epoch a client may hold.
    let last = i16::MAX - 1;
    let mut m = c.describe("tx").expect("a valid test value");
    m.producer_epoch = last;
    s.persist_txn("tx", Some(records::encode_value(&m)))
        .expect("a valid test value");
    let c = reloaded(&s);
    c.add_partitions_at(&s, "tx", pid, last, &parts(&[("a", 0)]), 2, 2)
        .expect("a valid test value");
    // The decision is logged with the next id; a crash before the
    // completion is completed by the reloaded coordinator.
    s.fail_markers.set(true);
    let (next, epoch) = c
        .end_transaction(&s, "tx", pid, last, true, true, 3)
        .expect("a valid test value");
    assert_ne!(next, pid);
    assert_eq!(epoch, 0);
    let decided = last_record(&s);
    assert_eq!(
        (
            decided.state,
            decided.producer_id,
            decided.producer_epoch,
            decided.next_producer_id
        ),
        (TxnState::PrepareCommit, pid, i16::MAX, next)
    );
    s.fail_markers.set(false);
    let c = reloaded(&s);
    c.tick(&s, 10);
    // The marker carries the old id at the reserved last epoch.
    assert_eq!(
        *s.markers.borrow(),
        [("a".to_string(), 0, pid, i16::MAX, true)]
    );
    let done = c.describe("tx").expect("a valid test value");
    assert_eq!(
        (
            done.state,
            done.producer_id,
            done.producer_epoch,
            done.previous_producer_id
        ),
        (TxnState::CompleteCommit, next, 0, pid)
    );
    // A retry with the old id at the last epoch gets the new id; the old
    // id otherwise is not the transactional id's any more.
    assert_eq!(
        c.end_transaction(&s, "tx", pid, last, true, true, 11)
            .expect("a valid test value"),
        (next, 0)
    );
    assert_eq!(
        refusal(c.end_transaction(&s, "tx", pid, 5, true, true, 11)),
        TxnRefusal::InvalidProducerIdMapping
    );
    // The new id works.
    c.add_partitions_at(&s, "tx", next, 0, &parts(&[("a", 0)]), 2, 12)
        .expect("a valid test value");
    assert_eq!(
        c.end_transaction(&s, "tx", next, 0, false, true, 13)
            .expect("a valid test value"),
        (next, 1)
    );
}

/// The states of the `__transaction_state` records, in log order.
fn logged_states(s: &MemStore) -> Vec<TxnState> {
    s.log
        .borrow()
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .map(|v| records::decode_value(v).expect("a valid record").state)
        .collect()
}

/// The next transaction of `committed_over_a_and_b`'s id joins a-0 at
/// `now`: its Ongoing record follows the commit's completion in the log,
/// and the commit's two markers are not written again.
fn next_transaction_follows_the_completion(
    c: &TransactionCoordinator,
    s: &MemStore,
    pid: i64,
    e: i16,
    now: i64,
) {
    c.add_partitions_owed(s, "tx", pid, e, &parts(&[("a", 0)]), now)
        .expect("a valid test value");
    assert_eq!(
        logged_states(s)[2..],
        [
            TxnState::PrepareCommit,
            TxnState::CompleteCommit,
            TxnState::Ongoing
        ]
    );
    assert_eq!(s.markers.borrow().len(), 2, "no marker written twice");
}

/// A store whose markers land in the background, and "tx" committed over
/// partitions a-0 and b-1 (EndTxn answered at time 3): the coordinator, the
/// store, and the producer id and epoch.
fn committed_over_a_and_b() -> (TransactionCoordinator, MemStore, i64, i16) {
    let (c, s) = (coordinator(), MemStore::default());
    s.landing.set(true);
    let (pid, e) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions_owed(&s, "tx", pid, e, &parts(&[("a", 0), ("b", 1)]), 2)
        .expect("a valid test value");
    c.end_txn(&s, "tx", pid, e, true, 3)
        .expect("a valid test value");
    (c, s, pid, e)
}

#[test]
fn end_txn_answers_once_decided_and_the_next_request_waits_for_the_markers() {
    let (c, s, pid, e) = committed_over_a_and_b();
    // Answered with the decision durable and the markers appended, not yet
    // durable; nothing after the decision is logged.
    assert_eq!(s.markers.borrow().len(), 2);
    assert_eq!(s.markers_durable.load(Ordering::SeqCst), 0);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::PrepareCommit));
    // A crash now reloads the decision, and completes it again.
    let crashed = coordinator();
    crashed.load(s.after_crash());
    assert_eq!(
        crashed.describe("tx").map(|m| m.state),
        Some(TxnState::PrepareCommit)
    );
    // The next transaction's join waits for the markers, then logs the
    // completion, then its own record: in that order, each durable only
    // after the one before.
    next_transaction_follows_the_completion(&c, &s, pid, e, 4);
    assert_eq!(s.markers_durable.load(Ordering::SeqCst), 2);
    assert_eq!(*s.completions.borrow(), [true]);
    c.verified("tx", pid, e, ("a", 0), || Ok(()))
        .expect("a valid test value");

    // A retried EndTxn while the markers land is answered as a retry.
    c.end_txn(&s, "tx", pid, e, false, 5)
        .expect("a valid test value");
    // Readers without a store see it complete once its markers are
    // durable: a late write is refused as after the completion.
    assert_eq!(
        refusal(c.verified("tx", pid, e, ("a", 0), || Ok(()))),
        TxnRefusal::InvalidTxnState
    );
    assert_eq!(
        c.describe("tx").map(|m| m.state),
        Some(TxnState::CompleteAbort)
    );
    assert_eq!(logged_states(&s).last(), Some(&TxnState::PrepareAbort));
    c.end_txn(&s, "tx", pid, e, false, 6)
        .expect("a valid test value");
    assert_eq!(*s.completions.borrow(), [true, true]);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::CompleteAbort));

    // A landing marker whose fsync fails is written again after the
    // backoff, before the completion; the tick completes a decision no
    // request follows.
    c.add_partitions_owed(&s, "tx", pid, e, &parts(&[("b", 1)]), 7)
        .expect("a valid test value");
    s.fail_landing.set(true);
    c.end_txn(&s, "tx", pid, e, true, 8)
        .expect("a valid test value");
    assert_eq!(c.tick(&s, 9), 0);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::PrepareCommit));
    assert_eq!(c.tick(&s, 109), 1);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::CompleteCommit));
    assert_eq!(
        s.markers.borrow()[3..],
        [
            ("b".to_string(), 1, pid, e, true),
            ("b".to_string(), 1, pid, e, true)
        ],
        "the failed marker is written again"
    );
    assert_eq!(c.tick(&s, 110), 0);
}

/// What a store's background worker does once EndTxn has answered: the
/// completion logged as soon as the markers are durable, with no request
/// of the id and no tick; a failed marker fsync leaves the decision to the
/// tick's retry, as when a request completes it.
#[test]
fn the_stores_background_completes_a_landing_decision_once_its_markers_are_durable() {
    let (c, s, pid, e) = committed_over_a_and_b();
    assert_eq!(*s.background.borrow(), ["tx"], "left to the background");
    assert_eq!(logged_states(&s).last(), Some(&TxnState::PrepareCommit));
    c.complete_landed(&s, "tx", 4);
    assert_eq!(s.markers_durable.load(Ordering::SeqCst), 2);
    assert_eq!(*s.completions.borrow(), [true]);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::CompleteCommit));
    // Reloaded, the log alone has the transaction complete.
    assert_eq!(
        reloaded(&s).describe("tx").map(|m| m.state),
        Some(TxnState::CompleteCommit)
    );
    // Done already: a second call (a request came first) logs nothing.
    let logged = s.log.borrow().len();
    c.complete_landed(&s, "tx", 5);
    assert_eq!(s.log.borrow().len(), logged);
    // The next transaction's records follow the completion.
    next_transaction_follows_the_completion(&c, &s, pid, e, 6);

    // A failed marker fsync: the decision stays, and the tick writes the
    // marker again after the backoff, then completes it.
    s.fail_landing.set(true);
    c.end_txn(&s, "tx", pid, e, false, 7)
        .expect("a valid test value");
    c.complete_landed(&s, "tx", 8);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::PrepareAbort));
    assert_eq!(c.tick(&s, 9), 0, "backing off");
    assert_eq!(c.tick(&s, 108), 1);
    assert_eq!(logged_states(&s).last(), Some(&TxnState::CompleteAbort));
    assert_eq!(
        s.markers.borrow().len(),
        4,
        "the failed marker written again"
    );
    // Unknown ids are nothing to do.
    c.complete_landed(&s, "nobody", 109);
    assert!(c.describe("nobody").is_none());
}

#[test]
fn a_transaction_with_consumer_offsets_completes_before_end_txn_answers() {
    let (c, s) = (coordinator(), MemStore::default());
    s.landing.set(true);
    let (pid, e) = c
        .init_producer_id(&s, "tx", 60_000, None, 1)
        .expect("a valid test value");
    c.add_partitions(
        &s,
        "tx",
        pid,
        e,
        &parts(&[("a", 0), (CONSUMER_OFFSETS, 3)]),
        2,
    )
    .expect("a valid test value");
    c.end_txn(&s, "tx", pid, e, true, 3)
        .expect("a valid test value");
    assert_eq!(logged_states(&s).last(), Some(&TxnState::CompleteCommit));
    assert_eq!(s.markers.borrow().len(), 2);
}

/// A transaction of "tx" on `a`-0, opened at 2 ms at the last epoch a
/// producer may hold (`i16::MAX - 1`), its timeout `timeout_ms`: the
/// coordinator, its store and the producer id.
fn ongoing_at_the_last_epoch(timeout_ms: i32) -> (TransactionCoordinator, MemStore, i64) {
    let (c, s) = (coordinator(), MemStore::default());
    let (pid, _) = c
        .init_producer_id(&s, "tx", timeout_ms, None, 1)
        .expect("a valid test value");
    let mut m = c.describe("tx").expect("a valid test value");
    m.producer_epoch = i16::MAX - 1;
    s.persist_txn("tx", Some(records::encode_value(&m)))
        .expect("a valid test value");
    let c = reloaded(&s);
    c.add_partitions(&s, "tx", pid, i16::MAX - 1, &parts(&[("a", 0)]), 2)
        .expect("a valid test value");
    (c, s, pid)
}

/// A new producer fencing a transaction at the last epoch a client may
/// hold (`i16::MAX - 1`) bumps it to `i16::MAX`, as Kafka's
/// `prepareFenceProducerEpoch` does: the ABORT marker carries `i16::MAX`, so
/// the zombie's epoch is below the partition's, and the new producer gets a
/// new producer id at epoch 0.
#[test]
fn fencing_at_the_last_epoch_aborts_at_the_reserved_one_and_rotates_the_id() {
    let (c, s, pid) = ongoing_at_the_last_epoch(60_000);
    let last = i16::MAX - 1;
    let (next, epoch) = c
        .init_producer_id(&s, "tx", 60_000, None, 3)
        .expect("a valid test value");
    assert_eq!(
        *s.markers.borrow(),
        [("a".to_string(), 0, pid, i16::MAX, false)]
    );
    assert_ne!(next, pid);
    assert_eq!(epoch, 0);
    assert_eq!(
        refusal(c.end_txn(&s, "tx", pid, last, true, 4)),
        TxnRefusal::InvalidProducerIdMapping
    );
}

#[test]
fn a_producer_fenced_at_the_last_epoch_is_not_handed_the_reserved_one() {
    let (c, s, pid) = ongoing_at_the_last_epoch(1_000);
    let last = i16::MAX - 1;
    // The timeout fences it at the reserved epoch.
    assert_eq!(c.tick(&s, 2_000), 1);
    let m = c.describe("tx").expect("a valid test value");
    assert_eq!((m.producer_epoch, m.last_producer_epoch), (i16::MAX, last));
    assert_eq!(
        refusal(c.init_producer_id(&s, "tx", 1_000, Some((pid, last)), 3_000)),
        TxnRefusal::ProducerFenced
    );
    let (next, epoch) = c
        .init_producer_id(&s, "tx", 1_000, None, 3_001)
        .expect("a valid test value");
    assert_ne!(next, pid);
    assert_eq!(epoch, 0);
}
