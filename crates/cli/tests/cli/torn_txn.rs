//! The torn transaction across a real crash: a `pubsub serve` process
//! (debug build) told by `PUBSUB_TEST_HALT_AFTER_MARKERS=1` to halt right
//! after the first COMMIT marker of a transaction over three partitions
//! (the decision durable, one partition marked, two not) is SIGKILLed
//! there; started again on the same data directory it completes the
//! commit, and every partition shows the transaction: all of it, never a
//! part. The crash point itself is `crates/broker/src/crash_point.rs`;
//! the same anomaly with a simulated crash is in
//! crates/server/tests/server/txn_anomalies.rs.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]
// The crash point exists in debug builds only.
#![cfg(debug_assertions)]

use std::time::Duration;

use kafka_protocol::messages::TransactionalId;
use pubsub_records::{Batches, ControlRecord, ControlType};

use crate::client::{
    add_partitions, create_topic, end_txn_request, fetch_request, init_txn, produce_request, s,
    txn_batch, Client,
};
use crate::daemon::{Daemon, Options};

const TOPIC: &str = "torn";
const ID: &str = "tx-torn";
const PARTITIONS: i32 = 3;

/// What read_committed Fetches (v12) from offset 0 read of a partition,
/// one after the other until the last stable offset (an answer holds one
/// segment's batches): its data records' values, the control batches'
/// kinds, and the last stable offset.
async fn read_committed(c: &mut Client, partition: i32) -> (Vec<String>, Vec<ControlType>, i64) {
    let (mut values, mut markers) = (Vec::new(), Vec::new());
    let mut next = 0;
    loop {
        let mut req = fetch_request(TOPIC, partition, next, 0, 1 << 20);
        req.isolation_level = 1;
        let r = c.call(12, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {partition}");
        let records = p.records.clone().unwrap_or_default();
        if records.is_empty() || next >= p.last_stable_offset {
            return (values, markers, p.last_stable_offset);
        }
        for b in Batches::new(&records) {
            let b = b.unwrap();
            next = b.next_offset();
            for r in b.records(1 << 20).unwrap().iter() {
                let r = r.unwrap();
                if b.is_control() {
                    markers.push(ControlRecord::parse(r.key, r.value).unwrap().kind);
                } else {
                    values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                }
            }
        }
    }
}

/// `pubsub log dump` of the partition's directory under `data`: what its
/// segments hold, for a failure's message.
fn dump(data: &std::path::Path, partition: i32) -> String {
    let out = std::process::Command::new(crate::daemon::binary())
        .args(["log", "dump"])
        .arg(data.join(format!("{TOPIC}-{partition}")))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_between_the_commit_markers_completes_them_all_after_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let options = Options {
        env: vec![("PUBSUB_TEST_HALT_AFTER_MARKERS".into(), "1".into())],
        ..Options::default()
    };
    let daemon = Daemon::start_with(&data, options);
    let mut c = Client::connect(daemon.addr).await;
    create_topic(&mut c, TOPIC, PARTITIONS, &[]).await;
    let (pid, epoch) = init_txn(&mut c, 3, ID).await;
    let all: Vec<i32> = (0..PARTITIONS).collect();
    let codes = add_partitions(&mut c, 3, (ID, pid, epoch), TOPIC, &all).await;
    assert_eq!(codes, [0; PARTITIONS as usize], "add");
    for p in 0..PARTITIONS {
        let batch = txn_batch(pid, epoch, 0, 1_700_000_000_000, &[&format!("p{p}")]);
        let req = produce_request(TOPIC, p, -1, batch)
            .with_transactional_id(Some(TransactionalId(s(ID))));
        let r = c.call(9, &req).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // The commit: its answer never comes, the coordinator halts after the
    // first marker.
    let end = end_txn_request(ID, pid, epoch, true);
    let mut committer = Client::connect(daemon.addr).await;
    let _ = committer.send(3, &end).await;
    let mut halted = false;
    for _ in 0..1200 {
        if daemon
            .stderr()
            .contains("halted after transaction marker 1")
        {
            halted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        halted,
        "never reached the crash point:\n{}",
        daemon.stderr()
    );
    // Torn for now: the first partition (the coordinator marks them in
    // order) shows the commit (its marker too once a flush made it
    // durable), the others hold it back.
    let mut marked = 0;
    for p in 0..PARTITIONS {
        let seen = read_committed(&mut c, p).await;
        match (seen.0.as_slice(), seen.1.as_slice(), seen.2) {
            ([], [], 0) => {}
            ([v], [] | [ControlType::Commit], _) if *v == format!("p{p}") => marked += 1,
            _ => panic!("partition {p}: {seen:?}"),
        }
    }
    assert_eq!(marked, 1, "one marker written, then the halt");
    drop((c, committer));
    let stderr = daemon.kill9();
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Started again: the decision is reloaded and its markers completed
    // (written again where one landed before the kill: a second COMMIT
    // marker changes nothing, as in Kafka).
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    for p in 0..PARTITIONS {
        let mut seen = read_committed(&mut c, p).await;
        for _ in 0..1200 {
            if !seen.1.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen = read_committed(&mut c, p).await;
        }
        let (values, markers, _) = &seen;
        let whole = values == &[format!("p{p}")]
            && !markers.is_empty()
            && markers.iter().all(|m| *m == ControlType::Commit);
        assert!(
            whole,
            "partition {p}: the record and COMMIT markers only: {seen:?}\n{}\n{}",
            daemon.stderr(),
            dump(&data, p)
        );
    }
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{stderr}");
}
