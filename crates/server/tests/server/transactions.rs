//! The transaction APIs over the wire: every advertised version of
//! InitProducerId (with a transactional id), AddPartitionsToTxn (the client
//! form and the batched one), AddOffsetsToTxn and EndTxn, and the error
//! codes of bad requests per version (PRODUCER_FENCED where the version
//! knows it, INVALID_PRODUCER_EPOCH before).

use kafka_protocol::messages::*;
use pubsub_broker::txn::TxnState;
use pubsub_server::dispatch::supported;

use crate::client::{add_partitions, end_txn_request, init_txn_request, s, Client};
use crate::common::TestServer;

fn range(key: ApiKey) -> (i16, i16) {
    supported(key).expect("advertised")
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
        let r = c.call(i.min(ip_max), &init_txn_request(&id, 60_000)).await;
        assert_eq!(r.error_code, 0, "InitProducerId v{}", i.min(ip_max));
        let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
        assert_eq!(epoch, 0);
        let codes = add_partitions(&mut c, i.min(ap_max), (&id, pid, epoch), "txv", &[0, 1]).await;
        assert_eq!(codes, [0, 0], "AddPartitionsToTxn v{}", i.min(ap_max));
        let ao = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("g")));
        let r = c.call(i.min(ao_max), &ao).await;
        assert_eq!(r.error_code, 0, "AddOffsetsToTxn v{}", i.min(ao_max));
        let r = c
            .call(i.min(et_max), &end_txn_request(&id, pid, epoch, i % 2 == 0))
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
    let r = c.call(4, &init_txn_request(id, 60_000)).await;
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    // Timeouts out of (0, 15 min]: INVALID_TRANSACTION_TIMEOUT (50).
    for t in [0, -1, 900_001] {
        assert_eq!(
            c.call(4, &init_txn_request(id, t)).await.error_code,
            50,
            "{t}"
        );
    }
    // A producer id without an epoch: INVALID_REQUEST (42).
    let odd = init_txn_request(id, 1000).with_producer_id(ProducerId(pid));
    assert_eq!(c.call(4, &odd).await.error_code, 42);
    // EndTxn with no transaction: INVALID_TXN_STATE (48).
    assert_eq!(
        c.call(3, &end_txn_request(id, pid, epoch, true))
            .await
            .error_code,
        48
    );
    // Unknown transactional id, or another producer id: INVALID_PRODUCER_ID_MAPPING (49).
    assert_eq!(
        c.call(3, &end_txn_request("nobody", pid, epoch, true))
            .await
            .error_code,
        49
    );
    assert_eq!(
        c.call(3, &end_txn_request(id, pid + 1, epoch, true))
            .await
            .error_code,
        49
    );
    // An unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3) for it, the rest not attempted (55).
    let codes = add_partitions(&mut c, 3, (id, pid, epoch), "txb-nope", &[0]).await;
    assert_eq!(codes, [3]);
    let codes = add_partitions(&mut c, 3, (id, pid, epoch), "txb", &[0, 7]).await;
    assert_eq!(codes, [55, 3]);
    // The next producer fences this one: PRODUCER_FENCED (90) from the
    // versions that know it, INVALID_PRODUCER_EPOCH (47) before.
    assert_eq!(
        add_partitions(&mut c, 3, (id, pid, epoch), "txb", &[0]).await,
        [0]
    );
    let r = c.call(4, &init_txn_request(id, 60_000)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, epoch + 2));
    for (v, code) in [(0, 47), (1, 47), (2, 90), (3, 90)] {
        assert_eq!(
            c.call(v, &end_txn_request(id, pid, epoch, true))
                .await
                .error_code,
            code,
            "EndTxn v{v}"
        );
        assert_eq!(
            add_partitions(&mut c, v, (id, pid, epoch), "txb", &[0]).await,
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
    let stale = init_txn_request(id, 1000)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch);
    assert_eq!(c.call(4, &stale).await.error_code, 90);
    assert_eq!(c.call(3, &stale).await.error_code, 47);
}

/// A transactional batch of one record from `pid` at epoch 0.
fn txn_batch(pid: i64, seq: i32) -> Vec<u8> {
    crate::client::txn_batch(pid, 0, seq, 1_700_000_000_000, &["v"]).to_vec()
}

/// ListTransactions with the filters its version has.
async fn list(
    c: &mut Client,
    v: i16,
    states: &[&str],
    pids: &[i64],
    duration: i64,
    pattern: Option<&str>,
) -> ListTransactionsResponse {
    let mut req = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|x| s(x)).collect())
        .with_producer_id_filters(pids.iter().map(|&p| ProducerId(p)).collect());
    if v >= 1 {
        req = req.with_duration_filter(duration);
    }
    if v >= 2 {
        req = req.with_transactional_id_pattern(pattern.map(s));
    }
    c.call(v, &req).await
}

fn listed(r: &ListTransactionsResponse) -> Vec<(String, i64, String)> {
    let mut out: Vec<_> = r
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// DescribeTransactions, ListTransactions (every version and filter) and
/// DescribeProducers' transaction fields for an ongoing transaction (two
/// partitions and a group's offsets), a committed one and an id with none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_transactions_and_their_producers() {
    let server = TestServer::start().await;
    let broker = &server.broker;
    broker
        .create_topic("txd", Some(2), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    let mut pids = Vec::new();
    for id in ["a-open", "b-done", "c-empty"] {
        let r = c.call(4, &init_txn_request(id, 60_000)).await;
        assert_eq!(r.error_code, 0);
        pids.push(r.producer_id.0);
    }
    let (a, b, e) = (pids[0], pids[1], pids[2]);
    // a: ongoing, a record in txd-0 at offset 0, txd-1 and group g's offsets joined.
    assert_eq!(
        add_partitions(&mut c, 3, ("a-open", a, 0), "txd", &[0, 1]).await,
        [0, 0]
    );
    let ao = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s("a-open")))
        .with_producer_id(ProducerId(a))
        .with_producer_epoch(0)
        .with_group_id(GroupId(s("g")));
    assert_eq!(c.call(3, &ao).await.error_code, 0);
    let written = broker
        .produce("txd", 0, &mut txn_batch(a, 0), pubsub_broker::Acks::All)
        .expect("produce");
    assert_eq!(written.base_offset, 0);
    // b: a record in txd-1 (offset 0), committed (its marker at offset 1).
    assert_eq!(
        add_partitions(&mut c, 3, ("b-done", b, 0), "txd", &[1]).await,
        [0]
    );
    broker
        .produce("txd", 1, &mut txn_batch(b, 0), pubsub_broker::Acks::All)
        .expect("produce");
    assert_eq!(
        c.call(3, &end_txn_request("b-done", b, 0, true))
            .await
            .error_code,
        0
    );

    let req = DescribeTransactionsRequest::default().with_transactional_ids(
        ["a-open", "b-done", "c-empty", "nobody"]
            .iter()
            .map(|x| TransactionalId(s(x)))
            .collect(),
    );
    let r = c.call(0, &req).await;
    let states = &r.transaction_states;
    assert_eq!(states.len(), 4);
    let open = &states[0];
    assert_eq!(
        (
            open.error_code,
            open.transactional_id.as_str(),
            open.transaction_state.as_str()
        ),
        (0, "a-open", "Ongoing")
    );
    assert_eq!((open.producer_id.0, open.producer_epoch), (a, 0));
    assert_eq!(open.transaction_timeout_ms, 60_000);
    assert!(open.transaction_start_time_ms > 0);
    let topics: Vec<(String, Vec<i32>)> = open
        .topics
        .iter()
        .map(|t| (t.topic.to_string(), t.partitions.clone()))
        .collect();
    let offsets_partition = pubsub_broker::group::records::partition_for_group(
        "g",
        broker.config().group.offsets_topic_partitions,
    );
    assert_eq!(
        topics,
        [
            ("__consumer_offsets".to_string(), vec![offsets_partition]),
            ("txd".to_string(), vec![0, 1])
        ]
    );
    let done = &states[1];
    assert_eq!(
        (
            done.error_code,
            done.transaction_state.as_str(),
            done.producer_id.0
        ),
        (0, "CompleteCommit", b)
    );
    assert!(done.topics.is_empty());
    let empty = &states[2];
    assert_eq!(
        (
            empty.error_code,
            empty.transaction_state.as_str(),
            empty.producer_id.0
        ),
        (0, "Empty", e)
    );
    assert_eq!(empty.transaction_start_time_ms, -1);
    // Unknown: TRANSACTIONAL_ID_NOT_FOUND (105).
    assert_eq!(
        (states[3].error_code, states[3].transactional_id.as_str()),
        (105, "nobody")
    );

    let all = [
        ("a-open".to_string(), a, "Ongoing".to_string()),
        ("b-done".to_string(), b, "CompleteCommit".to_string()),
        ("c-empty".to_string(), e, "Empty".to_string()),
    ];
    let (_, max) = range(ApiKey::ListTransactions);
    assert_eq!(max, 2);
    for v in 0..=max {
        let r = list(&mut c, v, &[], &[], -1, None).await;
        assert_eq!((r.error_code, listed(&r)), (0, all.to_vec()), "v{v}");
        // State names as Kafka spells them; others are echoed back.
        let r = list(&mut c, v, &["Ongoing", "ongoing", "Nope"], &[], -1, None).await;
        assert_eq!(listed(&r), all[..1], "v{v}");
        let unknown: Vec<&str> = r.unknown_state_filters.iter().map(|x| x.as_str()).collect();
        assert_eq!(unknown, ["ongoing", "Nope"]);
        let r = list(&mut c, v, &[], &[b, 12345], -1, None).await;
        assert_eq!(listed(&r), all[1..2], "v{v}");
    }
    // v1+: only transactions running longer than the duration (no
    // transaction started an hour ago; an id with none has start -1, which
    // Kafka counts as older than any duration).
    let r = list(&mut c, 1, &[], &[], 3_600_000, None).await;
    assert_eq!(listed(&r), all[2..], "an hour");
    let r = list(&mut c, 0, &[], &[], 3_600_000, None).await;
    assert_eq!(listed(&r), all, "v0 has no duration filter");
    // v2: the whole id must match the pattern; an invalid one is refused.
    let r = list(&mut c, 2, &[], &[], -1, Some("[ab]-.*")).await;
    assert_eq!(listed(&r), all[..2]);
    let r = list(&mut c, 2, &[], &[], -1, Some("open")).await;
    assert_eq!(listed(&r), []);
    let r = list(&mut c, 2, &[], &[], -1, Some("")).await;
    assert_eq!(listed(&r), all);
    let r = list(&mut c, 2, &[], &[], -1, Some("(")).await;
    assert_eq!((r.error_code, listed(&r)), (128, vec![]));

    // DescribeProducers: a's open transaction starts at offset 0 of txd-0
    // (no marker yet: coordinator epoch -1); b's ended with a marker.
    let req = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(TopicName(s("txd")))
            .with_partition_indexes(vec![0, 1]),
    ]);
    let r = c.call(0, &req).await;
    let parts = &r.topics[0].partitions;
    let p0 = &parts[0].active_producers;
    assert_eq!(p0.len(), 1);
    assert_eq!(
        (
            p0[0].producer_id.0,
            p0[0].current_txn_start_offset,
            p0[0].coordinator_epoch
        ),
        (a, 0, -1)
    );
    let p1 = &parts[1].active_producers;
    assert_eq!(p1.len(), 1);
    assert_eq!(
        (
            p1[0].producer_id.0,
            p1[0].current_txn_start_offset,
            p1[0].coordinator_epoch
        ),
        (b, -1, 0)
    );
}

/// `__transaction_state`, named, is reported internal in Metadata (v1+) and
/// DescribeTopicPartitions, as `__consumer_offsets` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_state_topic_is_internal() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    assert_eq!(
        c.call(4, &init_txn_request("tx-int", 60_000))
            .await
            .error_code,
        0
    );
    for name in ["__transaction_state", "__consumer_offsets"] {
        if name == "__consumer_offsets" {
            let find = FindCoordinatorRequest::default().with_key(s("g"));
            assert_eq!(c.call(3, &find).await.error_code, 0);
        }
        let req = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(s(name))))]))
            .with_allow_auto_topic_creation(false);
        let r = c.call(12, &req).await;
        assert_eq!(
            (r.topics[0].error_code, r.topics[0].is_internal),
            (0, true),
            "{name}"
        );
        let req = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                describe_topic_partitions_request::TopicRequest::default()
                    .with_name(TopicName(s(name))),
            ])
            .with_response_partition_limit(100);
        let r = c.call(0, &req).await;
        assert_eq!(
            (r.topics[0].error_code, r.topics[0].is_internal),
            (0, true),
            "{name}"
        );
    }
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
    let r = c.call(ip_max, &init_txn_request("shared", 60_000)).await;
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
    let codes = add_partitions(&mut c, ap_max, ("shared", pid, epoch), "fx", &[0]).await;
    assert_eq!(codes, [0]);
    // A new embedded producer fences the wire client in turn.
    let second = tokio::task::block_in_place(|| embedded(&broker));
    let m = broker.transactions().describe("shared").expect("known");
    assert_eq!(m.state, TxnState::Empty, "the wire one's aborted");
    assert!(m.producer_epoch > epoch);
    assert_eq!(part.last_stable_offset(), 3, "its ABORT marker");
    let r = c
        .call(et_max, &end_txn_request("shared", pid, epoch, true))
        .await;
    assert_eq!(r.error_code, 90, "PRODUCER_FENCED");
    let codes = add_partitions(&mut c, ap_max, ("shared", pid, epoch), "fx", &[0]).await;
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
