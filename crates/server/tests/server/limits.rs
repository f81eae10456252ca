//! Bad input closes only the connection that sent it; limits are enforced
//! before anything is allocated; the server keeps serving everyone else.

use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, TopicName};
use pubsub_server::ServerConfig;

use crate::client::{raw_request, s, Client};
use crate::common::{broker_config, TestServer};

/// A normal client still gets answers.
async fn still_serves(server: &TestServer) {
    let mut c = Client::connect(server.addr).await;
    let r = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
    let r = c.call(12, &MetadataRequest::default()).await;
    assert_eq!(r.brokers.len(), 1);
}

/// A Metadata v12 request frame whose payload (after the length prefix)
/// is exactly `payload` bytes: one topic with a name long enough.
fn metadata_frame_of(payload: usize) -> Vec<u8> {
    let frame = |name_len: usize| {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(s(&"n".repeat(name_len)))))]))
            .with_allow_auto_topic_creation(false);
        Client::frame(7, 12, &req).to_vec()
    };
    let mut len = payload;
    loop {
        let f = frame(len);
        let got = f.len() - 4;
        if got == payload {
            return f;
        }
        len = len + payload - got.min(len + payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_negative_and_two_gib_length_prefixes_close_the_connection() {
    let config = ServerConfig {
        max_request_bytes: 64 << 10,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(broker_config(), config).await;
    for size in [i32::MAX, (64 << 10) + 1, -1, i32::MIN] {
        let mut c = Client::connect(server.addr).await;
        c.send_raw(&size.to_be_bytes()).await.expect("send");
        assert!(c.is_closed().await, "a {size}-byte frame is refused");
    }
    // A valid request of exactly the limit is answered; one byte more is not.
    let mut c = Client::connect(server.addr).await;
    c.send_raw(&metadata_frame_of(64 << 10))
        .await
        .expect("send");
    let answer = c.read_frame().await;
    assert!(answer.is_some(), "a request of exactly the limit is served");
    let mut c = Client::connect(server.addr).await;
    c.send_raw(&metadata_frame_of((64 << 10) + 1))
        .await
        .expect("send");
    assert!(c.is_closed().await, "one byte over the limit is refused");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_unknown_requests_close_only_their_connection() {
    let server = TestServer::start().await;
    let mut bystander = Client::connect(server.addr).await;
    assert_eq!(
        bystander
            .call(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0
    );

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown API key", raw_request(9999, 0, &[])),
        (
            "API not served (ElectLeaders)",
            raw_request(43, 0, &[0; 16]),
        ),
        ("unsupported Produce version", raw_request(0, 2, &[0; 16])),
        ("unsupported Fetch version", raw_request(1, 99, &[0; 16])),
        ("header shorter than 8 bytes", vec![0, 0, 0, 3, 0, 18, 0]),
        ("Metadata body cut short", raw_request(3, 12, &[0x05, 0x00])),
        ("Produce with garbage body", raw_request(0, 9, &[0xFF; 40])),
        (
            "array claiming 2^31 elements",
            raw_request(3, 4, &[0x7F, 0xFF, 0xFF, 0xFF]),
        ),
        (
            "string longer than the frame",
            raw_request(10, 0, &[0x7F, 0xFF, b'a']),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = Client::connect(server.addr).await;
        c.send_raw(&bytes).await.expect("send");
        assert!(c.is_closed().await, "{what}: the connection is closed");
    }
    // A frame that ends before its declared length, then the client hangs up.
    {
        let mut c = Client::connect(server.addr).await;
        let mut frame = raw_request(18, 3, &[0; 8]);
        frame.truncate(frame.len() - 4);
        c.send_raw(&frame).await.expect("send");
    }
    // Random bytes.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20 {
        let mut junk = vec![0u8; 512];
        for b in junk.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        let mut c = Client::connect(server.addr).await;
        c.send_raw(&junk).await.expect("send");
        drop(c);
    }
    // The connection that behaved is untouched, and new ones are served.
    assert_eq!(
        bystander
            .call(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_new_api_versions_gets_the_kip_511_answer_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    // ApiVersions v99 with a body nobody can decode: only the header is read.
    c.send_raw(&raw_request(18, 99, &[0xEE; 13]))
        .await
        .expect("send");
    let mut frame = c.read_frame().await.expect("an answer");
    use bytes::Buf;
    assert_eq!(frame.get_i32(), 7, "correlation id (v0 response header)");
    assert_eq!(frame.get_i16(), 35, "UNSUPPORTED_VERSION");
    assert_eq!(frame.get_i32(), 1, "one API listed");
    assert_eq!(frame.get_i16(), 18, "ApiVersions");
    assert_eq!(frame.get_i16(), 0, "min version");
    assert_eq!(frame.get_i16(), 4, "max version");
    // The client retries with a version we speak, on the same connection.
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_idle_ones_time_out() {
    // The limit, with an idle timeout far away: only the limit can close.
    let config = ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(broker_config(), config).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    assert_eq!(
        a.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    assert_eq!(
        b.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    let mut c = Client::connect(server.addr).await;
    let _ = c.send_raw(&raw_request(18, 0, &[])).await;
    assert!(
        c.read_frame().await.is_none(),
        "a third connection is over the limit: closed, not answered"
    );
    drop((a, b));
    server.stop().await;

    // The idle timeout: quiet connections are closed, freeing the slots.
    let config = ServerConfig {
        max_connections: 2,
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(broker_config(), config).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    assert_eq!(
        a.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    assert!(a.is_closed().await, "idle connection closed");
    assert!(b.is_closed().await, "idle connection closed");
    still_serves(&server).await;
    server.stop().await;
}
