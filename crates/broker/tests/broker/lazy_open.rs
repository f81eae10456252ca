//! Partitions left closed at start and opened on first use: after a clean
//! close the next open reads one closed-partitions file instead of opening
//! every partition; what it answers without opening (offsets, sizes,
//! leader epochs) is what the partition says once opened; a partition opens
//! once however many callers race for it. The SIGKILL cases are in `crash`.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use pubsub_broker::{Broker, ProducerConfig, ProducerRecord};
use pubsub_records::Batches;

use crate::common::*;

/// Sends `n` records to `topic`/`partition` (acks=all), values `v0`...
pub fn produce_n(broker: &Broker, topic: &str, partition: i32, n: usize) {
    let producer = broker
        .producer(ProducerConfig {
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        })
        .expect("producer");
    let sent: Vec<_> = (0..n)
        .map(|i| {
            producer
                .send(&ProducerRecord::new(topic, format!("v{i}").as_bytes()).partition(partition))
                .expect("send")
        })
        .collect();
    producer.flush();
    for s in sent {
        s.wait().expect("delivered");
    }
}

/// The values of every record of a partition.
pub fn values(broker: &Broker, topic: &str, partition: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut next = 0;
    loop {
        let (_, end) = broker
            .fetch(topic, partition, next, 1 << 20, &mut buf)
            .expect("fetch");
        if next >= end || buf.is_empty() {
            return out;
        }
        for batch in Batches::new(&buf) {
            let batch = batch.expect("batch");
            for r in batch.records(1 << 20).expect("records").iter() {
                let r = r.expect("record");
                out.push(String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned());
            }
            next = batch.last_offset() as u64 + 1;
        }
    }
}

fn opened(broker: &Broker, topic: &str) -> Vec<i32> {
    broker
        .partitions()
        .iter()
        .filter(|p| p.topic() == topic)
        .map(|p| p.index())
        .collect()
}

fn reported(broker: &Broker, topic: &str) -> Vec<i32> {
    broker
        .recovery_reports()
        .into_iter()
        .filter(|(t, _, _)| t == topic)
        .map(|(_, p, _)| p)
        .collect()
}

#[test]
fn a_clean_restart_leaves_partitions_closed_until_first_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("lazy", Some(4), no_configs())
        .expect("create");
    produce_n(&broker, "lazy", 0, 3);
    produce_n(&broker, "lazy", 1, 1);
    let before = broker.describe_topic("lazy").expect("describe");
    let epochs: Vec<i32> = (0..4)
        .map(|p| broker.partition("lazy", p).expect("p").leader_epoch())
        .collect();
    broker.close().expect("close");

    let broker = open(dir.path());
    assert_eq!(opened(&broker, "lazy"), Vec::<i32>::new(), "nothing opened");
    assert_eq!(reported(&broker, "lazy"), Vec::<i32>::new());
    let described = broker.describe_topic("lazy").expect("describe");
    assert_eq!(described.partitions, before.partitions);
    let described_log_dirs: Vec<_> = broker
        .partition_descriptions()
        .into_iter()
        .filter(|(t, _)| t == "lazy")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(described_log_dirs, before.partitions);
    for p in 0..4 {
        assert_eq!(
            broker.leader_epoch("lazy", p).expect("epoch"),
            epochs[p as usize] + 2,
            "partition {p}: one open later"
        );
    }
    assert_eq!(opened(&broker, "lazy"), Vec::<i32>::new(), "still nothing");

    // First use opens it, at the epoch Metadata gave, with its records.
    assert_eq!(values(&broker, "lazy", 0), ["v0", "v1", "v2"]);
    assert_eq!(opened(&broker, "lazy"), [0]);
    assert_eq!(reported(&broker, "lazy"), [0]);
    let p0 = broker.partition("lazy", 0).expect("p0");
    assert_eq!(p0.leader_epoch(), epochs[0] + 2);
    let report = broker
        .recovery_reports()
        .into_iter()
        .find(|(t, p, _)| t == "lazy" && *p == 0)
        .expect("lazy-0's report");
    assert!(report.2.clean_shutdown);
    produce_n(&broker, "lazy", 2, 2);
    assert_eq!(opened(&broker, "lazy"), [0, 2]);
    broker.close().expect("close");

    // Closed again: what was opened is recorded anew, the rest carried.
    let broker = open(dir.path());
    assert_eq!(opened(&broker, "lazy"), Vec::<i32>::new());
    let described = broker.describe_topic("lazy").expect("describe");
    let ends: Vec<u64> = described
        .partitions
        .iter()
        .map(|p| p.log_end_offset)
        .collect();
    assert_eq!(ends, [3, 1, 2, 0]);
    for p in 0..4 {
        let said = broker.leader_epoch("lazy", p).expect("epoch");
        assert_eq!(
            said,
            epochs[p as usize] + 4,
            "partition {p}: two opens later"
        );
        assert_eq!(
            broker.partition("lazy", p).expect("open").leader_epoch(),
            said
        );
    }
    assert_eq!(values(&broker, "lazy", 1), ["v0"]);
    assert_eq!(values(&broker, "lazy", 2), ["v0", "v1"]);
    broker.close().expect("close");
}

#[test]
fn a_partition_opens_once_however_many_ask_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("race", Some(2), no_configs())
        .expect("create");
    produce_n(&broker, "race", 1, 5);
    broker.close().expect("close");
    let broker = open(dir.path());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (broker, barrier) = (broker.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                broker.partition("race", 1).expect("partition")
            })
        })
        .collect();
    let got: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(got.iter().all(|p| Arc::ptr_eq(p, &got[0])), "one partition");
    assert_eq!(reported(&broker, "race"), [1], "opened once");
    assert_eq!(got[0].log().log_end_offset(), 5);
    broker.close().expect("close");
}

#[test]
fn settings_changed_before_first_use_apply_when_it_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("cfg", Some(1), no_configs())
        .expect("create");
    produce_n(&broker, "cfg", 0, 1);
    broker.close().expect("close");
    let broker = open(dir.path());
    broker
        .alter_topic_config(
            "cfg",
            &[("segment.bytes".to_string(), Some("65536".to_string()))]
                .into_iter()
                .collect(),
        )
        .expect("alter");
    assert_eq!(opened(&broker, "cfg"), Vec::<i32>::new());
    let p = broker.partition("cfg", 0).expect("open");
    assert_eq!(p.log().config().segment_bytes, 65536);
    broker.close().expect("close");
}

#[test]
fn retention_judges_partitions_not_used_since_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic(
            "old",
            Some(1),
            configs(&[("retention.ms", "1000"), ("segment.bytes", "1024")]),
        )
        .expect("create");
    for _ in 0..16 {
        produce_n(&broker, "old", 0, 20);
    }
    let before = broker.describe_topic("old").expect("describe").partitions[0].clone();
    assert!(before.segments > 1, "{before:?}");
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(opened(&broker, "old"), Vec::<i32>::new());
    // Far in the future: every sealed segment is past retention.
    let freed = broker.run_retention(pubsub_broker::wall_clock_ms() + 3_600_000);
    assert!(freed > 0, "retention freed nothing");
    let after = broker.describe_topic("old").expect("describe").partitions[0].clone();
    assert!(after.log_start_offset > 0, "{after:?}");
    assert_eq!(after.log_end_offset, before.log_end_offset);
    broker.close().expect("close");
}

/// Retention opens a partition closed since the start only when the
/// closed-partitions file says its oldest segment is past a limit: many
/// partitions under their limits stay closed through passes; one over its
/// size limit, then the others once their records expire, are trimmed.
#[test]
fn retention_opens_only_partitions_with_something_to_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    let small = configs(&[("retention.ms", "3600000"), ("segment.bytes", "1024")]);
    broker
        .create_topic("kept", Some(40), small)
        .expect("create");
    broker
        .create_topic(
            "big",
            Some(1),
            configs(&[("retention.bytes", "2048"), ("segment.bytes", "1024")]),
        )
        .expect("create");
    for p in 0..40 {
        produce_n(&broker, "kept", p, 3);
    }
    for _ in 0..16 {
        produce_n(&broker, "kept", 7, 20);
        produce_n(&broker, "big", 0, 20);
    }
    let kept7 = broker.describe_topic("kept").expect("describe").partitions[7].clone();
    assert!(kept7.segments > 1, "{kept7:?}");
    broker.close().expect("close");

    let broker = open(dir.path());
    let now = pubsub_broker::wall_clock_ms();
    let freed = broker.run_retention(now);
    assert!(freed > 0, "big is over its size limit");
    assert_eq!(opened(&broker, "big"), [0]);
    let big = broker.describe_topic("big").expect("describe").partitions[0].clone();
    assert!(big.log_start_offset > 0, "{big:?}");
    broker.run_retention(now);
    assert_eq!(
        opened(&broker, "kept"),
        Vec::<i32>::new(),
        "all under their limits"
    );
    broker.close().expect("close");

    // Two hours on, everything in "kept" expired: opened and trimmed.
    let broker = open(dir.path());
    assert_eq!(opened(&broker, "big"), Vec::<i32>::new(), "closed again");
    broker.run_retention(now + 7_200_000);
    assert_eq!(opened(&broker, "kept"), (0..40).collect::<Vec<_>>());
    assert_eq!(
        opened(&broker, "big"),
        Vec::<i32>::new(),
        "big is at its limit"
    );
    let after = broker.describe_topic("kept").expect("describe").partitions[7].clone();
    assert!(after.log_start_offset > 0, "{after:?}");
    assert_eq!(after.log_end_offset, kept7.log_end_offset);
    broker.close().expect("close");
}

/// Many partitions added at once open in parallel under deferred syncs;
/// each takes writes, and all of them are there after a clean restart (left
/// closed until used; restarts that did not close cleanly are crash.rs's).
#[test]
fn many_partitions_added_at_once_take_writes_and_survive_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("grow", Some(2), no_configs())
        .expect("create");
    broker.add_partitions("grow", 130).expect("grow");
    assert_eq!(broker.partition_count("grow"), Some(130));
    for p in [0, 2, 64, 129] {
        produce_n(&broker, "grow", p, 2);
    }
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(opened(&broker, "grow"), Vec::<i32>::new());
    let ends: Vec<(i32, u64)> = broker
        .describe_topic("grow")
        .expect("describe")
        .partitions
        .iter()
        .filter(|p| p.log_end_offset > 0)
        .map(|p| (p.partition, p.log_end_offset))
        .collect();
    assert_eq!(ends, [(0, 2), (2, 2), (64, 2), (129, 2)]);
    assert_eq!(values(&broker, "grow", 129), ["v0", "v1"]);
    assert_eq!(values(&broker, "grow", 128), Vec::<String>::new());
    broker.close().expect("close");
}

/// Compaction opens the compacted partitions not used since the start, and
/// only those.
#[test]
fn compaction_cleans_compacted_partitions_not_used_since_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic(
            "kv",
            Some(1),
            configs(&[("cleanup.policy", "compact"), ("segment.bytes", "1024")]),
        )
        .expect("create");
    broker
        .create_topic("plain", Some(1), no_configs())
        .expect("create");
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    for round in 0..40 {
        let sent: Vec<_> = (0..5)
            .map(|k| {
                producer
                    .send(
                        &ProducerRecord::new("kv", format!("r{round}").as_bytes())
                            .key(format!("k{k}").as_bytes())
                            .partition(0),
                    )
                    .expect("send")
            })
            .collect();
        producer.flush();
        for s in sent {
            s.wait().expect("delivered");
        }
    }
    produce_n(&broker, "plain", 0, 1);
    assert!(broker.describe_topic("kv").expect("describe").partitions[0].segments > 2);
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(opened(&broker, "kv"), Vec::<i32>::new());
    let removed = broker.run_compaction(pubsub_broker::wall_clock_ms());
    assert!(removed > 0, "compaction removed nothing");
    assert_eq!(opened(&broker, "kv"), [0]);
    assert_eq!(opened(&broker, "plain"), Vec::<i32>::new(), "not compacted");
    let latest = values(&broker, "kv", 0);
    assert!(
        latest.ends_with(&[
            "r39".to_string(),
            "r39".into(),
            "r39".into(),
            "r39".into(),
            "r39".into()
        ]),
        "{latest:?}"
    );
    broker.close().expect("close");
}

/// A close that cannot remove the closed-partitions file marks no
/// partition clean (the stale file's entries would hold again), but still
/// flushes every partition and records its recovery point: the next start
/// recovers each from where the close left it.
#[test]
fn a_close_that_cannot_remove_the_closed_partitions_file_still_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = pubsub_broker::BrokerConfig {
        background: false,
        ..test_config()
    };
    let broker = Broker::open(dir.path(), config.clone()).expect("open");
    broker
        .create_topic("kept", Some(2), no_configs())
        .expect("create");
    produce_n(&broker, "kept", 0, 10);
    produce_n(&broker, "kept", 1, 3);
    // A directory where the file is: removing it fails.
    let file = dir
        .path()
        .join(pubsub_broker::closed_partitions::CLOSED_PARTITIONS_FILE);
    std::fs::create_dir(&file).expect("mkdir");
    std::fs::write(file.join("in-the-way"), b"x").expect("write");
    assert!(broker.close().is_err(), "the removal failure is reported");
    drop(broker);
    std::fs::remove_dir_all(&file).expect("rm");

    let broker = Broker::open(dir.path(), config).expect("reopen");
    assert_eq!(values(&broker, "kept", 0).len(), 10);
    assert_eq!(values(&broker, "kept", 1).len(), 3);
    for (partition, end) in [(0, 10), (1, 3)] {
        let (_, _, report) = broker
            .recovery_reports()
            .into_iter()
            .find(|(t, p, _)| t == "kept" && *p == partition)
            .expect("recovered at first use");
        assert!(!report.clean_shutdown, "not marked clean: {report}");
        assert_eq!(
            report.recovery_point, end,
            "partition {partition}: the close recorded its recovery point: {report}"
        );
    }
    broker.close().expect("close");
}

/// The problems `pubsub log check` reports about `partitions.checkpoint`
/// of the stopped broker in `dir`.
fn closed_file_problems(dir: &std::path::Path) -> Vec<String> {
    use pubsub_broker::check::{self, LogFigures};
    let topics = check::topic_files(dir).expect("topic files");
    let log = |topic: &str, index: u32| {
        let pdir = check::partition_dir(dir, topic, index as i32);
        let report = pubsub_storage::check(&pdir, &pubsub_storage::LogConfig::default()).ok()?;
        LogFigures::of(&report)
    };
    check::closed_partitions_problems(dir, &topics, &log)
}

/// The closed-partitions file is checked against the logs it stands for:
/// after a clean close it agrees with them; an older copy put back after
/// another clean close (its generation no longer the broker's, but every
/// clean-shutdown marker there, so open would trust its entries) is found
/// stale for the partition that changed since, and only for it; a file
/// whose bytes are damaged is reported as one open ignores.
#[test]
fn log_check_finds_a_closed_partitions_file_that_does_not_match_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir
        .path()
        .join(pubsub_broker::closed_partitions::CLOSED_PARTITIONS_FILE);
    let broker = open(dir.path());
    broker
        .create_topic("t", Some(2), no_configs())
        .expect("create");
    produce_n(&broker, "t", 0, 3);
    broker.close().expect("close");
    assert_eq!(closed_file_problems(dir.path()), Vec::<String>::new());
    let stale = std::fs::read(&file).expect("closed-partitions file");

    let broker = open(dir.path());
    produce_n(&broker, "t", 0, 2);
    broker.close().expect("close");
    assert_eq!(closed_file_problems(dir.path()), Vec::<String>::new());
    std::fs::write(&file, &stale).expect("put the old file back");
    let problems = closed_file_problems(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("entry for t-0 says offsets 0..3")
            && problems[0].contains("the log holds offsets 0..5"),
        "{problems:?}"
    );

    let mut damaged = stale.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    std::fs::write(&file, &damaged).expect("damage the file");
    let problems = closed_file_problems(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("open would ignore it"), "{problems:?}");
}
