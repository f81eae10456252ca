//! Produce requests: one batch to one partition, and reading the answer.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::admin::name;
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
