//! The transaction coordinator on a real broker: its state in
//! `__transaction_state`, markers in the partitions' logs, and a decided
//! commit completed after a restart.

use pubsub_broker::txn::{records, TxnRefusal, TxnState, TRANSACTION_STATE};
use pubsub_broker::{wall_clock_ms, Broker, BrokerError};
use pubsub_records::{Batches, ControlRecord, ControlType};

use super::common::{no_configs, test_config};

/// The markers in a partition's log: (producer id, epoch, type).
fn markers(broker: &Broker, topic: &str, partition: i32) -> Vec<(i64, i16, ControlType)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut next = 0;
    loop {
        let (_, hw) = broker
            .fetch(topic, partition, next, 1 << 20, &mut buf)
            .expect("fetch");
        if next >= hw || buf.is_empty() {
            return out;
        }
        for batch in Batches::new(&buf) {
            let batch = batch.expect("batch");
            next = batch.next_offset() as u64;
            if batch.is_control() {
                let set = batch.records(1 << 20).expect("records");
                for r in set.iter() {
                    let r = r.expect("record");
                    let c = ControlRecord::parse(r.key, r.value).expect("control record");
                    out.push((batch.producer_id(), batch.producer_epoch(), c.kind));
                }
            }
        }
    }
}

fn config() -> pubsub_broker::BrokerConfig {
    let mut c = test_config();
    c.txn.state_topic_partitions = 3;
    c
}

fn refusal(r: Result<impl std::fmt::Debug, BrokerError>) -> TxnRefusal {
    match r {
        Err(BrokerError::Transaction { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn commit_and_abort_write_markers_to_every_partition_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path(), config()).expect("open");
    broker
        .create_topic("orders", Some(2), no_configs())
        .expect("create");
    assert!(
        broker.partition(TRANSACTION_STATE, 0).is_err(),
        "created lazily"
    );
    let (txns, store) = (broker.transactions(), broker.txn_store());
    let (pid, epoch) = txns
        .init_producer_id(store, "tx-a", 60_000, None, wall_clock_ms())
        .expect("init");
    assert!(broker.partition(TRANSACTION_STATE, 2).is_ok());
    let both = [("orders".to_string(), 0), ("orders".to_string(), 1)];
    txns.add_partitions(store, "tx-a", pid, epoch, &both, wall_clock_ms())
        .expect("add");
    txns.end_txn(store, "tx-a", pid, epoch, true, wall_clock_ms())
        .expect("commit");
    txns.add_partitions(store, "tx-a", pid, epoch, &both[..1], wall_clock_ms())
        .expect("add");
    txns.end_txn(store, "tx-a", pid, epoch, false, wall_clock_ms())
        .expect("abort");
    assert_eq!(
        markers(&broker, "orders", 0),
        [
            (pid, epoch, ControlType::Commit),
            (pid, epoch, ControlType::Abort)
        ]
    );
    assert_eq!(
        markers(&broker, "orders", 1),
        [(pid, epoch, ControlType::Commit)]
    );
    broker.close().expect("close");
    drop(broker);

    let broker = Broker::open(dir.path(), config()).expect("reopen");
    let m = broker.transactions().describe("tx-a").expect("loaded");
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (pid, epoch, TxnState::CompleteAbort)
    );
    // The producer's epoch still works; a stale one is fenced.
    let store = broker.txn_store();
    assert_eq!(
        refusal(broker.transactions().end_txn(
            store,
            "tx-a",
            pid,
            epoch - 1,
            true,
            wall_clock_ms()
        )),
        TxnRefusal::ProducerFenced
    );
    let (pid2, epoch2) = broker
        .transactions()
        .init_producer_id(store, "tx-a", 60_000, None, wall_clock_ms())
        .expect("init again");
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
}

#[test]
fn a_commit_decided_before_a_crash_is_completed_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pid, epoch) = {
        let broker = Broker::open(dir.path(), config()).expect("open");
        broker
            .create_topic("orders", Some(2), no_configs())
            .expect("create");
        let (txns, store) = (broker.transactions(), broker.txn_store());
        let (pid, epoch) = txns
            .init_producer_id(store, "tx-b", 60_000, None, wall_clock_ms())
            .expect("init");
        let both = [("orders".to_string(), 0), ("orders".to_string(), 1)];
        txns.add_partitions(store, "tx-b", pid, epoch, &both, wall_clock_ms())
            .expect("add");
        // The PrepareCommit record is durable, then the broker stops before
        // any marker: the state a crash between the two phases leaves.
        let mut prepared = txns.describe("tx-b").expect("ongoing");
        prepared.state = TxnState::PrepareCommit;
        store
            .persist_txn("tx-b", Some(records::encode_value(&prepared)))
            .expect("persist");
        broker.close().expect("close");
        (pid, epoch)
    };
    let broker = Broker::open(dir.path(), config()).expect("reopen");
    for p in 0..2 {
        assert_eq!(
            markers(&broker, "orders", p),
            [(pid, epoch, ControlType::Commit)]
        );
    }
    let m = broker.transactions().describe("tx-b").expect("loaded");
    assert_eq!(m.state, TxnState::CompleteCommit);
    // Completing is recorded: the next open writes no second marker.
    broker.close().expect("close");
    let broker = Broker::open(dir.path(), config()).expect("reopen");
    assert_eq!(markers(&broker, "orders", 0).len(), 1);
}

#[test]
fn an_ongoing_transaction_is_aborted_at_its_timeout_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config();
    cfg.background = false;
    let (pid, epoch) = {
        let broker = Broker::open(dir.path(), cfg.clone()).expect("open");
        broker
            .create_topic("orders", Some(1), no_configs())
            .expect("create");
        let (txns, store) = (broker.transactions(), broker.txn_store());
        let (pid, epoch) = txns
            .init_producer_id(store, "tx-c", 1, None, wall_clock_ms())
            .expect("init");
        txns.add_partitions(
            store,
            "tx-c",
            pid,
            epoch,
            &[("orders".into(), 0)],
            wall_clock_ms(),
        )
        .expect("add");
        (pid, epoch)
    };
    let broker = Broker::open(dir.path(), cfg).expect("reopen");
    // Loading completes what was decided; the 1 ms timeout has passed by
    // the time the clock ticks.
    // Bounded: a coordinator that never aborts fails the test below
    // instead of hanging it.
    for _ in 0..1_000 {
        let state = broker
            .transactions()
            .describe("tx-c")
            .expect("loaded")
            .state;
        if state != TxnState::Ongoing {
            break;
        }
        broker.tick();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let m = broker.transactions().describe("tx-c").expect("loaded");
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::CompleteAbort, epoch + 1)
    );
    assert_eq!(
        markers(&broker, "orders", 0),
        [(pid, epoch + 1, ControlType::Abort)]
    );
}

/// The states of `id`'s records in `__transaction_state`, in log order
/// (its 3 partitions scanned; one holds them all).
fn logged_states(broker: &Broker, id: &str) -> Vec<TxnState> {
    let mut states = Vec::new();
    let mut buf = Vec::new();
    for partition in 0..3 {
        let mut next = 0;
        loop {
            let (_, hw) = broker
                .fetch(TRANSACTION_STATE, partition, next, 1 << 20, &mut buf)
                .expect("fetch");
            if next >= hw || buf.is_empty() {
                break;
            }
            for batch in Batches::new(&buf) {
                let batch = batch.expect("batch");
                next = batch.next_offset() as u64;
                for r in batch.records(1 << 20).expect("records").iter() {
                    let r = r.expect("record");
                    let key = records::decode_key(r.key.expect("a key")).expect("a key");
                    if key == id {
                        let value = r.value.expect("not a tombstone");
                        states.push(records::decode_value(value).expect("a value").state);
                    }
                }
            }
        }
    }
    states
}

/// EndTxn answers before its markers are durable; the broker's completer
/// logs the completion once they are, with no further request of the id
/// and no clock (a tick would complete it too): the log itself is
/// current, and a restart finds the transaction complete, writing no
/// marker again. A close right after EndTxn logs the completion too.
#[test]
fn the_completion_is_logged_once_the_markers_are_durable_without_a_request_or_tick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config();
    cfg.background = false;
    let broker = Broker::open(dir.path(), cfg.clone()).expect("open");
    broker
        .create_topic("orders", Some(2), no_configs())
        .expect("create");
    let (txns, store) = (broker.transactions(), broker.txn_store());
    let (pid, epoch) = txns
        .init_producer_id(store, "tx-d", 60_000, None, wall_clock_ms())
        .expect("init");
    let both = [("orders".to_string(), 0), ("orders".to_string(), 1)];
    txns.add_partitions(store, "tx-d", pid, epoch, &both, wall_clock_ms())
        .expect("add");
    txns.end_txn(store, "tx-d", pid, epoch, true, wall_clock_ms())
        .expect("commit");
    // Bounded: a broker that never logs it fails below instead of hanging.
    for _ in 0..6_000 {
        if logged_states(&broker, "tx-d").last() == Some(&TxnState::CompleteCommit) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        logged_states(&broker, "tx-d"),
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
    // The next transaction, committed, then the broker closed at once.
    txns.add_partitions(store, "tx-d", pid, epoch, &both[..1], wall_clock_ms())
        .expect("add");
    txns.end_txn(store, "tx-d", pid, epoch, true, wall_clock_ms())
        .expect("commit");
    broker.close().expect("close");
    drop(broker);

    let broker = Broker::open(dir.path(), cfg).expect("reopen");
    assert_eq!(
        logged_states(&broker, "tx-d")[4..],
        [
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
    assert_eq!(
        markers(&broker, "orders", 0),
        [
            (pid, epoch, ControlType::Commit),
            (pid, epoch, ControlType::Commit)
        ],
        "completed before the close: the load writes no marker again"
    );
    assert_eq!(
        markers(&broker, "orders", 1),
        [(pid, epoch, ControlType::Commit)]
    );
}
