//! The classic group protocol over the wire: two members joining in turn,
//! rebalance signalled through heartbeats, protocol mismatch, commit checks.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, SyncGroupRequest, TopicName,
};

use crate::client::{s, Client};
use crate::common::*;

const JOIN_V: i16 = 7;

fn join_request(group: &str, member: &str, protocol: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s(protocol))
            .with_metadata(Bytes::from(format!("sub-of-{member}")))])
}

/// Joins the way clients do from v4: empty id, MEMBER_ID_REQUIRED, rejoin.
/// The second join may wait for the rebalance, so it runs on its own task.
async fn get_member_id(c: &mut Client, group: &str) -> String {
    let r = c
        .call(JOIN_V, &join_request(group, "", "range", 10_000))
        .await;
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED");
    assert!(!r.member_id.is_empty());
    r.member_id.to_string()
}

fn spawn_join(
    addr: std::net::SocketAddr,
    group: &str,
    member: &str,
) -> tokio::task::JoinHandle<(Client, JoinGroupResponse)> {
    let req = join_request(group, member, "range", 10_000);
    tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        let r = c.call(JOIN_V, &req).await;
        (c, r)
    })
}

async fn sync(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> Vec<u8> {
    let r = c
        .call(
            5,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(generation)
                .with_member_id(s(member))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(
                    assignments
                        .iter()
                        .map(|(m, a)| {
                            SyncGroupRequestAssignment::default()
                                .with_member_id(s(m))
                                .with_assignment(Bytes::copy_from_slice(a))
                        })
                        .collect(),
                ),
        )
        .await;
    assert_eq!(r.error_code, 0, "SyncGroup for {member}");
    r.assignment.to_vec()
}

async fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    c.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member)),
    )
    .await
    .error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_joins_and_both_get_new_assignments() {
    let server = TestServer::start().await;
    let group = "two-members";
    let mut setup = Client::connect(server.addr).await;
    let a_id = get_member_id(&mut setup, group).await;
    let (mut a, r) = spawn_join(server.addr, group, &a_id).await.expect("join");
    assert_eq!(r.error_code, 0);
    assert_eq!((r.generation_id, r.leader.as_str()), (1, a_id.as_str()));
    assert_eq!(
        sync(&mut a, group, 1, &a_id, &[(&a_id, b"all-to-a")]).await,
        b"all-to-a"
    );
    assert_eq!(heartbeat(&mut a, group, 1, &a_id).await, 0);

    // B asks for an id (the trap: it must be remembered, not UNKNOWN_MEMBER_ID later).
    let b_id = get_member_id(&mut setup, group).await;
    let b_join = spawn_join(server.addr, group, &b_id);
    // A learns of the rebalance from its heartbeat, then rejoins.
    let mut code = heartbeat(&mut a, group, 1, &a_id).await;
    while code == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        code = heartbeat(&mut a, group, 1, &a_id).await;
    }
    assert_eq!(code, 27, "REBALANCE_IN_PROGRESS");
    let (mut a, ra) = spawn_join(server.addr, group, &a_id).await.expect("rejoin");
    let (mut b, rb) = b_join.await.expect("join b");
    assert_eq!(
        (ra.error_code, rb.error_code),
        (0, 0),
        "the second member is not UNKNOWN_MEMBER_ID"
    );
    assert_eq!(ra.generation_id, 2);
    assert_eq!(rb.generation_id, 2);
    assert_eq!(
        ra.leader.as_str(),
        a_id.as_str(),
        "the leader keeps leading"
    );
    assert_eq!(ra.members.len(), 2, "the leader sees both subscriptions");
    assert!(rb.members.is_empty(), "followers see none");
    let assignment: [(&str, &[u8]); 2] = [(&a_id, b"half-a"), (&b_id, b"half-b")];
    let b_sync = {
        let group = group.to_string();
        let b_id = b_id.clone();
        tokio::spawn(async move {
            let got = sync(&mut b, &group, 2, &b_id, &[]).await;
            (b, got)
        })
    };
    assert_eq!(sync(&mut a, group, 2, &a_id, &assignment).await, b"half-a");
    let (mut b, got) = b_sync.await.expect("b sync");
    assert_eq!(got, b"half-b");
    assert_eq!(heartbeat(&mut b, group, 2, &b_id).await, 0);
    assert_eq!(
        heartbeat(&mut a, group, 1, &a_id).await,
        22,
        "ILLEGAL_GENERATION for an old generation"
    );
    let described = server.broker.coordinator().describe(group);
    assert_eq!(described.members.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_mismatch_session_bounds_and_commit_checks() {
    let server = TestServer::start().await;
    let group = "checks";
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "t", 1, &[]).await;

    let r = c
        .call(JOIN_V, &join_request(group, "", "range", 1_000))
        .await;
    assert_eq!(
        r.error_code, 26,
        "INVALID_SESSION_TIMEOUT below the minimum"
    );

    let id = get_member_id(&mut c, group).await;
    let (mut a, r) = spawn_join(server.addr, group, &id).await.expect("join");
    assert_eq!(r.error_code, 0);
    sync(&mut a, group, 1, &id, &[(&id, b"x")]).await;

    // Another member offering only a different assignor.
    let other = c
        .call(JOIN_V, &join_request(group, "", "roundrobin", 10_000))
        .await;
    let other = c
        .call(
            JOIN_V,
            &join_request(group, &other.member_id, "roundrobin", 10_000),
        )
        .await;
    assert_eq!(other.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

    let commit = |generation: i32, member: &str| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])])
    };
    let code =
        |r: kafka_protocol::messages::OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(
        code(c.call(8, &commit(1, "stranger")).await),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        code(c.call(8, &commit(9, &id)).await),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(code(c.call(8, &commit(1, &id)).await), 0);
    // A group nobody joined takes commits from "simple" consumers (generation -1).
    let simple = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("manual-assign")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(commit(0, "").topics);
    assert_eq!(code(c.call(8, &simple).await), 0);
    server.stop().await;
}
