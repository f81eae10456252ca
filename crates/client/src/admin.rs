//! Admin calls: topic metadata and topic creation.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

/// TOPIC_ALREADY_EXISTS.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

fn name(s: &str) -> TopicName {
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

/// The partition count of `topic`, or `None` if it does not exist.
pub async fn partition_count(conn: &mut Connection, topic: &str) -> Result<Option<usize>> {
    let m = metadata(conn, Some(&[topic])).await?;
    let t = m
        .topics
        .first()
        .ok_or_else(|| ClientError::Other(format!("no metadata for topic {topic}")))?;
    match t.error_code {
        0 => Ok(Some(t.partitions.len())),
        3 => Ok(None),
        code => check(code, || format!("metadata of topic {topic}"), None).map(|_| None),
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
    let req = CreateTopicsRequest::default()
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
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(val.clone())))
                    })
                    .collect(),
            )]);
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
