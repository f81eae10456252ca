//! Fetch requests and the records in their answers (as
//! [`ConsumerRecord`]s, the type the embedded consumer returns too).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use pubsub_records::{Batches, ConsumerRecord, Record, RecordsError};

use crate::admin::name;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// Largest decompressed record section accepted.
const MAX_DECOMPRESSED: usize = 256 << 20;

/// What one partition answered.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Partition.
    pub partition: i32,
    /// Kafka error code (0: none).
    pub error_code: i16,
    /// Messages at or after the requested offset, in order.
    pub messages: Vec<ConsumerRecord>,
    /// Where the next fetch should start.
    pub next_offset: i64,
}

/// What one partition answered, its record batches undecoded.
#[derive(Debug, Clone)]
pub struct RawFetched {
    /// Partition.
    pub partition: i32,
    /// Kafka error code (0: none).
    pub error_code: i16,
    /// Record batches as the broker sent them (the last may be partial).
    pub records: Bytes,
}

/// Fetch versions this client speaks.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// Most bytes one partition contributes to a fetch answer (Kafka's default
/// `max.partition.fetch.bytes`). Larger answers are slower, not faster: the
/// broker reads a partition's share whole before sending any of it, so
/// small shares let reading, sending and decoding overlap.
pub const PARTITION_MAX_BYTES: i32 = 1 << 20;

/// A fetch of `positions` (partition -> offset) of `topic`, waiting up to
/// `max_wait_ms` for data, at most `max_bytes` in all and
/// `partition_max_bytes` per partition.
pub fn request(
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    max_wait_ms: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
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
                            .with_partition_max_bytes(partition_max_bytes)
                    })
                    .collect(),
            )])
}

/// The partitions of a fetch answer, batches undecoded.
pub fn raw_partitions(resp: FetchResponse, topic: &str) -> Result<Vec<RawFetched>> {
    crate::error::check(resp.error_code, || format!("fetching from {topic}"), None)?;
    Ok(resp
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| RawFetched {
            partition: p.partition_index,
            error_code: p.error_code,
            records: p.records.unwrap_or_default(),
        })
        .collect())
}

/// The offset after the last whole batch in `records` (`from` if none).
pub fn next_offset(from: i64, records: &[u8]) -> i64 {
    Batches::new(records)
        .map_while(|b| b.ok())
        .fold(from, |next, b| next.max(b.next_offset()))
}

/// Fetches `positions` (partition -> offset) of `topic`, waiting up to
/// `max_wait_ms` for data; batches are left undecoded.
pub async fn fetch_raw(
    conn: &mut Connection,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    max_wait_ms: i32,
    max_bytes: i32,
) -> Result<Vec<RawFetched>> {
    let v = conn.versions().pick::<FetchRequest>(VERSIONS)?;
    let req = request(
        topic,
        positions,
        max_wait_ms,
        max_bytes,
        PARTITION_MAX_BYTES,
    );
    raw_partitions(conn.call(v, &req).await?, topic)
}

/// Fetches `positions` (partition -> offset) of `topic`, waiting up to
/// `max_wait_ms` for data, and decodes the messages.
pub async fn fetch(
    conn: &mut Connection,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    max_wait_ms: i32,
    max_bytes: i32,
) -> Result<Vec<Fetched>> {
    let raw = fetch_raw(conn, topic, positions, max_wait_ms, max_bytes).await?;
    let name: Arc<str> = Arc::from(topic);
    let mut out = Vec::with_capacity(raw.len());
    for p in raw {
        let from = positions.get(&p.partition).copied().unwrap_or(0);
        let (messages, next) = match p.error_code {
            0 => decode(&name, p.partition, from, &p.records)?,
            _ => (Vec::new(), from),
        };
        out.push(Fetched {
            partition: p.partition,
            error_code: p.error_code,
            messages,
            next_offset: next,
        });
    }
    Ok(out)
}

/// The messages at or after `from` in a fetched record set, and the offset
/// after the last whole batch. A partial batch at the end (cut by the size
/// limit) is left for the next fetch.
fn decode(
    topic: &Arc<str>,
    partition: i32,
    from: i64,
    records: &Bytes,
) -> Result<(Vec<ConsumerRecord>, i64)> {
    let mut out = Vec::new();
    let next = for_each_record(records, from, true, |r| {
        out.push(ConsumerRecord::copied_from(topic, partition, r));
    })?;
    Ok((out, next))
}

/// Calls `f` with every record at or after `from` in fetched batches,
/// skipping control batches and stopping at a partial last batch (cut by
/// the size limit); checks each batch's CRC if `check_crc`. Returns the
/// offset after the last whole batch: where the next fetch starts.
pub fn for_each_record(
    records: &[u8],
    from: i64,
    check_crc: bool,
    mut f: impl FnMut(&Record<'_>),
) -> Result<i64> {
    let bad = |e: RecordsError| ClientError::Protocol(format!("a fetched batch: {e}"));
    let mut next = from;
    for batch in Batches::new(records) {
        let batch = match batch {
            Ok(b) => b,
            Err(RecordsError::Truncated { .. }) => break,
            Err(e) => return Err(bad(e)),
        };
        if check_crc {
            batch.validate().map_err(bad)?;
        }
        next = next.max(batch.next_offset());
        if batch.is_control() {
            continue;
        }
        for record in batch.records(MAX_DECOMPRESSED).map_err(bad)?.iter() {
            let r = record.map_err(bad)?;
            if r.offset >= from {
                f(&r);
            }
        }
    }
    Ok(next)
}
