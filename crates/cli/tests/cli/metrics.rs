//! `pubsub serve --metrics`: the Prometheus page and `/health` of a real
//! daemon, scraped over a raw socket after known traffic, checked value by
//! value; hostile HTTP input; `/health` turning 503 when a partition's disk
//! fills up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{raw_request, s, Client};
use crate::daemon::{Daemon, Options};
use crate::kafka::{batch, fetch_all, produce_raw, produce_values};

/// Sends `request` as is, reads until the server closes; (status, headers, body).
async fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to metrics");
    stream.write_all(request).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .expect("read");
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line in {head:?}"));
    (status, head.to_string(), body.to_string())
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
    .await
}

/// Samples of the page by series (`name{labels}`), checking the format on
/// the way: every sample belongs to a family declared once with HELP and
/// TYPE, and every value is a number.
fn scrape_text(page: &str) -> HashMap<String, f64> {
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut samples = HashMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                types.insert(name, kind).is_none(),
                "family {name} declared twice"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.is_empty(), "no blank lines");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().expect("name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(base) == Some(&"histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "{series}: no TYPE line before it"
        );
        assert!(name.starts_with("pubsub_"), "{name}: prefixed");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{line}: value is a number"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

pub(crate) async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, head, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    scrape_text(&body)
}

pub(crate) fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| {
        let mut near: Vec<&String> = m
            .keys()
            .filter(|k| k.starts_with(series.split('{').next().unwrap_or(series)))
            .collect();
        near.sort();
        panic!("no series {series}; the family has {near:?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_exactly_and_the_endpoint_survives_bad_requests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with_metrics(&tmp.path().join("data"));
    let metrics = daemon.metrics.expect("metrics address printed");
    assert_eq!(metrics.ip().to_string(), "127.0.0.1");
    assert_ne!(metrics.port(), 0, "the real port is printed");
    assert_ne!(metrics.port(), daemon.addr.port());

    // Nothing yet: the topic is unknown, no requests.
    let m = scrape(metrics).await;
    assert_eq!(value(&m, "pubsub_requests_total{api=\"Produce\"}"), 0.0);
    assert_eq!(value(&m, "pubsub_connections_open"), 0.0);
    assert!(!m.contains_key("pubsub_topic_messages_in_total{topic=\"metered\"}"));

    // Three acks=all batches of known sizes: 35 records.
    let mut c = Client::connect(daemon.addr).await;
    let mut bytes = 0usize;
    let mut records = 0usize;
    for n in [10usize, 20, 5] {
        let values: Vec<String> = (0..n).map(|i| format!("value-{records}-{i}")).collect();
        bytes += batch(&values).len();
        let offsets = produce_values(&mut c, "metered", 0, -1, &values).await;
        assert_eq!(offsets[0], records as i64);
        records += n;
    }
    // One refused: the partition does not exist (UNKNOWN_TOPIC_OR_PARTITION).
    let refused = produce_raw(&mut c, "metered", 7, -1, &["nowhere".to_string()]).await;
    assert_eq!(refused.error_code, 3);
    // Everything read back once: one fetch returns the three batches.
    assert_eq!(fetch_all(&mut c, "metered", 0).await.len(), records);
    // A group that committed 12: 23 records behind.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("lagging")))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("metered")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(12)])]);
    let r = c.call(8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // A second connection breaks the protocol (unknown API key) and is closed.
    let mut bad = Client::connect(daemon.addr).await;
    bad.send_raw(&raw_request(999, 0, &[])).await.expect("send");
    assert!(
        bad.is_closed().await,
        "an unknown API closes the connection"
    );
    // The server counts the close just after closing: wait for it to show.
    let mut m = scrape(metrics).await;
    for _ in 0..200 {
        if value(&m, "pubsub_protocol_errors_total") == 1.0
            && value(&m, "pubsub_connections_open") == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        m = scrape(metrics).await;
    }

    let topic = "{topic=\"metered\"}";
    let partition = "{topic=\"metered\",partition=\"0\"}";
    let group = "{group=\"lagging\",topic=\"metered\",partition=\"0\"}";
    assert_eq!(
        value(&m, &format!("pubsub_topic_messages_in_total{topic}")),
        35.0
    );
    assert_eq!(
        value(&m, &format!("pubsub_topic_bytes_in_total{topic}")),
        bytes as f64
    );
    assert_eq!(
        value(&m, &format!("pubsub_topic_messages_out_total{topic}")),
        35.0
    );
    assert_eq!(
        value(&m, &format!("pubsub_topic_bytes_out_total{topic}")),
        bytes as f64
    );
    // The log holds exactly those batches, in one segment.
    assert_eq!(
        value(&m, &format!("pubsub_log_size_bytes{partition}")),
        bytes as f64
    );
    assert_eq!(value(&m, &format!("pubsub_log_segments{partition}")), 1.0);
    assert_eq!(
        value(&m, &format!("pubsub_log_start_offset{partition}")),
        0.0
    );
    assert_eq!(
        value(&m, &format!("pubsub_log_end_offset{partition}")),
        35.0
    );
    assert_eq!(
        value(&m, &format!("pubsub_group_committed_offset{group}")),
        12.0
    );
    assert_eq!(value(&m, &format!("pubsub_group_lag{group}")), 23.0);
    assert_eq!(value(&m, "pubsub_groups{state=\"Empty\"}"), 1.0);
    // The commit went to __consumer_offsets: one record there.
    assert_eq!(
        value(
            &m,
            "pubsub_topic_messages_in_total{topic=\"__consumer_offsets\"}"
        ),
        1.0
    );
    // Two topics: metered (1 partition) and __consumer_offsets (50, the default).
    assert_eq!(value(&m, "pubsub_topics"), 2.0);
    assert_eq!(value(&m, "pubsub_partitions"), 51.0);
    assert_eq!(value(&m, "pubsub_partitions_poisoned"), 0.0);
    // No fetch answer here went without a pooled pipe.
    assert_eq!(value(&m, "pubsub_fetch_sendfile_fallbacks_total"), 0.0);

    // Requests per API, answered ones in the latency histogram.
    assert_eq!(value(&m, "pubsub_requests_total{api=\"Produce\"}"), 4.0);
    assert_eq!(
        value(&m, "pubsub_request_duration_seconds_count{api=\"Produce\"}"),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "pubsub_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"
        ),
        4.0
    );
    assert!(value(&m, "pubsub_request_duration_seconds_sum{api=\"Produce\"}") > 0.0);
    assert_eq!(value(&m, "pubsub_requests_total{api=\"Metadata\"}"), 3.0);
    assert_eq!(value(&m, "pubsub_requests_total{api=\"Fetch\"}"), 1.0);
    assert_eq!(
        value(&m, "pubsub_requests_total{api=\"OffsetCommit\"}"),
        1.0
    );
    assert_eq!(value(&m, "pubsub_requests_total{api=\"JoinGroup\"}"), 0.0);
    assert!(
        !m.contains_key("pubsub_request_duration_seconds_count{api=\"JoinGroup\"}"),
        "unused APIs have no histogram"
    );
    // Error codes answered.
    assert_eq!(
        value(
            &m,
            "pubsub_errors_total{api=\"Produce\",code=\"3\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        1.0
    );
    let errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("pubsub_errors_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(errors, 1.0, "no other error was answered");

    // Connections: the test client is open; the broken one was accepted and closed.
    assert_eq!(value(&m, "pubsub_connections_open"), 1.0);
    assert_eq!(value(&m, "pubsub_connections_accepted_total"), 2.0);
    assert_eq!(value(&m, "pubsub_connections_refused_total"), 0.0);
    assert_eq!(value(&m, "pubsub_protocol_errors_total"), 1.0);

    // acks=all waited for fsyncs: one per produce at least (they were
    // sequential), and one for the commit.
    let fsyncs = value(&m, "pubsub_fsync_duration_seconds_count");
    assert!(fsyncs >= 4.0, "{fsyncs} fsync rounds");
    assert_eq!(
        value(&m, "pubsub_fsync_duration_seconds_bucket{le=\"+Inf\"}"),
        fsyncs
    );

    // /health, other paths, other methods, and garbage.
    let (status, _, body) = get(metrics, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, head, body) = http(metrics, b"HEAD /health HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 3"), "{head}");
    assert_eq!(body, "", "HEAD has no body");
    assert_eq!(get(metrics, "/").await.0, 404);
    assert_eq!(get(metrics, "/metrics/../health").await.0, 404);
    assert_eq!(
        http(metrics, b"POST /metrics HTTP/1.1\r\n\r\n").await.0,
        405
    );
    assert_eq!(
        http(metrics, b"\x00\x01\x02garbage\xff\r\n\r\n").await.0,
        400
    );
    assert_eq!(http(metrics, b"GET /metrics SPDY/3\r\n\r\n").await.0, 400);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    assert_eq!(http(metrics, huge.as_bytes()).await.0, 431);
    // A client that connects and leaves, and one that stops mid-head.
    drop(TcpStream::connect(metrics).await.expect("connect"));
    {
        let mut half = TcpStream::connect(metrics).await.expect("connect");
        half.write_all(b"GET /met").await.expect("send");
    }
    // Still serving, and still counting.
    let m = scrape(metrics).await;
    assert_eq!(
        value(&m, "pubsub_topic_messages_in_total{topic=\"metered\"}"),
        35.0
    );
    assert_eq!(get(metrics, "/health").await.0, 200);

    drop(c);
    let (status, stdout, stderr) = daemon.stop();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stdout.is_empty(), "only the two address lines: {stdout:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_a_partition_refuses_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        Options {
            max_file_bytes: Some(16 << 20),
            metrics: true,
            ..Options::default()
        },
    );
    let metrics = daemon.metrics.expect("metrics address");
    let mut c = Client::connect(daemon.addr).await;
    produce_values(&mut c, "filling", 0, -1, &["first".to_string()]).await;
    assert_eq!(get(metrics, "/health").await.0, 200);

    // 512 KiB batches until the file can grow no more.
    let chunk: Vec<String> = (0..8).map(|_| "f".repeat(64 << 10)).collect();
    let mut refused = 0;
    for _ in 0..64 {
        if produce_raw(&mut c, "filling", 0, -1, &chunk)
            .await
            .error_code
            != 0
        {
            refused += 1;
            break;
        }
    }
    assert_eq!(refused, 1, "the disk filled up");

    let (status, _, body) = get(metrics, "/health").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("unhealthy: 1 partition(s) refuse writes"),
        "{body}"
    );
    assert!(body.contains("filling-0"), "{body}");
    let m = scrape(metrics).await;
    assert_eq!(value(&m, "pubsub_partitions_poisoned"), 1.0);
    assert_eq!(
        value(
            &m,
            "pubsub_errors_total{api=\"Produce\",code=\"56\",error=\"KAFKA_STORAGE_ERROR\"}"
        ),
        1.0
    );
    drop(daemon);
}
