//! Transactional offset commits (TxnOffsetCommit) on a real broker: held
//! pending until the transaction's marker lands on the group's
//! `__consumer_offsets` partition, committed or dropped by it, and loaded
//! the same way after a clean restart, a SIGKILL and a compaction.

use std::time::Duration;

use pubsub_broker::group::records::partition_for_group;
use pubsub_broker::group::{CommitEntry, CommitRequest, TxnCommitRequest};
use pubsub_broker::names::CONSUMER_OFFSETS;
use pubsub_broker::txn::TxnRefusal;
use pubsub_broker::{wall_clock_ms, Broker, BrokerConfig, BrokerError, GroupConfig};

use crate::common::*;

fn config() -> BrokerConfig {
    let mut c = BrokerConfig {
        group: GroupConfig {
            offsets_topic_partitions: 3,
            offsets_topic_segment_bytes: 1024,
            min_session_timeout: Duration::from_millis(100),
            ..GroupConfig::default()
        },
        background: false,
        ..test_config()
    };
    c.txn.state_topic_partitions = 1;
    c
}

fn open_broker(dir: &std::path::Path) -> Broker {
    Broker::open(dir, config()).expect("open")
}

/// InitProducerId for `id`.
fn init(broker: &Broker, id: &str) -> (i64, i16) {
    broker
        .transactions()
        .init_producer_id(broker.txn_store(), id, 60_000, None, wall_clock_ms())
        .expect("init")
}

/// AddOffsetsToTxn: the group's offsets partition joins the transaction.
fn add_group(broker: &Broker, id: &str, (pid, epoch): (i64, i16), group: &str) {
    let partition = partition_for_group(group, config().group.offsets_topic_partitions);
    broker
        .transactions()
        .add_partitions(
            broker.txn_store(),
            id,
            pid,
            epoch,
            &[(CONSUMER_OFFSETS.to_string(), partition)],
            wall_clock_ms(),
        )
        .expect("add offsets");
}

/// TxnOffsetCommit of `in-0` at `offset`, as the handler runs it.
fn txn_commit(
    broker: &Broker,
    id: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    generation: i32,
    offset: i64,
) -> pubsub_broker::Result<()> {
    let partition = partition_for_group(group, config().group.offsets_topic_partitions);
    let req = TxnCommitRequest {
        group_id: group.into(),
        producer_id: pid,
        producer_epoch: epoch,
        generation_id: generation,
        member_id: String::new(),
        group_instance_id: None,
        entries: vec![entry(offset)],
    };
    broker
        .transactions()
        .verified(id, pid, epoch, (CONSUMER_OFFSETS, partition), || {
            broker.coordinator().txn_commit(
                broker.offsets_store(),
                req,
                broker.now_ms(),
                wall_clock_ms(),
            )
        })
}

fn entry(offset: i64) -> CommitEntry {
    CommitEntry {
        topic: "in".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: String::new(),
    }
}

fn end(broker: &Broker, id: &str, (pid, epoch): (i64, i16), commit: bool) {
    broker
        .transactions()
        .end_txn(broker.txn_store(), id, pid, epoch, commit, wall_clock_ms())
        .expect("end txn");
}

fn plain_commit(broker: &Broker, group: &str, offset: i64) {
    let req = CommitRequest {
        group_id: group.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        entries: vec![entry(offset)],
    };
    broker
        .coordinator()
        .commit(
            broker.offsets_store(),
            req,
            broker.now_ms(),
            wall_clock_ms(),
        )
        .expect("commit");
}

/// The group's committed offset of `in-0` (what OffsetFetch returns).
fn committed(broker: &Broker, group: &str) -> Option<i64> {
    let asked = [("in".to_string(), 0)];
    broker
        .coordinator()
        .fetch_offsets(group, Some(&asked))
        .pop()
        .and_then(|(_, c)| c.map(|c| c.offset))
}

fn pending(broker: &Broker, group: &str) -> bool {
    broker
        .coordinator()
        .pending_offsets(group)
        .contains(&("in".to_string(), 0))
}

fn refusal(r: pubsub_broker::Result<()>) -> TxnRefusal {
    match r {
        Err(BrokerError::Transaction { refusal, .. }) => refusal,
        other => panic!("expected a transaction refusal, got {other:?}"),
    }
}

#[test]
fn txn_offsets_are_pending_until_the_commit_marker_and_dropped_by_an_abort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_broker(dir.path());
    broker
        .create_topic("in", Some(1), no_configs())
        .expect("create");
    let p = init(&broker, "tx");
    add_group(&broker, "tx", p, "g");
    txn_commit(&broker, "tx", p, "g", -1, 5).expect("txn commit");
    assert_eq!(committed(&broker, "g"), None, "invisible while pending");
    assert!(pending(&broker, "g"));
    end(&broker, "tx", p, true);
    assert_eq!(committed(&broker, "g"), Some(5));
    assert!(!pending(&broker, "g"));

    add_group(&broker, "tx", p, "g");
    txn_commit(&broker, "tx", p, "g", -1, 9).expect("txn commit");
    end(&broker, "tx", p, false);
    assert_eq!(committed(&broker, "g"), Some(5), "the abort drops it");
    assert!(!pending(&broker, "g"));

    // A plain commit after the transactional one wins, as the later write.
    add_group(&broker, "tx", p, "g");
    txn_commit(&broker, "tx", p, "g", -1, 20).expect("txn commit");
    plain_commit(&broker, "g", 30);
    assert!(pending(&broker, "g"), "still unstable until the marker");
    end(&broker, "tx", p, true);
    assert_eq!(committed(&broker, "g"), Some(30));
}

#[test]
fn txn_offset_commit_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_broker(dir.path());
    broker
        .create_topic("in", Some(1), no_configs())
        .expect("create");
    let p = init(&broker, "tx");
    // The group's partition was not added with AddOffsetsToTxn.
    assert_eq!(
        refusal(txn_commit(&broker, "tx", p, "g", -1, 1)),
        TxnRefusal::InvalidTxnState
    );
    add_group(&broker, "tx", p, "g");
    // Another producer id, a stale epoch, an unknown transactional id.
    assert_eq!(
        refusal(txn_commit(&broker, "tx", (p.0 + 1, p.1), "g", -1, 1)),
        TxnRefusal::InvalidProducerIdMapping
    );
    assert_eq!(
        refusal(txn_commit(&broker, "nobody", p, "g", -1, 1)),
        TxnRefusal::InvalidProducerIdMapping
    );
    // An unknown group with a generation: ILLEGAL_GENERATION, as Kafka.
    match txn_commit(&broker, "tx", p, "g", 3, 1) {
        Err(BrokerError::IllegalGeneration { .. }) => {}
        other => panic!("expected ILLEGAL_GENERATION, got {other:?}"),
    }
    // A new producer of the id fences this one (its transaction aborted).
    let fresh = init(&broker, "tx");
    assert_eq!(fresh.0, p.0);
    assert_eq!(
        refusal(txn_commit(&broker, "tx", p, "g", -1, 1)),
        TxnRefusal::ProducerFenced
    );
    assert_eq!(committed(&broker, "g"), None);
    assert!(!pending(&broker, "g"), "nothing written by a refusal");
}

/// Three groups: `committed` (its transaction committed), `aborted` (a
/// plain commit at 7, then an aborted transaction at 8) and `open` (a
/// transaction still ongoing at 12).
fn write_three(broker: &Broker) {
    broker
        .create_topic("in", Some(1), no_configs())
        .expect("create");
    let a = init(broker, "tx-a");
    add_group(broker, "tx-a", a, "committed");
    txn_commit(broker, "tx-a", a, "committed", -1, 4).expect("txn commit");
    end(broker, "tx-a", a, true);

    plain_commit(broker, "aborted", 7);
    let b = init(broker, "tx-b");
    add_group(broker, "tx-b", b, "aborted");
    txn_commit(broker, "tx-b", b, "aborted", -1, 8).expect("txn commit");
    end(broker, "tx-b", b, false);

    let c = init(broker, "tx-c");
    add_group(broker, "tx-c", c, "open");
    txn_commit(broker, "tx-c", c, "open", -1, 12).expect("txn commit");
}

fn assert_three(broker: &Broker) {
    assert_eq!(committed(broker, "committed"), Some(4));
    assert_eq!(committed(broker, "aborted"), Some(7));
    assert!(!pending(broker, "aborted"));
    assert_eq!(committed(broker, "open"), None);
    assert!(pending(broker, "open"), "the ongoing one stays pending");
    // The producer completes it after the restart.
    let m = broker.transactions().describe("tx-c").expect("loaded");
    end(broker, "tx-c", (m.producer_id, m.producer_epoch), true);
    assert_eq!(committed(broker, "open"), Some(12));
}

#[test]
fn a_restart_keeps_committed_txn_offsets_drops_aborted_and_keeps_open_ones_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = open_broker(dir.path());
        write_three(&broker);
        broker.close().expect("close");
    }
    {
        let broker = open_broker(dir.path());
        assert_three(&broker);
        broker.close().expect("close");
    }
    let broker = open_broker(dir.path());
    assert_eq!(committed(&broker, "open"), Some(12), "committed stays");
    assert!(!pending(&broker, "open"));
}

const CHILD: &str = "PUBSUB_TXN_OFFSETS_CHILD";

#[test]
fn a_sigkilled_broker_loads_txn_offsets_by_their_markers() {
    if let Ok(dir) = std::env::var(CHILD) {
        let broker = open_broker(std::path::Path::new(&dir));
        write_three(&broker);
        println!("ready");
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let test = "txn_offsets::a_sigkilled_broker_loads_txn_offsets_by_their_markers";
    let ready = kill_when_ready(test, CHILD, dir.path());
    assert!(ready, "the child wrote its offsets");
    let broker = open_broker(dir.path());
    assert_three(&broker);
}

#[test]
fn an_open_txn_offset_commit_is_dropped_when_its_transaction_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_broker(dir.path());
    broker
        .create_topic("in", Some(1), no_configs())
        .expect("create");
    let p = broker
        .transactions()
        .init_producer_id(broker.txn_store(), "tx", 1, None, wall_clock_ms())
        .expect("init");
    add_group(&broker, "tx", p, "g");
    txn_commit(&broker, "tx", p, "g", -1, 3).expect("txn commit");
    // The 1 ms timeout has passed once the clock moves on; bounded.
    for _ in 0..1_000 {
        if !pending(&broker, "g") {
            break;
        }
        broker.tick();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!pending(&broker, "g"), "the timeout's abort drops it");
    assert_eq!(committed(&broker, "g"), None);
}

#[test]
fn compaction_keeps_committed_txn_offsets_and_removes_aborted_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = open_broker(dir.path());
        broker
            .create_topic("in", Some(1), no_configs())
            .expect("create");
        let p = init(&broker, "tx");
        for offset in 1..=30 {
            add_group(&broker, "tx", p, "g");
            txn_commit(&broker, "tx", p, "g", -1, offset).expect("txn commit");
            // Every third one aborted, the last one among them.
            end(&broker, "tx", p, offset % 3 != 0);
        }
        assert_eq!(committed(&broker, "g"), Some(29));
        let removed = broker.run_compaction(wall_clock_ms());
        assert!(removed > 0, "compaction removed nothing");
        broker.close().expect("close");
    }
    let broker = open_broker(dir.path());
    assert_eq!(committed(&broker, "g"), Some(29));
    assert!(!pending(&broker, "g"));
}
