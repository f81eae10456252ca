//! Committed offsets live in the compacted `__consumer_offsets` topic:
//! compaction keeps only the latest commit per key, and what it keeps is
//! what a restarted broker loads.

use std::collections::BTreeMap;
use std::time::Duration;

use pubsub_broker::group::records::OffsetsKey;
use pubsub_broker::group::{CommitEntry, CommitRequest};
use pubsub_broker::{Broker, BrokerConfig, GroupConfig};
use pubsub_records::Batches;

use crate::common::*;

fn config() -> BrokerConfig {
    BrokerConfig {
        group: GroupConfig {
            offsets_topic_partitions: 1,
            offsets_topic_segment_bytes: 1024,
            min_session_timeout: Duration::from_millis(100),
            ..GroupConfig::default()
        },
        background: false,
        ..test_config()
    }
}

fn keys_in_offsets_topic(broker: &Broker) -> Vec<(OffsetsKey, bool)> {
    let p = broker
        .partition("__consumer_offsets", 0)
        .expect("partition");
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut next = p.log().log_start_offset();
    while next < p.log().log_end_offset() {
        p.read(next, 1 << 20, &mut buf).expect("read");
        for batch in Batches::new(&buf) {
            let batch = batch.expect("batch");
            next = batch.last_offset() as u64 + 1;
            for r in batch.records(1 << 20).expect("records").iter() {
                let r = r.expect("record");
                out.push((
                    OffsetsKey::decode(r.key.expect("key")).expect("key decodes"),
                    r.value.is_some(),
                ));
            }
        }
    }
    out
}

#[test]
fn compaction_keeps_only_the_latest_commit_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path(), config()).expect("open");
    for round in 0..100i64 {
        broker
            .coordinator()
            .commit(
                broker.offsets_store(),
                CommitRequest {
                    group_id: "g".into(),
                    generation_id: -1,
                    entries: (0..3)
                        .map(|p| CommitEntry {
                            topic: "t".into(),
                            partition: p,
                            offset: round * 10 + p as i64,
                            leader_epoch: -1,
                            metadata: format!("r{round}"),
                        })
                        .collect(),
                    ..CommitRequest::default()
                },
                broker.now_ms(),
                pubsub_broker::wall_clock_ms(),
            )
            .expect("commit");
    }
    let before = keys_in_offsets_topic(&broker);
    assert_eq!(before.len(), 300);
    let log = broker.partition("__consumer_offsets", 0).expect("p");
    assert!(log.log().segments().len() > 5, "small segments roll");
    log.log().roll().expect("roll");
    let removed = broker.run_compaction(pubsub_broker::wall_clock_ms());
    assert_eq!(removed, 297);
    let after = keys_in_offsets_topic(&broker);
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (k, _) in &after {
        *per_key.entry(format!("{k:?}")).or_default() += 1;
    }
    assert_eq!(per_key.len(), 3);
    assert!(
        per_key.values().all(|&n| n == 1),
        "one record per key: {per_key:?}"
    );
    broker.close().expect("close");

    let broker = Broker::open(dir.path(), config()).expect("reopen");
    let offsets: BTreeMap<i32, (i64, String)> = broker
        .coordinator()
        .fetch_offsets("g", None)
        .into_iter()
        .map(|((_, p), c)| {
            let c = c.expect("committed");
            (p, (c.offset, c.metadata))
        })
        .collect();
    assert_eq!(offsets[&0], (990, "r99".to_string()));
    assert_eq!(offsets[&2], (992, "r99".to_string()));
    broker.close().expect("close");
}

#[test]
fn deleting_a_group_writes_tombstones_that_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path(), config()).expect("open");
    broker
        .coordinator()
        .commit(
            broker.offsets_store(),
            CommitRequest {
                group_id: "doomed".into(),
                generation_id: -1,
                entries: vec![CommitEntry {
                    topic: "t".into(),
                    partition: 0,
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
                ..CommitRequest::default()
            },
            broker.now_ms(),
            pubsub_broker::wall_clock_ms(),
        )
        .expect("commit");
    assert_eq!(broker.coordinator().list().len(), 1);
    broker
        .coordinator()
        .delete(broker.offsets_store(), "doomed")
        .expect("delete");
    assert!(broker.coordinator().list().is_empty());
    broker.close().expect("close");
    let broker = Broker::open(dir.path(), config()).expect("reopen");
    assert!(broker.coordinator().list().is_empty());
    assert!(broker
        .coordinator()
        .fetch_offsets("doomed", None)
        .is_empty());
    broker.close().expect("close");
}

#[test]
fn deleted_offsets_are_tombstones_a_restarted_broker_honours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path(), config()).expect("open");
    broker
        .create_topic("t", Some(2), no_configs())
        .expect("create");
    broker
        .coordinator()
        .commit(
            broker.offsets_store(),
            CommitRequest {
                group_id: "g".into(),
                generation_id: -1,
                entries: (0..2)
                    .map(|p| CommitEntry {
                        topic: "t".into(),
                        partition: p,
                        offset: 7,
                        leader_epoch: -1,
                        metadata: String::new(),
                    })
                    .collect(),
                ..CommitRequest::default()
            },
            broker.now_ms(),
            pubsub_broker::wall_clock_ms(),
        )
        .expect("commit");
    let deleted = broker
        .coordinator()
        .delete_offsets(broker.offsets_store(), "g", &[("t".into(), 1)])
        .expect("delete offsets");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].1.is_ok());
    assert!(matches!(
        broker
            .coordinator()
            .delete_offsets(broker.offsets_store(), "nobody", &[("t".into(), 1)]),
        Err(pubsub_broker::BrokerError::GroupIdNotFound(_))
    ));
    // The tombstone is the last record of the offsets topic.
    let keys = keys_in_offsets_topic(&broker);
    assert_eq!(
        keys.last().map(|(k, live)| (format!("{k:?}"), *live)),
        Some((
            format!(
                "{:?}",
                OffsetsKey::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 1
                }
            ),
            false
        ))
    );
    drop(broker);
    let broker = Broker::open(dir.path(), config()).expect("reopen");
    let offsets: Vec<(i32, Option<i64>)> = broker
        .coordinator()
        .fetch_offsets("g", Some(&[("t".into(), 0), ("t".into(), 1)]))
        .into_iter()
        .map(|((_, p), c)| (p, c.map(|c| c.offset)))
        .collect();
    assert_eq!(offsets, vec![(0, Some(7)), (1, None)]);
}
