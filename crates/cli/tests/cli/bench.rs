//! `pubsub bench produce` against a real daemon: what it reports is what
//! the broker stored, and its failures are one clear line.

use std::process::Command;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, TopicName};

use crate::client::{s, Client};
use crate::daemon::{binary, Daemon};

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(["bench", "produce"])
        .args(args)
        .output()
        .expect("run pubsub bench")
}

/// Runs the bench, which must succeed; its stdout.
fn bench_ok(args: &[&str]) -> String {
    let out = bench(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the bench with `--json`, which must succeed; its report.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = bench_ok(&[args, &["--json"]].concat());
    serde_json::from_str(&out).expect("json report")
}

/// Sum of the partitions' end offsets.
async fn stored(addr: std::net::SocketAddr, topic: &str, partitions: i32) -> i64 {
    let mut c = Client::connect(addr).await;
    let req = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )]);
    let r = c.call(7, &req).await;
    r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            p.offset
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_produce_reports_what_the_broker_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"));
    let addr = daemon.addr.to_string();

    // Unpaced, acks=all, three partitions, two connections.
    let report = bench_json(&[
        "--bootstrap",
        &addr,
        "--topic",
        "loaded",
        "--messages",
        "3000",
        "--batch",
        "64",
        "--partitions",
        "3",
        "--producers",
        "2",
        "--acks",
        "all",
        "--size",
        "100",
    ]);
    assert_eq!(report["messages"], 3000);
    assert_eq!(report["bytes"], 300_000);
    assert_eq!(report["errors"], 0);
    let p50 = report["latency_ms"]["p50"].as_f64().expect("p50");
    let max = report["latency_ms"]["max"].as_f64().expect("max");
    assert!(p50 > 0.0 && p50 <= max, "{report}");
    assert_eq!(stored(daemon.addr, "loaded", 3).await, 3000);

    // Paced, acks=1, into the existing topic; the text report.
    let text = bench_ok(&[
        "--bootstrap",
        &addr,
        "--topic",
        "loaded",
        "--messages",
        "1000",
        "--batch",
        "50",
        "--rate",
        "20000",
        "--acks",
        "1",
    ]);
    assert!(text.starts_with("produced 1000 messages"), "{text}");
    assert!(text.contains("p99.9"), "{text}");
    assert_eq!(stored(daemon.addr, "loaded", 3).await, 4000);

    // acks=0: counted as sent, and stored all the same.
    let report = bench_json(&[
        "--bootstrap",
        &addr,
        "--topic",
        "fire",
        "--messages",
        "500",
        "--batch",
        "100",
        "--acks",
        "0",
    ]);
    assert_eq!(report["messages"], 500);
    assert!(report["latency_ms"].is_null());
    let mut end = 0;
    for _ in 0..100 {
        end = stored(daemon.addr, "fire", 1).await;
        if end == 500 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(end, 500);

    // A message larger than the topic allows: refused, said, non-zero exit.
    let out = bench(&[
        "--bootstrap",
        &addr,
        "--topic",
        "loaded",
        "--messages",
        "10",
        "--batch",
        "10",
        "--size",
        "2000000",
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MESSAGE_TOO_LARGE"), "{text}");

    // A reader that went away (`| head`) ends the output quietly.
    let mut child = Command::new(binary())
        .args([
            "bench",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "loaded",
        ])
        .args(["--messages", "100", "--batch", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take()); // the read end closes before anything is written
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    daemon.stop();
}

#[test]
fn bench_errors_are_one_line() {
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = bench(&[
        "--bootstrap",
        &format!("127.0.0.1:{port}"),
        "--messages",
        "10",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot reach broker 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let out = bench(&["--acks", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("acks is 0, 1 or all"));
}

/// Runs `pubsub bench KIND ARGS --json`, which must succeed; its report.
fn bench_kind_json(kind: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(binary())
        .args(["bench", kind])
        .args(args)
        .arg("--json")
        .output()
        .expect("run pubsub bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_consume_and_e2e_count_what_was_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"));
    let addr = daemon.addr.to_string();
    let common = ["--bootstrap", &addr, "--topic", "t"];

    // Nothing to read yet: a clear error, for a missing and an empty topic.
    for (setup, want) in [
        (None, "topic \"t\" does not exist"),
        (Some(()), "topic t is empty"),
    ] {
        if setup.is_some() {
            let out = Command::new(binary())
                .args([
                    "topic",
                    "create",
                    "t",
                    "--partitions",
                    "3",
                    "--bootstrap",
                    &addr,
                ])
                .output()
                .expect("run");
            assert!(out.status.success());
        }
        let out = Command::new(binary())
            .args(["bench", "consume"])
            .args(common)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.starts_with("error: ") && err.contains(want), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }

    bench_json(
        &[
            &common[..],
            &["--messages", "3000", "--size", "100", "--batch", "64"],
        ]
        .concat(),
    );
    // Everything the topic holds, by one and by two connections.
    for consumers in ["1", "2"] {
        let r = bench_kind_json(
            "consume",
            &[&common[..], &["--consumers", consumers]].concat(),
        );
        assert_eq!(r["kind"], "consumed");
        assert_eq!(r["messages"], 3000, "{r}");
        assert_eq!(r["bytes"], 300_000, "{r}");
        assert_eq!(r["latency_of"], "fetch latency");
        let p50 = r["latency_ms"]["p50"].as_f64().expect("p50");
        assert!(p50 > 0.0 && p50 <= r["latency_ms"]["max"].as_f64().expect("max"));
    }
    // A count: whole fetches, so at least that many and no more than stored.
    let r = bench_kind_json("consume", &[&common[..], &["--messages", "1000"]].concat());
    let n = r["messages"].as_u64().expect("messages");
    assert!((1000..=3000).contains(&n), "{r}");

    // End to end: every acknowledged message is delivered once, with a
    // latency, and stored.
    let r = bench_kind_json(
        "e2e",
        &[
            &common[..],
            &[
                "--messages",
                "2000",
                "--rate",
                "20000",
                "--batch",
                "20",
                "--consumers",
                "2",
                "--size",
                "64",
            ],
        ]
        .concat(),
    );
    assert_eq!(r["kind"], "delivered");
    assert_eq!(r["latency_of"], "end-to-end latency");
    assert_eq!(r["messages"], 2000, "{r}");
    assert_eq!(r["bytes"], 128_000, "{r}");
    assert_eq!(r["errors"], 0);
    let p50 = r["latency_ms"]["p50"].as_f64().expect("p50");
    assert!(
        p50 > 0.0 && p50 <= r["latency_ms"]["max"].as_f64().expect("max"),
        "{r}"
    );
    assert_eq!(stored(daemon.addr, "t", 3).await, 5000);
    let out = Command::new(binary())
        .args(["bench", "e2e", "--size", "4"])
        .args(common)
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size must be at least 8"));
    daemon.stop();
}

#[test]
fn bench_consume_of_a_compacted_topic_stops_at_its_end() {
    // Compaction leaves fewer records than offsets: the run must end where
    // the partition ends, not wait for a message count that never comes.
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &dir.path().join("data"),
        crate::daemon::Options {
            env: vec![("PUBSUB_STORAGE_COMPACTION_INTERVAL".into(), "100ms".into())],
            ..Default::default()
        },
    );
    let addr = daemon.addr.to_string();
    let pubsub = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(binary())
            .args(args)
            .args(["--bootstrap", &addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("stdin");
        drop(input);
        let start = std::time::Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            if start.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                panic!("pubsub {args:?} still running after 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    pubsub(
        &[
            "topic",
            "create",
            "c",
            "--config",
            "cleanup.policy=compact",
            "--config",
            "segment.bytes=200",
        ],
        "",
    );
    for _ in 0..10 {
        pubsub(&["produce", "c", "-K", ":"], "a:1\nb:2\nc:3\n");
    }
    // Until the cleaner has dropped some of the 30 records.
    let start = std::time::Instant::now();
    let kept = loop {
        let all = pubsub(&["bench", "consume", "--topic", "c", "--json"], "");
        let report: serde_json::Value = serde_json::from_str(&all).expect("json");
        let n = report["messages"].as_u64().expect("messages");
        if n < 30 {
            break n;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "never compacted"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(kept >= 3, "the latest value of each key stays: {kept}");
    daemon.stop();
}

/// Against Apache Kafka, on topics it creates and deletes in a row (Kafka
/// answers NOT_LEADER_OR_FOLLOWER for a moment after a creation): every
/// message stored, none refused, the consumer reads them all back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_produce_and_consume_against_apache_kafka_store_every_message() {
    let Some(kafka) = crate::reference::Kafka::start() else {
        return;
    };
    let addr: std::net::SocketAddr = kafka.bootstrap.parse().expect("Kafka's address");
    for round in 0..3 {
        let topic = format!("loaded-{round}");
        let report = bench_json(&[
            "--bootstrap",
            &kafka.bootstrap,
            "--topic",
            &topic,
            "--messages",
            "4000",
            "--batch",
            "50",
            "--partitions",
            "8",
            "--acks",
            "all",
            "--size",
            "100",
        ]);
        assert_eq!(report["errors"], 0, "round {round}: {report}");
        assert_eq!(report["messages"], 4000, "round {round}: {report}");
        assert_eq!(stored(addr, &topic, 8).await, 4000, "round {round}");
        let out = Command::new(binary())
            .args([
                "bench",
                "consume",
                "--json",
                "--bootstrap",
                &kafka.bootstrap,
            ])
            .args(["--topic", &topic])
            .output()
            .expect("run pubsub bench consume");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let consumed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        assert_eq!(consumed["messages"], 4000, "round {round}: {consumed}");
        let deleted = Command::new(binary())
            .args(["topic", "delete", &topic, "--bootstrap", &kafka.bootstrap])
            .output()
            .expect("run pubsub topic delete");
        assert!(
            deleted.status.success(),
            "{}",
            String::from_utf8_lossy(&deleted.stderr)
        );
    }
}

/// What `pubsub bench produce` sends: batches built in reused buffers and
/// written around their request's head and tail
/// (`pubsub_client::produce::send_batch`), pipelined, at the oldest and
/// the newest Produce version this client speaks. The daemon checks each
/// batch's CRC; the records fetched back are the records built, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_sent_around_their_frames_read_back_as_built() {
    use kafka_protocol::messages::ProduceRequest;
    use pubsub_client::{admin, fetch, produce, Connection};
    use pubsub_records::{BatchBuilder, NewRecord};

    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"));
    let addr = daemon.addr.to_string();
    let mut cluster = pubsub_client::Cluster::connect(&addr, "test")
        .await
        .expect("cluster");
    admin::ensure_topic(&mut cluster, "around", 2)
        .await
        .expect("topic");
    // Record n: key, value (9 bytes to a few hundred), timestamp.
    let record = |n: usize| {
        (
            format!("k{n}").into_bytes(),
            format!("value {n} ").repeat(n % 50 + 1).into_bytes(),
            1_700_000_000_000 + n as i64,
        )
    };
    // Batch k of a round: k * 13 + 1 records, to partition k % 2.
    let numbers = |round: usize, k: usize| (0..k * 13 + 1).map(move |i| round * 1000 + k * 100 + i);

    let versions = [*produce::VERSIONS.start(), *produce::VERSIONS.end()];
    let mut expected = [Vec::new(), Vec::new()];
    for (round, version) in versions.into_iter().enumerate() {
        let conn = Connection::connect(&addr, "test").await.expect("connect");
        let (mut sender, mut receiver) = conn.into_split();
        let mut buf = Vec::new();
        let mut ids = Vec::new();
        // Eight requests in flight, each batch built in the buffer of the
        // one before (already written, so free).
        for k in 0..8 {
            let mut b = BatchBuilder::reusing(buf);
            for n in numbers(round, k) {
                let (key, value, timestamp) = record(n);
                b.push(&NewRecord {
                    timestamp,
                    key: Some(&key),
                    value: Some(&value),
                    headers: &[],
                })
                .expect("push");
                expected[k % 2].push(record(n));
            }
            let batch = b.build().expect("build");
            let to = produce::Target {
                topic: "around",
                partition: (k % 2) as i32,
                acks: -1,
            };
            let id = produce::send_batch(&mut sender, version, to, &batch)
                .await
                .expect("send");
            ids.push(id);
            buf = batch;
        }
        for id in ids {
            let answer = receiver
                .receive::<ProduceRequest>(id, version)
                .await
                .expect("answer");
            produce::base_offset(&answer, "around").expect("stored");
        }
    }

    let mut conn = Connection::connect(&addr, "test").await.expect("connect");
    for (partition, want) in expected.iter().enumerate() {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let positions = [(partition as i32, got.len() as i64)].into_iter().collect();
            let fetched = fetch::fetch(&mut conn, "around", &positions, 500, 1 << 20)
                .await
                .expect("fetch");
            assert_eq!(fetched[0].error_code, 0);
            assert!(
                !fetched[0].messages.is_empty(),
                "partition {partition} ends early"
            );
            got.extend(
                fetched
                    .into_iter()
                    .flat_map(|f| f.messages)
                    .map(|r| (r.key.expect("key"), r.value.expect("value"), r.timestamp)),
            );
        }
        assert!(got == *want, "partition {partition}: records differ");
    }
    daemon.stop();
}
