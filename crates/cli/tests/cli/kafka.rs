//! Small produce/fetch helpers over the test client.

#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::TopicName;
use pubsub_records::{Batch, BatchBuilder, NewRecord};

use crate::client::{fetch_request, s, Client};

/// One batch of `values`, keyless.
pub fn batch(values: &[String]) -> Bytes {
    let mut b = BatchBuilder::new();
    for v in values {
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    Bytes::from(b.build().expect("build"))
}

/// Produces one batch; returns the partition's answer.
pub async fn produce_raw(
    c: &mut Client,
    topic: &str,
    partition: i32,
    acks: i16,
    values: &[String],
) -> PartitionProduceResponse {
    crate::client::produce(c, topic, partition, acks, batch(values)).await
}

/// Produces one batch (auto-creating the topic through Metadata first);
/// returns each value's offset.
pub async fn produce_values(
    c: &mut Client,
    topic: &str,
    partition: i32,
    acks: i16,
    values: &[String],
) -> Vec<i64> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let m = c
        .call(
            12,
            &kafka_protocol::messages::MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(s(topic))))
                ])),
        )
        .await;
    assert_eq!(m.topics[0].error_code, 0);
    let p = produce_raw(c, topic, partition, acks, values).await;
    assert_eq!(p.error_code, 0, "produce to {topic}: {:?}", p.error_message);
    (0..values.len() as i64)
        .map(|i| p.base_offset + i)
        .collect()
}

/// Every record of a partition as (offset, value), read to the high watermark.
pub async fn fetch_all(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut next = 0i64;
    loop {
        let req = fetch_request(topic, partition, next, 0, 1 << 20);
        let r = c.call(12, &req).await;
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.error_code, 0, "fetch {topic}/{partition} at {next}");
        let records = part.records.clone().unwrap_or_default();
        let mut pos = 0;
        while pos < records.len() {
            let batch = Batch::parse(&records[pos..]).expect("a whole, valid batch");
            pos += batch.len();
            let set = batch.records(64 << 20).expect("records");
            for r in set.iter() {
                let r = r.expect("record");
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
