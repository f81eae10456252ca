//! A minimal Kafka-protocol client for tests: encodes a request at a chosen
//! version, sends it over a real socket and decodes the response; plus the
//! requests both the server and the daemon tests make (create a topic,
//! produce a batch).

#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection.
pub struct Client {
    stream: TcpStream,
    next_id: i32,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client { stream, next_id: 1 }
    }

    /// Encodes a request frame (length prefix included).
    pub fn frame<R: Request>(correlation_id: i32, version: i16, req: &R) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("pubsub-test")));
        let hv = R::header_version(version);
        let mut body = BytesMut::new();
        header.encode(&mut body, hv).expect("encode header");
        req.encode(&mut body, version)
            .unwrap_or_else(|e| panic!("encode {:?} v{version}: {e}", ApiKey::try_from(R::KEY)));
        let mut out = BytesMut::with_capacity(body.len() + 4);
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response frame's payload, or `None` if the server closed.
    pub async fn read_frame(&mut self) -> Option<BytesMut> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut buf = BytesMut::zeroed(i32::from_be_bytes(size) as usize);
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(buf)
    }

    /// Sends a request without waiting (acks=0 produce, pipelining).
    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = Self::frame(id, version, req);
        self.stream.write_all(&frame).await.expect("write");
        id
    }

    /// Reads the response to request `id`.
    pub async fn receive<R: Request>(&mut self, id: i32, version: i16) -> R::Response {
        let mut frame = self
            .read_frame()
            .await
            .expect("the server closed the connection");
        let hv = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut frame, hv).expect("response header");
        assert_eq!(
            header.correlation_id, id,
            "responses come back in request order"
        );
        let resp = R::Response::decode(&mut frame, version).unwrap_or_else(|e| {
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
        let mut buf = [0u8; 1];
        let read = self.stream.read(&mut buf);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(20), read).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// A whole request frame: a v1 header for `api`/`version` (correlation id
/// 7, null client id), then `body` as given, however wrong.
pub fn raw_request(api: i16, version: i16, body: &[u8]) -> Vec<u8> {
    use bytes::BufMut;
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

/// Creates a topic over the protocol.
pub async fn create_topic(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let r = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_num_partitions(partitions)
                    .with_replication_factor(-1)
                    .with_configs(
                        configs
                            .iter()
                            .map(|(k, v)| {
                                CreatableTopicConfig::default()
                                    .with_name(s(k))
                                    .with_value(Some(s(v)))
                            })
                            .collect(),
                    )]),
        )
        .await;
    assert_eq!(
        r.topics[0].error_code, 0,
        "create {name}: {:?}",
        r.topics[0].error_message
    );
}

/// A produce request for one partition.
pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
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
