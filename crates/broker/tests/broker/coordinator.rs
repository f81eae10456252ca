//! The group coordinator as a state machine: every timer is driven by an
//! explicit `now`, so rebalances, expiry and delays are tested without
//! sleeping. Persistence goes to a recording store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_broker::group::records::{OffsetsKey, StoredGroup};
use pubsub_broker::group::{
    CommitEntry, CommitRequest, GroupCoordinator, GroupState, JoinRequest, JoinResponse,
    OffsetsLogEntry, OffsetsRecord, OffsetsStore, SyncRequest, SyncResponse, TxnCommitRequest,
};
use pubsub_broker::notify::Promise;
use pubsub_broker::{BrokerError, GroupConfig};

/// Records what the coordinator persists; can be made to fail.
#[derive(Default)]
struct Store {
    records: Mutex<Vec<OffsetsRecord>>,
    fail: Mutex<bool>,
}

impl OffsetsStore for Store {
    fn persist(&self, _group: &str, records: Vec<OffsetsRecord>) -> pubsub_broker::Result<()> {
        if *self.fail.lock().expect("lock") {
            return Err(BrokerError::Timeout("store failure injected by the test"));
        }
        self.records.lock().expect("lock").extend(records);
        Ok(())
    }

    fn persist_transactional(
        &self,
        group: &str,
        _producer_id: i64,
        _producer_epoch: i16,
        records: Vec<OffsetsRecord>,
    ) -> pubsub_broker::Result<()> {
        self.persist(group, records)
    }
}

impl Store {
    fn group_records(&self) -> Vec<StoredGroup> {
        self.records
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, _)| matches!(OffsetsKey::decode(k), Ok(OffsetsKey::Group { .. })))
            .filter_map(|(_, v)| v.as_ref().map(|v| StoredGroup::decode(v).expect("decodes")))
            .collect()
    }
}

fn config(delay_ms: u64) -> GroupConfig {
    GroupConfig {
        min_session_timeout: Duration::from_millis(100),
        initial_rebalance_delay: Duration::from_millis(delay_ms),
        ..GroupConfig::default()
    }
}

fn join_req(member: &str, instance: Option<&str>, meta: &[u8]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), meta.to_vec())],
        session_timeout_ms: 1000,
        rebalance_timeout_ms: 5000,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
        skip_assignment_supported: true,
    }
}

fn ready<T>(p: &Arc<Promise<T>>) -> Option<T> {
    p.try_take()
}

fn joined(p: &Arc<Promise<pubsub_broker::Result<JoinResponse>>>) -> JoinResponse {
    ready(p).expect("join completed").expect("join succeeded")
}

/// A member id via the MEMBER_ID_REQUIRED round trip.
fn member_id(c: &GroupCoordinator, now: u64) -> String {
    match c.join(join_req("", None, b"m"), now) {
        Err(BrokerError::MemberIdRequired(id)) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
}

fn sync(
    c: &GroupCoordinator,
    store: &Store,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Vec<u8>)>,
    now: u64,
) -> Arc<Promise<pubsub_broker::Result<SyncResponse>>> {
    c.sync(
        store,
        SyncRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            assignments,
            ..SyncRequest::default()
        },
        now,
    )
    .expect("sync accepted")
}

#[test]
fn member_id_required_then_a_single_member_group_forms() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let id = member_id(&c, 0);
    let p = c.join(join_req(&id, None, b"meta"), 1).expect("join");
    let r = joined(&p);
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.member_id.as_str()),
        (1, id.as_str(), id.as_str())
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader sees every member");
    assert_eq!(r.members[0].metadata, b"meta");
    let s = sync(&c, &store, &id, 1, vec![(id.clone(), b"A".to_vec())], 2);
    assert_eq!(ready(&s).expect("done").expect("ok").assignment, b"A");
    assert_eq!(c.describe("g").state, GroupState::Stable);
    // The assignment was stored before the member got it.
    let stored = store.group_records();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].members[0].assignment, b"A");
    c.heartbeat("g", &id, None, 1, 3).expect("heartbeat");
}

#[test]
fn the_initial_delay_waits_for_more_members() {
    let c = GroupCoordinator::new(config(3000));
    let store = Store::default();
    let a = member_id(&c, 0);
    let pa = c.join(join_req(&a, None, b"a"), 0).expect("join a");
    let b = member_id(&c, 100);
    let pb = c.join(join_req(&b, None, b"b"), 100).expect("join b");
    c.tick(&store, 2000);
    assert!(
        ready(&pa).is_none() && ready(&pb).is_none(),
        "still inside the delay"
    );
    assert_eq!(c.describe("g").state, GroupState::PreparingRebalance);
    c.tick(&store, 3200);
    let ra = joined(&pa);
    let rb = joined(&pb);
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a, "the first member leads");
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers get no member list");
}

#[test]
fn a_second_member_triggers_a_rebalance_that_the_first_learns_from_heartbeats() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let a = member_id(&c, 0);
    let r = joined(&c.join(join_req(&a, None, b"a"), 0).expect("join"));
    ready(&sync(
        &c,
        &store,
        &a,
        r.generation_id,
        vec![(a.clone(), b"all".to_vec())],
        0,
    ))
    .expect("sync")
    .expect("sync ok");
    // B joins: the group prepares a rebalance and waits for A.
    let b = member_id(&c, 10);
    let pb = c.join(join_req(&b, None, b"b"), 10).expect("join b");
    assert!(ready(&pb).is_none());
    assert!(matches!(
        c.heartbeat("g", &a, None, 1, 20),
        Err(BrokerError::RebalanceInProgress(_))
    ));
    // Syncing the old generation is refused too.
    assert!(c
        .sync(
            &store,
            SyncRequest {
                group_id: "g".into(),
                generation_id: 1,
                member_id: a.clone(),
                ..SyncRequest::default()
            },
            20
        )
        .is_err());
    let pa = c.join(join_req(&a, None, b"a"), 30).expect("rejoin a");
    let (ra, rb) = (joined(&pa), joined(&pb));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(ra.members.len(), 2);
    // The follower waits for the leader's SyncGroup.
    let sb = sync(&c, &store, &b, 2, vec![], 40);
    assert!(ready(&sb).is_none());
    let sa = sync(
        &c,
        &store,
        &a,
        2,
        vec![(a.clone(), b"0".to_vec()), (b.clone(), b"1".to_vec())],
        50,
    );
    assert_eq!(ready(&sa).expect("a").expect("ok").assignment, b"0");
    assert_eq!(ready(&sb).expect("b").expect("ok").assignment, b"1");
    assert!(matches!(
        c.heartbeat("g", &b, None, 1, 60),
        Err(BrokerError::IllegalGeneration { .. })
    ));
    c.heartbeat("g", &b, None, 2, 60)
        .expect("current generation");
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let a = member_id(&c, 0);
    let b = member_id(&c, 0);
    let pa = c.join(join_req(&a, None, b"a"), 0).expect("a");
    let pb = c.join(join_req(&b, None, b"b"), 0).expect("b");
    let (ra, _) = (joined(&pa), joined(&pb));
    let leader = ra.leader.clone();
    let follower = if leader == a { b.clone() } else { a.clone() };
    let sf = sync(&c, &store, &follower, 1, vec![], 0);
    ready(&sync(&c, &store, &leader, 1, vec![], 0))
        .expect("leader sync")
        .expect("sync ok");
    ready(&sf).expect("follower sync").expect("ok");
    // Only the leader heartbeats; the session is 1000 ms.
    for t in (300..=900).step_by(300) {
        c.heartbeat("g", &leader, None, 1, t).expect("hb");
        c.tick(&store, t);
    }
    assert_eq!(c.describe("g").members.len(), 2);
    c.heartbeat("g", &leader, None, 1, 1200).expect("hb");
    c.tick(&store, 1200);
    let d = c.describe("g");
    assert_eq!(d.members.len(), 1, "the silent member expired");
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert!(matches!(
        c.heartbeat("g", &follower, None, 1, 1210),
        Err(BrokerError::UnknownMemberId { .. })
    ));
    let r = joined(&c.join(join_req(&leader, None, b"x"), 1300).expect("rejoin"));
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
}

#[test]
fn a_member_that_does_not_rejoin_in_time_is_dropped() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let a = member_id(&c, 0);
    joined(&c.join(join_req(&a, None, b"a"), 0).expect("a"));
    // B's join starts a rebalance; A keeps heartbeating but never rejoins.
    let b = member_id(&c, 50);
    let pb = c.join(join_req(&b, None, b"b"), 100).expect("b");
    for t in (200..5000).step_by(200) {
        let _ = c.heartbeat("g", &a, None, 1, t);
        c.tick(&store, t);
    }
    assert!(
        ready(&pb).is_none(),
        "waiting for A until the rebalance timeout"
    );
    c.tick(&store, 5200); // the rebalance timeout (5 s) has passed
    let r = joined(&pb);
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.members.len()),
        (2, b.as_str(), 1)
    );
    let d = c.describe("g");
    assert_eq!(d.state, GroupState::CompletingRebalance);
    assert_eq!(d.members.len(), 1);
    assert!(matches!(
        c.heartbeat("g", &a, None, 1, 5300),
        Err(BrokerError::UnknownMemberId { .. })
    ));
}

#[test]
fn leaving_rebalances_the_rest_and_the_last_leaving_empties_the_group() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let a = member_id(&c, 0);
    let b = member_id(&c, 0);
    let pa = c.join(join_req(&a, None, b"a"), 0).expect("a");
    let pb = c.join(join_req(&b, None, b"b"), 0).expect("b");
    joined(&pa);
    joined(&pb);
    let results = c
        .leave(
            &store,
            "g",
            &[(a.clone(), None), ("nobody".into(), None)],
            10,
        )
        .expect("leave");
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(BrokerError::UnknownMemberId { .. })
    ));
    assert_eq!(c.describe("g").state, GroupState::PreparingRebalance);
    let r = joined(&c.join(join_req(&b, None, b"b"), 20).expect("b rejoins"));
    assert_eq!(
        (r.generation_id, r.leader.as_str()),
        (2, b.as_str()),
        "b leads now"
    );
    c.leave(&store, "g", &[(b.clone(), None)], 30)
        .expect("leave");
    assert_eq!(c.describe("g").state, GroupState::Empty);
    // An empty group's metadata is stored (so a restart does not revive members).
    assert!(store
        .group_records()
        .last()
        .is_some_and(|g| g.members.is_empty()));
}

#[test]
fn a_static_member_restarting_keeps_its_assignment_without_a_rebalance() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let p = c
        .join(join_req("", Some("worker-1"), b"s"), 0)
        .expect("static join needs no member id round trip");
    let r = joined(&p);
    let old = r.member_id.clone();
    ready(&sync(
        &c,
        &store,
        &old,
        1,
        vec![(old.clone(), b"P0".to_vec())],
        0,
    ))
    .expect("sync")
    .expect("sync ok");
    // The process restarts: same instance id, no member id.
    let r2 = joined(
        &c.join(join_req("", Some("worker-1"), b"s"), 100)
            .expect("rejoin"),
    );
    assert_ne!(r2.member_id, old);
    assert_eq!(r2.generation_id, 1, "no rebalance");
    assert!(
        r2.skip_assignment,
        "the returning leader keeps the assignment"
    );
    assert_eq!(r2.leader, r2.member_id);
    assert_eq!(r2.members.len(), 1, "the leader sees the members");
    assert_eq!(c.describe("g").state, GroupState::Stable);
    let s = ready(&sync(&c, &store, &r2.member_id, 1, vec![], 110))
        .expect("sync")
        .expect("ok");
    assert_eq!(s.assignment, b"P0", "same partitions as before");
    // The old incarnation is fenced out.
    assert!(c.heartbeat("g", &old, Some("worker-1"), 1, 120).is_err());
}

/// A stable group "g" of two static members, "a" (the leader) and "b":
/// their member ids and the generation.
fn two_static_members(c: &GroupCoordinator, store: &Store) -> (String, String, i32) {
    let a = joined(&c.join(join_req("", Some("a"), b"s"), 0).expect("a joins"));
    let first = vec![(a.member_id.clone(), b"A".to_vec())];
    ready(&sync(c, store, &a.member_id, a.generation_id, first, 0))
        .expect("sync a")
        .expect("ok");
    let b = c.join(join_req("", Some("b"), b"s"), 1).expect("b joins");
    let a2 = joined(
        &c.join(join_req(&a.member_id, Some("a"), b"s"), 2)
            .expect("a rejoins"),
    );
    let b = joined(&b);
    assert_eq!(a2.leader, a.member_id, "a leads");
    let gen = a2.generation_id;
    let both = vec![
        (a.member_id.clone(), b"A".to_vec()),
        (b.member_id.clone(), b"B".to_vec()),
    ];
    ready(&sync(c, store, &a.member_id, gen, both, 3))
        .expect("sync a")
        .expect("ok");
    ready(&sync(c, store, &b.member_id, gen, vec![], 3))
        .expect("sync b")
        .expect("ok");
    assert_eq!(c.describe("g").state, GroupState::Stable);
    (a.member_id, b.member_id, gen)
}

#[test]
fn a_static_leader_that_cannot_skip_the_assignment_rejoins_through_a_rebalance() {
    // As on Kafka: before JoinGroup v9 a returning leader would have to
    // compute an assignment without knowing it must keep the old one.
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let (_, _, gen) = two_static_members(&c, &store);
    let mut old = join_req("", Some("a"), b"s");
    old.skip_assignment_supported = false;
    let p = c.join(old, 10).expect("rejoin");
    assert_eq!(c.describe("g").state, GroupState::PreparingRebalance);
    assert!(ready(&p).is_none(), "the rejoin waits for the rebalance");
    // b rejoins too; the new generation starts with a leading.
    let b = c
        .describe("g")
        .members
        .into_iter()
        .find(|m| m.group_instance_id.as_deref() == Some("b"));
    let b = b.expect("b is a member").member_id;
    let _ = c
        .join(join_req(&b, Some("b"), b"s"), 11)
        .expect("b rejoins");
    let r = joined(&p);
    assert_eq!(r.generation_id, gen + 1, "a new generation");
    assert!(!r.skip_assignment);
}

#[test]
fn a_static_follower_rejoins_without_a_rebalance_whatever_its_version_and_subscription_bytes() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let (_, b, gen) = two_static_members(&c, &store);
    // Restarted, it owns no partitions: other subscription bytes, same
    // protocol. Kafka keeps the assignment all the same.
    let mut old = join_req("", Some("b"), b"restarted");
    old.skip_assignment_supported = false;
    let r = joined(&c.join(old, 10).expect("rejoin"));
    assert_ne!(r.member_id, b);
    assert_eq!(r.generation_id, gen, "no rebalance");
    assert!(!r.skip_assignment);
    assert!(r.members.is_empty(), "a follower sees no members");
    assert_eq!(c.describe("g").state, GroupState::Stable);
    let s = ready(&sync(&c, &store, &r.member_id, gen, vec![], 11))
        .expect("sync")
        .expect("ok");
    assert_eq!(s.assignment, b"B");
}

#[test]
fn protocol_and_timeout_checks() {
    let c = GroupCoordinator::new(config(0));
    let mut bad = join_req("", None, b"m");
    bad.session_timeout_ms = 10;
    assert!(matches!(
        c.join(bad, 0),
        Err(BrokerError::InvalidSessionTimeout { .. })
    ));
    let a = member_id(&c, 0);
    joined(&c.join(join_req(&a, None, b"a"), 0).expect("a"));
    let b = member_id(&c, 0);
    let mut other_type = join_req(&b, None, b"b");
    other_type.protocol_type = "connect".into();
    assert!(matches!(
        c.join(other_type, 1),
        Err(BrokerError::InconsistentGroupProtocol(_))
    ));
    let mut no_common = join_req(&b, None, b"b");
    no_common.protocols = vec![("roundrobin".into(), vec![])];
    assert!(matches!(
        c.join(no_common, 1),
        Err(BrokerError::InconsistentGroupProtocol(_))
    ));
    assert!(matches!(
        c.join(join_req("made-up", None, b"x"), 1),
        Err(BrokerError::UnknownMemberId { .. })
    ));
}

#[test]
fn protocol_choice_is_a_vote_among_common_assignors() {
    let c = GroupCoordinator::new(config(0));
    // Ids first: the join phase then waits until all three have joined.
    let ids: Vec<String> = (0..3).map(|_| member_id(&c, 0)).collect();
    let prefs = [
        vec!["roundrobin", "range"],
        vec!["range", "roundrobin"],
        vec!["roundrobin", "range", "sticky"],
    ];
    let mut promises = Vec::new();
    for (id, prefs) in ids.iter().zip(prefs) {
        let mut req = join_req(id, None, b"");
        req.protocols = prefs.iter().map(|p| (p.to_string(), vec![])).collect();
        promises.push(c.join(req, 1).expect("join"));
    }
    for p in &promises {
        let r = joined(p);
        assert_eq!(r.generation_id, 1);
        assert_eq!(
            r.protocol_name.as_deref(),
            Some("roundrobin"),
            "two votes to one; sticky is not common"
        );
    }
}

#[test]
fn offset_commits_are_checked_then_stored() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let entry = |o| CommitEntry {
        topic: "t".into(),
        partition: 0,
        offset: o,
        leader_epoch: -1,
        metadata: "meta".into(),
    };
    // A "simple" commit (no membership) to a group without members is fine.
    c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            entries: vec![entry(5)],
            ..CommitRequest::default()
        },
        0,
        1000,
    )
    .expect("simple commit");
    let fetched = c.fetch_offsets("g", None);
    assert_eq!(fetched.len(), 1);
    let committed = fetched[0].1.clone().expect("committed");
    assert_eq!(
        (
            committed.offset,
            committed.metadata.as_str(),
            committed.commit_timestamp
        ),
        (5, "meta", 1000)
    );
    assert_eq!(c.fetch_offsets("g", Some(&[("t".into(), 9)]))[0].1, None);
    let a = member_id(&c, 0);
    let r = joined(&c.join(join_req(&a, None, b"a"), 0).expect("a"));
    // CompletingRebalance: commits wait for the assignment.
    let during = c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: r.generation_id,
            member_id: a.clone(),
            entries: vec![entry(6)],
            ..CommitRequest::default()
        },
        1,
        1001,
    );
    assert!(matches!(during, Err(BrokerError::RebalanceInProgress(_))));
    ready(&sync(&c, &store, &a, r.generation_id, vec![], 2))
        .expect("sync")
        .expect("sync ok");
    let stale = c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: r.generation_id - 1,
            member_id: a.clone(),
            entries: vec![entry(7)],
            ..CommitRequest::default()
        },
        3,
        1002,
    );
    assert!(matches!(stale, Err(BrokerError::IllegalGeneration { .. })));
    let outsider = c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            entries: vec![entry(7)],
            ..CommitRequest::default()
        },
        3,
        1002,
    );
    assert!(
        matches!(outsider, Err(BrokerError::UnknownMemberId { .. })),
        "no simple commits while the group has members"
    );
    // A failed write is not acknowledged and not visible.
    *store.fail.lock().expect("lock") = true;
    assert!(c
        .commit(
            &store,
            CommitRequest {
                group_id: "g".into(),
                generation_id: r.generation_id,
                member_id: a.clone(),
                entries: vec![entry(8)],
                ..CommitRequest::default()
            },
            4,
            1003
        )
        .is_err());
    assert_eq!(
        c.fetch_offsets("g", None)[0].1.as_ref().map(|c| c.offset),
        Some(5)
    );
    *store.fail.lock().expect("lock") = false;
    c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: r.generation_id,
            member_id: a.clone(),
            entries: vec![entry(9)],
            ..CommitRequest::default()
        },
        5,
        1004,
    )
    .expect("commit");
    assert_eq!(
        c.fetch_offsets("g", None)[0].1.as_ref().map(|c| c.offset),
        Some(9)
    );
    assert!(matches!(
        c.delete(&store, "g"),
        Err(BrokerError::NonEmptyGroup(_))
    ));
    c.leave(&store, "g", &[(a, None)], 6).expect("leave");
    c.delete(&store, "g").expect("delete an empty group");
    assert!(c.fetch_offsets("g", None).is_empty());
    assert!(c.list().is_empty());
}

#[test]
fn groups_are_rebuilt_from_their_records() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let p = c.join(join_req("", Some("s1"), b"sub"), 0).expect("join");
    let r = joined(&p);
    ready(&sync(
        &c,
        &store,
        &r.member_id,
        1,
        vec![(r.member_id.clone(), b"asg".to_vec())],
        0,
    ))
    .expect("sync")
    .expect("sync ok");
    c.commit(
        &store,
        CommitRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: r.member_id.clone(),
            group_instance_id: Some("s1".into()),
            entries: vec![CommitEntry {
                topic: "t".into(),
                partition: 2,
                offset: 77,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        },
        1,
        5,
    )
    .expect("commit");
    // A new coordinator (a restarted broker) loads the same records.
    let records = store.records.lock().expect("lock").clone();
    let c2 = GroupCoordinator::new(config(0));
    c2.load(
        records
            .into_iter()
            .map(|(key, value)| OffsetsLogEntry::Record {
                key,
                value,
                producer_id: None,
            }),
        0,
    );
    let d = c2.describe("g");
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].assignment, b"asg");
    assert_eq!(
        c2.fetch_offsets("g", None)[0].1.as_ref().map(|c| c.offset),
        Some(77)
    );
    // The static member comes back and keeps its assignment.
    let r2 = joined(
        &c2.join(join_req("", Some("s1"), b"sub"), 10)
            .expect("rejoin"),
    );
    assert_eq!(r2.generation_id, 1);
    let s = ready(&sync(&c2, &store, &r2.member_id, 1, vec![], 11))
        .expect("sync")
        .expect("ok");
    assert_eq!(s.assignment, b"asg");
}

/// OffsetDelete as Kafka's classic group allows it: a live group whose
/// protocol is not the consumer one (Connect's, say) cannot have its offsets
/// deleted (NON_EMPTY_GROUP): its subscriptions cannot be read. Once it is
/// empty, it can.
#[test]
fn offsets_of_a_live_group_with_another_protocol_cannot_be_deleted() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let id = member_id(&c, 0);
    let mut req = join_req(&id, None, b"worker");
    req.protocol_type = "connect".into();
    req.protocols = vec![("sessioned".into(), b"worker".to_vec())];
    let r = joined(&c.join(req, 1).expect("join"));
    let s = sync(
        &c,
        &store,
        &id,
        r.generation_id,
        vec![(id.clone(), b"A".to_vec())],
        2,
    );
    ready(&s).expect("done").expect("synced");
    assert_eq!(c.describe("g").state, GroupState::Stable);
    assert!(matches!(
        c.delete_offsets(&store, "g", &[("t".into(), 0)]),
        Err(BrokerError::NonEmptyGroup(_))
    ));
    c.leave(&store, "g", &[(id.clone(), None)], 3)
        .expect("leave");
    assert_eq!(c.describe("g").state, GroupState::Empty);
    let deleted = c
        .delete_offsets(&store, "g", &[("t".into(), 0)])
        .expect("an empty group's offsets can go");
    assert!(deleted[0].1.is_ok());
}

#[test]
fn txn_offset_commits_check_member_and_generation_as_kip_447() {
    let c = GroupCoordinator::new(config(0));
    let store = Store::default();
    let p = c.join(join_req("", Some("s1"), b"sub"), 0).expect("join");
    let r = joined(&p);
    ready(&sync(
        &c,
        &store,
        &r.member_id,
        1,
        vec![(r.member_id.clone(), b"asg".to_vec())],
        0,
    ))
    .expect("sync")
    .expect("sync ok");
    let req = |member: &str, instance: Option<&str>, generation: i32| TxnCommitRequest {
        group_id: "g".into(),
        producer_id: 7,
        producer_epoch: 0,
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: instance.map(String::from),
        entries: vec![CommitEntry {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    let before = store.records.lock().expect("lock").len();
    assert!(matches!(
        c.txn_commit(&store, req("stranger", None, 1), 1, 1),
        Err(BrokerError::UnknownMemberId { .. })
    ));
    assert!(matches!(
        c.txn_commit(&store, req(&r.member_id, Some("s1"), 2), 1, 1),
        Err(BrokerError::IllegalGeneration { .. })
    ));
    assert!(matches!(
        c.txn_commit(&store, req("zombie", Some("s1"), 1), 1, 1),
        Err(BrokerError::FencedInstanceId(_))
    ));
    assert_eq!(
        store.records.lock().expect("lock").len(),
        before,
        "refusals write nothing"
    );
    // The current member and generation commit; so does a producer that
    // names neither (no generation), even while the group has members.
    c.txn_commit(&store, req(&r.member_id, Some("s1"), 1), 1, 1)
        .expect("member commit");
    c.txn_commit(&store, req("", None, -1), 1, 1)
        .expect("commit outside membership");
    // Pending until the marker, then committed; an abort drops.
    assert!(c.fetch_offsets("g", None).is_empty());
    assert_eq!(c.pending_offsets("g").len(), 1);
    let partition = pubsub_broker::group::records::partition_for_group("g", 50);
    c.complete_txn(partition, 7, true);
    assert_eq!(
        c.fetch_offsets("g", None)[0].1.as_ref().map(|o| o.offset),
        Some(5)
    );
    assert!(c.pending_offsets("g").is_empty());
}
