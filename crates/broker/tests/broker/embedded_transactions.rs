//! The embedded transactional producer: commit and abort as read_committed
//! and read_uncommitted embedded consumers see them, an open transaction
//! invisible until it ends, fencing by transactional id (a second producer
//! of the id aborts the first's transaction and the first gets
//! PRODUCER_FENCED from then on), misuse answered with the coordinator's
//! refusals, and consume-transform-produce: a read_committed consumer's
//! offsets sent into the producer's transaction, committed with its
//! output or dropped with it.

use std::time::Duration;

use pubsub_broker::txn::TxnRefusal;
use pubsub_broker::{
    Broker, BrokerError, Consumer, ConsumerConfig, ConsumerGroupMetadata, Isolation, Producer,
    ProducerConfig, ProducerRecord,
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
    // The zombie's next record to the partition it had added is refused at
    // the append (the transaction's producer check, KIP-890 part 1), to a
    // new one when it is added.
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

/// A read_committed member of `group` on "in", committing nothing itself,
/// five records per poll at most.
fn input_consumer(broker: &Broker, group: &str) -> Consumer {
    let mut c = broker
        .consumer(ConsumerConfig {
            isolation: Isolation::ReadCommitted,
            auto_commit: false,
            max_poll_records: 5,
            ..ConsumerConfig::new(group)
        })
        .expect("consumer");
    c.subscribe(&["in"]).expect("subscribe");
    c
}

/// The next `count` records `c` returns: (offset, value).
fn poll_records(c: &mut Consumer, count: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    for _ in 0..2_000 {
        for r in c.poll(Duration::from_millis(20)).expect("poll") {
            got.push((
                r.offset,
                String::from_utf8(r.value.expect("value")).expect("utf8"),
            ));
        }
        if got.len() >= count {
            break;
        }
    }
    assert_eq!(got.len(), count, "records polled: {got:?}");
    got
}

/// One consume-transform-produce transaction: `count` records of `c`
/// written upper-cased to "out", with the offset after the last as the
/// group's offset of in-0; committed or aborted. Returns the values read.
fn transform(p: &Producer, c: &mut Consumer, count: usize, commit: bool) -> Vec<String> {
    let got = poll_records(c, count);
    p.begin_transaction().expect("begin");
    for (_, v) in &got {
        p.send(&ProducerRecord::new("out", v.to_uppercase().as_bytes()).partition(0))
            .expect("send");
    }
    let next = got.last().map(|(o, _)| o + 1).expect("a record");
    p.send_offsets_to_transaction(&[("in", 0, next)], &c.group_metadata())
        .expect("send offsets");
    // Pending until the transaction ends: the group's offset has not moved.
    assert_ne!(
        c.committed("in", 0),
        Some(next),
        "offsets visible before the end"
    );
    if commit {
        p.commit_transaction().expect("commit");
    } else {
        p.abort_transaction().expect("abort");
    }
    got.into_iter().map(|(_, v)| v).collect()
}

/// Every value a fresh `isolation` consumer reads of "out" up to its end.
fn output(broker: &Broker, group: &str, isolation: Isolation) -> Vec<String> {
    let end = {
        let part = broker.partition("out", 0).expect("partition");
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
    c.subscribe(&["out"]).expect("subscribe");
    let mut out = Vec::new();
    for _ in 0..2_000 {
        if c.position("out", 0).is_some_and(|at| at >= end) {
            break;
        }
        for r in c.poll(Duration::from_millis(20)).expect("poll") {
            out.push(String::from_utf8(r.value.expect("value")).expect("utf8"));
        }
    }
    assert!(
        c.position("out", 0).is_some_and(|at| at >= end),
        "read to the end of out"
    );
    c.close().expect("close");
    out
}

fn in_and_out(dir: &std::path::Path) -> Broker {
    let broker = open(dir);
    for t in ["in", "out"] {
        broker
            .create_topic(t, Some(1), no_configs())
            .expect("create");
    }
    broker
}

/// The input, transactional too: v-0..v-4 committed (offsets 0-4, marker
/// 5), x-0..x-2 aborted (6-8, marker 9), v-5..v-9 committed (10-14,
/// marker 15). A read_committed consumer reads the ten v records only.
fn write_input(broker: &Broker) {
    let src = broker
        .producer(ProducerConfig {
            transactional_id: Some("source".into()),
            ..ProducerConfig::default()
        })
        .expect("producer");
    for (values, commit) in [(0..5, true), (0..3, false), (5..10, true)] {
        src.begin_transaction().expect("begin");
        for i in values {
            let v = if commit {
                format!("v-{i}")
            } else {
                format!("x-{i}")
            };
            src.send(&ProducerRecord::new("in", v.as_bytes()).partition(0))
                .expect("send");
        }
        src.flush();
        if commit {
            src.commit_transaction().expect("commit");
        } else {
            src.abort_transaction().expect("abort");
        }
    }
    src.close();
}

#[test]
fn consume_transform_produce_commits_output_and_offsets_together_and_an_abort_neither() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = in_and_out(dir.path());
    write_input(&broker);
    let p = transactional(&broker, "ctp");
    let mut first = input_consumer(&broker, "g");
    let half = transform(&p, &mut first, 5, true);
    assert_eq!(half, ["v-0", "v-1", "v-2", "v-3", "v-4"]);
    assert_eq!(
        first.committed("in", 0),
        Some(5),
        "committed with the output"
    );
    // The rest, past the aborted input, in a transaction that aborts: the
    // group's offset stays where the commit left it.
    let rest = transform(&p, &mut first, 5, false);
    assert_eq!(rest, ["v-5", "v-6", "v-7", "v-8", "v-9"]);
    assert_eq!(first.committed("in", 0), Some(5), "dropped with the abort");
    first.close().expect("close");
    // A new member resumes at the committed offset and redoes the rest.
    let mut second = input_consumer(&broker, "g");
    let again = transform(&p, &mut second, 5, true);
    assert_eq!(again, rest, "resumed after the committed half");
    assert_eq!(second.committed("in", 0), Some(15));
    second.close().expect("close");
    let expected: Vec<String> = (0..10).map(|i| format!("V-{i}")).collect();
    assert_eq!(
        output(&broker, "read-out", Isolation::ReadCommitted),
        expected,
        "each input record once in the committed output"
    );
    assert_eq!(
        output(&broker, "read-all", Isolation::ReadUncommitted).len(),
        15,
        "the aborted output is in the log"
    );
    // Committed transactional offsets come back after a restart; the
    // aborted ones do not.
    p.close();
    broker.close().expect("close");
    let broker = open(dir.path());
    let c = input_consumer(&broker, "g");
    assert_eq!(c.committed("in", 0), Some(15), "after the restart");
    assert_eq!(
        output(&broker, "read-out-2", Isolation::ReadCommitted),
        expected
    );
}

#[test]
fn sent_offsets_are_checked_as_txn_offset_commit_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = in_and_out(dir.path());
    write_input(&broker);
    let p = transactional(&broker, "ctp");
    let outside = ConsumerGroupMetadata::new("g");
    // Outside a transaction: INVALID_TXN_STATE.
    let e = p
        .send_offsets_to_transaction(&[("in", 0, 1)], &outside)
        .expect_err("no transaction");
    assert_eq!(refusal(&e), Some(TxnRefusal::InvalidTxnState));
    p.begin_transaction().expect("begin");
    // An unknown partition is refused before anything is sent.
    let e = p
        .send_offsets_to_transaction(&[("in", 7, 1)], &outside)
        .expect_err("unknown partition");
    assert!(
        matches!(e, BrokerError::UnknownTopicOrPartition { .. }),
        "{e:?}"
    );
    // A member of an older generation (KIP-447): ILLEGAL_GENERATION.
    let c = input_consumer(&broker, "g");
    let stale = ConsumerGroupMetadata {
        generation_id: c.group_metadata().generation_id - 1,
        ..c.group_metadata()
    };
    let e = p
        .send_offsets_to_transaction(&[("in", 0, 1)], &stale)
        .expect_err("an older generation");
    assert!(matches!(e, BrokerError::IllegalGeneration { .. }), "{e:?}");
    let e = p
        .send_offsets_to_transaction(
            &[("in", 0, 1)],
            &ConsumerGroupMetadata {
                member_id: "someone-else".into(),
                ..c.group_metadata()
            },
        )
        .expect_err("an unknown member");
    assert!(matches!(e, BrokerError::UnknownMemberId { .. }), "{e:?}");
    // The member's own metadata is accepted; a new producer of the id then
    // fences this one (aborting its transaction, and the offsets with it).
    p.send_offsets_to_transaction(&[("in", 0, 5)], &c.group_metadata())
        .expect("send offsets");
    let fresh = transactional(&broker, "ctp");
    let e = p
        .send_offsets_to_transaction(&[("in", 0, 10)], &c.group_metadata())
        .expect_err("fenced");
    assert_eq!(refusal(&e), Some(TxnRefusal::ProducerFenced));
    let e = p.commit_transaction().expect_err("fenced commit");
    assert_eq!(refusal(&e), Some(TxnRefusal::ProducerFenced));
    assert_eq!(c.committed("in", 0), None, "the fenced offsets dropped");
    // The new producer commits offsets outside the group's membership.
    fresh.begin_transaction().expect("begin");
    fresh
        .send_offsets_to_transaction(&[("in", 0, 15)], &outside)
        .expect("send offsets");
    fresh.commit_transaction().expect("commit");
    assert_eq!(c.committed("in", 0), Some(15));
}
