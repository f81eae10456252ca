//! Embedded consumers in groups, with real time and threads: partitions
//! shared and moved as members join, leave or stop polling; idle members
//! taking over; every group seeing every message; replay; restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pubsub_broker::{
    Broker, ConsumerConfig, ConsumerRecord, Flow, ProducerConfig, ProducerRecord, Strategy,
};

use crate::common::*;

type Tp = (String, i32);

fn fast(group: &str, name: &str) -> ConsumerConfig {
    ConsumerConfig {
        session_timeout: Duration::from_millis(800),
        rebalance_timeout: Duration::from_secs(3),
        auto_commit_interval: Duration::from_millis(200),
        ..ConsumerConfig::new(group).name(name)
    }
}

/// A consumer polling on its own thread.
struct Member {
    stop: Arc<AtomicBool>,
    freeze: Arc<AtomicBool>,
    assignment: Arc<Mutex<Vec<Tp>>>,
    records: Arc<Mutex<Vec<ConsumerRecord>>>,
    handle: Option<JoinHandle<()>>,
}

impl Member {
    fn spawn(broker: &Broker, config: ConsumerConfig, topics: &[&str]) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let freeze = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (b, s, f, a, r) = (
            broker.clone(),
            stop.clone(),
            freeze.clone(),
            assignment.clone(),
            records.clone(),
        );
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let handle = std::thread::spawn(move || {
            let mut c = b.consumer(config).expect("consumer");
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            c.subscribe(&names).expect("subscribe");
            while !s.load(Ordering::Acquire) {
                if f.load(Ordering::Acquire) {
                    // Alive but not polling: no heartbeats.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let recs = c.poll(Duration::from_millis(50)).expect("poll");
                *a.lock().expect("lock") = c.assignment();
                r.lock().expect("lock").extend(recs);
            }
            if !f.load(Ordering::Acquire) {
                c.close().expect("close");
            } else {
                std::mem::forget(c); // a dead process does not leave its group
            }
        });
        Member {
            stop,
            freeze,
            assignment,
            records,
            handle: Some(handle),
        }
    }

    fn assignment(&self) -> Vec<Tp> {
        self.assignment.lock().expect("lock").clone()
    }

    fn count(&self) -> usize {
        self.assignment().len()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exact_cover(members: &[&Member], partitions: usize) -> bool {
    let mut seen = BTreeSet::new();
    for m in members {
        for tp in m.assignment() {
            if !seen.insert(tp) {
                return false;
            }
        }
    }
    seen.len() == partitions
}

fn produce(broker: &Broker, topic: &str, n: usize) {
    let p = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    for i in 0..n {
        let k = format!("key-{i}");
        let v = format!("value-{i}");
        p.send(&ProducerRecord::new(topic, v.as_bytes()).key(k.as_bytes()))
            .expect("send");
    }
    p.flush();
    p.close();
}

#[test]
fn partitions_move_as_members_join_and_leave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("t", Some(4), no_configs())
        .expect("create");
    let a = Member::spawn(&broker, fast("g", "a"), &["t"]);
    wait_until("a owns all 4", || a.count() == 4);
    let mut b = Member::spawn(&broker, fast("g", "b"), &["t"]);
    wait_until("a and b own 2 each", || {
        a.count() == 2 && b.count() == 2 && exact_cover(&[&a, &b], 4)
    });
    // Range over instance ids: a gets the low partitions.
    assert_eq!(
        a.assignment(),
        vec![("t".to_string(), 0), ("t".to_string(), 1)]
    );
    let c = Member::spawn(&broker, fast("g", "c"), &["t"]);
    wait_until("2/1/1", || {
        let mut counts = vec![a.count(), b.count(), c.count()];
        counts.sort();
        counts == vec![1, 1, 2] && exact_cover(&[&a, &b, &c], 4)
    });
    b.stop(); // leaves the group
    wait_until("a and c own 2 each", || {
        a.count() == 2 && c.count() == 2 && exact_cover(&[&a, &c], 4)
    });
}

#[test]
fn a_consumer_that_stops_polling_loses_its_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("t", Some(4), no_configs())
        .expect("create");
    let a = Member::spawn(&broker, fast("g", "a"), &["t"]);
    let b = Member::spawn(&broker, fast("g", "b"), &["t"]);
    wait_until("split", || a.count() == 2 && b.count() == 2);
    b.freeze.store(true, Ordering::Release);
    wait_until("a takes over after b's session timeout", || a.count() == 4);
    assert_eq!(broker.coordinator().describe("g").members.len(), 1);
}

#[test]
fn idle_members_take_over_when_an_owner_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("two", Some(2), no_configs())
        .expect("create");
    let mut members: Vec<Member> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| Member::spawn(&broker, fast("g", n), &["two"]))
        .collect();
    wait_until("two owners and one idle", || {
        let mut counts: Vec<usize> = members.iter().map(Member::count).collect();
        counts.sort();
        counts == vec![0, 1, 1] && exact_cover(&members.iter().collect::<Vec<_>>(), 2)
    });
    let idle = members
        .iter()
        .position(|m| m.count() == 0)
        .expect("idle member");
    let owner = (idle + 1) % 3;
    members[owner].stop();
    wait_until("the idle member took over", || members[idle].count() == 1);
    let rest: Vec<&Member> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != owner)
        .map(|(_, m)| m)
        .collect();
    wait_until("still exactly one owner each", || exact_cover(&rest, 2));
}

#[test]
fn every_group_gets_every_message_and_members_share_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("events", Some(3), no_configs())
        .expect("create");
    // Published before anyone listens: kept and delivered later.
    produce(&broker, "events", 150);
    let g1a = Member::spawn(&broker, fast("g1", "a"), &["events"]);
    let g1b = Member::spawn(&broker, fast("g1", "b"), &["events"]);
    let g2 = Member::spawn(
        &broker,
        ConsumerConfig {
            strategy: Strategy::RoundRobin,
            ..fast("g2", "solo")
        },
        &["events"],
    );
    wait_until("g1 split", || {
        g1a.count() > 0 && g1b.count() > 0 && exact_cover(&[&g1a, &g1b], 3)
    });
    produce(&broker, "events", 150);
    let unique = |ms: &[&Member]| {
        let mut set = BTreeSet::new();
        for m in ms {
            for r in m.records.lock().expect("lock").iter() {
                set.insert((r.partition, r.offset));
            }
        }
        set.len()
    };
    wait_until("g1 saw all 300", || unique(&[&g1a, &g1b]) == 300);
    wait_until("g2 saw all 300", || unique(&[&g2]) == 300);
    // After the split, each of g1's partitions is read by its one owner.
    let mine = |m: &Member| -> BTreeSet<(i32, i64)> {
        let owned: BTreeSet<i32> = m.assignment().iter().map(|(_, p)| *p).collect();
        m.records
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| owned.contains(&r.partition))
            .map(|r| (r.partition, r.offset))
            .collect()
    };
    assert!(
        !mine(&g1a).is_empty() && !mine(&g1b).is_empty(),
        "both members got a share"
    );
    assert_eq!(mine(&g1a).intersection(&mine(&g1b)).count(), 0);
}

#[test]
fn replay_from_an_offset_a_timestamp_or_the_beginning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("r", Some(1), no_configs())
        .expect("create");
    let p = broker
        .producer(ProducerConfig::default())
        .expect("producer");
    for i in 0..100i64 {
        let v = format!("{i}");
        p.send(&ProducerRecord::new("r", v.as_bytes()).timestamp(1_700_000_000_000 + i * 1000))
            .expect("send");
    }
    p.flush();
    let mut c = broker
        .consumer(ConsumerConfig::new("replayer"))
        .expect("consumer");
    c.subscribe(&["r"]).expect("subscribe");
    let mut first_pass = Vec::new();
    while first_pass.len() < 100 {
        first_pass.extend(
            c.poll(Duration::from_secs(5))
                .expect("poll")
                .into_iter()
                .map(|r| r.offset),
        );
    }
    assert_eq!(first_pass, (0..100).collect::<Vec<i64>>());
    assert!(c.poll(Duration::from_millis(50)).expect("poll").is_empty());
    c.seek("r", 0, 42).expect("seek");
    assert_eq!(c.poll(Duration::from_secs(5)).expect("poll")[0].offset, 42);
    c.seek_to_timestamp(1_700_000_070_000)
        .expect("seek by time");
    let r = &c.poll(Duration::from_secs(5)).expect("poll")[0];
    assert_eq!((r.offset, r.timestamp), (70, 1_700_000_070_000));
    c.seek_to_timestamp(1_700_000_070_500)
        .expect("between records");
    assert_eq!(c.poll(Duration::from_secs(5)).expect("poll")[0].offset, 71);
    c.seek_to_beginning().expect("rewind");
    assert_eq!(c.poll(Duration::from_secs(5)).expect("poll")[0].offset, 0);
    c.seek_to_end().expect("end");
    assert!(c.poll(Duration::from_millis(50)).expect("poll").is_empty());
    assert!(
        c.seek("other", 0, 1).is_err(),
        "only assigned partitions can be sought"
    );
}

#[test]
fn committed_positions_and_assignments_survive_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut committed: BTreeMap<Tp, i64> = BTreeMap::new();
    let mut assignments: BTreeMap<String, Vec<Tp>> = BTreeMap::new();
    {
        let broker = open(dir.path());
        broker
            .create_topic("jobs", Some(4), no_configs())
            .expect("create");
        let mut w1 = broker
            .consumer(ConsumerConfig {
                auto_commit: false,
                ..fast("workers", "w1")
            })
            .expect("w1");
        w1.subscribe(&["jobs"]).expect("subscribe");
        // w2 joins from another thread while w1 keeps polling.
        let b2 = broker.clone();
        let t = std::thread::spawn(move || {
            let mut w2 = b2
                .consumer(ConsumerConfig {
                    auto_commit: false,
                    ..fast("workers", "w2")
                })
                .expect("w2");
            w2.subscribe(&["jobs"]).expect("subscribe");
            w2
        });
        while !t.is_finished() {
            w1.poll(Duration::from_millis(20)).expect("poll");
        }
        let mut w2 = t.join().expect("w2 joined");
        // Data arrives once the group is split; both keep polling (and so
        // heartbeating) until each has read a part of its share.
        produce(&broker, "jobs", 400);
        let (mut got1, mut got2) = (0, 0);
        while got1 < 60 || got2 < 60 {
            got1 += w1.poll(Duration::from_millis(20)).expect("poll").len();
            got2 += w2.poll(Duration::from_millis(20)).expect("poll").len();
            assert!(
                got1 + got2 < 400,
                "one poll returns at most one partition's records"
            );
        }
        for (name, c) in [("w1", &mut w1), ("w2", &mut w2)] {
            assert_eq!(c.assignment().len(), 2, "{name}");
            c.commit().expect("commit");
            for tp in c.assignment() {
                let pos = c.position(&tp.0, tp.1).expect("position") as i64;
                assert_eq!(c.committed(&tp.0, tp.1), Some(pos));
                committed.insert(tp, pos);
            }
            assignments.insert(name.to_string(), c.assignment());
        }
        assert!(committed.values().any(|&o| o > 0));
        drop((w1, w2));
        broker.close().expect("close");
    }
    let broker = open(dir.path());
    let m1 = Member::spawn(
        &broker,
        ConsumerConfig {
            auto_commit: false,
            ..fast("workers", "w1")
        },
        &["jobs"],
    );
    let m2 = Member::spawn(
        &broker,
        ConsumerConfig {
            auto_commit: false,
            ..fast("workers", "w2")
        },
        &["jobs"],
    );
    wait_until("the same assignment as before the restart", || {
        m1.assignment() == assignments["w1"] && m2.assignment() == assignments["w2"]
    });
    let remaining = 400 - committed.values().sum::<i64>() as usize;
    wait_until("the rest is read", || {
        let seen: BTreeSet<(i32, i64)> = [&m1, &m2]
            .iter()
            .flat_map(|m| {
                m.records
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|r| (r.partition, r.offset))
                    .collect::<Vec<_>>()
            })
            .collect();
        seen.len() >= remaining
    });
    // Each partition resumed exactly at its committed offset: nothing below
    // it was delivered again.
    for m in [&m1, &m2] {
        for r in m.records.lock().expect("lock").iter() {
            assert!(
                r.offset >= committed[&(r.topic.to_string(), r.partition)],
                "{r:?} was already committed"
            );
        }
    }
}

#[test]
fn run_with_a_handler_and_a_stop_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    produce(&broker, "h", 50);
    let mut c = broker
        .consumer(ConsumerConfig::new("handlers"))
        .expect("consumer");
    c.subscribe(&["h"]).expect("subscribe");
    let mut seen = Vec::new();
    c.run(|r| {
        seen.push(r.offset);
        if seen.len() == 20 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .expect("run");
    assert_eq!(seen, (0..20).collect::<Vec<i64>>());
    assert_eq!(
        c.position("h", 0),
        Some(20),
        "stopping leaves nothing skipped"
    );
    let stop = c.stop_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.stop();
    });
    let mut rest = 0;
    c.run(|_| {
        rest += 1;
        Flow::Continue
    })
    .expect("run until stopped");
    t.join().expect("stopper");
    assert_eq!(rest, 30);
    // Auto-commit on close.
    c.close().expect("close");
    assert_eq!(
        broker
            .coordinator()
            .fetch_offsets("handlers", Some(&[("h".into(), 0)]))[0]
            .1
            .as_ref()
            .map(|c| c.offset),
        Some(50)
    );
}

#[test]
fn polling_works_from_async_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    produce(&broker, "async", 10);
    let mut c = broker
        .consumer(ConsumerConfig::new("async"))
        .expect("consumer");
    let got = block_on(async {
        c.subscribe_async(&["async"]).await.expect("subscribe");
        let mut got = Vec::new();
        while got.len() < 10 {
            got.extend(c.poll_async(Duration::from_secs(5)).await.expect("poll"));
        }
        got
    });
    assert_eq!(got.len(), 10);
}

/// A minimal executor, standing in for whatever runtime an application uses.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
