//! Producing: partition choice compatible with Kafka clients, acks,
//! idempotent duplicates (also across restarts), and refused input.

use std::time::Duration;

use pubsub_broker::partitioner::partition_for_key;
use pubsub_broker::{Acks, BrokerError, ConsumerConfig, ProducerConfig, ProducerRecord};
use pubsub_records::{Batch, BatchBuilder, Batches, NewRecord, TimestampType};

use crate::common::*;

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for i in 0..n {
        let v = format!("seq{seq}+{i}");
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

#[test]
fn keyed_records_go_where_kafka_clients_put_them_and_keyless_ones_spread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("k", Some(7), no_configs())
        .expect("create");
    let producer = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..200 {
        let key = format!("customer-{}", i % 23);
        let value = format!("{i}");
        deliveries.push((
            key.clone(),
            producer
                .send(&ProducerRecord::new("k", value.as_bytes()).key(key.as_bytes()))
                .expect("send"),
        ));
    }
    producer.flush();
    for (key, d) in deliveries {
        let meta = d.wait().expect("delivered");
        assert_eq!(
            meta.partition as u32,
            partition_for_key(key.as_bytes(), 7),
            "key {key}"
        );
    }
    let mut spread = [0usize; 7];
    for i in 0..140 {
        let m = producer
            .send_and_wait(&ProducerRecord::new("k", format!("{i}").as_bytes()))
            .expect("send");
        spread[m.partition as usize] += 1;
    }
    assert!(
        spread.iter().all(|&n| n >= 10),
        "keyless records spread: {spread:?}"
    );
}

#[test]
fn acks_none_leader_and_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("a", Some(1), no_configs())
        .expect("create");
    for (acks, n) in [(Acks::None, 3usize), (Acks::Leader, 4), (Acks::All, 5)] {
        let mut bytes = idempotent_batch(-1, -1, -1, n);
        let r = broker.produce("a", 0, &mut bytes, acks).expect("produce");
        assert_eq!(r.last_offset - r.base_offset + 1, n as u64);
        if acks == Acks::All {
            assert!(broker.partition("a", 0).expect("p").log().durable_offset() > r.last_offset);
        }
    }
    assert_eq!(
        broker.partition("a", 0).expect("p").log().log_end_offset(),
        12
    );
}

#[test]
fn idempotent_retries_are_appended_once_even_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first_ids;
    {
        let broker = open(dir.path());
        broker
            .create_topic("i", Some(1), no_configs())
            .expect("create");
        let (pid, epoch) = broker.init_producer_id().expect("pid");
        first_ids = pid;
        let batch = idempotent_batch(pid, epoch, 0, 5);
        let r1 = broker
            .produce("i", 0, &mut batch.clone(), Acks::All)
            .expect("first");
        let r2 = broker
            .produce("i", 0, &mut batch.clone(), Acks::All)
            .expect("retry");
        assert!(!r1.duplicate && r2.duplicate);
        assert_eq!(
            (r2.base_offset, r2.last_offset),
            (r1.base_offset, r1.last_offset)
        );
        broker
            .produce("i", 0, &mut idempotent_batch(pid, epoch, 5, 2), Acks::All)
            .expect("next");
        assert!(matches!(
            broker.produce("i", 0, &mut idempotent_batch(pid, epoch, 9, 1), Acks::All),
            Err(BrokerError::OutOfOrderSequence {
                expected: 7,
                got: 9,
                ..
            })
        ));
        broker.close().expect("close");
    }
    // Clean restart: the producer snapshot carries the state.
    {
        let broker = open(dir.path());
        let (pid, _) = (first_ids, 0);
        let r = broker
            .produce("i", 0, &mut idempotent_batch(pid, 0, 0, 5), Acks::All)
            .expect("retry after restart");
        assert!(r.duplicate && r.base_offset == 0);
        let r = broker
            .produce("i", 0, &mut idempotent_batch(pid, 0, 5, 2), Acks::All)
            .expect("retry after restart");
        assert!(r.duplicate && r.base_offset == 5);
        let (new_pid, _) = broker.init_producer_id().expect("pid");
        assert!(new_pid > first_ids, "producer ids are never reused");
        broker.close().expect("close");
    }
    // Without the snapshot (as after a crash) the state is rebuilt from the log.
    std::fs::remove_file(dir.path().join("i-0").join("producers.checkpoint")).expect("rm snapshot");
    let broker = open(dir.path());
    let r = broker
        .produce("i", 0, &mut idempotent_batch(first_ids, 0, 5, 2), Acks::All)
        .expect("retry");
    assert!(r.duplicate, "rebuilt from the log");
    let r = broker
        .produce("i", 0, &mut idempotent_batch(first_ids, 0, 7, 1), Acks::All)
        .expect("next");
    assert!(!r.duplicate && r.base_offset == 7);
    // A newer epoch starts over at sequence 0 and fences the older one.
    let r = broker
        .produce("i", 0, &mut idempotent_batch(first_ids, 1, 0, 1), Acks::All)
        .expect("new epoch");
    assert_eq!(r.base_offset, 8);
    assert!(matches!(
        broker.produce("i", 0, &mut idempotent_batch(first_ids, 0, 8, 1), Acks::All),
        Err(BrokerError::InvalidProducerEpoch {
            epoch: 0,
            current: 1,
            ..
        })
    ));
    assert_eq!(
        broker.partition("i", 0).expect("p").log().log_end_offset(),
        9
    );
}

#[test]
fn oversized_corrupt_and_keyless_compacted_batches_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("small", Some(1), configs(&[("max.message.bytes", "200")]))
        .expect("create");
    broker
        .create_topic(
            "compacted",
            Some(1),
            configs(&[("cleanup.policy", "compact")]),
        )
        .expect("create");
    let big = vec![b'x'; 500];
    let mut b = BatchBuilder::new();
    b.push(&NewRecord {
        timestamp: 1,
        key: Some(b"k"),
        value: Some(&big),
        headers: &[],
    })
    .expect("push");
    let mut oversized = b.build().expect("build");
    assert!(matches!(
        broker.produce("small", 0, &mut oversized, Acks::All),
        Err(BrokerError::MessageTooLarge { max: 200, .. })
    ));
    let mut corrupt = idempotent_batch(-1, -1, -1, 2);
    let at = corrupt.len() - 3;
    corrupt[at] ^= 0x40;
    assert!(matches!(
        broker.produce("small", 0, &mut corrupt, Acks::All),
        Err(BrokerError::CorruptMessage(_))
    ));
    let mut keyless = idempotent_batch(-1, -1, -1, 1);
    assert!(matches!(
        broker.produce("compacted", 0, &mut keyless, Acks::All),
        Err(BrokerError::InvalidRecord(_))
    ));
    assert!(matches!(
        broker.produce("small", 7, &mut keyless, Acks::All),
        Err(BrokerError::UnknownTopicOrPartition { .. })
    ));
    assert_eq!(
        broker
            .partition("small", 0)
            .expect("p")
            .log()
            .log_end_offset(),
        0
    );
    assert_eq!(
        broker
            .partition("compacted", 0)
            .expect("p")
            .log()
            .log_end_offset(),
        0
    );
}

#[test]
fn log_append_time_topics_stamp_records_on_arrival() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic(
            "lat",
            Some(1),
            configs(&[("message.timestamp.type", "LogAppendTime")]),
        )
        .expect("create");
    let before = pubsub_broker::wall_clock_ms();
    let r = broker
        .produce("lat", 0, &mut idempotent_batch(-1, -1, -1, 3), Acks::Leader)
        .expect("produce");
    let after = pubsub_broker::wall_clock_ms();
    assert!(r.log_append_time >= before && r.log_append_time <= after);
    let mut out = Vec::new();
    broker.fetch("lat", 0, 0, 1 << 20, &mut out).expect("fetch");
    let batch = Batch::parse(&out).expect("batch");
    batch.validate().expect("CRC recomputed after the rewrite");
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    for r in batch.records(1 << 20).expect("records").iter() {
        assert_eq!(r.expect("record").timestamp, batch.max_timestamp());
    }
    // A corrupt batch is still refused on such a topic (checked before the rewrite).
    let mut corrupt = idempotent_batch(-1, -1, -1, 2);
    let at = corrupt.len() - 2;
    corrupt[at] ^= 1;
    assert!(matches!(
        broker.produce("lat", 0, &mut corrupt, Acks::Leader),
        Err(BrokerError::CorruptMessage(_))
    ));
}

#[test]
fn batching_producers_keep_order_per_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("o", Some(2), no_configs())
        .expect("create");
    let producer = broker
        .producer(ProducerConfig {
            linger: Duration::from_millis(20),
            batch_bytes: 4096,
            ..ProducerConfig::default()
        })
        .expect("producer");
    let mut ds = Vec::new();
    for i in 0..2000 {
        let v = format!("{i}");
        ds.push(
            producer
                .send(&ProducerRecord::new("o", v.as_bytes()).partition(i % 2))
                .expect("send"),
        );
    }
    producer.flush();
    let offsets: Vec<i64> = ds
        .into_iter()
        .map(|d| d.wait().expect("ok").offset)
        .collect();
    for p in 0..2 {
        let mine: Vec<i64> = offsets.iter().skip(p).step_by(2).copied().collect();
        assert_eq!(
            mine,
            (0..1000).collect::<Vec<i64>>(),
            "partition {p} in send order"
        );
    }
    // Batches were formed (far fewer batches than records).
    let mut out = Vec::new();
    broker.fetch("o", 0, 0, 64 << 20, &mut out).expect("fetch");
    let batches = Batches::new(&out).count();
    assert!(batches < 200, "{batches} batches for 1000 records");
    // And a consumer reads them all back in order.
    let mut c = broker
        .consumer(ConsumerConfig::new("reader"))
        .expect("consumer");
    c.subscribe(&["o"]).expect("subscribe");
    let mut n = 0;
    let mut next = std::collections::BTreeMap::<i32, i64>::new();
    while n < 2000 {
        let recs = c.poll(Duration::from_secs(5)).expect("poll");
        assert!(!recs.is_empty(), "stalled at {n}");
        for r in &recs {
            let expected = next.entry(r.partition).or_insert(0);
            assert_eq!(
                r.offset, *expected,
                "partition {} read in order",
                r.partition
            );
            *expected += 1;
        }
        n += recs.len();
    }
}

#[test]
fn a_transaction_marker_is_appended_as_one_fsynced_control_batch() {
    use pubsub_records::{ControlRecord, ControlType, RecordsError};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("t", Some(1), no_configs())
        .expect("create");
    let mut data = idempotent_batch(9, 0, 0, 3);
    broker.produce("t", 0, &mut data, Acks::All).expect("data");
    let marker = ControlRecord {
        kind: ControlType::Commit,
        coordinator_epoch: 4,
    };
    let at = broker
        .write_txn_marker("t", 0, 9, 0, marker)
        .expect("marker");
    assert_eq!(at, 3, "the marker takes the offset after the data");
    broker.close().expect("close");
    // Reopened from disk: the marker is there, with Kafka's shape.
    let broker = open(dir.path());
    let p = broker.partition("t", 0).expect("partition");
    let mut out = Vec::new();
    p.read(at, 1 << 20, &mut out).expect("read");
    let batch = Batches::new(&out)
        .map(|b| b.expect("batch"))
        .find(|b| b.base_offset() as u64 == at)
        .expect("marker batch");
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!((batch.producer_id(), batch.producer_epoch()), (9, 0));
    let records = batch.records(1 << 20).expect("records");
    let r = records
        .iter()
        .next()
        .ok_or(RecordsError::Build("empty"))
        .expect("one record")
        .expect("record");
    assert_eq!(ControlRecord::parse(r.key, r.value).expect("parse"), marker);
}

/// A batch of producer `pid` stamped `timestamp` (transactional if asked).
fn stamped_batch(pid: i64, seq: i32, timestamp: i64, transactional: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new()
        .producer(pid, 0, seq)
        .transactional(transactional);
    b.push(&NewRecord {
        timestamp,
        key: None,
        value: Some(b"v"),
        headers: &[],
    })
    .expect("push");
    b.build().expect("build")
}

/// Producers idle longer than Kafka's `producer.id.expiration.ms` (1 day,
/// by their last batch's timestamp) are forgotten by the periodic check,
/// also after a restart (the snapshot keeps their timestamps), unless a
/// transaction of theirs is open here; a forgotten producer goes on at any
/// sequence, as in Kafka.
#[test]
fn idle_producers_are_forgotten_after_the_expiration() {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let now = pubsub_broker::wall_clock_ms();
    let ids = |broker: &pubsub_broker::Broker| -> Vec<i64> {
        let p = broker.partition("idle", 0).expect("partition");
        p.active_producers().iter().map(|a| a.producer_id).collect()
    };
    {
        let broker = open(dir.path());
        broker
            .create_topic("idle", Some(1), no_configs())
            .expect("create");
        // 1: active now; 2: idle for over a day; 3: idle as long, with a
        // transaction open.
        for (pid, ts, txn) in [
            (1, now, false),
            (2, now - DAY_MS - 60_000, false),
            (3, now - DAY_MS - 60_000, true),
        ] {
            broker
                .produce("idle", 0, &mut stamped_batch(pid, 0, ts, txn), Acks::All)
                .expect("produce");
        }
        assert_eq!(ids(&broker), [1, 2, 3]);
        broker.close().expect("close");
    }
    let broker = open(dir.path());
    assert_eq!(ids(&broker), [1, 2, 3], "the snapshot kept them all");
    assert_eq!(broker.expire_producers(now), 1, "producer 2 is due");
    assert_eq!(ids(&broker), [1, 3]);
    assert_eq!(broker.expire_producers(now), 0, "nothing more is due now");
    assert_eq!(broker.expire_producers(now + DAY_MS + 60_000), 1);
    assert_eq!(ids(&broker), [3], "the open transaction keeps its producer");
    // Producer 1, forgotten, goes on where it was (sequence 1).
    let r = broker
        .produce("idle", 0, &mut stamped_batch(1, 1, now, false), Acks::All)
        .expect("a forgotten producer goes on");
    assert!(!r.duplicate);
    assert_eq!(ids(&broker), [1, 3]);
    broker.close().expect("close");
}
