//! Leader epochs on real files: 0 at creation, +2 at every open, stamped
//! into every batch appended; the epoch cache survives restarts and is
//! rebuilt from the log when its file is lost or damaged.

use pubsub_broker::{Acks, Broker};
use pubsub_records::{BatchBuilder, BatchHeader, NewRecord};

use crate::common::*;

fn append(broker: &Broker, values: usize) {
    let mut b = BatchBuilder::new().partition_leader_epoch(-1);
    for i in 0..values {
        let v = format!("v{i}");
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    let mut bytes = b.build().expect("build");
    broker
        .produce("t", 0, &mut bytes, Acks::Leader)
        .expect("produce");
}

/// (base offset, partitionLeaderEpoch) of every stored batch.
fn stamped(broker: &Broker) -> Vec<(i64, i32)> {
    let mut bytes = Vec::new();
    broker.fetch("t", 0, 0, 1 << 20, &mut bytes).expect("read");
    let mut at = 0;
    let mut seen = Vec::new();
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..]).expect("header");
        seen.push((h.base_offset, h.partition_leader_epoch));
        at += h.len;
    }
    seen
}

/// OffsetForLeaderEpoch's answers for epochs 0 to `up_to`.
fn end_offsets(broker: &Broker, up_to: i32) -> Vec<(i32, i64)> {
    let p = broker.partition("t", 0).expect("partition");
    (0..=up_to).map(|e| p.end_offset_for_epoch(e)).collect()
}

#[test]
fn epochs_rise_at_every_open_and_the_cache_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = open(dir.path());
        broker
            .create_topic("t", Some(1), no_configs())
            .expect("create");
        assert_eq!(broker.partition("t", 0).expect("p").leader_epoch(), 0);
        append(&broker, 3);
        broker.close().expect("close");
    }
    {
        let broker = open(dir.path());
        assert_eq!(broker.partition("t", 0).expect("p").leader_epoch(), 2);
        append(&broker, 2);
        assert_eq!(stamped(&broker), vec![(0, 0), (3, 2)]);
        broker.close().expect("close");
    }
    let partition_dir = dir.path().join("t-0");
    let answers;
    {
        let broker = open(dir.path());
        answers = end_offsets(&broker, 4);
        assert_eq!(answers, vec![(0, 3), (0, 3), (2, 5), (2, 5), (4, 5)]);
        broker.close().expect("close");
    }
    // Derived data: lost or damaged, it comes back from the batches.
    for (damage, expected_epoch) in [(None, 6), (Some(b"not a checkpoint".as_slice()), 8)] {
        let file = partition_dir.join("leader-epoch.checkpoint");
        match damage {
            None => std::fs::remove_file(&file).expect("remove"),
            Some(bytes) => std::fs::write(&file, bytes).expect("write"),
        }
        let broker = open(dir.path());
        let p = broker.partition("t", 0).expect("p");
        let epoch = p.leader_epoch();
        // The epoch itself lives in partition.checkpoint: it still rises,
        // by 2 at every open (the fourth and fifth opens here).
        assert_eq!(epoch, expected_epoch);
        let rebuilt: Vec<(i32, i64)> = end_offsets(&broker, 2);
        assert_eq!(rebuilt, answers[..3].to_vec());
        assert_eq!(p.end_offset_for_epoch(epoch), (epoch, 5));
        broker.close().expect("close");
    }
}

const KILL_CHILD: &str = "PUBSUB_BROKER_EPOCH_KILL_DIR";

/// Opens the broker in `dir`, appends one batch of 2 records, says so, and
/// waits to be killed.
fn epoch_child(dir: &str) -> ! {
    use std::io::Write;
    let broker = Broker::open(dir, test_config()).expect("child open");
    append(&broker, 2);
    let epoch = broker.partition("t", 0).expect("p").leader_epoch();
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("stdout");
    writeln!(out, "appended in epoch {epoch}").expect("stdout");
    out.flush().expect("flush");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The epoch is derived from the broker generation (written once per open,
/// not per partition): still exactly +2 per open, with or without appends in
/// between, and after a SIGKILL the cache knows the killed epoch, the log
/// keeps its batches, and the next epoch is 2 above it.
#[test]
fn epochs_rise_by_two_per_open_from_the_generation_and_survive_sigkill() {
    if let Ok(dir) = std::env::var(KILL_CHILD) {
        epoch_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = open(dir.path());
        broker
            .create_topic("t", Some(1), no_configs())
            .expect("create");
        assert_eq!(broker.partition("t", 0).expect("p").leader_epoch(), 0);
        broker.close().expect("close");
    }
    // Two opens without appends: 2, then 4, and nothing written per open.
    for expected in [2, 4] {
        let broker = open(dir.path());
        assert_eq!(
            broker.partition("t", 0).expect("p").leader_epoch(),
            expected
        );
        broker.close().expect("close");
    }
    let meta = std::fs::read(dir.path().join("t-0").join("partition.checkpoint")).expect("meta");
    {
        let broker = open(dir.path());
        assert_eq!(broker.partition("t", 0).expect("p").leader_epoch(), 6);
        append(&broker, 3);
        broker.close().expect("close");
    }
    assert_eq!(
        std::fs::read(dir.path().join("t-0").join("partition.checkpoint")).expect("meta"),
        meta,
        "the partition file is written at creation, not at every open"
    );
    // A child appends in epoch 8 and is killed.
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(&exe)
        .args([
            "--exact",
            "epochs::epochs_rise_by_two_per_open_from_the_generation_and_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut said = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("line");
        if line.starts_with("appended") {
            said = line;
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(said, "appended in epoch 8");
    // Before that first append of the open the marker of the clean close
    // went and the cache file learnt epoch 8, both made durable by one
    // directory fsync; both are on disk as the kill left them.
    let pdir = dir.path().join("t-0");
    assert!(
        !pdir.join(pubsub_storage::CLEAN_SHUTDOWN).exists(),
        "the first append removed the clean-shutdown marker"
    );
    assert_eq!(
        pubsub_broker::check::leader_epochs_file_problem(&pdir),
        None
    );
    let cache = std::fs::read(pdir.join(pubsub_storage::LEADER_EPOCHS_CHECKPOINT)).expect("cache");
    assert!(
        String::from_utf8_lossy(&cache).contains("\"epoch\":8"),
        "the cache file knows epoch 8: {}",
        String::from_utf8_lossy(&cache)
    );
    assert!(
        !pdir.join("leader-epoch.checkpoint.tmp").exists(),
        "no temp file is left"
    );
    let broker = open(dir.path());
    let p = broker.partition("t", 0).expect("p");
    assert_eq!(p.leader_epoch(), 10);
    assert_eq!(stamped(&broker), vec![(0, 6), (3, 8)]);
    // Epoch 6 ended where 8 started; 8 ended where 10 starts (the log end).
    assert_eq!(p.end_offset_for_epoch(6), (6, 3));
    assert_eq!(p.end_offset_for_epoch(8), (8, 5));
    assert_eq!(p.end_offset_for_epoch(10), (10, 5));
    // Epochs that wrote nothing are older than every known one: they end
    // where the first known one starts.
    assert_eq!(
        end_offsets(&broker, 4),
        (0..=4).map(|e| (e, 0)).collect::<Vec<_>>()
    );
    broker.close().expect("close");
}
