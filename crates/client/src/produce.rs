//! Produce requests: one batch to one partition, and reading the answer.
//!
//! Two ways to send one: [`request`] builds the typed request (the batch
//! is copied into the frame when it is encoded), and [`send_batch`] writes
//! the frame around the caller's batch ([`encode_around`] makes the bytes
//! before and after it), which a load generator sending hundreds of
//! kilobytes a request uses to copy each record byte only into its batch.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::Request;

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use crate::admin::name;
use crate::cluster::{Cluster, TopicInfo};
use crate::connection::{Connection, Sender};
use crate::error::{check, ClientError, Result};

/// Produce versions this client speaks (v3+: RecordBatch v2).
pub const VERSIONS: std::ops::RangeInclusive<i16> = 3..=9;

/// How long the broker may wait for acks=all before answering.
pub const TIMEOUT_MS: i32 = 30_000;

/// A produce request carrying one batch for one partition.
pub fn request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Where a batch goes: the topic, partition and acks of a Produce request
/// of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition index.
    pub partition: i32,
    /// 0, 1 or -1 (all).
    pub acks: i16,
}

/// Appends to `buf` the bytes of request `id`'s frame (at `version`, from
/// `client_id`) that come before a batch of `batch_len` bytes: the size
/// prefix, the request header, and the body up to the records' length.
/// Returns the bytes that follow the batch: at the flexible version (9)
/// the empty tagged fields closing the partition, the topic and the body;
/// before it, none. Head, batch and tail together are the frame
/// [`crate::connection::encode_request`] makes of [`request`] with the
/// same batch.
pub fn encode_around(
    buf: &mut BytesMut,
    id: i32,
    version: i16,
    client_id: &str,
    to: Target<'_>,
    batch_len: usize,
) -> Result<&'static [u8]> {
    if !VERSIONS.contains(&version) {
        return Err(ClientError::Protocol(format!(
            "Produce v{version} is not spoken here ({VERSIONS:?})"
        )));
    }
    let too_long = |what: &str| ClientError::Protocol(format!("{what} is too long"));
    let flexible = version >= 9;
    let client_len = i16::try_from(client_id.len()).map_err(|_| too_long("the client id"))?;
    let topic_len = u32::try_from(to.topic.len())
        .ok()
        .filter(|_| flexible || i16::try_from(to.topic.len()).is_ok())
        .ok_or_else(|| too_long("the topic name"))?;
    let batch_u32 = u32::try_from(batch_len)
        .ok()
        .filter(|&n| i32::try_from(n).is_ok())
        .ok_or_else(|| too_long("the batch"))?;
    let start = buf.len();
    buf.put_i32(0); // the size, known at the end
                    // Request header v1 (v2 adds tagged fields at flexible versions).
    buf.put_i16(ProduceRequest::KEY);
    buf.put_i16(version);
    buf.put_i32(id);
    buf.put_i16(client_len);
    buf.put_slice(client_id.as_bytes());
    if flexible {
        put_uvarint(buf, 0);
        put_uvarint(buf, 0); // transactional id: null
    } else {
        buf.put_i16(-1); // transactional id: null
    }
    buf.put_i16(to.acks);
    buf.put_i32(TIMEOUT_MS);
    if flexible {
        put_uvarint(buf, 2); // one topic
        put_uvarint(buf, topic_len + 1);
    } else {
        buf.put_i32(1);
        buf.put_i16(topic_len as i16);
    }
    buf.put_slice(to.topic.as_bytes());
    if flexible {
        put_uvarint(buf, 2); // one partition
    } else {
        buf.put_i32(1);
    }
    buf.put_i32(to.partition);
    if flexible {
        put_uvarint(buf, batch_u32 + 1);
    } else {
        buf.put_i32(batch_u32 as i32);
    }
    // Tagged fields of the partition, the topic and the body.
    let tail: &'static [u8] = if flexible { &[0, 0, 0] } else { &[] };
    let size = buf.len() - start - 4 + batch_len + tail.len();
    let size = i32::try_from(size).map_err(|_| too_long("the request"))?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(tail)
}

/// An unsigned varint (7 bits a byte, low first), as flexible versions
/// write lengths.
fn put_uvarint(buf: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        buf.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

/// Sends one batch (a RecordBatch, as built) to `to` on a pipelined
/// connection without copying it into the frame ([`encode_around`]);
/// returns the request's correlation id, whose answer
/// [`crate::Receiver::receive`] reads as a [`ProduceRequest`]'s.
pub async fn send_batch(
    sender: &mut Sender,
    version: i16,
    to: Target<'_>,
    batch: &[u8],
) -> Result<i32> {
    sender
        .send_around(batch, |buf, id, client_id| {
            encode_around(buf, id, version, client_id.as_str(), to, batch.len())
        })
        .await
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};

    use super::*;
    use crate::connection::encode_request;

    #[test]
    fn the_frame_around_a_batch_is_the_encoded_request() {
        // Batch lengths on both sides of each varint width; topic names of
        // 1 and 200 bytes (a two-byte compact length).
        let long_topic = "t".repeat(200);
        for version in VERSIONS {
            for topic in ["a", long_topic.as_str()] {
                for len in [0usize, 1, 126, 127, 128, 16_382, 16_383, 16_384, 205_000] {
                    let batch: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                    let to = Target {
                        topic,
                        partition: 3,
                        acks: -1,
                    };
                    let mut head = BytesMut::from(&b"kept"[..]);
                    let tail =
                        encode_around(&mut head, 77, version, "client-x", to, len).expect("head");
                    assert_eq!(&head[..4], b"kept", "appended");
                    let mut ours = head[4..].to_vec();
                    ours.extend_from_slice(&batch);
                    ours.extend_from_slice(tail);

                    let mut theirs = BytesMut::new();
                    let req = request(topic, 3, -1, Bytes::from(batch.clone()));
                    let client_id = StrBytes::from_static_str("client-x");
                    encode_request(&mut theirs, 77, version, &client_id, &req).expect("encode");
                    assert!(
                        ours == theirs[..],
                        "v{version}, topic of {}, batch of {len}: frames differ",
                        topic.len()
                    );

                    // And a decoder reads it back as that request.
                    let mut frame = Bytes::from(ours).slice(4..);
                    let header =
                        RequestHeader::decode(&mut frame, ProduceRequest::header_version(version))
                            .expect("header");
                    assert_eq!(header.correlation_id, 77);
                    let decoded = ProduceRequest::decode(&mut frame, version).expect("body");
                    assert_eq!(decoded, req);
                }
            }
        }
    }

    #[test]
    fn a_version_this_client_does_not_speak_is_refused() {
        let to = Target {
            topic: "a",
            partition: 0,
            acks: 1,
        };
        for version in [2, 10] {
            let mut buf = BytesMut::new();
            let refused = encode_around(&mut buf, 1, version, "c", to, 10);
            assert!(
                matches!(refused, Err(ClientError::Protocol(_))),
                "{refused:?}"
            );
        }
    }
}
