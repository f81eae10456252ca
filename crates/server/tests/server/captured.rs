//! Requests captured from real clients (kcat, confluent-kafka,
//! kafka-python; `fuzz/capture.py` records them into
//! `data/fixtures/requests/`) replayed byte for byte: each gets an answer
//! that decodes at the version asked for, in order, and the connection
//! stays open.

use std::path::Path;

use bytes::{Buf, BufMut, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::client::Client;
use crate::common::*;

/// Decodes a response body of `key` at `version`.
fn decode_response(key: ApiKey, version: i16, body: &mut Bytes) -> Result<(), String> {
    macro_rules! check {
        ($($k:ident => $t:ty),* $(,)?) => {
            match key {
                $(ApiKey::$k => <$t>::decode(body, version).map(|_| ()).map_err(|e| e.to_string()),)*
                other => Err(format!("no decoder for {other:?}")),
            }
        };
    }
    check!(
        Produce => ProduceResponse, Fetch => FetchResponse, ListOffsets => ListOffsetsResponse,
        Metadata => MetadataResponse, OffsetCommit => OffsetCommitResponse, OffsetFetch => OffsetFetchResponse,
        FindCoordinator => FindCoordinatorResponse, JoinGroup => JoinGroupResponse, Heartbeat => HeartbeatResponse,
        LeaveGroup => LeaveGroupResponse, SyncGroup => SyncGroupResponse, DescribeGroups => DescribeGroupsResponse,
        ListGroups => ListGroupsResponse, ApiVersions => ApiVersionsResponse, CreateTopics => CreateTopicsResponse,
        DeleteTopics => DeleteTopicsResponse, InitProducerId => InitProducerIdResponse,
        DescribeConfigs => DescribeConfigsResponse, CreatePartitions => CreatePartitionsResponse,
        DeleteGroups => DeleteGroupsResponse, IncrementalAlterConfigs => IncrementalAlterConfigsResponse,
        AddPartitionsToTxn => AddPartitionsToTxnResponse, AddOffsetsToTxn => AddOffsetsToTxnResponse,
        EndTxn => EndTxnResponse, TxnOffsetCommit => TxnOffsetCommitResponse,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_captured_client_request_is_answered() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    for topic in ["cap", "cap2", "cap3"] {
        create_topic(&mut c, topic, 2, &[]).await;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fixtures/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("captured requests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "the captures are committed ({} found)",
        files.len()
    );
    for path in files {
        let payload = std::fs::read(&path).expect("read");
        let key =
            ApiKey::try_from(i16::from_be_bytes([payload[0], payload[1]])).expect("known key");
        let version = i16::from_be_bytes([payload[2], payload[3]]);
        let correlation = i32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        // acks=0 produce requests get no answer: none were captured.
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.put_i32(payload.len() as i32);
        frame.extend_from_slice(&payload);
        c.send_raw(&frame).await.expect("send");
        let mut resp = c
            .read_frame()
            .await
            .unwrap_or_else(|| panic!("{}: connection closed", path.display()))
            .freeze();
        let header = ResponseHeader::decode(&mut resp, key.response_header_version(version))
            .expect("header");
        assert_eq!(header.correlation_id, correlation, "{}", path.display());
        decode_response(key, version, &mut resp)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(resp.remaining(), 0, "{}: trailing bytes", path.display());
    }
    server.stop().await;
}
