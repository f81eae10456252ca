//! The admin APIs added for the Java client and Kafka's tools —
//! DeleteRecords (21), AlterConfigs (33), OffsetDelete (47),
//! DescribeCluster (60) and DescribeTopicPartitions (75) — asked the same
//! questions over the protocol, at every version Kafka 4.1 serves, of a
//! pubsub daemon and of a real Apache Kafka 4.1.1, and the answers
//! compared once what differs by nature (topic ids, cluster ids, the
//! brokers' addresses) is blanked. Also: a DeleteRecords survives a SIGKILL
//! and a clean restart of the daemon, and `pubsub log check` reports it.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use pubsub_broker::group::protocol::{Assignment, Subscription};
use pubsub_records::Batch;

use crate::client::{s, Client};
use crate::daemon::Daemon;
use crate::kafka::batch;
use crate::reference::{differences, Kafka};

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

/// Creates a topic, retrying while a fresh Kafka is not ready.
async fn create(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let r = c
        .call(
            7,
            &pubsub_client::admin::create_topics_request(name, partitions, configs),
        )
        .await;
    assert_eq!(
        r.topics[0].error_code, 0,
        "create {name}: {:?}",
        r.topics[0].error_message
    );
    // Kafka's metadata follows its controller a moment later.
    for _ in 0..100 {
        let m = c
            .call(
                12,
                &MetadataRequest::default().with_topics(Some(vec![
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(topic(name))),
                ])),
            )
            .await;
        let t = &m.topics[0];
        if t.error_code == 0
            && t.partitions.len() == partitions as usize
            && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never showed up in Metadata");
}

/// Produces `n` keyed records in one batch, retrying while the leader is
/// not known yet (Kafka, right after creating the topic).
async fn produce(c: &mut Client, name: &str, partition: i32, n: usize) -> i64 {
    let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    for _ in 0..100 {
        let p = crate::client::produce(c, name, partition, -1, batch(&values)).await;
        match p.error_code {
            0 => return p.base_offset,
            3 | 6 => tokio::time::sleep(Duration::from_millis(100)).await,
            e => panic!("produce to {name}-{partition}: error {e}"),
        }
    }
    panic!("{name}-{partition} never got a leader");
}

fn delete_records(parts: &[(&str, i32, i64)]) -> DeleteRecordsRequest {
    let mut topics: Vec<DeleteRecordsTopic> = Vec::new();
    for (t, p, o) in parts {
        let partition = DeleteRecordsPartition::default()
            .with_partition_index(*p)
            .with_offset(*o);
        match topics.iter_mut().find(|x| &*x.name == *t) {
            Some(x) => x.partitions.push(partition),
            None => topics.push(
                DeleteRecordsTopic::default()
                    .with_name(topic(t))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(topics)
}

fn delete_records_answer(r: &DeleteRecordsResponse) -> String {
    let mut lines: Vec<String> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                format!(
                    "{}-{}: error {} low {}",
                    &*t.name, p.partition_index, p.error_code, p.low_watermark
                )
            })
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

async fn earliest_and_latest(c: &mut Client, name: &str, partition: i32) -> String {
    list_offsets(c, name, partition, &[-2, -1]).await
}

/// ListOffsets v7 for each timestamp: error and offset.
async fn list_offsets(c: &mut Client, name: &str, partition: i32, times: &[i64]) -> String {
    let mut out = Vec::new();
    for &ts in times {
        let r = c
            .call(
                7,
                &ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![ListOffsetsTopic::default()
                        .with_name(topic(name))
                        .with_partitions(vec![ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(ts)])]),
            )
            .await;
        let p = &r.topics[0].partitions[0];
        out.push(format!(
            "ts {ts}: error {} offset {}",
            p.error_code, p.offset
        ));
    }
    out.join(", ")
}

/// A fetch at `offset`: error, high watermark, log start offset, and the
/// base offset of the first batch returned.
async fn fetch_at(c: &mut Client, name: &str, partition: i32, offset: i64) -> String {
    let r = c
        .call(
            12,
            &crate::client::fetch_request(name, partition, offset, 0, 1 << 20),
        )
        .await;
    let p = &r.responses[0].partitions[0];
    let first = p
        .records
        .as_ref()
        .filter(|r| r.len() >= 8)
        .map(|r| i64::from_be_bytes(r[..8].try_into().unwrap()));
    format!(
        "error {} hw {} log start {} first batch {first:?}",
        p.error_code, p.high_watermark, p.log_start_offset
    )
}

/// The settings set on a topic (source 1), as `name=value` lines.
async fn overrides(c: &mut Client, name: &str) -> String {
    let r = c
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None),
            ]),
        )
        .await;
    let mut lines: Vec<String> = r.results[0]
        .configs
        .iter()
        .filter(|c| c.config_source == 1)
        .map(|c| format!("{}={}", &*c.name, c.value.as_deref().unwrap_or("null")))
        .collect();
    lines.sort();
    lines.join(",")
}

/// The topic's overrides once they are `expected` (Kafka's DescribeConfigs
/// follows its controller a moment later); what they are if they never
/// become so.
async fn overrides_once(c: &mut Client, name: &str, expected: &str) -> String {
    let mut now = String::new();
    for _ in 0..100 {
        now = overrides(c, name).await;
        if now == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    now
}

fn alter(resource_type: i8, name: &str, configs: &[(&str, Option<&str>)]) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

fn alter_answer(r: &AlterConfigsResponse) -> String {
    r.responses
        .iter()
        .map(|x| {
            format!(
                "{} {:?}: error {} {:?}",
                x.resource_type,
                &*x.resource_name,
                x.error_code,
                x.error_message.as_deref().map(|m| m.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn offset_delete(group: &str, parts: &[(&str, i32)]) -> OffsetDeleteRequest {
    let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
    for (t, p) in parts {
        let partition = OffsetDeleteRequestPartition::default().with_partition_index(*p);
        match topics.iter_mut().find(|x| &*x.name == *t) {
            Some(x) => x.partitions.push(partition),
            None => topics.push(
                OffsetDeleteRequestTopic::default()
                    .with_name(topic(t))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(topics)
}

fn offset_delete_answer(r: &OffsetDeleteResponse) -> String {
    let mut lines: Vec<String> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{}: {}", &*t.name, p.partition_index, p.error_code))
        })
        .collect();
    lines.sort();
    format!("error {}: {}", r.error_code, lines.join(", "))
}

/// Waits until the group's coordinator is there (Kafka creates
/// `__consumer_offsets` on the first FindCoordinator).
async fn find_coordinator(c: &mut Client, group: &str) {
    for _ in 0..100 {
        let r = c
            .call(
                3,
                &FindCoordinatorRequest::default()
                    .with_key(s(group))
                    .with_key_type(0),
            )
            .await;
        if r.error_code == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no coordinator for {group}");
}

async fn commit(c: &mut Client, group: &str, parts: &[(&str, i32, i64)]) {
    find_coordinator(c, group).await;
    let topics: Vec<OffsetCommitRequestTopic> = parts
        .iter()
        .map(|(t, p, o)| {
            OffsetCommitRequestTopic::default()
                .with_name(topic(t))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)])
        })
        .collect();
    for _ in 0..100 {
        let r = c
            .call(
                8,
                &OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(group)))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(topics.clone()),
            )
            .await;
        let codes: Vec<i16> = r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect();
        if codes.iter().all(|c| *c == 0) {
            return;
        }
        // The coordinator of a fresh Kafka is still loading.
        assert!(
            codes.iter().all(|c| [14, 15, 16].contains(c)),
            "commit: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the coordinator never took the commit");
}

async fn committed(c: &mut Client, group: &str, name: &str, partitions: &[i32]) -> String {
    let r = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic(name))
                    .with_partition_indexes(partitions.to_vec())])),
        )
        .await;
    r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            format!(
                "p{}={} (error {})",
                p.partition_index, p.committed_offset, p.error_code
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One member joins `group` subscribed to `topics` and takes every
/// partition of `name`; the group is then Stable (JoinGroup v3 needs no
/// member id round trip).
async fn join_and_sync(c: &mut Client, group: &str, name: &str, partitions: i32) {
    let subscription = Subscription {
        topics: vec![name.to_string()],
        ..Subscription::default()
    };
    let joined = c
        .call(
            3,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_session_timeout_ms(30_000)
                .with_rebalance_timeout_ms(30_000)
                .with_member_id(s(""))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(subscription.encode().into())]),
        )
        .await;
    assert_eq!(joined.error_code, 0, "join");
    let assignment = Assignment {
        partitions: vec![(name.to_string(), (0..partitions).collect())],
        user_data: None,
    };
    let synced = c
        .call(
            3,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id.clone())
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(joined.member_id.clone())
                    .with_assignment(assignment.encode().into())]),
        )
        .await;
    assert_eq!(synced.error_code, 0, "sync");
}

fn describe_cluster_answer(r: &DescribeClusterResponse, version: i16) -> String {
    let brokers: Vec<String> = r
        .brokers
        .iter()
        .map(|b| {
            format!(
                "broker {} rack {:?} fenced {}",
                b.broker_id.0, b.rack, b.is_fenced
            )
        })
        .collect();
    format!(
        "v{version}: error {} {:?} endpoint {} cluster id set {} controller {} ops {} {}",
        r.error_code,
        r.error_message.as_deref().map(|m| m.to_string()),
        r.endpoint_type,
        !r.cluster_id.is_empty(),
        r.controller_id.0,
        r.cluster_authorized_operations,
        brokers.join("; ")
    )
}

fn describe_topics(
    names: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            names
                .iter()
                .map(|n| TopicRequest::default().with_name(topic(n)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(topic(t))
                .with_partition_index(p)
        }))
}

fn describe_topics_answer(r: &DescribeTopicPartitionsResponse) -> String {
    let mut out = String::new();
    for t in &r.topics {
        out += &format!(
            "{:?} error {} internal {} id set {} ops {}:",
            t.name.as_deref().map(|n| n.to_string()),
            t.error_code,
            t.is_internal,
            !t.topic_id.is_nil(),
            t.topic_authorized_operations
        );
        for p in &t.partitions {
            out += &format!(
                " [{} err {} leader {} epoch {} replicas {:?} isr {:?} elr {:?} last elr {:?} offline {:?}]",
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch,
                p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.eligible_leader_replicas
                    .as_ref()
                    .map(|v| v.iter().map(|b| b.0).collect::<Vec<_>>()),
                p.last_known_elr
                    .as_ref()
                    .map(|v| v.iter().map(|b| b.0).collect::<Vec<_>>()),
                p.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
            );
        }
        out += "\n";
    }
    out + &format!(
        "next {:?}",
        r.next_cursor
            .as_ref()
            .map(|c| (c.topic_name.to_string(), c.partition_index))
    )
}

/// The scenario: every question asked, every answer recorded.
async fn scenario(addr: SocketAddr) -> Vec<(String, String)> {
    let mut steps: Vec<(String, String)> = Vec::new();
    let probe = std::env::var("PROBE_BOOTSTRAP").is_ok();
    let mut step = |name: &str, answer: String| {
        if probe {
            eprintln!("--- {name}\n{answer}");
        }
        steps.push((name.to_string(), answer))
    };
    let mut c = Client::connect(addr).await;

    // DescribeTopicPartitions first, while these are the only topics.
    create(&mut c, "dtp-a", 3, &[]).await;
    create(&mut c, "dtp-b", 2, &[]).await;
    create(&mut c, "dtp-c", 1, &[]).await;
    for (name, req) in [
        (
            "dtp: all three",
            describe_topics(&["dtp-c", "dtp-a", "dtp-b"], 2000, None),
        ),
        (
            "dtp: limit 4",
            describe_topics(&["dtp-a", "dtp-b", "dtp-c"], 4, None),
        ),
        (
            "dtp: from the cursor",
            describe_topics(&["dtp-a", "dtp-b", "dtp-c"], 4, Some(("dtp-b", 1))),
        ),
        (
            "dtp: limit 3 ends a topic",
            describe_topics(&["dtp-a", "dtp-b"], 3, None),
        ),
        ("dtp: limit 0", describe_topics(&["dtp-a"], 0, None)),
        ("dtp: every topic, limit 5", describe_topics(&[], 5, None)),
        (
            "dtp: every topic from a cursor",
            describe_topics(&[], 2000, Some(("dtp-b", 1))),
        ),
        (
            "dtp: unknown and invalid names",
            describe_topics(&["nope", "dtp-c", "bad name!"], 2000, None),
        ),
        (
            "dtp: cursor beyond the partitions",
            describe_topics(&["dtp-c"], 2000, Some(("dtp-c", 5))),
        ),
        (
            "dtp: cursor not among the topics",
            describe_topics(&["dtp-a"], 2000, Some(("dtp-b", 0))),
        ),
    ] {
        let r = c.call(0, &req).await;
        step(name, describe_topics_answer(&r));
    }

    // DescribeCluster.
    for version in 0..=2i16 {
        for (ops, endpoint, fenced) in [(false, 1, false), (true, 1, true), (false, 2, false)] {
            if version == 0 && endpoint != 1 {
                continue;
            }
            let r = c
                .call(
                    version,
                    &DescribeClusterRequest::default()
                        .with_include_cluster_authorized_operations(ops)
                        .with_endpoint_type(endpoint)
                        .with_include_fenced_brokers(fenced && version >= 2),
                )
                .await;
            step(
                &format!("describe cluster ops={ops} endpoint={endpoint} fenced={fenced}"),
                describe_cluster_answer(&r, version),
            );
        }
    }

    // DeleteRecords.
    create(&mut c, "records", 2, &[]).await;
    create(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    produce(&mut c, "records", 0, 5).await;
    produce(&mut c, "records", 0, 5).await;
    produce(&mut c, "records", 1, 3).await;
    for version in 0..=2i16 {
        let r = c
            .call(
                version,
                &delete_records(&[("records", 0, i64::from(version) + 2)]),
            )
            .await;
        step(
            &format!("delete-records v{version}"),
            delete_records_answer(&r),
        );
    }
    let r = c
        .call(
            2,
            &delete_records(&[
                ("records", 0, 7),
                ("records", 1, -1),
                ("records", 5, 0),
                ("nope", 0, 0),
                ("compacted", 0, 0),
            ]),
        )
        .await;
    step("delete-records: mixed", delete_records_answer(&r));
    for (name, offset) in [
        ("delete-records below the start", 1),
        ("delete-records at the start", 7),
        ("delete-records beyond the high watermark", 11),
        ("delete-records at the high watermark", 10),
        ("delete-records negative", -5),
    ] {
        let r = c.call(2, &delete_records(&[("records", 0, offset)])).await;
        step(name, delete_records_answer(&r));
    }
    for p in [0, 1] {
        step(
            &format!("list-offsets records-{p}"),
            earliest_and_latest(&mut c, "records", p).await,
        );
    }
    produce(&mut c, "records", 0, 4).await;
    let r = c.call(2, &delete_records(&[("records", 0, 12)])).await;
    step("delete-records inside a batch", delete_records_answer(&r));
    // Every record has the same timestamp (that of `batch`).
    step(
        "list-offsets by time after delete-records inside a batch",
        list_offsets(
            &mut c,
            "records",
            0,
            &[0, 1_700_000_000_000, 1_700_000_000_001],
        )
        .await,
    );
    for offset in [0, 11, 12, 14] {
        step(
            &format!("fetch records-0 at {offset}"),
            fetch_at(&mut c, "records", 0, offset).await,
        );
    }
    step(
        "consumed after delete-records",
        format!("{:?}", fetch_all_from(&mut c, "records", 0).await),
    );

    // AlterConfigs.
    create(
        &mut c,
        "cfg",
        1,
        &[("retention.ms", "3600000"), ("segment.ms", "7200000")],
    )
    .await;
    step("configs before", overrides(&mut c, "cfg").await);
    let mut now = "retention.ms=3600000,segment.ms=7200000".to_string();
    for version in 0..=2i16 {
        for validate_only in [true, false] {
            let value = format!("{}", 2000 + version);
            let r = c
                .call(
                    version,
                    &AlterConfigsRequest::default()
                        .with_validate_only(validate_only)
                        .with_resources(vec![alter(
                            2,
                            "cfg",
                            &[
                                ("max.message.bytes", Some(&value)),
                                ("segment.ms", Some("7200000")),
                            ],
                        )]),
                )
                .await;
            if !validate_only {
                now = format!("max.message.bytes={value},segment.ms=7200000");
            }
            step(
                &format!("alter-configs v{version} validate_only={validate_only}"),
                alter_answer(&r) + " -> " + &overrides_once(&mut c, "cfg", &now).await,
            );
        }
    }
    for (name, resource) in [
        ("unknown key", alter(2, "cfg", &[("bogus.x", Some("1"))])),
        // (The message is pubsub's own; the code is compared.)
        (
            "bad value",
            alter(2, "cfg", &[("retention.ms", Some("soon"))]),
        ),
        ("null value", alter(2, "cfg", &[("retention.ms", None)])),
        (
            "repeated key",
            alter(
                2,
                "cfg",
                &[("retention.ms", Some("1")), ("retention.ms", Some("2"))],
            ),
        ),
        (
            "unknown topic",
            alter(2, "nope", &[("retention.ms", Some("1"))]),
        ),
        (
            "default topic",
            alter(2, "", &[("retention.ms", Some("1"))]),
        ),
        ("another broker", alter(4, "1", &[])),
        ("this broker, nothing", alter(4, "0", &[])),
        ("unknown resource type", alter(9, "x", &[])),
    ] {
        let r = c
            .call(
                2,
                &AlterConfigsRequest::default().with_resources(vec![resource]),
            )
            .await;
        let answer = alter_answer(&r);
        let answer = if name == "bad value" {
            answer
                .split(" Some(")
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            answer
        };
        step(&format!("alter-configs: {name}"), answer);
    }
    step("configs after the refusals", overrides(&mut c, "cfg").await);
    let r = c
        .call(
            2,
            &AlterConfigsRequest::default().with_resources(vec![alter(2, "cfg", &[])]),
        )
        .await;
    step(
        "alter-configs to nothing",
        alter_answer(&r) + " -> " + &overrides_once(&mut c, "cfg", "").await,
    );

    // OffsetDelete.
    commit(
        &mut c,
        "od",
        &[("records", 0, 12), ("records", 1, 3), ("cfg", 0, 0)],
    )
    .await;
    let r = c
        .call(0, &offset_delete("od", &[("records", 0), ("records", 7)]))
        .await;
    step("offset-delete", offset_delete_answer(&r));
    step(
        "committed after offset-delete",
        committed(&mut c, "od", "records", &[0, 1]).await,
    );
    let r = c
        .call(0, &offset_delete("od", &[("nope", 0), ("records", 0)]))
        .await;
    step("offset-delete: unknown topic", offset_delete_answer(&r));
    let r = c.call(0, &offset_delete("ghost", &[("records", 0)])).await;
    step("offset-delete: unknown group", offset_delete_answer(&r));
    let r = c.call(0, &offset_delete("", &[("records", 0)])).await;
    step("offset-delete: empty group id", offset_delete_answer(&r));
    join_and_sync(&mut c, "od", "records", 2).await;
    let r = c
        .call(0, &offset_delete("od", &[("records", 1), ("cfg", 0)]))
        .await;
    step("offset-delete: subscribed", offset_delete_answer(&r));
    step(
        "committed after the refusal",
        committed(&mut c, "od", "records", &[0, 1]).await
            + "; cfg "
            + &committed(&mut c, "od", "cfg", &[0]).await,
    );
    steps
}

/// Every record of a partition from its log start offset (as a consumer
/// sees them: records below the offset asked for are skipped).
async fn fetch_all_from(c: &mut Client, name: &str, partition: i32) -> Vec<(i64, String)> {
    let start = c
        .call(
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic(name))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(-2)])]),
        )
        .await
        .topics[0]
        .partitions[0]
        .offset;
    let mut out = Vec::new();
    let mut next = start;
    loop {
        let r = c
            .call(
                12,
                &crate::client::fetch_request(name, partition, next, 0, 1 << 20),
            )
            .await;
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.error_code, 0, "fetch {name}-{partition} at {next}");
        let records = part.records.clone().unwrap_or_default();
        let mut pos = 0;
        while pos < records.len() {
            let batch = Batch::parse(&records[pos..]).unwrap();
            pos += batch.len();
            for r in batch.records(1 << 20).unwrap().iter() {
                let r = r.unwrap();
                if r.offset >= next {
                    out.push((
                        r.offset,
                        String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned(),
                    ));
                    next = r.offset + 1;
                }
            }
        }
        if next >= part.high_watermark {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_apis_answer_as_apache_kafka_does() {
    let Some(kafka) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let ours = scenario(daemon.addr).await;
    let theirs = scenario(kafka.bootstrap.parse().unwrap()).await;
    let differences = differences(&ours, &theirs);
    assert!(
        differences.is_empty(),
        "the admin APIs answered differently:\n{differences}"
    );
}

/// `pubsub log check --json` of a stopped daemon's data directory:
/// partition name -> (log start offset, segment count, bytes).
fn log_check(data: &std::path::Path) -> std::collections::BTreeMap<String, (u64, usize, u64)> {
    let out = std::process::Command::new(crate::daemon::binary())
        .args(["log", "check", "--json"])
        .arg(data)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                (
                    p["log_start_offset"].as_u64().unwrap(),
                    p["segments"].as_array().unwrap().len(),
                    p["segments"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["size"].as_u64().unwrap())
                        .sum(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_survives_sigkill_and_restart_and_log_check_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    // Small segments: each batch of 5 records rolls one.
    create(&mut c, "kept", 1, &[("segment.bytes", "200")]).await;
    for _ in 0..6 {
        produce(&mut c, "kept", 0, 5).await;
    }
    let r = c.call(2, &delete_records(&[("kept", 0, 17)])).await;
    assert_eq!(delete_records_answer(&r), "kept-0: error 0 low 17");
    assert_eq!(
        earliest_and_latest(&mut c, "kept", 0).await,
        "ts -2: error 0 offset 17, ts -1: error 0 offset 30"
    );
    let fetched = fetch_all_from(&mut c, "kept", 0).await;
    assert_eq!(fetched.first().map(|r| r.0), Some(17));
    assert_eq!(fetched.len(), 13);
    drop(c);

    // SIGKILL: the start was durable before the answer.
    daemon.kill9();
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    assert_eq!(
        earliest_and_latest(&mut c, "kept", 0).await,
        "ts -2: error 0 offset 17, ts -1: error 0 offset 30"
    );
    assert_eq!(
        fetch_at(&mut c, "kept", 0, 16).await,
        "error 1 hw -1 log start -1 first batch None"
    );
    // To the high watermark, then a clean stop.
    let r = c.call(2, &delete_records(&[("kept", 0, -1)])).await;
    assert_eq!(delete_records_answer(&r), "kept-0: error 0 low 30");
    drop(c);
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{stderr}");

    // The log check reads the same start; whole segments below it are gone.
    let check = log_check(&data);
    let (start, segments, bytes) = check["kept-0"];
    assert_eq!(start, 30, "{check:?}");
    assert_eq!(segments, 1, "only the active segment is left: {check:?}");

    let daemon = Daemon::start_with_metrics(&data);
    let mut c = Client::connect(daemon.addr).await;
    assert_eq!(
        earliest_and_latest(&mut c, "kept", 0).await,
        "ts -2: error 0 offset 30, ts -1: error 0 offset 30"
    );
    // The metrics and DescribeLogDirs say the same.
    let m = crate::metrics::scrape(daemon.metrics.unwrap()).await;
    let series = "{topic=\"kept\",partition=\"0\"}";
    assert_eq!(
        crate::metrics::value(&m, &format!("pubsub_log_start_offset{series}")),
        30.0
    );
    let dirs = c
        .call(
            4,
            &DescribeLogDirsRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(topic("kept"))
                    .with_partitions(vec![0]),
            ])),
        )
        .await;
    let sizes: Vec<i64> = dirs.results[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_size)
        .collect();
    assert_eq!(sizes, vec![bytes as i64], "DescribeLogDirs and log check");
    assert_eq!(produce(&mut c, "kept", 0, 2).await, 30);
    assert_eq!(
        fetch_all_from(&mut c, "kept", 0).await,
        vec![(30, "v0".to_string()), (31, "v1".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    create(&mut c, "od", 2, &[]).await;
    commit(&mut c, "g", &[("od", 0, 4), ("od", 1, 9)]).await;
    let r = c.call(0, &offset_delete("g", &[("od", 1)])).await;
    assert_eq!(offset_delete_answer(&r), "error 0: od-1: 0");
    drop(c);
    // SIGKILL: the tombstone was durable before the answer.
    daemon.kill9();
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    assert_eq!(
        committed(&mut c, "g", "od", &[0, 1]).await,
        "p0=4 (error 0), p1=-1 (error 0)"
    );
    drop(c);
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{stderr}");
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    assert_eq!(
        committed(&mut c, "g", "od", &[0, 1]).await,
        "p0=4 (error 0), p1=-1 (error 0)"
    );
}
