//! Fetch requests and the messages in their answers.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use pubsub_records::{Batch, Batches};

use crate::admin::name;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// OFFSET_OUT_OF_RANGE.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Largest decompressed record section accepted.
const MAX_DECOMPRESSED: usize = 256 << 20;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Timestamp, ms since the epoch.
    pub timestamp: i64,
    /// Key (`None`: null).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: null, a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// What one partition answered.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Partition.
    pub partition: i32,
    /// Kafka error code (0: none).
    pub error_code: i16,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// Messages at or after the requested offset, in order.
    pub messages: Vec<Message>,
    /// Where the next fetch should start.
    pub next_offset: i64,
}

/// Fetches `positions` (partition -> offset) of `topic`, waiting up to
/// `max_wait_ms` for data.
pub async fn fetch(
    conn: &mut Connection,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    max_wait_ms: i32,
    max_bytes: i32,
) -> Result<Vec<Fetched>> {
    let v = conn.versions().pick::<FetchRequest>(4..=12)?;
    let per_partition =
        (max_bytes / i32::try_from(positions.len().max(1)).unwrap_or(1)).max(1 << 20);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_isolation_level(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(
                positions
                    .iter()
                    .map(|(&p, &o)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_current_leader_epoch(-1)
                            .with_fetch_offset(o)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(per_partition)
                    })
                    .collect(),
            )]);
    let resp = conn.call(v, &req).await?;
    crate::error::check(resp.error_code, || format!("fetching from {topic}"), None)?;
    let mut out = Vec::new();
    for t in resp.responses {
        for p in t.partitions {
            let from = positions.get(&p.partition_index).copied().unwrap_or(0);
            let (messages, next) = match (p.error_code, p.records) {
                (0, Some(records)) => decode(p.partition_index, from, &records)?,
                _ => (Vec::new(), from),
            };
            out.push(Fetched {
                partition: p.partition_index,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                messages,
                next_offset: next,
            });
        }
    }
    Ok(out)
}

/// The messages at or after `from` in a fetched record set, and the offset
/// after the last whole batch. A partial batch at the end (cut by the size
/// limit) is left for the next fetch.
fn decode(partition: i32, from: i64, records: &Bytes) -> Result<(Vec<Message>, i64)> {
    let bad = |e: pubsub_records::RecordsError| {
        ClientError::Protocol(format!("a batch of partition {partition}: {e}"))
    };
    let mut out = Vec::new();
    let mut next = from;
    for batch in Batches::new(records) {
        let batch: Batch<'_> = match batch {
            Ok(b) => b,
            // A partial last batch (cut by the size limit) ends the set.
            Err(pubsub_records::RecordsError::Truncated { .. }) => break,
            Err(e) => return Err(bad(e)),
        };
        batch.validate().map_err(bad)?;
        next = next.max(batch.next_offset());
        if batch.is_control() {
            continue;
        }
        let set = batch.records(MAX_DECOMPRESSED).map_err(bad)?;
        for record in set.iter() {
            let r = record.map_err(bad)?;
            if r.offset < from {
                continue;
            }
            out.push(Message {
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .map(|h| {
                        let key = String::from_utf8_lossy(h.key).into_owned();
                        (key, h.value.map(<[u8]>::to_vec))
                    })
                    .collect(),
            });
        }
    }
    Ok((out, next))
}
