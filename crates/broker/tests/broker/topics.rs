//! Topic administration: create, list, describe, alter, add partitions,
//! delete; names validated as Kafka does; metadata (with the topic id)
//! persisted across restarts.

use std::collections::BTreeMap;

use pubsub_broker::{BrokerConfig, BrokerError, ProducerConfig, ProducerRecord};

use crate::common::*;

#[test]
fn topic_lifecycle_survives_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id;
    {
        let broker = open(dir.path());
        let d = broker
            .create_topic(
                "orders",
                Some(3),
                configs(&[("retention.ms", "60000"), ("max.message.bytes", "2048")]),
            )
            .expect("create");
        id = d.id;
        assert_eq!(d.partitions.len(), 3);
        assert!(d
            .configs
            .iter()
            .any(|(k, v, explicit)| k == "retention.ms" && v == "60000" && *explicit));
        assert!(d
            .configs
            .iter()
            .any(|(k, v, explicit)| k == "segment.bytes" && v == "1073741824" && !*explicit));
        assert!(matches!(
            broker.create_topic("orders", Some(1), no_configs()),
            Err(BrokerError::TopicAlreadyExists(_))
        ));
        for bad in ["", "..", "has space", "slash/y", &"x".repeat(250)] {
            assert!(
                matches!(
                    broker.create_topic(bad, Some(1), no_configs()),
                    Err(BrokerError::InvalidTopic { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            broker.create_topic("zero", Some(0), no_configs()),
            Err(BrokerError::InvalidPartitions(_))
        ));
        assert!(matches!(
            broker.create_topic("badcfg", Some(1), configs(&[("cleanup.policy", "shred")])),
            Err(BrokerError::InvalidConfig { .. })
        ));
        assert!(
            broker.describe_topic("badcfg").is_err(),
            "nothing half-created"
        );
        assert_eq!(broker.topics(false), vec!["orders".to_string()]);
        assert!(broker
            .topics(true)
            .contains(&"__consumer_offsets".to_string()));

        broker.add_partitions("orders", 5).expect("grow");
        assert!(broker.add_partitions("orders", 4).is_err(), "never shrinks");
        let mut change = BTreeMap::new();
        change.insert("retention.ms".to_string(), Some("120000".to_string()));
        change.insert("max.message.bytes".to_string(), None);
        broker.alter_topic_config("orders", &change).expect("alter");
        let p = broker.partition("orders", 4).expect("new partition");
        assert_eq!(
            p.log().config().retention_ms,
            Some(120_000),
            "applied to open logs"
        );
        broker.close().expect("close");
    }
    let broker = open(dir.path());
    let d = broker.describe_topic("orders").expect("describe");
    assert_eq!(d.id, id, "the topic id is persisted");
    assert_eq!(d.partitions.len(), 5);
    let get = |k: &str| {
        d.configs
            .iter()
            .find(|(key, ..)| key == k)
            .map(|(_, v, e)| (v.clone(), *e))
    };
    assert_eq!(get("retention.ms"), Some(("120000".into(), true)));
    assert_eq!(get("max.message.bytes"), Some(("1048588".into(), false)));
    assert!(dir.path().join("orders-4").is_dir());
}

#[test]
fn deleting_a_topic_removes_its_data_and_a_new_one_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("temp", Some(2), no_configs())
        .expect("create");
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    for i in 0..10 {
        producer
            .send_and_wait(&ProducerRecord::new("temp", format!("{i}").as_bytes()).partition(i % 2))
            .expect("send");
    }
    let old_id = broker.topic_id("temp").expect("id");
    let old_identity =
        std::fs::read(dir.path().join("temp-0").join("partition.checkpoint")).expect("identity");
    broker.delete_topic("temp").expect("delete");
    assert!(!dir.path().join("temp-0").exists() && !dir.path().join("temp-1").exists());
    assert!(broker.describe_topic("temp").is_err());
    assert!(matches!(
        broker.delete_topic("temp"),
        Err(BrokerError::UnknownTopicOrPartition { .. })
    ));
    assert!(matches!(
        broker.delete_topic("__consumer_offsets"),
        Err(BrokerError::InvalidTopic { .. })
    ));
    let d = broker
        .create_topic("temp", Some(2), no_configs())
        .expect("recreate");
    assert_ne!(d.id, old_id);
    assert!(
        d.partitions.iter().all(|p| p.log_end_offset == 0),
        "no data from the old topic"
    );
    broker.close().expect("close");
    // A partition directory of a deleted topic left behind (a crash during
    // deletion) is removed at open; unrelated directories are left alone.
    std::fs::create_dir_all(dir.path().join("leftover-0")).expect("mkdir");
    std::fs::write(
        dir.path().join("leftover-0").join("partition.checkpoint"),
        &old_identity,
    )
    .expect("write");
    std::fs::create_dir_all(dir.path().join("not-ours")).expect("mkdir");
    let broker = open(dir.path());
    assert!(!dir.path().join("leftover-0").exists());
    assert!(dir.path().join("not-ours").exists());
    assert!(dir.path().join("temp-0").exists());
    broker.close().expect("close");
}

#[test]
fn unknown_topics_are_created_on_use_only_if_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    producer
        .send_and_wait(&ProducerRecord::new("auto", b"x"))
        .expect("auto-created");
    assert_eq!(broker.partition_count("auto"), Some(1));
    broker.close().expect("close");
    drop(producer);

    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig {
        auto_create_topics: false,
        ..test_config()
    };
    let broker = pubsub_broker::Broker::open(dir.path(), config).expect("open");
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    assert!(matches!(
        producer.send(&ProducerRecord::new("nope", b"x")),
        Err(BrokerError::UnknownTopicOrPartition { .. })
    ));
}

#[test]
fn a_data_directory_is_used_by_one_broker_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    assert!(matches!(
        pubsub_broker::Broker::open(dir.path(), test_config()),
        Err(BrokerError::Locked(_))
    ));
    broker.close().expect("close");
    drop(broker);
    open(dir.path()).close().expect("reopen after close");
}

#[test]
fn delete_records_moves_the_start_for_embedded_consumers_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = open(dir.path());
        broker
            .create_topic("trimmed", Some(1), no_configs())
            .expect("create");
        broker
            .create_topic(
                "compacted",
                Some(1),
                configs(&[("cleanup.policy", "compact")]),
            )
            .expect("create");
        let producer = broker
            .producer(ProducerConfig::default())
            .expect("producer");
        for i in 0..10 {
            producer
                .send_and_wait(&ProducerRecord::new("trimmed", format!("{i}").as_bytes()))
                .expect("send");
        }
        assert_eq!(broker.delete_records("trimmed", 0, 4).expect("delete"), 4);
        // Lower: nothing changes; beyond the high watermark: out of range.
        assert_eq!(broker.delete_records("trimmed", 0, 2).expect("lower"), 4);
        assert!(matches!(
            broker.delete_records("trimmed", 0, 11),
            Err(BrokerError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            broker.delete_records("trimmed", 1, 0),
            Err(BrokerError::UnknownTopicOrPartition { .. })
        ));
        assert!(matches!(
            broker.delete_records("compacted", 0, 0),
            Err(BrokerError::PolicyViolation(_))
        ));
        // An embedded consumer starting from the earliest offset starts there.
        let mut consumer = broker
            .consumer(pubsub_broker::ConsumerConfig {
                offset_reset: pubsub_broker::OffsetReset::Earliest,
                ..pubsub_broker::ConsumerConfig::new("readers")
            })
            .expect("consumer");
        consumer.subscribe(&["trimmed"]).expect("subscribe");
        let mut seen = Vec::new();
        while seen.len() < 6 {
            for r in consumer
                .poll(std::time::Duration::from_millis(200))
                .expect("poll")
            {
                seen.push(r.offset);
            }
        }
        assert_eq!(seen, (4..10).collect::<Vec<i64>>());
        drop(consumer);
        broker.close().expect("close");
    }
    let broker = open(dir.path());
    assert_eq!(
        broker
            .describe_topic("trimmed")
            .expect("describe")
            .partitions[0]
            .log_start_offset,
        4
    );
    assert_eq!(
        broker
            .delete_records("trimmed", 0, pubsub_broker::HIGH_WATERMARK)
            .expect("to the end"),
        10
    );
}

/// The entries of the data directory whose names start with `prefix`
/// (partition directories, and whatever stands in their way).
fn entries(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// A CreatePartitions that fails midway (a file where a new partition's
/// directory goes) leaves disk and memory as before it, across a restart;
/// once the file is gone the same request works.
#[test]
fn a_failed_add_partitions_leaves_disk_and_memory_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("grow", Some(2), no_configs())
        .expect("create");
    let obstacle = dir.path().join("grow-3");
    std::fs::write(&obstacle, b"in the way").expect("write");
    let failed = broker.add_partitions("grow", 5);
    assert!(
        matches!(
            failed,
            Err(BrokerError::Storage { .. } | BrokerError::Io { .. })
        ),
        "a storage error: {failed:?}"
    );
    assert_eq!(broker.partition_count("grow"), Some(2));
    assert_eq!(entries(dir.path(), "grow"), ["grow-0", "grow-1", "grow-3"]);
    broker.close().expect("close");
    drop(broker);

    let broker = open(dir.path());
    assert_eq!(broker.partition_count("grow"), Some(2), "the disk agrees");
    std::fs::remove_file(&obstacle).expect("remove");
    broker
        .add_partitions("grow", 5)
        .expect("works once the cause is gone");
    assert_eq!(broker.partition_count("grow"), Some(5));
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    producer
        .send(&ProducerRecord::new("grow", b"late").partition(4))
        .expect("send")
        .wait()
        .expect("delivered");
    broker.close().expect("close");
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(broker.partition_count("grow"), Some(5));
    broker.close().expect("close");
}

/// A CreateTopics whose topic fails midway (a file where one partition's
/// directory goes) leaves no directory of the others behind; the same
/// request works once the file is gone.
#[test]
fn a_failed_create_topics_leaves_no_partition_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    let obstacle = dir.path().join("made-2");
    std::fs::write(&obstacle, b"in the way").expect("write");
    let new = || {
        vec![pubsub_broker::NewTopic {
            name: "made".into(),
            partitions: Some(4),
            configs: BTreeMap::new(),
        }]
    };
    let failed = broker.create_topics(new()).pop().expect("one result");
    assert!(
        matches!(
            failed,
            Err(BrokerError::Storage { .. } | BrokerError::Io { .. })
        ),
        "a storage error: {failed:?}"
    );
    assert_eq!(broker.partition_count("made"), None);
    assert_eq!(entries(dir.path(), "made"), ["made-2"], "only the obstacle");
    std::fs::remove_file(&obstacle).expect("remove");
    let created = broker.create_topics(new()).pop().expect("one result");
    assert_eq!(created.expect("created").partitions.len(), 4);
    broker.close().expect("close");
}

/// A CreateTopics too small for deferred syncs (one topic of 20
/// partitions) pays two fsyncs per partition (its partition file's bytes,
/// then its directory, which names the file) and one of the data directory
/// for the whole topic, besides the topic file's two (its bytes and the
/// topics directory): not three per partition (a data directory fsync after
/// each new directory). Everything answered is there after a restart.
#[test]
fn a_small_create_topics_fsyncs_the_data_directory_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    let before = pubsub_storage::fs::fsyncs_on_this_thread();
    let created = broker
        .create_topics(vec![pubsub_broker::NewTopic {
            name: "small".into(),
            partitions: Some(20),
            configs: BTreeMap::new(),
        }])
        .pop()
        .expect("one result");
    let fsyncs = pubsub_storage::fs::fsyncs_on_this_thread() - before;
    assert_eq!(created.expect("created").partitions.len(), 20);
    assert_eq!(fsyncs, 2 * 20 + 1 + 2, "fsyncs of a 20-partition topic");
    for i in 0..20 {
        let file = dir
            .path()
            .join(format!("small-{i}"))
            .join("partition.checkpoint");
        assert!(file.exists(), "{}", file.display());
    }
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(broker.partition_count("small"), Some(20));
    broker.close().expect("close");
}
