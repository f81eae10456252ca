//! The log side of transactions: open transactions and the last stable
//! offset, COMMIT/ABORT markers, fencing of old epochs, the
//! aborted-transaction index (rebuilt after a restart, a SIGKILL or a lost
//! file) and read_committed embedded consumers.

use std::time::Duration;

use pubsub_broker::{Acks, Broker, BrokerError, ConsumerConfig, Isolation, Partition};
use pubsub_records::{BatchBuilder, ControlRecord, ControlType, NewRecord};
use pubsub_storage::AbortedTxn;

use crate::common::*;

/// A batch of `n` records `{tag}-{i}` from producer `pid`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize, tag: &str, txn: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        let v = format!("{tag}-{i}");
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    b.build().expect("build")
}

fn txn(broker: &Broker, pid: i64, epoch: i16, seq: i32, n: usize, tag: &str) -> u64 {
    let mut b = batch(pid, epoch, seq, n, tag, true);
    broker
        .produce("t", 0, &mut b, Acks::All)
        .expect("transactional produce")
        .base_offset
}

fn marker(kind: ControlType) -> ControlRecord {
    ControlRecord {
        kind,
        coordinator_epoch: 0,
    }
}

fn end(broker: &Broker, pid: i64, epoch: i16, kind: ControlType) -> u64 {
    broker
        .write_txn_marker("t", 0, pid, epoch, marker(kind))
        .expect("marker")
}

fn topic(dir: &std::path::Path) -> Broker {
    let broker = open(dir);
    broker
        .create_topic("t", Some(1), no_configs())
        .expect("create");
    broker
}

fn part(broker: &Broker) -> std::sync::Arc<Partition> {
    broker.partition("t", 0).expect("partition")
}

/// The values a read_committed embedded consumer gets once it has read up
/// to the last stable offset.
fn committed_values(broker: &Broker, group: &str) -> Vec<String> {
    let lso = part(broker).last_stable_offset();
    let mut c = broker
        .consumer(ConsumerConfig {
            isolation: Isolation::ReadCommitted,
            auto_commit: false,
            ..ConsumerConfig::new(group)
        })
        .expect("consumer");
    c.subscribe(&["t"]).expect("subscribe");
    let mut out = Vec::new();
    // Polls until the position reaches the LSO (no clock involved: each
    // poll reads what is there).
    for _ in 0..2_000 {
        for r in c.poll(Duration::from_millis(20)).expect("poll") {
            out.push(String::from_utf8(r.value.expect("value")).expect("utf8"));
        }
        if c.position("t", 0).is_some_and(|p| p >= lso) {
            break;
        }
    }
    assert!(
        c.position("t", 0).is_some_and(|p| p >= lso),
        "the consumer reached the LSO {lso}"
    );
    c.close().expect("close");
    out
}

fn aborted(pid: i64, first: u64, last: u64, lso: u64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

#[test]
fn an_open_transaction_holds_the_lso_until_its_commit_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let p = part(&broker);
    assert_eq!(p.last_stable_offset(), 0);
    let first = txn(&broker, 1, 0, 0, 3, "a");
    assert_eq!(first, 0);
    // Non-transactional records after it are held back too.
    let mut plain = batch(-1, -1, -1, 2, "plain", false);
    broker
        .produce("t", 0, &mut plain, Acks::All)
        .expect("plain");
    assert_eq!(p.log().log_end_offset(), 5);
    assert_eq!(p.last_stable_offset(), 0, "the open transaction holds it");
    assert_eq!(p.open_transactions(), vec![(1, 0)]);
    assert!(committed_values(&broker, "g1").is_empty());
    let at = end(&broker, 1, 0, ControlType::Commit);
    assert_eq!(at, 5);
    assert_eq!(p.last_stable_offset(), 6, "no open transaction: the HW");
    assert!(p.open_transactions().is_empty());
    assert!(p.aborted_transactions(0, 6).expect("aborted").is_empty());
    assert_eq!(
        committed_values(&broker, "g2"),
        ["a-0", "a-1", "a-2", "plain-0", "plain-1"]
    );
}

#[test]
fn interleaved_transactions_with_one_aborted_hide_only_the_aborted_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let p = part(&broker);
    txn(&broker, 1, 0, 0, 2, "one"); // 0..=1
    txn(&broker, 2, 0, 0, 2, "two"); // 2..=3
    txn(&broker, 1, 0, 2, 1, "one+"); // 4
    assert_eq!(p.last_stable_offset(), 0);
    let abort = end(&broker, 2, 0, ControlType::Abort); // 5
    assert_eq!(abort, 5);
    assert_eq!(p.last_stable_offset(), 0, "producer 1 is still open");
    let commit = end(&broker, 1, 0, ControlType::Commit); // 6
    assert_eq!(p.last_stable_offset(), commit + 1);
    // The abort happened while producer 1's transaction (from 0) was open.
    assert_eq!(
        p.aborted_transactions(0, 7).expect("aborted"),
        vec![aborted(2, 2, 5, 0)]
    );
    assert!(p.aborted_transactions(6, 7).expect("aborted").is_empty());
    assert_eq!(committed_values(&broker, "g"), ["one-0", "one-1", "one+-0"]);
    // An aborted transaction stays invisible after more transactions.
    txn(&broker, 2, 0, 2, 1, "two+");
    end(&broker, 2, 0, ControlType::Commit);
    assert_eq!(
        committed_values(&broker, "g-again"),
        ["one-0", "one-1", "one+-0", "two+-0"]
    );
}

#[test]
fn zombie_writes_and_markers_are_refused_after_an_epoch_bump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    txn(&broker, 3, 0, 0, 1, "old");
    // The coordinator fences epoch 0 by aborting with epoch 1.
    end(&broker, 3, 1, ControlType::Abort);
    let mut zombie = batch(3, 0, 1, 1, "zombie", true);
    assert!(matches!(
        broker.produce("t", 0, &mut zombie, Acks::All),
        Err(BrokerError::InvalidProducerEpoch {
            epoch: 0,
            current: 1,
            ..
        })
    ));
    assert!(matches!(
        broker.write_txn_marker("t", 0, 3, 0, marker(ControlType::Commit)),
        Err(BrokerError::InvalidProducerEpoch { .. })
    ));
    // The new epoch starts its sequences at 0.
    txn(&broker, 3, 1, 0, 1, "new");
    end(&broker, 3, 1, ControlType::Commit);
    assert_eq!(committed_values(&broker, "g"), ["new-0"]);
}

#[test]
fn clients_cannot_produce_control_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    let mut bytes =
        pubsub_records::control_batch(marker(ControlType::Commit), 4, 0, 1).expect("batch");
    assert!(matches!(
        broker.produce("t", 0, &mut bytes, Acks::All),
        Err(BrokerError::InvalidRecord(m)) if m.contains("control records")
    ));
    assert_eq!(part(&broker).log().log_end_offset(), 0, "nothing appended");
}

/// Two transactions: producer 7 aborted (2..=3, marker at 4) while
/// producer 6 (from 0) is still open at the end.
fn open_and_aborted(broker: &Broker) {
    txn(broker, 6, 0, 0, 2, "open");
    txn(broker, 7, 0, 0, 2, "gone");
    end(broker, 7, 0, ControlType::Abort);
}

fn assert_open_and_aborted(broker: &Broker) {
    let p = part(broker);
    assert_eq!(p.open_transactions(), vec![(6, 0)]);
    assert_eq!(p.last_stable_offset(), 0);
    assert_eq!(
        p.aborted_transactions(0, 5).expect("aborted"),
        vec![aborted(7, 2, 4, 0)]
    );
    // Ending the open one after the restart works as before it.
    let at = end(broker, 6, 0, ControlType::Commit);
    assert_eq!(p.last_stable_offset(), at + 1);
    assert_eq!(committed_values(broker, "after"), ["open-0", "open-1"]);
}

#[test]
fn a_clean_restart_keeps_open_transactions_and_the_aborted_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    open_and_aborted(&broker);
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_open_and_aborted(&broker);
}

fn txn_indexes(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let pdir = dir.join("t-0");
    let mut out: Vec<_> = std::fs::read_dir(&pdir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txnindex"))
        .collect();
    out.sort();
    out
}

#[test]
fn a_missing_or_torn_txnindex_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = topic(dir.path());
    open_and_aborted(&broker);
    broker.close().expect("close");
    let files = txn_indexes(dir.path());
    assert_eq!(files.len(), 1, "one segment holds the abort");
    std::fs::remove_file(&files[0]).expect("remove");
    let broker = open(dir.path());
    // After a clean close the partition opens at its first use (lazily),
    // and its open rebuilds the index.
    broker.partition("t", 0).expect("partition");
    assert_eq!(txn_indexes(dir.path()), files, "rebuilt when it opens");
    broker.close().expect("close");
    // A torn tail (a crash in the middle of an append) is rebuilt too.
    let len = std::fs::metadata(&files[0]).expect("stat").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .expect("open");
    f.set_len(len - 5).expect("truncate");
    drop(f);
    let broker = open(dir.path());
    broker.partition("t", 0).expect("partition");
    assert_eq!(std::fs::metadata(&files[0]).expect("stat").len(), len);
    assert_open_and_aborted(&broker);
}

#[test]
fn retention_deletes_a_segments_txnindex_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic(
            "t",
            Some(1),
            configs(&[("segment.bytes", "1024"), ("retention.bytes", "1")]),
        )
        .expect("create");
    txn(&broker, 1, 0, 0, 1, "x");
    end(&broker, 1, 0, ControlType::Abort);
    assert_eq!(txn_indexes(dir.path()).len(), 1);
    // Roll past the first segment, then let retention remove it.
    for _ in 0..20 {
        let mut b = batch(-1, -1, -1, 4, &"filler".repeat(20), false);
        broker.produce("t", 0, &mut b, Acks::All).expect("filler");
    }
    let p = part(&broker);
    assert!(p.log().segment_count() > 1);
    let report = p.log().apply_retention(i64::MAX / 2).expect("retention");
    assert!(report.deleted_segments.contains(&0));
    assert!(
        txn_indexes(dir.path()).is_empty(),
        "deleted with its segment"
    );
    assert!(p
        .aborted_transactions(p.log().log_start_offset(), p.last_stable_offset())
        .expect("aborted")
        .is_empty());
}

const CHILD: &str = "PUBSUB_TXN_CRASH_CHILD";

/// The child: writes the two transactions, says so, and waits to be killed.
fn child(dir: &str) -> ! {
    let broker = Broker::open(dir, test_config()).expect("child open");
    broker
        .create_topic("t", Some(1), no_configs())
        .expect("create");
    open_and_aborted(&broker);
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_sigkilled_broker_rebuilds_open_transactions_and_the_aborted_index() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let test = "transactions::a_sigkilled_broker_rebuilds_open_transactions_and_the_aborted_index";
    let ready = kill_when_ready(test, CHILD, dir.path());
    assert!(ready, "the child wrote its transactions");
    let broker = open(dir.path());
    assert_open_and_aborted(&broker);
}

/// One record `key`=`value` from producer `pid` (transactional if pid >= 0).
fn keyed(broker: &Broker, pid: i64, seq: i32, key: &str, value: &str) -> u64 {
    let mut b = BatchBuilder::new()
        .producer(pid, if pid < 0 { -1 } else { 0 }, seq)
        .transactional(pid >= 0);
    b.push(&NewRecord {
        timestamp: 1,
        key: Some(key.as_bytes()),
        value: Some(value.as_bytes()),
        headers: &[],
    })
    .expect("push");
    let mut bytes = b.build().expect("build");
    broker
        .produce("t", 0, &mut bytes, Acks::All)
        .expect("produce")
        .base_offset
}

/// Every (key, value) in the log, markers skipped.
fn all_records(p: &Partition) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut at = p.log().log_start_offset();
    while at < p.log().log_end_offset() {
        p.read(at, 1 << 20, &mut buf).expect("read");
        for b in pubsub_records::Batches::new(&buf) {
            let b = b.expect("batch");
            at = b.last_offset() as u64 + 1;
            if b.is_control() {
                continue;
            }
            for r in b.records(1 << 20).expect("records").iter() {
                let r = r.expect("record");
                let s = |x: Option<&[u8]>| String::from_utf8_lossy(x.unwrap_or(b"")).into_owned();
                out.push((s(r.key), s(r.value), r.offset as u64));
            }
        }
    }
    out
}

#[test]
fn compaction_drops_aborted_records_keeps_committed_ones_and_stops_at_the_lso() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_with_compacted_topic(dir.path());
    keyed(&broker, 1, 0, "a", "committed");
    end(&broker, 1, 0, ControlType::Commit);
    keyed(&broker, 2, 0, "a", "aborted");
    end(&broker, 2, 0, ControlType::Abort);
    let filler = "f".repeat(200);
    for i in 0..6 {
        keyed(&broker, -1, -1, &format!("x{i}"), &filler);
    }
    // An open transaction: nothing from its first offset on is compacted.
    let open_at = keyed(&broker, 3, 0, "o", "open");
    keyed(&broker, -1, -1, "b", "1");
    keyed(&broker, -1, -1, "b", "2");
    for i in 0..6 {
        keyed(&broker, -1, -1, &format!("y{i}"), &filler);
    }
    let p = part(&broker);
    assert!(p.log().segment_count() > 3, "several segments to clean");
    assert_eq!(p.last_stable_offset(), open_at);
    broker.run_compaction(wall_clock());
    let records = all_records(&p);
    let values = |k: &str| -> Vec<String> {
        records
            .iter()
            .filter(|(key, _, _)| key == k)
            .map(|(_, v, _)| v.clone())
            .collect()
    };
    // The aborted value is gone and did not supersede the committed one.
    assert_eq!(values("a"), ["committed"]);
    // Past the LSO nothing was cleaned, though "b"=1 is superseded.
    assert_eq!(values("b"), ["1", "2"]);
    assert_eq!(values("o"), ["open"]);
    end(&broker, 3, 0, ControlType::Commit);
    let seen = committed_values(&broker, "after-compaction");
    assert_eq!(seen.first().map(String::as_str), Some("committed"));
    assert!(!seen.iter().any(|v| v == "aborted"));
}

/// A broker on `dir` with topic `t`: one partition, compacted, in
/// segments of 600 bytes.
fn open_with_compacted_topic(dir: &std::path::Path) -> Broker {
    let broker = open(dir);
    broker
        .create_topic(
            "t",
            Some(1),
            configs(&[("cleanup.policy", "compact"), ("segment.bytes", "600")]),
        )
        .expect("create");
    broker
}

fn wall_clock() -> i64 {
    pubsub_broker::wall_clock_ms()
}

#[test]
fn compaction_merges_aborted_indexes_into_the_merged_segment_and_leaves_no_orphans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_with_compacted_topic(dir.path());
    let filler = "f".repeat(200);
    let mut aborts = Vec::new();
    for (pid, fill) in [(2, "x"), (4, "y")] {
        let first = keyed(&broker, pid, 0, "a", "aborted");
        let last = end(&broker, pid, 0, ControlType::Abort);
        aborts.push((pid, first, last));
        for i in 0..4 {
            keyed(&broker, -1, -1, &format!("{fill}{i}"), &filler);
        }
    }
    let p = part(&broker);
    assert_eq!(txn_indexes(dir.path()).len(), 2, "two segments hold aborts");
    let counts = p.log().aborted_txn_counts().expect("counts");
    // Segments small after cleaning merge once a segment may hold them all.
    let big = [("segment.bytes".to_string(), Some((1u64 << 20).to_string()))];
    broker
        .alter_topic_config("t", &big.into_iter().collect())
        .expect("alter");
    let report = p
        .log()
        .compact_below(wall_clock(), p.last_stable_offset())
        .expect("compact");
    assert!(report.segments_merged_away > 0, "{report:?}");
    let expect_aborts = |p: &Partition| {
        let got: Vec<(i64, u64, u64)> = p
            .aborted_transactions(0, p.last_stable_offset())
            .expect("aborted")
            .iter()
            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
            .collect();
        assert_eq!(got, aborts);
    };
    expect_aborts(&p);
    let files = txn_indexes(dir.path());
    assert_eq!(files.len(), 1, "the merged segment's only: {files:?}");
    // The producer snapshot's counts, taken before the merge, still match:
    // the next open trusts the index instead of replaying the log.
    let end_offset = p.log().log_end_offset();
    assert_eq!(
        p.log()
            .aborted_txns_mismatched(&counts, end_offset)
            .expect("check"),
        Vec::<u64>::new()
    );
    drop(p);
    broker.close().expect("close");
    let broker = open(dir.path());
    expect_aborts(&part(&broker));
    assert_eq!(txn_indexes(dir.path()), files);
    let seen = committed_values(&broker, "after-merge");
    assert!(!seen.iter().any(|v| v == "aborted"), "{seen:?}");
}
