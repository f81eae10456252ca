//! read_committed over the wire: Fetch stops at the last stable offset and
//! answers the aborted transactions of the range it read (over a plaintext
//! listener: the zero-copy path), ListOffsets LATEST is the LSO, clients cannot
//! produce control batches, and real clients (confluent-kafka, kafka-python
//! with isolation.level=read_committed) see committed records only. The
//! transactions are written as raw transactional batches and
//! `Broker::write_txn_marker`, the coordinator's way.

use std::path::Path;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName, TransactionalId};
use pubsub_broker::{Acks, Broker};
use pubsub_records::{BatchBuilder, Batches, ControlRecord, ControlType, NewRecord};
use pubsub_server::ServerConfig;

use crate::client::{s, txn_batch, Client};
use crate::common::{
    broker_config, create_topic, fetch_request, produce_request, TestServer, FETCH_V, PRODUCE_V,
};

fn write(broker: &Broker, pid: i64, seq: i32, values: &[&str]) -> u64 {
    let mut b = txn_batch(pid, 0, seq, 1_700_000_000_000, values).to_vec();
    broker
        .produce("t", 0, &mut b, Acks::All)
        .expect("produce")
        .base_offset
}

fn end(broker: &Broker, pid: i64, kind: ControlType) -> u64 {
    broker
        .write_txn_marker(
            "t",
            0,
            pid,
            0,
            ControlRecord {
                kind,
                coordinator_epoch: 0,
            },
        )
        .expect("marker")
}

/// Producer 1 commits c1..c3 around producer 2's aborted a1, a2; producer 3
/// leaves o1 open. Returns the offset of o1 (the LSO).
fn scenario(broker: &Broker) -> u64 {
    write(broker, 1, 0, &["c1"]); // 0
    write(broker, 2, 0, &["a1", "a2"]); // 1..=2
    write(broker, 1, 1, &["c2", "c3"]); // 3..=4
    end(broker, 2, ControlType::Abort); // 5
    end(broker, 1, ControlType::Commit); // 6
    write(broker, 3, 0, &["o1"]) // 7
}

fn committed_fetch(offset: i64) -> FetchRequest {
    let mut req = fetch_request("t", 0, offset, 0, 1 << 20);
    req.isolation_level = 1;
    req.replica_id = BrokerId(-1);
    req
}

/// Values of the data batches in `records`, and the producer of each.
fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in Batches::new(records) {
        let b = b.expect("batch");
        if b.is_control() {
            continue;
        }
        for r in b.records(1 << 20).expect("records").iter() {
            let r = r.expect("record");
            let v = String::from_utf8(r.value.expect("value").to_vec()).expect("utf8");
            out.push((b.producer_id(), v));
        }
    }
    out
}

async fn check_fetches(server: &TestServer, lso: u64) {
    let mut c = Client::connect(server.addr).await;
    let r = c.call(FETCH_V, &committed_fetch(0)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!((p.high_watermark, p.last_stable_offset), (8, lso as i64));
    let records = p.records.clone().expect("records");
    let got = values(&records);
    // Everything below the LSO, aborted records included: the client drops
    // those of the aborted transactions it is told about.
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got.iter().all(|(_, v)| v != "o1"),
        "nothing at or past the LSO"
    );
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed answers a list")
        .iter()
        .map(|t| (t.producer_id.0, t.first_offset))
        .collect();
    assert_eq!(aborted, vec![(2, 1)]);
    // Past the abort marker, none is relevant.
    let r = c.call(FETCH_V, &committed_fetch(6)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.aborted_transactions.as_deref().map(<[_]>::len), Some(0));
    // At the LSO: nothing yet, no error.
    let r = c.call(FETCH_V, &committed_fetch(lso as i64)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|b| b.is_empty()));
    // Between the LSO and the log end: nothing yet, no error; past the log
    // end: OFFSET_OUT_OF_RANGE, as read_uncommitted answers (Kafka's
    // LocalLog.read checks the log end before the isolation's bound).
    let r = c.call(FETCH_V, &committed_fetch(8)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|b| b.is_empty()));
    for isolation in [1i8, 0] {
        let mut req = committed_fetch(9);
        req.isolation_level = isolation;
        let r = c.call(FETCH_V, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            p.error_code, 1,
            "isolation {isolation}: OFFSET_OUT_OF_RANGE"
        );
        assert_eq!(p.high_watermark, -1, "isolation {isolation}");
    }
    // Past the markers (which a time-based roll put in a second
    // segment: their timestamps are now, the data's are from 2023):
    // read_committed has nothing below the LSO there, read_uncommitted
    // reads the open transaction's record and still reports the real LSO.
    let r = c.call(FETCH_V, &committed_fetch(5)).await;
    let p = &r.responses[0].partitions[0];
    assert!(values(p.records.as_ref().expect("records")).is_empty());
    let mut req = committed_fetch(5);
    req.isolation_level = 0;
    let r = c.call(FETCH_V, &req).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.last_stable_offset, lso as i64);
    let all = values(p.records.as_ref().expect("records"));
    assert_eq!(all, vec![(3, "o1".to_string())]);
    assert!(p.aborted_transactions.is_none());
    // ListOffsets LATEST by isolation level.
    for (isolation, want) in [(0i8, 8i64), (1, lso as i64)] {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let r = c.call(7, &req).await;
        assert_eq!(
            r.topics[0].partitions[0].offset, want,
            "isolation {isolation}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_fetch_stops_at_the_lso_and_names_aborted_transactions() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let lso = scenario(&server.broker);
    assert_eq!(lso, 7);
    // The handler bounds the file range it answers; this plaintext run
    // sends it with sendfile (a TLS listener's copying sender gets the same
    // bounded range, not exercised here).
    check_fetches(&server, lso).await;
    // After a restart (the index and the LSO rebuilt at open) the same.
    let dir = server.stop_keeping_data().await;
    let server = TestServer::start_in(dir, broker_config(), ServerConfig::default()).await;
    check_fetches(&server, lso).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_produce_control_batches_over_the_wire() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let marker = pubsub_records::control_batch(
        ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 0,
        },
        5,
        0,
        1,
    )
    .expect("batch");
    // Without a transactional id a transactional batch is refused before its
    // records are looked at, as Kafka's produce handler does.
    let r = c
        .call(
            PRODUCE_V,
            &produce_request("t", 0, -1, Bytes::from(marker.clone())),
        )
        .await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka"
    );
    // With one (no authorizer here), the control batch itself is refused.
    let request = produce_request("t", 0, -1, Bytes::from(marker))
        .with_transactional_id(Some(TransactionalId(s("zombie"))));
    let r = c.call(PRODUCE_V, &request).await;
    let r = &r.responses[0].partition_responses[0];
    assert_eq!(r.error_code, 87, "INVALID_RECORD, as Kafka");
    server.stop().await;
}

/// Runs compat/txn/read_committed.py: one line per client, `name|values|position`.
fn run_clients(bootstrap: String, until: u64) -> Vec<(String, String, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/txn/read_committed.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["--bootstrap", &bootstrap, "--topic", "t"])
        .args(["--until", &until.to_string()])
        .output()
        .expect("run compat/txn/read_committed.py (needs confluent-kafka, kafka-python)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split('|').collect();
            assert_eq!(parts.len(), 3, "{l}");
            let pos = parts[2].parse().expect("position");
            (parts[0].to_string(), parts[1].to_string(), pos)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_read_committed_consumers_see_only_committed_records() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let lso = scenario(&server.broker);
    let bootstrap = server.addr.to_string();
    let b = bootstrap.clone();
    let before = tokio::task::spawn_blocking(move || run_clients(b, lso))
        .await
        .expect("clients");
    assert_eq!(before.len(), 2, "{before:?}");
    for (client, values, pos) in &before {
        assert_eq!(values, "c1,c2,c3", "{client}");
        assert!(*pos >= lso, "{client} reached the LSO");
    }
    // The open transaction commits: its record becomes visible, the
    // aborted ones never do.
    let at = end(&server.broker, 3, ControlType::Commit);
    let after = tokio::task::spawn_blocking(move || run_clients(bootstrap, at + 1))
        .await
        .expect("clients");
    assert_eq!(after.len(), 2, "{after:?}");
    for (client, values, _) in &after {
        assert_eq!(values, "c1,c2,c3,o1", "{client}");
    }
    server.stop().await;
}

/// WriteTxnMarkers (27), as `kafka-transactions abort` sends it: an ABORT
/// marker of producer 3 ends its open transaction, so the LSO moves to the
/// high watermark and read_committed Fetch names the transaction aborted;
/// a marker with an epoch older than the producer's is
/// INVALID_PRODUCER_EPOCH, and an unknown partition UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_txn_markers_aborts_an_open_transaction() {
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{ProducerId, WriteTxnMarkersRequest};
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let open = scenario(&server.broker);
    // Producer 4 moves to epoch 2 with a transactional write.
    let mut b = BatchBuilder::new().producer(4, 2, 0).transactional(true);
    b.push(&NewRecord {
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(b"e2"),
        headers: &[],
    })
    .expect("push");
    let mut b = b.build().expect("build");
    server
        .broker
        .produce("t", 0, &mut b, Acks::All)
        .expect("produce"); // 8
    let marker = |pid: i64, epoch: i16, topic: &str, partition: i32| {
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![partition])])
    };
    let req = WriteTxnMarkersRequest::default().with_markers(vec![
        marker(3, 0, "t", 0),
        marker(4, 1, "t", 0),
        marker(3, 0, "t", 7),
        marker(3, 0, "missing", 0),
    ]);
    let r = c.call(1, &req).await;
    let codes: Vec<(i64, i16)> = r
        .markers
        .iter()
        .map(|m| (m.producer_id.0, m.topics[0].partitions[0].error_code))
        .collect();
    assert_eq!(codes, vec![(3, 0), (4, 47), (3, 3), (3, 3)]);
    // Producer 3's transaction is over (aborted); producer 4's, at 8, is
    // not: a read_committed fetch from o1 (7) reads it, names it aborted.
    let r = c.call(FETCH_V, &committed_fetch(open as i64)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.high_watermark, p.last_stable_offset), (10, 8));
    let read = values(&p.records.clone().expect("records"));
    assert_eq!(read, vec![(3, "o1".to_string())]);
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed answers a list")
        .iter()
        .map(|t| (t.producer_id.0, t.first_offset))
        .collect();
    assert_eq!(aborted, vec![(3, 7)]);
}
