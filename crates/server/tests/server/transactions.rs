//! The transaction APIs over the wire: every advertised version of
//! InitProducerId (with a transactional id), AddPartitionsToTxn (the client
//! form and the batched one), AddOffsetsToTxn and EndTxn, and the error
//! codes of bad requests per version (PRODUCER_FENCED where the version
//! knows it, INVALID_PRODUCER_EPOCH before).

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::*;
use pubsub_broker::txn::TxnState;
use pubsub_server::SUPPORTED;

use crate::client::{s, Client};
use crate::common::TestServer;

fn range(key: ApiKey) -> (i16, i16) {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
        .expect("advertised")
}

fn init(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

fn end(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

fn topics(topic: &str, partitions: &[i32]) -> Vec<AddPartitionsToTxnTopic> {
    vec![AddPartitionsToTxnTopic::default()
        .with_name(TopicName(s(topic)))
        .with_partitions(partitions.to_vec())]
}

/// AddPartitionsToTxn at `version` (batched from 4): every partition's code.
async fn add(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let results = if version >= 4 {
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_topics(topics(topic, partitions)),
        ]);
        let r = c.call(version, &req).await;
        assert_eq!(r.error_code, 0);
        r.results_by_transaction[0].topic_results.clone()
    } else {
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(id)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics(topic, partitions));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_the_transaction_apis_commits() {
    let server = TestServer::start().await;
    server
        .broker
        .create_topic("txv", Some(2), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    let (_, ip_max) = range(ApiKey::InitProducerId);
    let (_, ap_max) = range(ApiKey::AddPartitionsToTxn);
    let (_, ao_max) = range(ApiKey::AddOffsetsToTxn);
    let (_, et_max) = range(ApiKey::EndTxn);
    let (_, fc_max) = range(ApiKey::FindCoordinator);
    let top = ip_max.max(ap_max).max(ao_max).max(et_max);
    for i in 0..=top {
        let id = format!("tx-{i}");
        let fc = FindCoordinatorRequest::default()
            .with_key(s(&id))
            .with_key_type(1);
        let r = c.call(i.clamp(1, fc_max), &fc).await;
        assert_eq!((r.error_code, r.port), (0, i32::from(server.addr.port())));
        let r = c.call(i.min(ip_max), &init(&id, 60_000)).await;
        assert_eq!(r.error_code, 0, "InitProducerId v{}", i.min(ip_max));
        let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
        assert_eq!(epoch, 0);
        let codes = add(&mut c, i.min(ap_max), &id, pid, epoch, "txv", &[0, 1]).await;
        assert_eq!(codes, [0, 0], "AddPartitionsToTxn v{}", i.min(ap_max));
        let ao = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("g")));
        let r = c.call(i.min(ao_max), &ao).await;
        assert_eq!(r.error_code, 0, "AddOffsetsToTxn v{}", i.min(ao_max));
        let r = c
            .call(i.min(et_max), &end(&id, pid, epoch, i % 2 == 0))
            .await;
        assert_eq!(r.error_code, 0, "EndTxn v{}", i.min(et_max));
        let m = server.broker.transactions().describe(&id).expect("known");
        let done = if i % 2 == 0 {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        assert_eq!(m.state, done);
    }
    // Each transaction wrote one marker per partition.
    for p in 0..2 {
        let (_, hw) = server
            .broker
            .fetch("txv", p, 0, 1, &mut Vec::new())
            .expect("fetch");
        assert_eq!(hw, u64::try_from(top + 1).expect("count"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_kafkas_error_codes_per_version() {
    let server = TestServer::start().await;
    server
        .broker
        .create_topic("txb", Some(1), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    let id = "txb-id";
    let r = c.call(4, &init(id, 60_000)).await;
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    // Timeouts out of (0, 15 min]: INVALID_TRANSACTION_TIMEOUT (50).
    for t in [0, -1, 900_001] {
        assert_eq!(c.call(4, &init(id, t)).await.error_code, 50, "{t}");
    }
    // A producer id without an epoch: INVALID_REQUEST (42).
    let odd = init(id, 1000).with_producer_id(ProducerId(pid));
    assert_eq!(c.call(4, &odd).await.error_code, 42);
    // EndTxn with no transaction: INVALID_TXN_STATE (48).
    assert_eq!(c.call(3, &end(id, pid, epoch, true)).await.error_code, 48);
    // Unknown transactional id, or another producer id: INVALID_PRODUCER_ID_MAPPING (49).
    assert_eq!(
        c.call(3, &end("nobody", pid, epoch, true)).await.error_code,
        49
    );
    assert_eq!(
        c.call(3, &end(id, pid + 1, epoch, true)).await.error_code,
        49
    );
    // An unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3) for it, the rest not attempted (55).
    let codes = add(&mut c, 3, id, pid, epoch, "txb-nope", &[0]).await;
    assert_eq!(codes, [3]);
    let codes = add(&mut c, 3, id, pid, epoch, "txb", &[0, 7]).await;
    assert_eq!(codes, [55, 3]);
    // The next producer fences this one: PRODUCER_FENCED (90) from the
    // versions that know it, INVALID_PRODUCER_EPOCH (47) before.
    assert_eq!(add(&mut c, 3, id, pid, epoch, "txb", &[0]).await, [0]);
    let r = c.call(4, &init(id, 60_000)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, epoch + 2));
    for (v, code) in [(0, 47), (1, 47), (2, 90), (3, 90)] {
        assert_eq!(
            c.call(v, &end(id, pid, epoch, true)).await.error_code,
            code,
            "EndTxn v{v}"
        );
        assert_eq!(
            add(&mut c, v, id, pid, epoch, "txb", &[0]).await,
            [code],
            "AddPartitionsToTxn v{v}"
        );
    }
    // The fenced producer's transaction was aborted: one ABORT marker.
    let (_, hw) = server
        .broker
        .fetch("txb", 0, 0, 1, &mut Vec::new())
        .expect("fetch");
    assert_eq!(hw, 1);
    // An older producer epoch in InitProducerId (KIP-360): PRODUCER_FENCED,
    // INVALID_PRODUCER_EPOCH before version 4.
    let stale = init(id, 1000)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch);
    assert_eq!(c.call(4, &stale).await.error_code, 90);
    assert_eq!(c.call(3, &stale).await.error_code, 47);
}

/// The embedded transactional producer and a network client of one
/// transactional id fence each other through the one coordinator: the
/// newer InitProducerId aborts the other's transaction, whose next request
/// is PRODUCER_FENCED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_producer_and_a_wire_client_fence_each_other() {
    use pubsub_broker::txn::TxnRefusal;
    use pubsub_broker::{BrokerError, ProducerConfig, ProducerRecord};
    let server = TestServer::start().await;
    let broker = server.broker.clone();
    broker
        .create_topic("fx", Some(1), Default::default())
        .expect("create");
    let embedded = |broker: &pubsub_broker::Broker| {
        broker
            .producer(ProducerConfig {
                transactional_id: Some("shared".into()),
                linger: std::time::Duration::ZERO,
                ..ProducerConfig::default()
            })
            .expect("embedded transactional producer")
    };
    let fenced = |r: Result<(), BrokerError>| {
        matches!(
            r,
            Err(BrokerError::Transaction {
                refusal: TxnRefusal::ProducerFenced,
                ..
            })
        )
    };
    let first = tokio::task::block_in_place(|| {
        let p = embedded(&broker);
        p.begin_transaction().expect("begin");
        p.send(&ProducerRecord::new("fx", b"embedded").partition(0))
            .expect("send");
        p
    });
    // The wire client's InitProducerId fences the embedded producer and
    // aborts its transaction.
    let mut c = Client::connect(server.addr).await;
    let (_, ip_max) = range(ApiKey::InitProducerId);
    let (_, ap_max) = range(ApiKey::AddPartitionsToTxn);
    let (_, et_max) = range(ApiKey::EndTxn);
    let r = c.call(ip_max, &init("shared", 60_000)).await;
    assert_eq!(r.error_code, 0);
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    // Its transaction was aborted: nothing open on the partition, whose
    // last stable offset is past the record and the ABORT marker.
    let part = broker.partition("fx", 0).expect("partition");
    assert!(part.open_transactions().is_empty());
    assert_eq!(part.last_stable_offset(), 2);
    assert_eq!(
        broker
            .transactions()
            .describe("shared")
            .expect("known")
            .state,
        TxnState::Empty
    );
    tokio::task::block_in_place(|| {
        assert!(fenced(first.commit_transaction()), "embedded fenced");
        assert!(fenced(first.begin_transaction()), "and stays fenced");
    });
    let codes = add(&mut c, ap_max, "shared", pid, epoch, "fx", &[0]).await;
    assert_eq!(codes, [0]);
    // A new embedded producer fences the wire client in turn.
    let second = tokio::task::block_in_place(|| embedded(&broker));
    let m = broker.transactions().describe("shared").expect("known");
    assert_eq!(m.state, TxnState::Empty, "the wire one's aborted");
    assert!(m.producer_epoch > epoch);
    assert_eq!(part.last_stable_offset(), 3, "its ABORT marker");
    let r = c.call(et_max, &end("shared", pid, epoch, true)).await;
    assert_eq!(r.error_code, 90, "PRODUCER_FENCED");
    let codes = add(&mut c, ap_max, "shared", pid, epoch, "fx", &[0]).await;
    assert_eq!(codes, [90]);
    tokio::task::block_in_place(|| {
        second.begin_transaction().expect("begin");
        second
            .send(&ProducerRecord::new("fx", b"second").partition(0))
            .expect("send")
            .wait()
            .expect("stored");
        second.commit_transaction().expect("commit");
    });
    let m = broker.transactions().describe("shared").expect("known");
    assert_eq!(m.state, TxnState::CompleteCommit);
    server.stop().await;
}
