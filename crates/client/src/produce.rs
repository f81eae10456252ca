//! Produce requests: one batch to one partition, and reading the answer.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use crate::admin::name;
use crate::cluster::{Cluster, TopicInfo};
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

/// Produce versions this client speaks (v3+: RecordBatch v2).
pub const VERSIONS: std::ops::RangeInclusive<i16> = 3..=9;

/// A produce request carrying one batch for one partition.
pub fn request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// The base offset the broker gave the batch, or its refusal.
pub fn base_offset(resp: &ProduceResponse, topic: &str) -> Result<i64> {
    let p = resp
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .next()
        .ok_or_else(|| ClientError::Other(format!("no produce answer for topic {topic}")))?;
    check(
        p.error_code,
        || format!("producing to {topic}-{}", p.index),
        p.error_message.as_deref(),
    )?;
    Ok(p.base_offset)
}

/// Sends one batch and waits for the answer; `None` with acks=0 (the broker
/// does not answer).
pub async fn produce(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> Result<Option<i64>> {
    let v = conn.versions().pick::<ProduceRequest>(VERSIONS)?;
    let req = request(topic, partition, acks, records);
    if acks == 0 {
        conn.send_only(v, &req).await?;
        return Ok(None);
    }
    let resp = conn.call(v, &req).await?;
    base_offset(&resp, topic).map(Some)
}

/// How long [`to_leader`] resends a batch while its partition has no leader.
pub const RESEND_FOR: Duration = Duration::from_secs(30);

/// Sends one batch to `partition`'s leader, as [`produce`]. An answer that
/// says the broker is not (yet) the leader, as on a Kafka that has just
/// created the topic, means nothing was appended: the leader is asked for
/// again and the batch resent, with backoff, for up to [`RESEND_FOR`] (a
/// Kafka producer's delivery timeout does the same).
pub async fn to_leader(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> Result<Option<i64>> {
    let deadline = Instant::now() + RESEND_FOR;
    let mut leader = topic.leader(partition);
    let mut backoff = Duration::from_millis(50);
    loop {
        let node = leader
            .ok_or_else(|| ClientError::Other(format!("no leader for partition {partition}")))?;
        let conn = cluster.node(node).await?;
        match produce(conn, &topic.name, partition, acks, records.clone()).await {
            Err(ClientError::Kafka { error, .. })
                if matches!(
                    error,
                    ResponseError::NotLeaderOrFollower | ResponseError::LeaderNotAvailable
                ) && Instant::now() + backoff < deadline =>
            {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                leader = cluster.topic(&topic.name).await?.leader(partition);
            }
            result => return result,
        }
    }
}
