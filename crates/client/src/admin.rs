//! Admin calls about topics: metadata, creation and deletion, configs,
//! offsets by position or time, and sizes on disk.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeLogDirsRequest, IncrementalAlterConfigsRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, TopicInfo};
use crate::connection::Connection;
use crate::error::{check, check_topic, ClientError, Result};

/// A protocol topic name.
pub(crate) fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Metadata of the given topics (all topics for `None`), never creating one.
pub async fn metadata(conn: &mut Connection, topics: Option<&[&str]>) -> Result<MetadataResponse> {
    let v = conn.versions().pick::<MetadataRequest>(1..=12)?;
    let mut req = MetadataRequest::default().with_topics(topics.map(|ts| {
        ts.iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
            .collect()
    }));
    if v >= 4 {
        req = req.with_allow_auto_topic_creation(false);
    }
    conn.call(v, &req).await
}

/// `topic`'s partitions, after creating it with `partitions` (-1: the
/// broker's default) if it does not exist; a concurrent creation is fine.
pub async fn ensure_topic(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
) -> Result<TopicInfo> {
    match cluster.topic(topic).await {
        Err(ClientError::UnknownTopic(_)) => {}
        known => return known,
    }
    match create_topic(cluster.bootstrap()?, topic, partitions, &[]).await {
        Ok(())
        | Err(ClientError::Kafka {
            error: ResponseError::TopicAlreadyExists,
            ..
        }) => cluster.created_topic(topic).await,
        Err(e) => Err(e),
    }
}

/// Creates a topic; TOPIC_ALREADY_EXISTS is an error like any other.
pub async fn create_topic(
    conn: &mut Connection,
    topic: &str,
    partitions: i32,
    configs: &[(String, String)],
) -> Result<()> {
    let v = conn.versions().pick::<CreateTopicsRequest>(2..=7)?;
    let req = create_topics_request(topic, partitions, configs);
    let resp = conn.call(v, &req).await?;
    let t = resp
        .topics
        .first()
        .ok_or_else(|| ClientError::Other(format!("no answer for topic {topic}")))?;
    check(
        t.error_code,
        || format!("creating topic {topic}"),
        t.error_message.as_deref(),
    )
}

/// A request creating `topic` with `partitions` (-1: the broker's default)
/// and the given settings, replicated as the broker defaults.
pub fn create_topics_request<K: AsRef<str>, V: AsRef<str>>(
    topic: &str,
    partitions: i32,
    configs: &[(K, V)],
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, val)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.as_ref().to_string()))
                            .with_value(Some(StrBytes::from_string(val.as_ref().to_string())))
                    })
                    .collect(),
            )])
}

/// Deletes topics; the first refusal is the error.
pub async fn delete_topics(conn: &mut Connection, topics: &[&str]) -> Result<()> {
    let v = conn.versions().pick::<DeleteTopicsRequest>(1..=5)?;
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topic_names(topics.iter().map(|t| name(t)).collect());
    let resp = conn.call(v, &req).await?;
    for r in &resp.responses {
        let topic = r.name.as_deref().map(|n| n.as_str()).unwrap_or("?");
        check_topic(
            r.error_code,
            topic,
            || format!("deleting topic {topic}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

/// One configuration entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key, e.g. `retention.ms`.
    pub name: String,
    /// Value (`None` when sensitive or unset).
    pub value: Option<String>,
    /// Where the value comes from: `topic`, `broker`, `default`, ...
    pub source: &'static str,
    /// The broker does not let it be changed.
    pub read_only: bool,
}

/// Every configuration entry of `topic`.
pub async fn describe_topic_configs(
    conn: &mut Connection,
    topic: &str,
) -> Result<Vec<ConfigEntry>> {
    let v = conn.versions().pick::<DescribeConfigsRequest>(1..=4)?;
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None)]);
    let resp = conn.call(v, &req).await?;
    let r = resp
        .results
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Other(format!("no configs for topic {topic}")))?;
    check_topic(
        r.error_code,
        topic,
        || format!("describing the configs of topic {topic}"),
        r.error_message.as_deref(),
    )?;
    let mut entries: Vec<ConfigEntry> = r
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source(c.config_source),
            read_only: c.read_only,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn config_source(code: i8) -> &'static str {
    match code {
        1 => "topic",
        2 | 3 => "broker",
        4 => "static-broker",
        5 => "default",
        6 => "logger",
        _ => "unknown",
    }
}

/// Sets and removes topic configs (IncrementalAlterConfigs): `set` pairs
/// are SET, `delete` keys return to the broker default.
pub async fn alter_topic_configs(
    conn: &mut Connection,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<()> {
    let v = conn
        .versions()
        .pick::<IncrementalAlterConfigsRequest>(0..=1)?;
    let sb = |s: &str| StrBytes::from_string(s.to_string());
    let configs = set
        .iter()
        .map(|(k, val)| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(0)
                .with_value(Some(sb(val)))
        })
        .chain(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(1)
                .with_value(None)
        }))
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(sb(topic))
            .with_configs(configs),
    ]);
    let resp = conn.call(v, &req).await?;
    for r in &resp.responses {
        check_topic(
            r.error_code,
            topic,
            || format!("altering the configs of topic {topic}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset.
    Earliest,
    /// The log end offset (the next offset to be written).
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the
    /// epoch); the log end offset if there is none.
    Time(i64),
}

impl OffsetQuery {
    fn timestamp(self) -> i64 {
        match self {
            OffsetQuery::Earliest => -2,
            OffsetQuery::Latest => -1,
            OffsetQuery::Time(ts) => ts,
        }
    }
}

/// Offsets of `partitions` of `topic`, asked of each partition's leader.
/// A time with no later record answers the log end offset.
pub async fn list_offsets(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    query: OffsetQuery,
) -> Result<BTreeMap<i32, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &p in partitions {
        let leader = topic.leader(p).ok_or_else(|| {
            ClientError::Other(format!("topic {} has no partition {p}", topic.name))
        })?;
        by_leader.entry(leader).or_default().push(p);
    }
    let mut out = BTreeMap::new();
    for (leader, ps) in by_leader {
        let conn = cluster.node(leader).await?;
        let v = conn.versions().pick::<ListOffsetsRequest>(1..=7)?;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name(&topic.name))
                .with_partitions(
                    ps.iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(query.timestamp())
                        })
                        .collect(),
                )]);
        let resp = conn.call(v, &req).await?;
        for t in resp.topics {
            for p in t.partitions {
                check(
                    p.error_code,
                    || format!("listing offsets of {}-{}", topic.name, p.partition_index),
                    None,
                )?;
                out.insert(p.partition_index, p.offset);
            }
        }
    }
    if let OffsetQuery::Time(_) = query {
        // No record at or after the time: consume from the end.
        let missing: Vec<i32> = out
            .iter()
            .filter(|(_, &o)| o < 0)
            .map(|(&p, _)| p)
            .collect();
        if !missing.is_empty() {
            let ends =
                Box::pin(list_offsets(cluster, topic, &missing, OffsetQuery::Latest)).await?;
            out.extend(ends);
        }
    }
    Ok(out)
}

/// Where each of `partitions` would start for `query` or, with `offset`,
/// at that offset: partition -> (wanted, start), `start` being `wanted`
/// kept within the partition's earliest..=latest offsets.
pub async fn start_offsets(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    query: OffsetQuery,
    offset: Option<i64>,
) -> Result<BTreeMap<i32, (i64, i64)>> {
    let earliest = list_offsets(cluster, topic, partitions, OffsetQuery::Earliest).await?;
    let latest = list_offsets(cluster, topic, partitions, OffsetQuery::Latest).await?;
    let wanted = match offset {
        Some(o) => partitions.iter().map(|&p| (p, o)).collect(),
        None => list_offsets(cluster, topic, partitions, query).await?,
    };
    Ok(wanted
        .into_iter()
        .map(|(p, o)| {
            let lo = earliest.get(&p).copied().unwrap_or(0);
            let hi = latest.get(&p).copied().unwrap_or(lo).max(lo);
            (p, (o, o.clamp(lo, hi)))
        })
        .collect())
}

/// Bytes on disk of each partition of `topic` (DescribeLogDirs on every
/// leader); partitions of brokers without DescribeLogDirs are left out.
pub async fn partition_sizes(
    cluster: &mut Cluster,
    topic: &TopicInfo,
) -> Result<BTreeMap<i32, i64>> {
    let mut leaders: Vec<i32> = topic.partitions.iter().map(|&(_, l)| l).collect();
    leaders.sort_unstable();
    leaders.dedup();
    let mut out = BTreeMap::new();
    for leader in leaders {
        let conn = cluster.node(leader).await?;
        // A broker without DescribeLogDirs leaves its partitions out.
        let Ok(v) = conn.versions().pick::<DescribeLogDirsRequest>(1..=4) else {
            continue;
        };
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(name(&topic.name))
                .with_partitions(topic.indexes()),
        ]));
        let resp = conn.call(v, &req).await?;
        for dir in resp.results {
            for t in dir.topics {
                for p in t.partitions {
                    *out.entry(p.partition_index).or_insert(0) += p.partition_size;
                }
            }
        }
    }
    Ok(out)
}
