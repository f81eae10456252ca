//! The scenarios: each a short async function that sends requests through a
//! [`Probe`] (every answer recorded) and names what the broker chose
//! (member ids, producer ids). Each uses its own topics and groups, so they
//! run one after the other against the same two brokers. Timestamps the
//! scenarios choose are fixed and long past, so they never look like a
//! broker's clock to the normaliser.

use kafka_protocol::error::ResponseError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use pubsub_records::{Batch, BatchBuilder, Compression, Header, NewRecord};

use super::tree::Node;
use super::{Probe, Scenario};

/// Every scenario, in the order they run.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "topics",
        play: |p| Box::pin(topics(p)),
    },
    Scenario {
        name: "produce and fetch",
        play: |p| Box::pin(produce_and_fetch(p)),
    },
    Scenario {
        name: "log append time",
        play: |p| Box::pin(log_append_time(p)),
    },
    Scenario {
        name: "configs",
        play: |p| Box::pin(configs(p)),
    },
    Scenario {
        name: "group lifecycle",
        play: |p| Box::pin(group_lifecycle(p)),
    },
    Scenario {
        name: "group rebalance",
        play: |p| Box::pin(group_rebalance(p)),
    },
    Scenario {
        name: "idempotent producer",
        play: |p| Box::pin(idempotent_producer(p)),
    },
    Scenario {
        name: "retention",
        play: |p| Box::pin(retention(p)),
    },
    Scenario {
        name: "delete records",
        play: |p| Box::pin(delete_records(p)),
    },
    Scenario {
        name: "fetch sessions",
        play: |p| Box::pin(fetch_sessions(p)),
    },
    Scenario {
        name: "fetch budgets",
        play: |p| Box::pin(fetch_budgets(p)),
    },
    Scenario {
        name: "transactions",
        play: |p| Box::pin(transactions(p)),
    },
    Scenario {
        name: "transactional offsets",
        play: |p| Box::pin(transactional_offsets(p)),
    },
    Scenario {
        name: "read committed",
        play: |p| Box::pin(read_committed(p)),
    },
    Scenario {
        name: "transactional produce versions",
        play: |p| Box::pin(transactional_produce_versions(p)),
    },
    Scenario {
        name: "transaction timeout",
        play: |p| Box::pin(transaction_timeout(p)),
    },
];

/// A fixed CreateTime for the scenarios' records (2023-11-14).
const T0: i64 = 1_700_000_000_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn creatable(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

fn create(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
        .with_topics(topics)
}

fn metadata(topics: &[&str], auto_create: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_allow_auto_topic_creation(auto_create)
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect(),
        ))
}

/// One record to produce.
struct Rec<'a> {
    ts: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header<'a>],
}

fn rec<'a>(ts: i64, key: Option<&'a str>, value: Option<&'a str>) -> Rec<'a> {
    Rec {
        ts,
        key: key.map(str::as_bytes),
        value: value.map(str::as_bytes),
        headers: &[],
    }
}

fn batch_of(builder: BatchBuilder, records: &[Rec<'_>]) -> Bytes {
    let mut b = builder;
    for r in records {
        b.push(&NewRecord {
            timestamp: r.ts,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .unwrap();
    }
    Bytes::from(b.build().unwrap())
}

fn batch(records: &[Rec<'_>]) -> Bytes {
    batch_of(BatchBuilder::new(), records)
}

fn produce_req(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    crate::client::produce_request(topic, partition, acks, records)
}

fn list_offsets(topic: &str, queries: &[(i32, i64)]) -> ListOffsetsRequest {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for &(p, t) in queries {
        by_partition.entry(p).or_default().push(t);
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                queries
                    .iter()
                    .map(|&(p, t)| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(t)
                    })
                    .collect(),
            )])
}

/// ListOffsets one query at a time (Kafka refuses a partition twice in one
/// request), each its own step.
async fn offsets(p: &mut Probe, topic: &str, partition: i32, times: &[(&str, i64)]) {
    for &(what, t) in times {
        p.call(
            &format!("ListOffsets {what} of {topic}-{partition}"),
            list_offsets(topic, &[(partition, t)]),
        )
        .await;
    }
}

/// Waits until every partition of `topic` has a leader (Kafka creates
/// topics in the background); unrecorded.
async fn await_topic(p: &mut Probe, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = p.quiet(metadata(&[topic], false)).await;
        let ready = m.topics.iter().all(|t| {
            t.error_code == 0
                && t.partitions
                    .iter()
                    .all(|x| x.error_code == 0 && x.leader_id.0 >= 0)
        });
        // Kafka's Metadata may name a leader a moment before its broker has
        // created the partition; ListOffsets answers only once it has.
        let partitions: Vec<i32> = m
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|x| x.partition_index))
            .collect();
        let mut served = ready;
        for partition in partitions {
            if served {
                let r = p.quiet(list_offsets(topic, &[(partition, -1)])).await;
                served = r
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|x| x.error_code == 0);
            }
        }
        if served {
            return;
        }
        assert!(Instant::now() < deadline, "{topic} got no leader: {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `topic` (recorded) and waits for its leaders.
///
/// The suite's records are stamped T0 (2023), long past the default 7-day
/// retention, and both brokers check retention every 500 ms here: a topic
/// keeps its records for ever (`retention.ms` -1) unless the scenario sets
/// `retention.ms` itself, else a check mid-scenario moves the log start.
async fn create_topic(p: &mut Probe, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut configs = configs.to_vec();
    if !configs.iter().any(|(name, _)| *name == "retention.ms") {
        configs.push(("retention.ms", "-1"));
    }
    let r = p
        .call(
            &format!("create {topic}"),
            create(vec![creatable(topic, partitions, -1, &configs)], false),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0, "create {topic}: {r:?}");
    await_topic(p, topic).await;
}

/// Fetches `topic`-`partition` from `offset`: the answer without its record
/// bytes, and the records decoded (batch fields a client sees, then each
/// record's offset, timestamp, key, value and headers).
async fn fetch(p: &mut Probe, step: &str, topic: &str, partition: i32, offset: i64) {
    let req = crate::client::fetch_request(topic, partition, offset, 0, 1 << 20);
    observe_fetch(p, step, "Fetch", req).await;
}

/// Sends `req` and records, as "`step` (`what` vVERSION)", the answer
/// without its record bytes and the records decoded; returns the answer's
/// session id.
async fn observe_fetch(p: &mut Probe, step: &str, what: &str, req: FetchRequest) -> i32 {
    let version = p.version::<FetchRequest>();
    let mut resp = p.client.call(version, &req).await;
    let mut decoded = Vec::new();
    for t in &mut resp.responses {
        for part in &mut t.partitions {
            let mut bytes = part.records.take().unwrap_or_default();
            // Known difference: a trailing partial batch.
            super::normalise::fetched_batches(&mut bytes, &mut part.aborted_transactions);
            decoded.push(decode(&bytes));
        }
    }
    p.observe(
        &format!("{step} ({what} v{version})"),
        Node::Fields(vec![
            ("answer".into(), Node::of(&resp)),
            ("records".into(), Node::List(decoded)),
        ]),
    );
    resp.session_id
}

/// The batches and records of fetched bytes, as a client decodes them.
fn decode(bytes: &[u8]) -> Node {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Ok(batch) = Batch::parse(&bytes[pos..]) else {
            // A partial batch at the end of a size-limited answer.
            batches.push(Node::Leaf(format!(
                "partial batch of {} bytes",
                bytes.len() - pos
            )));
            break;
        };
        pos += batch.len();
        let records = batch
            .records(64 << 20)
            .unwrap()
            .iter()
            .map(|r| {
                let r = r.unwrap();
                Node::Fields(vec![
                    ("offset".into(), Node::leaf(r.offset)),
                    ("timestamp".into(), Node::leaf(r.timestamp)),
                    ("key".into(), Node::leaf(r.key.map(Bytes::copy_from_slice))),
                    (
                        "value".into(),
                        Node::leaf(r.value.map(Bytes::copy_from_slice)),
                    ),
                    ("headers".into(), Node::of(&r.owned_headers())),
                ])
            })
            .collect();
        batches.push(Node::Fields(vec![
            ("base_offset".into(), Node::leaf(batch.base_offset())),
            ("last_offset".into(), Node::leaf(batch.last_offset())),
            ("magic".into(), Node::leaf(batch.magic())),
            (
                "partition_leader_epoch".into(),
                Node::leaf(batch.partition_leader_epoch()),
            ),
            ("timestamp_type".into(), Node::leaf(batch.timestamp_type())),
            (
                "compression".into(),
                Node::leaf(batch.compression().unwrap()),
            ),
            ("base_timestamp".into(), Node::leaf(batch.base_timestamp())),
            ("max_timestamp".into(), Node::leaf(batch.max_timestamp())),
            ("producer_id".into(), Node::leaf(batch.producer_id())),
            ("producer_epoch".into(), Node::leaf(batch.producer_epoch())),
            ("base_sequence".into(), Node::leaf(batch.base_sequence())),
            (
                "is_transactional".into(),
                Node::leaf(batch.is_transactional()),
            ),
            ("crc_valid".into(), Node::leaf(batch.validate_crc().is_ok())),
            ("records".into(), Node::List(records)),
        ]));
    }
    Node::List(batches)
}

/// CreateTopics with good and bad requests, Metadata, CreatePartitions and
/// DeleteTopics.
async fn topics(p: &mut Probe) {
    p.call(
        "create orders (3 partitions, configs)",
        create(
            vec![creatable(
                "orders",
                3,
                -1,
                &[("retention.ms", "86400000"), ("cleanup.policy", "delete")],
            )],
            false,
        ),
    )
    .await;
    await_topic(p, "orders").await;
    p.call(
        "create default partitions",
        create(vec![creatable("defaults", -1, -1, &[])], false),
    )
    .await;
    await_topic(p, "defaults").await;
    p.call(
        "create orders again",
        create(vec![creatable("orders", 3, -1, &[])], false),
    )
    .await;
    p.call(
        "validate only",
        create(vec![creatable("validated", 2, -1, &[])], true),
    )
    .await;
    let long = "x".repeat(250);
    for (what, name) in [
        ("slash", "bad/name"),
        ("dot-dot", ".."),
        ("dot", "."),
        ("empty", ""),
        ("space", "has space"),
        ("250 chars", long.as_str()),
    ] {
        p.call(
            &format!("create invalid name: {what}"),
            create(vec![creatable(name, 1, -1, &[])], false),
        )
        .await;
    }
    for (what, partitions, rf) in [
        ("zero partitions", 0, -1),
        ("-2 partitions", -2, -1),
        ("replication 3", 1, 3),
        ("replication 0", 1, 0),
    ] {
        p.call(
            &format!("create {what}"),
            create(vec![creatable("numbers", partitions, rf, &[])], false),
        )
        .await;
    }
    for (what, key, value) in [
        ("unknown config", "no.such.config", "1"),
        ("retention.ms not a number", "retention.ms", "soon"),
        ("cleanup.policy unknown", "cleanup.policy", "shred"),
        ("max.message.bytes negative", "max.message.bytes", "-5"),
        (
            "timestamp type unknown",
            "message.timestamp.type",
            "Whenever",
        ),
    ] {
        p.call(
            &format!("create with {what}"),
            create(vec![creatable("configured", 1, -1, &[(key, value)])], false),
        )
        .await;
    }
    p.call(
        "metadata of orders and a missing topic",
        metadata(&["orders", "missing"], false),
    )
    .await;
    p.call(
        "metadata of an invalid name",
        metadata(&["bad/name"], false),
    )
    .await;
    let grow = |count| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name("orders"))
                .with_count(count)
                .with_assignments(None)])
    };
    p.call("create partitions 3 -> 4", grow(4)).await;
    await_topic(p, "orders").await;
    p.call("create partitions 4 -> 2", grow(2)).await;
    p.call("create partitions 4 -> 4", grow(4)).await;
    p.call(
        "create partitions of a missing topic",
        CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name("missing"))
                .with_count(2)
                .with_assignments(None)]),
    )
    .await;
    p.call("metadata after growing", metadata(&["orders"], false))
        .await;
    p.call(
        "delete orders and a missing topic",
        DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topic_names(vec![topic_name("orders"), topic_name("missing")]),
    )
    .await;
    p.call(
        "delete defaults",
        DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topic_names(vec![topic_name("defaults")]),
    )
    .await;
}

/// Keys, values, headers and timestamps in, the same out; offsets, high
/// watermarks, ListOffsets; bad partitions, offsets and sizes.
async fn produce_and_fetch(p: &mut Probe) {
    create_topic(p, "events", 2, &[]).await;
    let headers = [
        Header {
            key: b"trace",
            value: Some(b"abc"),
        },
        Header {
            key: b"empty",
            value: None,
        },
    ];
    let first = [
        Rec {
            ts: T0,
            key: Some(b"k1"),
            value: Some(b"v1"),
            headers: &headers,
        },
        rec(T0 + 10, None, Some("no key")),
        rec(T0 + 20, Some("tombstone"), None),
    ];
    p.call(
        "produce 3 records",
        produce_req("events", 0, -1, batch(&first)),
    )
    .await;
    p.call(
        "produce gzip",
        produce_req(
            "events",
            0,
            1,
            batch_of(
                BatchBuilder::new().compression(Compression::Gzip),
                &[
                    rec(T0 + 30, Some("k2"), Some("zipped")),
                    rec(T0 + 25, Some("k3"), Some("older")),
                ],
            ),
        ),
    )
    .await;
    p.call(
        "produce to partition 1",
        produce_req(
            "events",
            1,
            1,
            batch(&[rec(T0 + 5, Some("p1"), Some("one"))]),
        ),
    )
    .await;
    fetch(p, "fetch from 0", "events", 0, 0).await;
    fetch(p, "fetch from 1 (mid-batch)", "events", 0, 1).await;
    fetch(p, "fetch from 4 (mid-compressed-batch)", "events", 0, 4).await;
    fetch(p, "fetch at the high watermark", "events", 0, 5).await;
    fetch(p, "fetch past the high watermark", "events", 0, 50).await;
    fetch(p, "fetch a negative offset", "events", 0, -7).await;
    fetch(p, "fetch a missing partition", "events", 9, 0).await;
    fetch(p, "fetch a missing topic", "nowhere", 0, 0).await;
    offsets(
        p,
        "events",
        0,
        &[
            ("earliest", -2),
            ("latest", -1),
            ("max timestamp", -3),
            ("before the first", T0 - 1),
            ("the first", T0),
            ("between", T0 + 15),
            ("the gzip batch", T0 + 26),
            ("after the last", T0 + 31),
        ],
    )
    .await;
    offsets(p, "events", 9, &[("latest of a missing partition", -1)]).await;
    offsets(p, "nowhere", 0, &[("latest of a missing topic", -1)]).await;
    p.call(
        "produce to a missing partition",
        produce_req("events", 9, 1, batch(&[rec(T0, None, Some("x"))])),
    )
    .await;
    p.call(
        "produce to a missing topic",
        produce_req("nowhere", 0, 1, batch(&[rec(T0, None, Some("x"))])),
    )
    .await;
    create_topic(p, "small", 1, &[("max.message.bytes", "1024")]).await;
    let big = "b".repeat(2000);
    p.call(
        "produce a record over max.message.bytes",
        produce_req("small", 0, 1, batch(&[rec(T0, None, Some(&big))])),
    )
    .await;
    p.call(
        "produce a record under max.message.bytes",
        produce_req("small", 0, 1, batch(&[rec(T0, None, Some("fits"))])),
    )
    .await;
    let mut corrupt = batch(&[rec(T0, None, Some("x"))]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    p.call(
        "produce a batch with a bad CRC",
        produce_req("small", 0, 1, Bytes::from(corrupt)),
    )
    .await;
    offsets(p, "small", 0, &[("latest after refusals", -1)]).await;
    p.call("metadata of events", metadata(&["events"], false))
        .await;
}

/// A LogAppendTime topic: the broker's clock replaces the producer's.
async fn log_append_time(p: &mut Probe) {
    create_topic(
        p,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    p.call(
        "produce",
        produce_req(
            "stamped",
            0,
            1,
            batch(&[
                rec(T0, Some("a"), Some("1")),
                rec(T0 + 1, Some("b"), Some("2")),
            ]),
        ),
    )
    .await;
    fetch(p, "fetch", "stamped", 0, 0).await;
    offsets(
        p,
        "stamped",
        0,
        &[
            ("earliest", -2),
            ("latest", -1),
            ("max timestamp", -3),
            ("by the producer's time", T0),
            ("from the epoch", 0),
        ],
    )
    .await;
}

fn describe_configs(topic: &str, keys: Option<&[&str]>, synonyms: bool) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_include_synonyms(synonyms)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configuration_keys(
                keys.map(|k| k.iter().map(|k| s(k)).collect()),
            )])
}

/// The topic configs pubsub serves, as DescribeConfigs shows them.
const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "delete.retention.ms",
    "compression.type",
];

fn alter(
    topic: &str,
    configs: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(
                configs
                    .iter()
                    .map(|&(name, op, value)| {
                        AlterableConfig::default()
                            .with_name(s(name))
                            .with_config_operation(op)
                            .with_value(value.map(s))
                    })
                    .collect(),
            )])
}

/// DescribeConfigs (values, sources, synonyms, read-only and sensitive
/// flags) before and after IncrementalAlterConfigs, and the refusals.
async fn configs(p: &mut Probe) {
    create_topic(
        p,
        "tuned",
        1,
        &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
    )
    .await;
    p.call(
        "describe",
        describe_configs("tuned", Some(TOPIC_CONFIGS), false),
    )
    .await;
    p.call(
        "describe with synonyms",
        describe_configs("tuned", Some(TOPIC_CONFIGS), true),
    )
    .await;
    p.call(
        "describe an unknown key",
        describe_configs("tuned", Some(&["no.such.config"]), false),
    )
    .await;
    p.call(
        "describe a missing topic",
        describe_configs("missing", None, false),
    )
    .await;
    p.call(
        "alter: set, delete",
        alter(
            "tuned",
            &[
                ("max.message.bytes", 0, Some("4096")),
                ("retention.ms", 1, None),
            ],
            false,
        ),
    )
    .await;
    p.call(
        "describe after alter",
        describe_configs("tuned", Some(TOPIC_CONFIGS), true),
    )
    .await;
    p.call(
        "alter: validate only",
        alter("tuned", &[("segment.ms", 0, Some("60000"))], true),
    )
    .await;
    for (what, name, value) in [
        ("not a number", "retention.ms", "soon"),
        ("unknown key", "no.such.config", "1"),
        ("bad policy", "cleanup.policy", "shred"),
    ] {
        p.call(
            &format!("alter: {what}"),
            alter("tuned", &[(name, 0, Some(value))], false),
        )
        .await;
    }
    p.call(
        "alter a missing topic",
        alter("missing", &[("retention.ms", 0, Some("1000"))], false),
    )
    .await;
    p.call(
        "describe after refusals",
        describe_configs("tuned", Some(TOPIC_CONFIGS), false),
    )
    .await;
}

/// Waits until the group's coordinator answers (Kafka creates
/// `__consumer_offsets` on first use); unrecorded.
async fn await_coordinator(p: &mut Probe, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = p
            .quiet(FindCoordinatorRequest::default().with_key(s(group)))
            .await;
        // Kafka names the coordinator before it has loaded its partition of
        // `__consumer_offsets`; DescribeGroups answers once it has (from v6,
        // GROUP_ID_NOT_FOUND for a group not created yet: loaded too).
        if r.error_code == 0 {
            let d = p.quiet(describe_groups(&[group])).await;
            let loaded = |code: i16| code == 0 || code == ResponseError::GroupIdNotFound.code();
            if d.groups.iter().all(|g| loaded(g.error_code)) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {group}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (unrecorded) until `group` is in `state`: the other member's
/// request, sent on its own connection, has reached the coordinator.
async fn await_state(p: &mut Probe, group: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = p.quiet(describe_groups(&[group])).await;
        if d.groups.iter().all(|g| g.group_state.as_str() == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} never became {state}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sync(
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, Vec<i32>)],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, partitions)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(
                            pubsub_client::groups::encode_assignment(&BTreeMap::from([(
                                "shared".to_string(),
                                partitions.clone(),
                            )]))
                            .unwrap(),
                        )
                })
                .collect(),
        )
}

/// A second member joins a stable group: the first learns of the rebalance
/// from its heartbeat, both rejoin, the leader assigns, both sync; then
/// the second leaves. States, members, generations and assignments on the
/// way.
async fn group_rebalance(p: &mut Probe) {
    const G: &str = "pair";
    create_topic(p, "shared", 2, &[]).await;
    await_coordinator(p, G).await;
    let join_to = |member: &str| {
        let mut j = join(G, member);
        j.protocols[0].metadata =
            pubsub_client::groups::encode_subscription(&["shared".into()]).unwrap();
        j
    };
    let first = p.call("a joins without an id", join_to("")).await;
    let a = first.member_id.to_string();
    p.names.member(&a, "a");
    let gen1 = p.call("a joins", join_to(&a)).await.generation_id;
    p.call("a syncs alone", sync(G, gen1, &a, &[(&a, vec![0, 1])]))
        .await;
    let mut other = p.another_client().await;
    let jv = p.version::<JoinGroupRequest>();
    let b_first = other.call(jv, &join_to("")).await;
    p.record::<JoinGroupRequest>("b joins without an id", jv, &b_first);
    let b = b_first.member_id.to_string();
    p.names.member(&b, "b");
    // b's join waits for a to rejoin.
    let b_join = other.send(jv, &join_to(&b)).await;
    await_state(p, G, "PreparingRebalance").await;
    p.call("describe while b waits", describe_groups(&[G]))
        .await;
    p.call("a's heartbeat hears of it", heartbeat(G, gen1, &a))
        .await;
    p.call(
        "a commits in the old generation",
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(G)))
            .with_generation_id_or_member_epoch(gen1)
            .with_member_id(s(&a))
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name("shared"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(s("rebalancing")))])]),
    )
    .await;
    let a_rejoined = p.call("a rejoins", join_to(&a)).await;
    let b_joined = other.receive::<JoinGroupRequest>(b_join, jv).await;
    p.record::<JoinGroupRequest>("b's join completes", jv, &b_joined);
    let gen2 = a_rejoined.generation_id;
    p.call("describe before the leader syncs", describe_groups(&[G]))
        .await;
    let sv = p.version::<SyncGroupRequest>();
    // The follower's sync waits for the leader's.
    let b_sync = other.send(sv, &sync(G, gen2, &b, &[])).await;
    p.call(
        "a syncs as leader",
        sync(G, gen2, &a, &[(&a, vec![0]), (&b, vec![1])]),
    )
    .await;
    let b_synced = other.receive::<SyncGroupRequest>(b_sync, sv).await;
    p.record::<SyncGroupRequest>("b's sync completes", sv, &b_synced);
    p.call("describe when stable", describe_groups(&[G])).await;
    p.call("a's heartbeat, stable", heartbeat(G, gen2, &a))
        .await;
    let lv = p.version::<LeaveGroupRequest>();
    let left = other
        .call(
            lv,
            &LeaveGroupRequest::default()
                .with_group_id(GroupId(s(G)))
                .with_members(vec![MemberIdentity::default().with_member_id(s(&b))]),
        )
        .await;
    p.record::<LeaveGroupRequest>("b leaves", lv, &left);
    p.call("describe after b left", describe_groups(&[G])).await;
    p.call("a's heartbeat after b left", heartbeat(G, gen2, &a))
        .await;
}

fn join(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(
                pubsub_client::groups::encode_subscription(&["ledger".into()]).unwrap(),
            )])
}

fn commit(
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(i32, i64, &str)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("ledger"))
            .with_partitions(
                offsets
                    .iter()
                    .map(|&(partition, offset, meta)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(s(meta)))
                    })
                    .collect(),
            )])
}

fn offset_fetch(group: &str, partitions: Option<&[i32]>) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(partitions.map(|ps| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name("ledger"))
                .with_partition_indexes(ps.to_vec())]
        }))
}

fn describe_groups(groups: &[&str]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| GroupId(s(g))).collect())
}

fn heartbeat(group: &str, generation: i32, member: &str) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
}

/// One member through a group's life: join (member id required first),
/// sync, describe, heartbeats, commits with metadata, fetches, the
/// refusals, leave, delete.
async fn group_lifecycle(p: &mut Probe) {
    create_topic(p, "ledger", 2, &[]).await;
    await_coordinator(p, "auditors").await;
    p.call(
        "find coordinator",
        FindCoordinatorRequest::default().with_key(s("auditors")),
    )
    .await;
    p.call("describe before any member", describe_groups(&["auditors"]))
        .await;
    let first = p
        .call("join without a member id", join("auditors", ""))
        .await;
    let member = first.member_id.to_string();
    p.names.member(&member, "a");
    let joined = p
        .call("join with the member id", join("auditors", &member))
        .await;
    let generation = joined.generation_id;
    p.call("describe while syncing", describe_groups(&["auditors"]))
        .await;
    p.call(
        "sync with the wrong generation",
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("auditors")))
            .with_generation_id(generation + 5)
            .with_member_id(s(&member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range"))),
    )
    .await;
    p.call(
        "sync as leader",
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("auditors")))
            .with_generation_id(generation)
            .with_member_id(s(&member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(
                    pubsub_client::groups::encode_assignment(&BTreeMap::from([(
                        "ledger".to_string(),
                        vec![0, 1],
                    )]))
                    .unwrap(),
                )]),
    )
    .await;
    p.call(
        "describe when stable",
        describe_groups(&["auditors", "nobody"]),
    )
    .await;
    p.call("heartbeat", heartbeat("auditors", generation, &member))
        .await;
    p.call(
        "heartbeat with an old generation",
        heartbeat("auditors", generation - 1, &member),
    )
    .await;
    p.call(
        "heartbeat of an unknown member",
        heartbeat("auditors", generation, "stranger"),
    )
    .await;
    p.call(
        "commit with metadata",
        commit(
            "auditors",
            generation,
            &member,
            &[(0, 3, "checkpoint-1"), (1, 0, "")],
        ),
    )
    .await;
    p.call(
        "commit to a missing partition",
        commit("auditors", generation, &member, &[(7, 1, "x")]),
    )
    .await;
    p.call(
        "commit with a stale generation",
        commit("auditors", generation + 3, &member, &[(0, 4, "late")]),
    )
    .await;
    p.call(
        "commit as an unknown member",
        commit("auditors", generation, "stranger", &[(0, 4, "late")]),
    )
    .await;
    p.call("fetch all offsets", offset_fetch("auditors", None))
        .await;
    p.call(
        "fetch some offsets, one never committed",
        offset_fetch("auditors", Some(&[0, 1, 5])),
    )
    .await;
    p.call(
        "leave",
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s("auditors")))
            .with_members(vec![MemberIdentity::default().with_member_id(s(&member))]),
    )
    .await;
    p.call("describe after leaving", describe_groups(&["auditors"]))
        .await;
    p.call(
        "commit by a simple consumer (no generation)",
        commit("auditors", -1, "", &[(1, 9, "manual")]),
    )
    .await;
    p.call("fetch offsets when empty", offset_fetch("auditors", None))
        .await;
    p.call("list groups", ListGroupsRequest::default()).await;
    p.call(
        "delete the group and a missing one",
        DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(s("auditors")), GroupId(s("nobody"))]),
    )
    .await;
    p.call("fetch offsets after delete", offset_fetch("auditors", None))
        .await;
    p.call("describe after delete", describe_groups(&["auditors"]))
        .await;
}

/// InitProducerId, sequenced batches, a duplicate and a gap.
async fn idempotent_producer(p: &mut Probe) {
    create_topic(p, "exactly", 1, &[]).await;
    p.call(
        "init with an empty transactional id",
        InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(""))))
            .with_transaction_timeout_ms(60_000),
    )
    .await;
    let init_req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Kafka answers COORDINATOR_LOAD_IN_PROGRESS while it fetches its
    // first block of producer ids; clients retry that.
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.quiet(init_req.clone()).await.error_code == 14 {
        assert!(Instant::now() < deadline, "no producer id block");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let init = p.call("init producer id", init_req).await;
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    p.names.producer(pid, "1");
    let seq = |base: i32, values: &[&str]| {
        let records: Vec<Rec<'_>> = values.iter().map(|v| rec(T0, None, Some(v))).collect();
        batch_of(BatchBuilder::new().producer(pid, epoch, base), &records)
    };
    p.call(
        "sequence 0-1",
        produce_req("exactly", 0, -1, seq(0, &["a", "b"])),
    )
    .await;
    p.call("sequence 2", produce_req("exactly", 0, -1, seq(2, &["c"])))
        .await;
    p.call(
        "sequence 2 again (duplicate)",
        produce_req("exactly", 0, -1, seq(2, &["c"])),
    )
    .await;
    p.call(
        "sequence 5 (gap)",
        produce_req("exactly", 0, -1, seq(5, &["f"])),
    )
    .await;
    p.call(
        "an unknown producer id",
        produce_req(
            "exactly",
            0,
            -1,
            batch_of(
                BatchBuilder::new().producer(pid + 1000, 0, 0),
                &[rec(T0, None, Some("z"))],
            ),
        ),
    )
    .await;
    fetch(p, "fetch", "exactly", 0, 0).await;
}

/// Retention: records with timestamps long past on a topic that keeps
/// 1 s: once the broker's check ran, the log starts at the high watermark.
async fn retention(p: &mut Probe) {
    create_topic(p, "fleeting", 1, &[("retention.ms", "1000")]).await;
    // One batch: the records are expired as soon as they are written, so a
    // retention pass may run between two produce requests, and the log start
    // offset in their answers would depend on when it did.
    p.call(
        "produce 3",
        produce_req(
            "fleeting",
            0,
            1,
            batch(&[
                rec(T0, None, Some("r0")),
                rec(T0 + 1, None, Some("r1")),
                rec(T0 + 2, None, Some("r2")),
            ]),
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = p.quiet(list_offsets("fleeting", &[(0, -2)])).await;
        if r.topics[0].partitions[0].offset > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "retention never ran: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    offsets(
        p,
        "fleeting",
        0,
        &[("earliest", -2), ("latest", -1), ("by time", T0)],
    )
    .await;
    fetch(p, "fetch from 0", "fleeting", 0, 0).await;
    fetch(p, "fetch at the log start", "fleeting", 0, 3).await;
    p.call(
        "produce after retention",
        produce_req("fleeting", 0, 1, batch(&[rec(T0 + 9, None, Some("late"))])),
    )
    .await;
}

fn delete_records_req(topic: &str, partition: i32, offset: i64) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])])
}

/// DeleteRecords: the new log start offset, what ListOffsets and Fetch see
/// below it, and the refusals.
async fn delete_records(p: &mut Probe) {
    create_topic(p, "trimmed", 1, &[]).await;
    let values: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    let records: Vec<Rec<'_>> = values.iter().map(|v| rec(T0, None, Some(v))).collect();
    p.call("produce 5", produce_req("trimmed", 0, 1, batch(&records)))
        .await;
    p.call("delete below 2", delete_records_req("trimmed", 0, 2))
        .await;
    offsets(
        p,
        "trimmed",
        0,
        &[("earliest", -2), ("latest", -1), ("by time", T0)],
    )
    .await;
    fetch(p, "fetch from 0", "trimmed", 0, 0).await;
    fetch(p, "fetch from 2", "trimmed", 0, 2).await;
    p.call(
        "delete below 1 (behind)",
        delete_records_req("trimmed", 0, 1),
    )
    .await;
    p.call("delete past the end", delete_records_req("trimmed", 0, 9))
        .await;
    p.call(
        "delete to the end (-1)",
        delete_records_req("trimmed", 0, -1),
    )
    .await;
    p.call(
        "delete on a missing partition",
        delete_records_req("trimmed", 4, 1),
    )
    .await;
    offsets(p, "trimmed", 0, &[("earliest after all", -2)]).await;
}

/// A Fetch in session `id` at `epoch` of `parts` (partition, offset) of
/// `topic`, dropping `forgotten` partitions from the session.
fn session_fetch(
    id: i32,
    epoch: i32,
    topic: &str,
    parts: &[(i32, i64)],
    forgotten: &[i32],
) -> FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    let topics = if parts.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                parts
                    .iter()
                    .map(|&(partition, offset)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_current_leader_epoch(-1)
                            .with_fetch_offset(offset)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]
    };
    let forgotten = if forgotten.is_empty() {
        vec![]
    } else {
        vec![ForgottenTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(forgotten.to_vec())]
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// Sends a session fetch and records its answer with the records decoded;
/// returns the answer's session id.
async fn session_step(p: &mut Probe, step: &str, req: FetchRequest) -> i32 {
    observe_fetch(p, step, "Fetch", req).await
}

/// Fetch sessions (KIP-227): which partitions a full and then incremental
/// answers carry (new records, a moved log start offset, nothing for a
/// partition that did not change or was forgotten), and the session errors
/// (wrong epoch, unknown session, closed session).
async fn fetch_sessions(p: &mut Probe) {
    let t = "sessions";
    create_topic(p, t, 3, &[]).await;
    for partition in [0, 1] {
        p.call(
            &format!("produce to {partition}"),
            produce_req(t, partition, -1, batch(&[rec(T0, None, Some("a"))])),
        )
        .await;
    }
    let all = [(0, 0), (1, 0), (2, 0)];
    let id = session_step(
        p,
        "full fetch opens a session",
        session_fetch(0, 0, t, &all, &[]),
    )
    .await;
    assert!(id > 0, "a session was opened");
    session_step(
        p,
        "incremental: 0 and 1 moved on, nothing new",
        session_fetch(id, 1, t, &[(0, 1), (1, 1)], &[]),
    )
    .await;
    p.call(
        "produce to 2",
        produce_req(t, 2, -1, batch(&[rec(T0, None, Some("b"))])),
    )
    .await;
    session_step(
        p,
        "incremental: only 2 has records",
        session_fetch(id, 2, t, &[], &[]),
    )
    .await;
    session_step(
        p,
        "incremental: 2 moved on and 1 forgotten",
        session_fetch(id, 3, t, &[(2, 1)], &[1]),
    )
    .await;
    p.call(
        "produce to 1 again",
        produce_req(t, 1, -1, batch(&[rec(T0, None, Some("c"))])),
    )
    .await;
    p.call("delete records of 0", delete_records_req(t, 0, 1))
        .await;
    session_step(
        p,
        "incremental: 0's log start moved, 1 is not in the session",
        session_fetch(id, 4, t, &[], &[]),
    )
    .await;
    session_step(
        p,
        "incremental at a wrong epoch",
        session_fetch(id, 9, t, &[], &[]),
    )
    .await;
    session_step(
        p,
        "incremental of an unknown session",
        session_fetch(id.wrapping_add(1), 1, t, &[], &[]),
    )
    .await;
    session_step(
        p,
        "incremental after the error, at the right epoch",
        session_fetch(id, 5, t, &[(1, 0)], &[]),
    )
    .await;
    session_step(
        p,
        "final epoch closes the session",
        session_fetch(id, -1, t, &[(0, 1), (1, 0), (2, 1)], &[]),
    )
    .await;
    session_step(
        p,
        "incremental of the closed session",
        session_fetch(id, 6, t, &[], &[]),
    )
    .await;
}

/// The response budget across partitions (Kafka's minOneMessage): only the
/// first partition with records may exceed `max_bytes` with a whole first
/// batch; a later one whose first batch does not fit the room left gets
/// none, and gets it when it is the first. A partition named twice in one
/// request is answered once, from its last position.
async fn fetch_budgets(p: &mut Probe) {
    let t = "budgets";
    create_topic(p, t, 2, &[]).await;
    let small = batch(&[rec(T0, Some("s"), Some("small"))]);
    let big_value = "b".repeat(3000);
    let big = batch(&[rec(T0, Some("b"), Some(&big_value))]);
    let room = (small.len() + 500) as i32;
    p.call("produce a small batch to 0", produce_req(t, 0, -1, small))
        .await;
    p.call("produce a big batch to 1", produce_req(t, 1, -1, big))
        .await;
    let mut req = session_fetch(0, -1, t, &[(0, 0), (1, 0)], &[]);
    req.max_bytes = room;
    session_step(p, "the big batch does not fit after the small one", req).await;
    let mut req = session_fetch(0, -1, t, &[(0, 1), (1, 0)], &[]);
    req.max_bytes = room;
    session_step(
        p,
        "the big batch comes whole as the first with records",
        req,
    )
    .await;
    let mut req = session_fetch(0, -1, t, &[(1, 0), (0, 0)], &[]);
    req.max_bytes = 1;
    session_step(p, "only the first partition exceeds a 1-byte budget", req).await;
    let req = session_fetch(0, -1, t, &[(0, 0), (1, 0), (0, 1)], &[]);
    session_step(p, "a partition named twice", req).await;
}

fn end_txn(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

fn add_partitions(
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    p: i32,
) -> AddPartitionsToTxnRequest {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![p])])
}

/// The transaction coordinator's answers, good and bad: InitProducerId with
/// a transactional id (and a timeout over the maximum), EndTxn without a
/// transaction, with a stale epoch, with another producer id, commit, a
/// retried commit, abort after commit; AddPartitionsToTxn of an unknown
/// topic; AddOffsetsToTxn; the COMMIT markers' offsets.
async fn transactions(p: &mut Probe) {
    create_topic(p, "txn", 2, &[]).await;
    let id = "dtx";
    let init_req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Kafka creates `__transaction_state` at the first request and answers
    // COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE /
    // NOT_COORDINATOR meanwhile (all retriable).
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(
        p.quiet(
            FindCoordinatorRequest::default()
                .with_key(s(id))
                .with_key_type(1)
        )
        .await
        .error_code,
        14..=16
    ) {
        assert!(Instant::now() < deadline, "no transaction coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = loop {
        let r = p.quiet(init_req.clone()).await;
        if !matches!(r.error_code, 14..=16 | 51) {
            break r;
        }
        assert!(Instant::now() < deadline, "no producer id: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.error_code, 0, "{first:?}");
    let pid = first.producer_id.0;
    p.names.producer(pid, "1");
    let init = p.call("init again (a new epoch)", init_req.clone()).await;
    let epoch = init.producer_epoch;
    p.call(
        "init with a timeout above the maximum",
        init_req.clone().with_transaction_timeout_ms(900_001),
    )
    .await;
    p.call("end without a transaction", end_txn(id, pid, epoch, true))
        .await;
    p.call_at(
        "add a partition of an unknown topic",
        3,
        add_partitions(id, pid, epoch, "txn-nope", 0),
    )
    .await;
    p.call_at(
        "add with a stale epoch",
        3,
        add_partitions(id, pid, epoch - 1, "txn", 0),
    )
    .await;
    p.call_at(
        "add partition 0",
        3,
        add_partitions(id, pid, epoch, "txn", 0),
    )
    .await;
    p.call_at(
        "add partition 1",
        3,
        add_partitions(id, pid, epoch, "txn", 1),
    )
    .await;
    p.call(
        "add offsets of a group",
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("txn-group"))),
    )
    .await;
    p.call("end with a stale epoch", end_txn(id, pid, epoch - 1, true))
        .await;
    p.call(
        "end with another producer id",
        end_txn(id, pid + 1, epoch, true),
    )
    .await;
    p.call(
        "end with an unknown transactional id",
        end_txn("dtx-nobody", pid, epoch, true),
    )
    .await;
    p.call("commit", end_txn(id, pid, epoch, true)).await;
    // Kafka writes the markers after answering: retry until it is done.
    while p.quiet(end_txn(id, pid, epoch, true)).await.error_code == 51 {
        assert!(Instant::now() < deadline, "the commit never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.call("commit again (a retry)", end_txn(id, pid, epoch, true))
        .await;
    p.call("abort after the commit", end_txn(id, pid, epoch, false))
        .await;
    offsets(p, "txn", 0, &[("latest", -1)]).await;
    offsets(p, "txn", 1, &[("latest", -1)]).await;
}

fn txn_offset_commit(
    id: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    (generation, member): (i32, &str),
    topic: &str,
    offset: i64,
) -> TxnOffsetCommitRequest {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_group_id(GroupId(s(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(s("m")))])])
}

/// OffsetFetch of partition 0 of `topic`, with `require_stable`.
fn stable_fetch(group: &str, topic: &str, require_stable: bool) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![0])]))
}

/// Waits until an OffsetFetch with `require_stable` of the group answers
/// without error: Kafka creates and loads its coordinator at first use
/// (FindCoordinator) and completes a
/// transaction's offsets after answering EndTxn.
async fn settle_offsets(p: &mut Probe, group: &str, topic: &str, deadline: Instant) {
    loop {
        // On Kafka, FindCoordinator creates `__consumer_offsets`.
        p.quiet(FindCoordinatorRequest::default().with_key(s(group)))
            .await;
        let r = p.quiet(stable_fetch(group, topic, true)).await;
        let partition = r.topics.first().and_then(|t| t.partitions.first());
        if r.error_code == 0 && partition.is_some_and(|p| p.error_code == 0) {
            return;
        }
        assert!(Instant::now() < deadline, "offsets never stable: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// TxnOffsetCommit (KIP-98, KIP-447): refused with a stale epoch, for an unknown topic and for an unknown group with a
/// generation; pending (UNSTABLE_OFFSET_COMMIT with `require_stable`, the
/// old offset without) until the commit, visible after; an aborted one
/// dropped.
async fn transactional_offsets(p: &mut Probe) {
    let t = "txo";
    create_topic(p, t, 1, &[]).await;
    let id = "dtxo";
    let group = "txo-group";
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = init_txn(p, id, "1", deadline).await;
    let pid = first.pid;
    let me = (pid, first.epoch);
    let plain = (-1, "");
    // A Kafka group coordinator loads its partition at first use.
    settle_offsets(p, group, t, deadline).await;
    p.call_at("add partition 0", 3, add_partitions(id, pid, me.1, t, 0))
        .await;
    // Offsets of a group not added with AddOffsetsToTxn: version 4 is
    // refused; version 5 (transaction version 2) adds the group's
    // partition itself, on both brokers.
    p.call_at(
        "commit offsets of a group not added, v4",
        4,
        txn_offset_commit(id, me, group, plain, t, 4),
    )
    .await;
    p.call_at(
        "commit offsets of a group not added, v5 (joins it)",
        5,
        txn_offset_commit(id, me, group, plain, t, 4),
    )
    .await;
    p.call(
        "add offsets of the group",
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(me.1)
            .with_group_id(GroupId(s(group))),
    )
    .await;
    p.call(
        "commit offsets with a stale epoch",
        txn_offset_commit(id, (pid, me.1 - 1), group, plain, t, 5),
    )
    .await;
    p.call(
        "commit offsets of an unknown topic",
        txn_offset_commit(id, me, group, plain, "txo-nope", 5),
    )
    .await;
    p.call(
        "commit offsets of an unknown group with a generation",
        txn_offset_commit(id, me, group, (3, "someone"), t, 5),
    )
    .await;
    p.call(
        "commit offsets",
        txn_offset_commit(id, me, group, plain, t, 5),
    )
    .await;
    p.call(
        "fetch while pending, require_stable",
        stable_fetch(group, t, true),
    )
    .await;
    p.call("fetch while pending", stable_fetch(group, t, false))
        .await;
    p.call("commit", end_txn(id, pid, me.1, true)).await;
    // EndTxn v5 (transaction version 2) bumps the epoch: a retry answers
    // the one to go on with.
    let me = loop {
        let r = p.quiet(end_txn(id, pid, me.1, true)).await;
        if r.error_code != 51 {
            assert_eq!(r.error_code, 0, "the commit's retry: {r:?}");
            break (pid, r.producer_epoch);
        }
        assert!(Instant::now() < deadline, "the commit never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    settle_offsets(p, group, t, deadline).await;
    p.call("fetch after the commit", stable_fetch(group, t, true))
        .await;
    p.call(
        "add offsets again",
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(me.1)
            .with_group_id(GroupId(s(group))),
    )
    .await;
    p.call(
        "commit offsets to abort",
        txn_offset_commit(id, me, group, plain, t, 9),
    )
    .await;
    p.call("abort", end_txn(id, pid, me.1, false)).await;
    while p.quiet(end_txn(id, pid, me.1, false)).await.error_code == 51 {
        assert!(Instant::now() < deadline, "the abort never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settle_offsets(p, group, t, deadline).await;
    p.call("fetch after the abort", stable_fetch(group, t, true))
        .await;
}

/// A transactional producer of the scenarios: its id, its
/// producer id and epoch, and its next sequence number.
struct Txn {
    id: &'static str,
    pid: i64,
    epoch: i16,
    seq: i32,
}

/// InitProducerId for `id` once its coordinator answers; the producer is
/// named `name` in the recorded answers.
async fn init_txn(p: &mut Probe, id: &'static str, name: &str, deadline: Instant) -> Txn {
    init_txn_timing_out(p, id, name, 60_000, deadline).await
}

/// [`init_txn`] with the transaction timeout `timeout_ms`.
async fn init_txn_timing_out(
    p: &mut Probe,
    id: &'static str,
    name: &str,
    timeout_ms: i32,
    deadline: Instant,
) -> Txn {
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    loop {
        let coordinator = p
            .quiet(
                FindCoordinatorRequest::default()
                    .with_key(s(id))
                    .with_key_type(1),
            )
            .await;
        if coordinator.error_code == 0 {
            let r = p.quiet(init.clone()).await;
            if !matches!(r.error_code, 14..=16 | 51) {
                assert_eq!(r.error_code, 0, "{r:?}");
                p.names.producer(r.producer_id.0, name);
                return Txn {
                    id,
                    pid: r.producer_id.0,
                    epoch: r.producer_epoch,
                    seq: 0,
                };
            }
        }
        assert!(Instant::now() < deadline, "no transaction coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds `topic`-0 to the producer's transaction (AddPartitionsToTxn v3)
/// and produces `values` there in one transactional batch.
async fn txn_write(p: &mut Probe, step: &str, txn: &mut Txn, topic: &str, values: &[&str]) {
    p.call_at(
        &format!("{step}: add the partition"),
        3,
        add_partitions(txn.id, txn.pid, txn.epoch, topic, 0),
    )
    .await;
    let records: Vec<Rec<'_>> = values.iter().map(|v| rec(T0, None, Some(v))).collect();
    let builder = BatchBuilder::new()
        .producer(txn.pid, txn.epoch, txn.seq)
        .transactional(true);
    txn.seq += values.len() as i32;
    let req = produce_req(topic, 0, -1, batch_of(builder, &records))
        .with_transactional_id(Some(TransactionalId(s(txn.id))));
    p.call(step, req).await;
}

/// Ends the producer's transaction and waits until its markers are
/// written (Kafka writes them after answering); the producer goes on at
/// the epoch the answer gives (EndTxn v5 bumps it).
async fn txn_end(p: &mut Probe, step: &str, txn: &mut Txn, commit: bool, deadline: Instant) {
    p.call(step, end_txn(txn.id, txn.pid, txn.epoch, commit))
        .await;
    loop {
        let r = p.quiet(end_txn(txn.id, txn.pid, txn.epoch, commit)).await;
        if r.error_code != 51 {
            assert_eq!(r.error_code, 0, "{step}, retried: {r:?}");
            if r.producer_epoch >= 0 && r.producer_epoch != txn.epoch {
                txn.epoch = r.producer_epoch;
                txn.seq = 0;
            }
            return;
        }
        assert!(Instant::now() < deadline, "{step} never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A read_committed Fetch of `topic`-0 from `offset` with `max_bytes`
/// (the request's and the partition's budget): the answer (last stable
/// offset, high watermark, aborted transactions) and the records decoded.
async fn fetch_committed(p: &mut Probe, step: &str, topic: &str, offset: i64, max_bytes: i32) {
    let mut req = crate::client::fetch_request(topic, 0, offset, 0, max_bytes);
    req.isolation_level = 1;
    observe_fetch(p, step, "read_committed Fetch", req).await;
}

/// read_committed Fetch over committed, aborted and open transactions of
/// two producers between plain records, from several offsets (the start,
/// inside a transaction, at an open one) and with budgets that cut inside
/// a transaction (1 byte: the first batch alone; a few batches), before
/// and after the open transactions end: the records, the aborted
/// transactions listed, the last stable offset and the high watermark.
async fn read_committed(p: &mut Probe) {
    let t = "rc";
    create_topic(p, t, 1, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut a = init_txn(p, "drc-a", "a", deadline).await;
    let mut b = init_txn(p, "drc-b", "b", deadline).await;
    let plain = batch(&[rec(T0, None, Some("p0")), rec(T0, None, Some("p1"))]);
    p.call("plain records (0-1)", produce_req(t, 0, -1, plain))
        .await;
    txn_write(p, "a writes (2-4)", &mut a, t, &["a0", "a1", "a2"]).await;
    txn_write(p, "b writes (5-6)", &mut b, t, &["b0", "b1"]).await;
    txn_end(p, "a commits (7)", &mut a, true, deadline).await;
    txn_end(p, "b aborts (8)", &mut b, false, deadline).await;
    txn_write(p, "b writes again (9)", &mut b, t, &["b2"]).await;
    let plain = batch(&[rec(T0, None, Some("p2")), rec(T0, None, Some("p3"))]);
    p.call("plain records (10-11)", produce_req(t, 0, -1, plain))
        .await;
    txn_write(p, "a writes again (12-13)", &mut a, t, &["a3", "a4"]).await;
    let budgets = [("1 byte", 1), ("200 bytes", 200), ("1 MiB", 1 << 20)];
    let two_open = [0, 2, 5, 6, 8, 9, 11];
    for offset in two_open {
        for (what, bytes) in budgets {
            let step = format!("two open: from {offset}, {what}");
            fetch_committed(p, &step, t, offset, bytes).await;
        }
    }
    txn_end(p, "b aborts again (14)", &mut b, false, deadline).await;
    for offset in [0, 5, 9, 10, 12] {
        for (what, bytes) in budgets {
            let step = format!("a open: from {offset}, {what}");
            fetch_committed(p, &step, t, offset, bytes).await;
        }
    }
    txn_end(p, "a commits again (15)", &mut a, true, deadline).await;
    for offset in [0, 5, 9, 12, 14, 16] {
        for (what, bytes) in budgets {
            let step = format!("all ended: from {offset}, {what}");
            fetch_committed(p, &step, t, offset, bytes).await;
        }
    }
}

/// A transactional batch of one record `value` from `(pid, epoch)` at
/// `sequence`, to `topic`'s `partition`, for transactional id `id`.
fn txn_produce(
    id: &str,
    (pid, epoch): (i64, i16),
    topic: &str,
    partition: i32,
    sequence: i32,
    value: &str,
) -> ProduceRequest {
    let records = batch_of(
        BatchBuilder::new()
            .producer(pid, epoch, sequence)
            .transactional(true),
        &[rec(T0, None, Some(value))],
    );
    produce_req(topic, partition, -1, records).with_transactional_id(Some(TransactionalId(s(id))))
}

/// Transactional writes the coordinator refuses, at each Produce version
/// whose answer differs (KIP-890): a partition not in the transaction,
/// before any transaction and after one ended, at versions 10 (the
/// pre-KIP-890 code), 11 (the abortable error) and 12 (transaction
/// version 2: the write adds its partition); a stale epoch after EndTxn 5
/// bumped it.
async fn transactional_produce_versions(p: &mut Probe) {
    let t = "txp";
    create_topic(p, t, 3, &[]).await;
    let id = "dtxp";
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = init_txn(p, id, "1", deadline).await;
    let pid = first.pid;
    let me = (pid, first.epoch);
    for v in [10, 11] {
        p.call_at(
            &format!("write before any transaction, v{v}"),
            v,
            txn_produce(id, me, t, 0, 0, "early"),
        )
        .await;
    }
    p.call_at("add partition 0", 3, add_partitions(id, pid, me.1, t, 0))
        .await;
    p.call_at(
        "write to the added partition, v11",
        11,
        txn_produce(id, me, t, 0, 0, "a"),
    )
    .await;
    for v in [10, 11] {
        p.call_at(
            &format!("write to a partition not added, v{v}"),
            v,
            txn_produce(id, me, t, 1, 0, "b"),
        )
        .await;
    }
    p.call_at(
        "write to a partition not added, v12 (joins it)",
        12,
        txn_produce(id, me, t, 2, 0, "c"),
    )
    .await;
    p.call("commit", end_txn(id, pid, me.1, true)).await;
    let bumped = loop {
        let r = p.quiet(end_txn(id, pid, me.1, true)).await;
        if r.error_code != 51 {
            assert_eq!(r.error_code, 0, "the commit's retry: {r:?}");
            break (pid, r.producer_epoch);
        }
        assert!(Instant::now() < deadline, "the commit never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for v in [10, 11] {
        p.call_at(
            &format!("write after the commit, v{v}"),
            v,
            txn_produce(id, bumped, t, 0, 1, "late"),
        )
        .await;
    }
    for v in [10, 11, 12] {
        p.call_at(
            &format!("write with the epoch before the commit, v{v}"),
            v,
            txn_produce(id, me, t, 0, 1, "stale"),
        )
        .await;
    }
    offsets(p, t, 0, &[("latest", -1)]).await;
    offsets(p, t, 1, &[("latest", -1)]).await;
    offsets(p, t, 2, &[("latest", -1)]).await;
}

/// A transaction the coordinator aborts at its timeout (3 s, room for a
/// slow first write on a loaded machine; Kafka looks for timed-out
/// transactions every half second in this suite, pubsub at every tick),
/// and what its producer then meets, still at the epoch it wrote with: EndTxn
/// commit at transaction version 2 (the epoch bumped by the abort reads as
/// a retry's, and a commit after an abort is INVALID_TXN_STATE) and at
/// version 1 (a stale epoch), a write, EndTxn abort (a retry of the abort),
/// and InitProducerId naming the producer id and that epoch (KIP-360, as a
/// producer sends it to bump its own epoch after an abortable error).
async fn transaction_timeout(p: &mut Probe) {
    let t = "tto";
    create_topic(p, t, 1, &[]).await;
    let id = "dtto";
    let deadline = Instant::now() + Duration::from_secs(60);
    let txn = init_txn_timing_out(p, id, "1", 3_000, deadline).await;
    let me = (txn.pid, txn.epoch);
    p.call_at(
        "write (joins the partition)",
        12,
        txn_produce(id, me, t, 0, 0, "a"),
    )
    .await;
    let describe =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(id))]);
    loop {
        let r = p.quiet(describe.clone()).await;
        let state = r
            .transaction_states
            .first()
            .map(|s| s.transaction_state.to_string());
        if state.as_deref() == Some("CompleteAbort") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the transaction never timed out: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.call("aborted at the timeout", describe).await;
    p.call_at("commit, v5", 5, end_txn(id, me.0, me.1, true))
        .await;
    p.call_at("commit, v4", 4, end_txn(id, me.0, me.1, true))
        .await;
    p.call_at("write again", 12, txn_produce(id, me, t, 0, 1, "b"))
        .await;
    p.call_at("abort, v5", 5, end_txn(id, me.0, me.1, false))
        .await;
    let recover = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(me.0))
        .with_producer_epoch(me.1);
    p.call("InitProducerId with the producer's id and epoch", recover)
        .await;
    offsets(p, t, 0, &[("latest", -1)]).await;
}
