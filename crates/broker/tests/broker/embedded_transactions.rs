//! The embedded transactional producer: commit and abort as read_committed
//! and read_uncommitted embedded consumers see them, an open transaction
//! invisible until it ends, fencing by transactional id (a second producer
//! of the id aborts the first's transaction and the first gets
//! PRODUCER_FENCED from then on), and misuse answered with the
//! coordinator's refusals.

use std::time::Duration;

use pubsub_broker::txn::TxnRefusal;
use pubsub_broker::{
    Broker, BrokerError, ConsumerConfig, Isolation, Producer, ProducerConfig, ProducerRecord,
};

use crate::common::*;

fn transactional(broker: &Broker, id: &str) -> Producer {
    broker
        .producer(ProducerConfig {
            transactional_id: Some(id.to_string()),
            // Appended at send: a fenced append fails at once.
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        })
        .expect("transactional producer")
}

fn send(p: &Producer, partition: i32, value: &str) {
    p.send(&ProducerRecord::new("t", value.as_bytes()).partition(partition))
        .expect("send");
}

fn refusal(e: &BrokerError) -> Option<TxnRefusal> {
    match e {
        BrokerError::Transaction { refusal, .. } => Some(*refusal),
        BrokerError::Delivery(inner) => refusal(inner),
        _ => None,
    }
}

/// The values an embedded consumer with `isolation` reads from every
/// partition of "t" until its position reaches the last stable offset
/// (read_committed) or the log end (read_uncommitted), sorted.
fn values(broker: &Broker, group: &str, isolation: Isolation) -> Vec<String> {
    let partitions = broker.ensure_topic("t").expect("topic") as i32;
    let target = |p: i32| {
        let part = broker.partition("t", p).expect("partition");
        match isolation {
            Isolation::ReadCommitted => part.last_stable_offset(),
            Isolation::ReadUncommitted => part.log().log_end_offset(),
        }
    };
    let mut c = broker
        .consumer(ConsumerConfig {
            isolation,
            auto_commit: false,
            ..ConsumerConfig::new(group)
        })
        .expect("consumer");
    c.subscribe(&["t"]).expect("subscribe");
    let done = |c: &pubsub_broker::Consumer| {
        (0..partitions).all(|p| c.position("t", p).is_some_and(|at| at >= target(p)))
    };
    let mut out = Vec::new();
    for _ in 0..2_000 {
        for r in c.poll(Duration::from_millis(20)).expect("poll") {
            out.push(String::from_utf8(r.value.expect("value")).expect("utf8"));
        }
        if done(&c) {
            break;
        }
    }
    assert!(done(&c), "the consumer reached the end of every partition");
    c.close().expect("close");
    out.sort();
    out
}

fn topic(dir: &std::path::Path) -> Broker {
    let broker = open(dir);
    broker
        .create_topic("t", Some(2), no_configs())
        .expect("create");
    broker
}

#[test]
fn committed_records_are_visible_to_read_committed_and_aborted_ones_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let p = transactional(&broker, "tx");
    p.begin_transaction().expect("begin");
    send(&p, 0, "c1");
    send(&p, 1, "c2");
    // Open: read_committed sees nothing yet, read_uncommitted sees it.
    assert_eq!(
        values(&broker, "g-open", Isolation::ReadCommitted),
        Vec::<String>::new()
    );
    assert_eq!(
        values(&broker, "g-open-u", Isolation::ReadUncommitted),
        ["c1", "c2"]
    );
    p.commit_transaction().expect("commit");
    p.begin_transaction().expect("begin");
    send(&p, 0, "a1");
    send(&p, 1, "a2");
    p.abort_transaction().expect("abort");
    p.begin_transaction().expect("begin");
    send(&p, 1, "c3");
    p.commit_transaction().expect("commit");
    // An empty transaction commits without the coordinator.
    p.begin_transaction().expect("begin");
    p.commit_transaction().expect("empty commit");
    assert_eq!(
        values(&broker, "g-committed", Isolation::ReadCommitted),
        ["c1", "c2", "c3"]
    );
    assert_eq!(
        values(&broker, "g-all", Isolation::ReadUncommitted),
        ["a1", "a2", "c1", "c2", "c3"]
    );
    // The same after a restart (the aborted index and markers are on disk).
    p.close();
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(
        values(&broker, "g-restart", Isolation::ReadCommitted),
        ["c1", "c2", "c3"]
    );
}

#[test]
fn misuse_is_refused_with_the_coordinators_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let p = transactional(&broker, "tx");
    let e = p
        .send(&ProducerRecord::new("t", b"x").partition(0))
        .expect_err("a send outside a transaction");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTxnState));
    let e = p.commit_transaction().expect_err("commit without begin");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTxnState));
    p.begin_transaction().expect("begin");
    let e = p.begin_transaction().expect_err("a second begin");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTxnState));
    // A producer without a transactional id has no transactions.
    let plain = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    let e = plain.begin_transaction().expect_err("not transactional");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTxnState));
    // A timeout above the broker's maximum: INVALID_TRANSACTION_TIMEOUT.
    let e = broker
        .producer(ProducerConfig {
            transactional_id: Some("long".into()),
            transaction_timeout: Duration::from_secs(24 * 3600),
            ..ProducerConfig::default()
        })
        .expect_err("timeout too long");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTransactionTimeout));
}

#[test]
fn a_second_producer_of_the_id_fences_the_first_and_aborts_its_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let zombie = transactional(&broker, "tx");
    zombie.begin_transaction().expect("begin");
    send(&zombie, 0, "zombie-1");
    // The new producer's InitProducerId aborts the open transaction.
    let fresh = transactional(&broker, "tx");
    // The zombie's next record to the partition it had added is refused by
    // the partition (an older epoch), to a new one by the coordinator.
    let d = zombie
        .send(&ProducerRecord::new("t", b"zombie-2").partition(0))
        .expect("queued");
    assert_eq!(
        refusal(&d.wait().expect_err("an old epoch")),
        Some(TxnRefusal::ProducerFenced)
    );
    let e = zombie
        .send(&ProducerRecord::new("t", b"zombie-3").partition(1))
        .expect_err("a new partition");
    assert_eq!(refusal(&e), Some(TxnRefusal::ProducerFenced));
    let e = zombie.commit_transaction().expect_err("fenced commit");
    assert_eq!(refusal(&e), Some(TxnRefusal::ProducerFenced));
    // Fenced for good.
    let e = zombie.begin_transaction().expect_err("fenced");
    assert_eq!(refusal(&e), Some(TxnRefusal::ProducerFenced));
    fresh.begin_transaction().expect("begin");
    send(&fresh, 0, "fresh");
    fresh.commit_transaction().expect("commit");
    assert_eq!(
        values(&broker, "g", Isolation::ReadCommitted),
        ["fresh"],
        "nothing of the zombie"
    );
}
