//! Fetch sessions (KIP-227) over the wire: a full fetch opens a session,
//! incremental fetches name only what changed and are answered with only the
//! partitions that have something new; forgotten partitions, wrong epochs,
//! unknown sessions, a full cache, and a busy partition that must not starve
//! the others.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use pubsub_server::ServerConfig;

use crate::client::{s, Client};
use crate::common::*;

/// A fetch of `parts` (topic, partition, offset) in session `id` at `epoch`,
/// dropping `forgotten` from it.
fn session_fetch(
    id: i32,
    epoch: i32,
    parts: &[(&str, i32, i64)],
    forgotten: &[(&str, i32)],
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for &(topic, partition, offset) in parts {
        let p = FetchPartition::default()
            .with_partition(partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(offset)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(1 << 20);
        match topics.last_mut() {
            Some(t) if *t.topic == s(topic) => t.partitions.push(p),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let forgotten = forgotten
        .iter()
        .map(|&(topic, partition)| {
            ForgottenTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![partition])
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// A partition an answer carried: (topic, partition, records, next offset
/// after them (or -1), high watermark, error).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Carried {
    topic: String,
    partition: i32,
    records: i32,
    next: i64,
    high_watermark: i64,
    error: i16,
}

fn carried(r: &FetchResponse) -> Vec<Carried> {
    let mut out = Vec::new();
    for t in &r.responses {
        for p in &t.partitions {
            let bytes = p.records.clone().unwrap_or_default();
            let (mut records, mut next, mut at) = (0, -1, 0);
            while at < bytes.len() {
                let b = pubsub_records::Batch::parse(&bytes[at..]).expect("batch");
                records += b.record_count();
                next = b.next_offset();
                at += b.len();
            }
            out.push(Carried {
                topic: t.topic.to_string(),
                partition: p.partition_index,
                records,
                next,
                high_watermark: p.high_watermark,
                error: p.error_code,
            });
        }
    }
    out
}

/// Which (topic, partition) an answer carried, in order.
fn which(r: &FetchResponse) -> Vec<(String, i32)> {
    carried(r)
        .into_iter()
        .map(|c| (c.topic, c.partition))
        .collect()
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_fetch_opens_a_session_and_incremental_fetches_carry_only_what_changed() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "inc", 3, &[]).await;
    for p in [0, 1] {
        produce(&mut c, "inc", p, -1, bytes(batch_of(&["a"]))).await;
    }
    let all = [("inc", 0, 0), ("inc", 1, 0), ("inc", 2, 0)];
    let full = c
        .call(FETCH_V, &session_fetch(0, 0, &all, &[], 0, 1 << 20))
        .await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert!(id > 0, "a session was opened");
    let got = carried(&full);
    assert_eq!(got.len(), 3, "a full answer carries every partition");
    assert_eq!(
        got.iter().map(|c| c.records).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );

    // The client moves 0 and 1 on; nothing else changed: an empty answer.
    let moved = [("inc", 0, 1), ("inc", 1, 1)];
    let r = c
        .call(FETCH_V, &session_fetch(id, 1, &moved, &[], 0, 1 << 20))
        .await;
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(which(&r), vec![], "nothing new");

    // New records in partition 2, which the request does not name: the
    // session remembers its offset, and the answer carries only it.
    produce(&mut c, "inc", 2, -1, bytes(batch_of(&["b", "c"]))).await;
    let r = c
        .call(FETCH_V, &session_fetch(id, 2, &[], &[], 0, 1 << 20))
        .await;
    let got = carried(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].partition, got[0].records, got[0].high_watermark),
        (2, 2, 2)
    );

    // A long poll in the session is woken by an append to one partition
    // and carries only that one.
    let addr = server.addr;
    let waiter = tokio::spawn(async move {
        let mut w = Client::connect(addr).await;
        w.call(
            FETCH_V,
            &session_fetch(id, 3, &[("inc", 2, 2)], &[], 30_000, 1 << 20),
        )
        .await
    });
    // Give the waiter time to start waiting (if it has not, the append is
    // found by its first read instead: the answer is the same).
    tokio::time::sleep(Duration::from_millis(300)).await;
    produce(&mut c, "inc", 1, -1, bytes(batch_of(&["d"]))).await;
    let r = waiter.await.expect("waiter");
    assert_eq!(r.error_code, 0);
    let got = carried(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].partition, got[0].records, got[0].next), (1, 1, 2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_epochs_and_unknown_sessions_are_refused_without_closing_the_session() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "ep", 1, &[]).await;
    let full = c
        .call(
            FETCH_V,
            &session_fetch(0, 0, &[("ep", 0, 0)], &[], 0, 1 << 20),
        )
        .await;
    let id = full.session_id;
    assert!(id > 0);
    for (session, epoch, code) in [
        (id, 2, 71),                 // INVALID_FETCH_SESSION_EPOCH: 1 is next
        (id, 0x7fff_0000, 71),       //
        (id.wrapping_add(1), 1, 70), // FETCH_SESSION_ID_NOT_FOUND
        (0, 1, 70),                  // an incremental fetch of no session
    ] {
        let r = c
            .call(
                FETCH_V,
                &session_fetch(session, epoch, &[], &[], 0, 1 << 20),
            )
            .await;
        assert_eq!(
            (r.error_code, r.session_id, r.responses.len()),
            (code, 0, 0),
            "session {session} epoch {epoch}"
        );
    }
    // The session is still there, at epoch 1.
    let r = c
        .call(FETCH_V, &session_fetch(id, 1, &[], &[], 0, 1 << 20))
        .await;
    assert_eq!((r.error_code, r.session_id), (0, id));
    // A full fetch at the final epoch closes it and answers without one.
    let r = c
        .call(
            FETCH_V,
            &session_fetch(id, -1, &[("ep", 0, 0)], &[], 0, 1 << 20),
        )
        .await;
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(which(&r), vec![tp("ep", 0)]);
    let r = c
        .call(FETCH_V, &session_fetch(id, 2, &[], &[], 0, 1 << 20))
        .await;
    assert_eq!(r.error_code, 70, "closed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_partitions_leave_the_session_and_the_last_one_closes_it() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "fa", 1, &[]).await;
    create_topic(&mut c, "fb", 1, &[]).await;
    let full = c
        .call(
            FETCH_V,
            &session_fetch(0, 0, &[("fa", 0, 0), ("fb", 0, 0)], &[], 0, 1 << 20),
        )
        .await;
    let id = full.session_id;
    assert!(id > 0);
    assert_eq!(which(&full), vec![tp("fa", 0), tp("fb", 0)]);
    let r = c
        .call(
            FETCH_V,
            &session_fetch(id, 1, &[], &[("fb", 0)], 0, 1 << 20),
        )
        .await;
    assert_eq!((r.error_code, which(&r)), (0, vec![]));
    for topic in ["fa", "fb"] {
        produce(&mut c, topic, 0, -1, bytes(batch_of(&["x"]))).await;
    }
    let r = c
        .call(FETCH_V, &session_fetch(id, 2, &[], &[], 0, 1 << 20))
        .await;
    assert_eq!(which(&r), vec![tp("fa", 0)], "fb was forgotten");
    // Named again, fb is back, as new (its state is sent in full).
    let r = c
        .call(
            FETCH_V,
            &session_fetch(id, 3, &[("fa", 0, 1), ("fb", 0, 0)], &[], 0, 1 << 20),
        )
        .await;
    assert_eq!(which(&r), vec![tp("fb", 0)]);
    // Forgetting every partition closes the session.
    let r = c
        .call(
            FETCH_V,
            &session_fetch(id, 4, &[], &[("fa", 0), ("fb", 0)], 0, 1 << 20),
        )
        .await;
    assert_eq!((r.error_code, r.session_id, which(&r)), (0, 0, vec![]));
    let r = c
        .call(FETCH_V, &session_fetch(id, 5, &[], &[], 0, 1 << 20))
        .await;
    assert_eq!(r.error_code, 70);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_declines_young_sessions_and_evicts_stale_ones() {
    // Two slots; sessions stay at least an hour: a third is declined.
    let config = ServerConfig {
        fetch_session_slots: 2,
        fetch_session_eviction: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(broker_config(), config).await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "ev", 3, &[]).await;
    let open = |parts: &[(&str, i32, i64)]| session_fetch(0, 0, parts, &[], 0, 1 << 20);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = c.call(FETCH_V, &open(&[("ev", 0, 0)])).await;
        assert!(r.session_id > 0);
        ids.push(r.session_id);
    }
    let r = c
        .call(FETCH_V, &open(&[("ev", 0, 0), ("ev", 1, 0), ("ev", 2, 0)]))
        .await;
    assert_eq!(
        (r.error_code, r.session_id, r.responses[0].partitions.len()),
        (0, 0, 3),
        "no room: answered in full without a session"
    );
    for id in &ids {
        let r = c
            .call(FETCH_V, &session_fetch(*id, 1, &[], &[], 0, 1 << 20))
            .await;
        assert_eq!(r.error_code, 0, "both sessions are kept");
    }
    server.stop().await;

    // Sessions that count as unused at once: a new one evicts the least
    // recently used.
    let config = ServerConfig {
        fetch_session_slots: 2,
        fetch_session_eviction: Duration::ZERO,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(broker_config(), config).await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "ev", 1, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = c
            .call(
                FETCH_V,
                &session_fetch(0, 0, &[("ev", 0, 0)], &[], 0, 1 << 20),
            )
            .await;
        assert!(r.session_id > 0);
        ids.push(r.session_id);
    }
    let r = c
        .call(FETCH_V, &session_fetch(ids[0], 1, &[], &[], 0, 1 << 20))
        .await;
    assert_eq!(r.error_code, 70, "the oldest was evicted");
    for id in &ids[1..] {
        let r = c
            .call(FETCH_V, &session_fetch(*id, 1, &[], &[], 0, 1 << 20))
            .await;
        assert_eq!(r.error_code, 0);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_partition_does_not_starve_the_others() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "fair", 3, &[]).await;
    // Partition 0 has far more than one response holds; 1 and 2 a little.
    let big = "z".repeat(4_000);
    for _ in 0..20 {
        produce(&mut c, "fair", 0, -1, bytes(batch_of(&[&big]))).await;
    }
    for p in [1, 2] {
        produce(&mut c, "fair", p, -1, bytes(batch_of(&["small"]))).await;
    }
    // Each response holds about one batch.
    let max_bytes = 1_000;
    let mut offsets = [0i64; 3];
    let parts = |o: &[i64; 3]| -> Vec<(&'static str, i32, i64)> {
        (0..3).map(|p| ("fair", p, o[p as usize])).collect()
    };
    let full = c
        .call(
            FETCH_V,
            &session_fetch(0, 0, &parts(&offsets), &[], 0, max_bytes),
        )
        .await;
    let id = full.session_id;
    assert!(id > 0);
    let mut fed = [0u32; 3];
    let mut last = full;
    for epoch in 1..=4 {
        let mut moved = Vec::new();
        for got in carried(&last) {
            if got.records > 0 {
                let p = got.partition as usize;
                fed[p] += 1;
                offsets[p] = got.next;
                moved.push(("fair", got.partition, got.next));
            }
        }
        last = c
            .call(
                FETCH_V,
                &session_fetch(id, epoch, &moved, &[], 0, max_bytes),
            )
            .await;
        assert_eq!(last.error_code, 0);
    }
    assert!(
        offsets[0] < 20,
        "partition 0 still has data (at {})",
        offsets[0]
    );
    assert!(
        fed[1] > 0 && fed[2] > 0,
        "every partition was served within a few fetches: {fed:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessionless_fetches_and_old_versions_answer_in_full() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "old", 2, &[]).await;
    let parts = [("old", 0, 0), ("old", 1, 0)];
    // v6 has no session fields: always in full, never a session.
    let r = c
        .call(6, &session_fetch(0, -1, &parts, &[], 0, 1 << 20))
        .await;
    assert_eq!((r.error_code, which(&r).len()), (0, 2));
    let r = c
        .call(FETCH_V, &session_fetch(0, -1, &parts, &[], 0, 1 << 20))
        .await;
    assert_eq!((r.error_code, r.session_id, which(&r).len()), (0, 0, 2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_fetch_of_many_partitions_costs_what_changed() {
    use kafka_protocol::protocol::Encodable;
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    let n = 100;
    create_topic(&mut c, "wide", n, &[]).await;
    for p in (0..n).step_by(10) {
        produce(&mut c, "wide", p, 1, bytes(batch_of(&["v"]))).await;
    }
    let all: Vec<(&str, i32, i64)> = (0..n).map(|p| ("wide", p, 0)).collect();
    let full_req = session_fetch(0, 0, &all, &[], 0, 1 << 20);
    let full = c.call(FETCH_V, &full_req).await;
    assert!(full.session_id > 0);
    assert_eq!(carried(&full).len(), n as usize);
    // The client moves on the partitions that had a record; one more
    // record arrives in partition 7.
    let moved: Vec<(&str, i32, i64)> = (0..n).step_by(10).map(|p| ("wide", p, 1)).collect();
    let r = c
        .call(
            FETCH_V,
            &session_fetch(full.session_id, 1, &moved, &[], 0, 1 << 20),
        )
        .await;
    assert_eq!(which(&r), vec![]);
    produce(&mut c, "wide", 7, 1, bytes(batch_of(&["w"]))).await;
    let inc_req = session_fetch(full.session_id, 2, &[], &[], 0, 1 << 20);
    let inc = c.call(FETCH_V, &inc_req).await;
    assert_eq!(which(&inc), vec![tp("wide", 7)]);
    let full_req_bytes = full_req.compute_size(FETCH_V).expect("size");
    let full_bytes = full.compute_size(FETCH_V).expect("size");
    let inc_req_bytes = inc_req.compute_size(FETCH_V).expect("size");
    let inc_bytes = inc.compute_size(FETCH_V).expect("size");
    eprintln!(
        "{n} partitions: full fetch request {full_req_bytes} B, answer {full_bytes} B; \
         incremental request {inc_req_bytes} B, answer {inc_bytes} B (one partition changed)"
    );
    assert!(inc_req_bytes * 50 < full_req_bytes);
    assert!(inc_bytes * 20 < full_bytes);
    server.stop().await;
}
