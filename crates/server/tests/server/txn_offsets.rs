//! TxnOffsetCommit over the wire: every advertised version commits a
//! group's offsets inside a transaction (invisible to OffsetFetch, and
//! UNSTABLE_OFFSET_COMMIT with `require_stable`, until the commit), an
//! abort drops them, and bad requests get Kafka's codes per version.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use pubsub_server::dispatch::supported;

use crate::client::{end_txn_request, init_txn, s, Client};
use crate::common::TestServer;

async fn add_offsets(c: &mut Client, id: &str, (pid, epoch): (i64, i16), group: &str) {
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(s(group)));
    assert_eq!(c.call(3, &req).await.error_code, 0);
}

async fn end(c: &mut Client, id: &str, (pid, epoch): (i64, i16), commit: bool) {
    let req = end_txn_request(id, pid, epoch, commit);
    assert_eq!(c.call(3, &req).await.error_code, 0);
}

/// TxnOffsetCommit of `txo-0` at `version`: every partition's code.
#[allow(clippy::too_many_arguments)]
async fn commit(
    c: &mut Client,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    (generation, member): (i32, &str),
    partitions: &[i32],
    offset: i64,
) -> Vec<i16> {
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_group_id(GroupId(s(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("txo")))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(s("meta")))
                    })
                    .collect(),
            )]);
    c.call(version, &req).await.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch v7 of `txo-0`: (error code, committed offset).
async fn fetch(c: &mut Client, group: &str, require_stable: bool) -> (i16, i64) {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("txo")))
            .with_partition_indexes(vec![0])]));
    let r = c.call(7, &req).await;
    assert_eq!(r.error_code, 0);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

const PLAIN: (i32, &str) = (-1, "");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_commits_offsets_with_the_transaction() {
    let server = TestServer::start().await;
    server
        .broker
        .create_topic("txo", Some(1), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    for v in 0..=supported(ApiKey::TxnOffsetCommit).expect("advertised").1 {
        let (id, group) = (format!("txo-{v}"), format!("txo-g{v}"));
        let p = init_txn(&mut c, 4, &id).await;
        add_offsets(&mut c, &id, p, &group).await;
        let offset = 10 + i64::from(v);
        assert_eq!(
            commit(&mut c, v, &id, p, &group, PLAIN, &[0], offset).await,
            [0],
            "TxnOffsetCommit v{v}"
        );
        assert_eq!(fetch(&mut c, &group, false).await, (0, -1), "pending");
        // UNSTABLE_OFFSET_COMMIT (88) while the transaction is open.
        assert_eq!(fetch(&mut c, &group, true).await, (88, -1));
        end(&mut c, &id, p, true).await;
        assert_eq!(fetch(&mut c, &group, true).await, (0, offset));
        // The next transaction's commit, aborted: dropped.
        add_offsets(&mut c, &id, p, &group).await;
        assert_eq!(
            commit(&mut c, v, &id, p, &group, PLAIN, &[0], 99).await,
            [0]
        );
        end(&mut c, &id, p, false).await;
        assert_eq!(fetch(&mut c, &group, true).await, (0, offset));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_txn_offset_commits_get_kafkas_error_codes_per_version() {
    let server = TestServer::start().await;
    server
        .broker
        .create_topic("txo", Some(1), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    let (id, group) = ("txo-bad", "txo-bad-g");
    let p = init_txn(&mut c, 4, id).await;
    // The group was not added with AddOffsetsToTxn: INVALID_TXN_STATE (48).
    assert_eq!(commit(&mut c, 3, id, p, group, PLAIN, &[0], 1).await, [48]);
    add_offsets(&mut c, id, p, group).await;
    // An unknown partition: UNKNOWN_TOPIC_OR_PARTITION (3); the rest commit.
    assert_eq!(
        commit(&mut c, 3, id, p, group, PLAIN, &[0, 5], 1).await,
        [0, 3]
    );
    // Another producer id: INVALID_PRODUCER_ID_MAPPING (49).
    assert_eq!(
        commit(&mut c, 3, id, (p.0 + 1, p.1), group, PLAIN, &[0], 1).await,
        [49]
    );
    // An unknown group with a generation: ILLEGAL_GENERATION (22).
    add_offsets(&mut c, id, p, "txo-nogroup").await;
    assert_eq!(
        commit(&mut c, 3, id, p, "txo-nogroup", (4, "m"), &[0], 1).await,
        [22]
    );
    // An empty group id: INVALID_GROUP_ID (24).
    assert_eq!(commit(&mut c, 3, id, p, "", PLAIN, &[0], 1).await, [24]);
    // A new producer of the id fences this one: INVALID_PRODUCER_EPOCH
    // (47) at every version, as Kafka 4.1.1 answers.
    let fresh = init_txn(&mut c, 4, id).await;
    assert!(fresh.1 > p.1);
    for (v, code) in [(0, 47), (1, 47), (2, 47), (3, 47), (4, 47), (5, 47)] {
        assert_eq!(
            commit(&mut c, v, id, p, group, PLAIN, &[0], 1).await,
            [code],
            "v{v}"
        );
    }
    // The fenced transaction was aborted: nothing committed.
    assert_eq!(fetch(&mut c, group, true).await, (0, -1));
}

/// Transaction version 2 (KIP-890): TxnOffsetCommit v5 adds the group's
/// offsets partition to the transaction itself, as Kafka 4.1.1 does (no
/// AddOffsetsToTxn); earlier versions still need AddOffsetsToTxn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_5_adds_the_group_to_the_transaction_itself() {
    let server = TestServer::start().await;
    server
        .broker
        .create_topic("txo", Some(1), Default::default())
        .expect("create");
    let mut c = Client::connect(server.addr).await;
    let (id, group) = ("txo-v5", "txo-v5-g");
    let p = init_txn(&mut c, 4, id).await;
    // Version 4 clients take KIP-890's abortable error: TRANSACTION_ABORTABLE
    // (120) where version 3 gets INVALID_TXN_STATE (48), as on Kafka 4.1.1.
    assert_eq!(commit(&mut c, 4, id, p, group, PLAIN, &[0], 7).await, [120]);
    // A stale epoch or another producer id is refused before anything joins.
    let stale = (p.0, p.1 - 1);
    assert_eq!(
        commit(&mut c, 5, id, stale, group, PLAIN, &[0], 7).await,
        [47]
    );
    let other = (p.0 + 1, p.1);
    assert_eq!(
        commit(&mut c, 5, id, other, group, PLAIN, &[0], 7).await,
        [49]
    );
    assert_eq!(commit(&mut c, 5, id, p, group, PLAIN, &[0], 7).await, [0]);
    assert_eq!(fetch(&mut c, group, true).await, (88, -1), "pending");
    let txn = server.broker.transactions().describe(id).expect("known");
    assert_eq!(txn.partitions.len(), 1, "{txn:?}");
    assert_eq!(txn.client_version, 2);
    end(&mut c, id, p, true).await;
    assert_eq!(fetch(&mut c, group, true).await, (0, 7));
    // The next transaction, started by the offsets alone, aborted.
    assert_eq!(commit(&mut c, 5, id, p, group, PLAIN, &[0], 9).await, [0]);
    end(&mut c, id, p, false).await;
    assert_eq!(fetch(&mut c, group, true).await, (0, 7));
}
