//! The tests' Kafka client: `pubsub_client`'s connection, unversioned (every
//! request at the version a test names, nothing sent unasked), with
//! failures as panics and every answer checked to decode exactly; plus
//! hostile frames and the requests both the server and the daemon tests
//! make (create a topic, produce a batch, fetch a partition, the steps of
//! a transaction).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, FetchRequest, InitProducerIdRequest,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Request, StrBytes};
use pubsub_client::connection::{decode_answer, encode_request};
use pubsub_client::{admin, fetch, Connection, Receiver, Sender};

pub use pubsub_client::produce::request as produce_request;

/// The client id of every typed request.
const CLIENT_ID: &str = "pubsub-test";

/// One connection.
pub struct Client {
    sender: Sender,
    receiver: Receiver,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let conn = Connection::connect_unversioned(&addr.to_string(), CLIENT_ID)
            .await
            .expect("connect");
        let (sender, receiver) = conn.into_split();
        Client { sender, receiver }
    }

    /// Encodes a request frame (length prefix included).
    pub fn frame<R: Request>(correlation_id: i32, version: i16, req: &R) -> BytesMut {
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            correlation_id,
            version,
            &StrBytes::from_static_str(CLIENT_ID),
            req,
        )
        .unwrap_or_else(|e| panic!("encode {:?} v{version}: {e}", ApiKey::try_from(R::KEY)));
        out
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> pubsub_client::Result<()> {
        self.sender.send_bytes(bytes).await
    }

    /// Reads one response frame's payload, or `None` if the server closed.
    pub async fn read_frame(&mut self) -> Option<BytesMut> {
        self.receiver.read_frame().await.ok()
    }

    /// Sends a request without waiting (acks=0 produce, pipelining).
    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        self.sender
            .send(version, req)
            .await
            .unwrap_or_else(|e| panic!("send {:?} v{version}: {e}", ApiKey::try_from(R::KEY)))
    }

    /// Reads the response to request `id`.
    pub async fn receive<R: Request>(&mut self, id: i32, version: i16) -> R::Response {
        let mut frame = self
            .read_frame()
            .await
            .expect("the server closed the connection");
        let resp = decode_answer::<R>(&mut frame, id, version).unwrap_or_else(|e| {
            panic!(
                "decode {:?} v{version} response: {e}",
                ApiKey::try_from(R::KEY)
            )
        });
        assert_eq!(
            frame.remaining(),
            0,
            "{:?} v{version}: trailing bytes",
            ApiKey::try_from(R::KEY)
        );
        resp
    }

    /// Sends a request and decodes its response.
    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let id = self.send(version, req).await;
        self.receive::<R>(id, version).await
    }

    /// True once the server has closed this connection (reads EOF or
    /// reset); false if it is still open after 20 s (far beyond any limit a
    /// test sets, and short of the default idle timeout, which would
    /// otherwise close it and make the check pass for the wrong reason).
    pub async fn is_closed(&mut self) -> bool {
        let read = self.receiver.read_frame();
        matches!(
            tokio::time::timeout(Duration::from_secs(20), read).await,
            Ok(Err(_))
        )
    }
}

/// A whole request frame: a v1 header for `api`/`version` (correlation id
/// 7, null client id), then `body` as given, however wrong.
pub fn raw_request(api: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.put_i16(api);
    payload.put_i16(version);
    payload.put_i32(7);
    payload.put_i16(-1);
    payload.extend_from_slice(body);
    let mut frame = Vec::new();
    frame.put_i32(payload.len() as i32);
    frame.extend_from_slice(&payload);
    frame
}

/// A protocol string.
pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Produce v9 (flexible), the version librdkafka uses.
pub const PRODUCE_V: i16 = 9;

/// Creates a topic over the protocol (CreateTopics v7).
pub async fn create_topic(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let r = c
        .call(7, &admin::create_topics_request(name, partitions, configs))
        .await;
    assert_eq!(
        r.topics[0].error_code, 0,
        "create {name}: {:?}",
        r.topics[0].error_message
    );
}

/// A fetch request for one partition (`max_bytes` also its partition's
/// limit).
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    let positions = BTreeMap::from([(partition, offset)]);
    fetch::request(topic, &positions, max_wait_ms, max_bytes, max_bytes)
}

/// Produces and returns the partition's answer.
pub async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> PartitionProduceResponse {
    let r = c
        .call(PRODUCE_V, &produce_request(topic, partition, acks, records))
        .await;
    r.responses[0].partition_responses[0].clone()
}

/// InitProducerId for a new producer of transactional id `id`.
pub fn init_txn_request(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// InitProducerId at `version` for a new producer of `id` (60 s
/// transactions): its producer id and epoch.
pub async fn init_txn(c: &mut Client, version: i16, id: &str) -> (i64, i16) {
    let r = c.call(version, &init_txn_request(id, 60_000)).await;
    assert_eq!(r.error_code, 0, "InitProducerId {id}");
    (r.producer_id.0, r.producer_epoch)
}

/// EndTxn of `id`'s producer `pid` at `epoch`: commit or abort.
pub fn end_txn_request(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

/// AddPartitionsToTxn at `version` (batched from 4) of `partitions` of
/// `topic`: every partition's code.
pub async fn add_partitions(
    c: &mut Client,
    version: i16,
    (id, pid, epoch): (&str, i64, i16),
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let topics = vec![AddPartitionsToTxnTopic::default()
        .with_name(TopicName(s(topic)))
        .with_partitions(partitions.to_vec())];
    let results = if version >= 4 {
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_topics(topics),
        ]);
        let r = c.call(version, &req).await;
        assert_eq!(r.error_code, 0);
        r.results_by_transaction[0].topic_results.clone()
    } else {
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(id)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics);
        c.call(version, &req).await.results_by_topic_v3_and_below
    };
    results
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// A transactional batch of `values` from producer `pid` at `epoch`,
/// starting at sequence `seq`, every record stamped `timestamp`.
pub fn txn_batch(pid: i64, epoch: i16, seq: i32, timestamp: i64, values: &[&str]) -> Bytes {
    let mut b = pubsub_records::BatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(true);
    for v in values {
        b.push(&pubsub_records::NewRecord {
            timestamp,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    Bytes::from(b.build().expect("build"))
}
