//! A child process holds the broker, producing (acks=all, idempotent),
//! consuming as static member "survivor" and committing; it reports what was
//! acknowledged and committed, and is killed with SIGKILL at a random moment.
//! Each time, the broker reopens with every acknowledged record at its
//! offset, the committed offsets at least what was reported, and the member
//! resumes exactly there with the same partitions.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use pubsub_broker::{Broker, ConsumerConfig, ProducerConfig, ProducerRecord};
use pubsub_records::Batches;

use crate::common::*;

const CHILD: &str = "PUBSUB_BROKER_CRASH_DIR";

fn child(dir: &str) -> ! {
    let broker = Broker::open(dir, test_config()).expect("child open");
    let _ = broker.create_topic("stream", Some(4), no_configs());
    let producer = broker
        .producer(ProducerConfig {
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        })
        .expect("producer");
    let mut consumer = broker
        .consumer(ConsumerConfig {
            auto_commit: false,
            ..ConsumerConfig::new("crash-group").name("survivor")
        })
        .expect("consumer");
    consumer.subscribe(&["stream"]).expect("subscribe");
    let mut out = std::io::stdout().lock();
    // libtest has printed "test ... " without a newline: start a fresh line.
    writeln!(out).expect("stdout");
    let assigned: Vec<String> = consumer
        .assignment()
        .iter()
        .map(|(_, p)| p.to_string())
        .collect();
    writeln!(out, "assigned {}", assigned.join(",")).expect("stdout");
    let mut seq: u64 = (0..4)
        .map(|p| {
            broker
                .partition("stream", p)
                .expect("p")
                .log()
                .log_end_offset()
        })
        .sum();
    loop {
        let mut pending = Vec::new();
        for _ in 0..20 {
            let (k, v) = (format!("k{seq}"), format!("v{seq}"));
            pending.push((
                seq,
                producer
                    .send(&ProducerRecord::new("stream", v.as_bytes()).key(k.as_bytes()))
                    .expect("send"),
            ));
            seq += 1;
        }
        for (s, d) in pending {
            let m = d.wait().expect("delivered");
            writeln!(out, "produced {} {} {s}", m.partition, m.offset).expect("stdout");
        }
        consumer.poll(Duration::from_millis(5)).expect("poll");
        consumer.commit().expect("commit");
        for (_, p) in consumer.assignment() {
            let pos = consumer.position("stream", p).expect("position");
            writeln!(out, "committed {p} {pos}").expect("stdout");
        }
        out.flush().expect("flush");
    }
}

#[test]
fn a_sigkilled_broker_keeps_acknowledged_records_and_committed_positions() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut produced: BTreeMap<(i32, i64), u64> = BTreeMap::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for cycle in 0..6 {
        let mut child = spawn_child(
            "crash::a_sigkilled_broker_keeps_acknowledged_records_and_committed_positions",
            &[(CHILD, dir.path().as_os_str())],
        );
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(400 + rng % 600));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "cycle {cycle}: the child died on its own"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let lines = reader.join().expect("reader");
        let mut committed: BTreeMap<i32, u64> = BTreeMap::new();
        let mut assigned = String::new();
        for line in &lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts[..] {
                ["produced", p, o, s] => {
                    if let (Ok(p), Ok(o), Ok(s)) = (p.parse(), o.parse(), s.parse()) {
                        produced.insert((p, o), s);
                    }
                }
                ["committed", p, o] => {
                    if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                        committed.insert(p, o);
                    }
                }
                ["assigned", a] => assigned = a.to_string(),
                _ => {}
            }
        }
        assert_eq!(
            assigned, "0,1,2,3",
            "cycle {cycle}: the only member owns everything"
        );

        let broker = open(dir.path());
        // Every acknowledged record is there, once, at its offset.
        let mut buf = Vec::new();
        for (&(p, o), &s) in &produced {
            broker
                .fetch("stream", p, o as u64, 1, &mut buf)
                .expect("fetch");
            let mut found = None;
            for batch in Batches::new(&buf) {
                for r in batch
                    .expect("batch")
                    .records(1 << 20)
                    .expect("records")
                    .iter()
                {
                    let r = r.expect("record");
                    if r.offset == o {
                        found = r.value.map(<[u8]>::to_vec);
                    }
                }
            }
            assert_eq!(
                found,
                Some(format!("v{s}").into_bytes()),
                "cycle {cycle}: record {p}/{o}"
            );
        }
        let total: u64 = (0..4)
            .map(|p| {
                broker
                    .partition("stream", p)
                    .expect("p")
                    .log()
                    .log_end_offset()
            })
            .sum();
        assert!(total >= produced.len() as u64);
        // Committed offsets are at least what was reported as committed.
        let stored: BTreeMap<i32, i64> = broker
            .coordinator()
            .fetch_offsets("crash-group", None)
            .into_iter()
            .filter_map(|((_, p), c)| c.map(|c| (p, c.offset)))
            .collect();
        for (p, o) in &committed {
            assert!(
                stored.get(p).copied().unwrap_or(-1) >= *o as i64,
                "cycle {cycle}: commit of partition {p} lost"
            );
        }
        // The member comes back with the same partitions, at those offsets.
        let mut c = broker
            .consumer(ConsumerConfig {
                auto_commit: false,
                ..ConsumerConfig::new("crash-group").name("survivor")
            })
            .expect("consumer");
        c.subscribe(&["stream"]).expect("subscribe");
        assert_eq!(c.assignment().len(), 4);
        for p in 0..4 {
            let expected = stored.get(&p).map_or(0, |&o| o as u64);
            assert_eq!(
                c.position("stream", p),
                Some(expected),
                "cycle {cycle}: partition {p}"
            );
        }
        drop(c);
        broker.close().expect("close");
    }
    assert!(
        produced.len() > 100,
        "only {} records were acknowledged",
        produced.len()
    );
}

const MANY_CHILD: &str = "PUBSUB_BROKER_CRASH_MANY_DIR";
const MANY_TOPICS: i32 = 3;
const MANY_PARTITIONS: i32 = 20;

/// Opens the broker (its partitions open on several threads: more than
/// enough of them), says so, then appends acks=all records round the
/// partitions, reporting each acknowledged one, until killed.
fn many_child(dir: &str) -> ! {
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("stdout");
    let broker = Broker::open(dir, test_config()).expect("child open");
    writeln!(out, "opened").expect("stdout");
    out.flush().expect("flush");
    let new: Vec<pubsub_broker::NewTopic> = (0..MANY_TOPICS)
        .map(|t| pubsub_broker::NewTopic {
            name: format!("many-{t}"),
            partitions: Some(MANY_PARTITIONS as u32),
            configs: no_configs(),
        })
        .collect();
    let _ = broker.create_topics(new);
    let producer = broker
        .producer(ProducerConfig {
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        })
        .expect("producer");
    let mut seq: u64 = 0;
    loop {
        let mut pending = Vec::new();
        for t in 0..MANY_TOPICS {
            for p in 0..MANY_PARTITIONS {
                let topic = format!("many-{t}");
                let v = format!("v{seq}");
                pending.push((
                    t,
                    v.clone(),
                    producer
                        .send(&ProducerRecord::new(&topic, v.as_bytes()).partition(p))
                        .expect("send"),
                ));
                seq += 1;
            }
        }
        for (t, v, d) in pending {
            let m = d.wait().expect("delivered");
            writeln!(out, "produced {t} {} {} {v}", m.partition, m.offset).expect("stdout");
        }
        out.flush().expect("flush");
    }
}

/// A broker of 60 partitions (opened on several threads) is killed with
/// SIGKILL at random moments: while writing, and while opening (recovering
/// every partition the previous kill left unclean). Every record
/// acknowledged before any kill is there after the last one, at its offset,
/// and every partition's recovery is reported once, in order.
#[test]
fn a_broker_killed_while_opening_many_partitions_keeps_acknowledged_records() {
    if let Ok(dir) = std::env::var(MANY_CHILD) {
        many_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut produced: BTreeMap<(i32, i32, i64), String> = BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut killed_opening = 0;
    for cycle in 0..8 {
        let mut child = spawn_child(
            "crash::a_broker_killed_while_opening_many_partitions_keeps_acknowledged_records",
            &[(MANY_CHILD, dir.path().as_os_str())],
        );
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut lines = Vec::new();
        if cycle % 2 == 0 {
            // Even cycles kill while writing: once a whole round of the
            // partitions was acknowledged, at a random moment after.
            let round = (MANY_TOPICS * MANY_PARTITIONS) as usize;
            while lines
                .iter()
                .filter(|l: &&String| l.starts_with("produced"))
                .count()
                < round
            {
                match rx.recv() {
                    Ok(line) => lines.push(line),
                    Err(_) => panic!("cycle {cycle}: the child died on its own"),
                }
            }
            std::thread::sleep(Duration::from_millis(rng % 300));
        } else {
            // Odd ones soon after the start, mostly while the partitions
            // the previous kill left unclean are being recovered.
            std::thread::sleep(Duration::from_millis(rng % 60));
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "cycle {cycle}: the child died on its own"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        if !lines.iter().any(|l| l == "opened") {
            killed_opening += 1;
        }
        for line in &lines {
            if let ["produced", t, p, o, v] = line.split_whitespace().collect::<Vec<_>>()[..] {
                if let (Ok(t), Ok(p), Ok(o)) = (t.parse(), p.parse(), o.parse()) {
                    produced.insert((t, p, o), v.to_string());
                }
            }
        }
    }
    let broker = open(dir.path());
    let mut buf = Vec::new();
    for ((t, p, o), v) in &produced {
        broker
            .fetch(&format!("many-{t}"), *p, *o as u64, 1, &mut buf)
            .expect("fetch");
        let mut found = None;
        for batch in Batches::new(&buf) {
            for r in batch
                .expect("batch")
                .records(1 << 20)
                .expect("records")
                .iter()
            {
                let r = r.expect("record");
                if r.offset == *o {
                    found = r.value.map(<[u8]>::to_vec);
                }
            }
        }
        assert_eq!(found, Some(v.clone().into_bytes()), "record {t}/{p}/{o}");
    }
    let mut reports: Vec<(String, i32)> = broker
        .recovery_reports()
        .into_iter()
        .filter(|(t, _, _)| t.starts_with("many-"))
        .map(|(t, p, _)| (t, p))
        .collect();
    reports.sort();
    let mut expected: Vec<(String, i32)> = (0..MANY_TOPICS)
        .flat_map(|t| (0..MANY_PARTITIONS).map(move |p| (format!("many-{t}"), p)))
        .collect();
    expected.sort();
    assert_eq!(reports, expected, "one report per partition");
    broker.close().expect("close");
    assert!(
        produced.len() >= 4 * (MANY_TOPICS * MANY_PARTITIONS) as usize,
        "only {} records were acknowledged",
        produced.len()
    );
    eprintln!("{killed_opening} of 8 kills came before the open finished");
}

const LAZY_CHILD: &str = "PUBSUB_BROKER_CRASH_LAZY_DIR";
const LAZY_MODE: &str = "PUBSUB_BROKER_CRASH_LAZY_MODE";
const LAZY_PARTITIONS: i32 = 6;

/// Opens the broker and says so; in mode `write`, then appends acks=all
/// records to partitions 0 and 1 (their first use since the start),
/// reporting each acknowledged one, until killed; in mode `idle`, touches
/// nothing until killed.
fn lazy_child(dir: &str) -> ! {
    produce_until_killed(dir, LAZY_MODE, ("lazy", 2, "w"), |_| {})
}

/// Runs the lazy child in `mode` and kills it with SIGKILL once it has
/// opened and, in mode `write`, had `acks` records acknowledged; returns
/// its stdout lines.
fn run_lazy_child(dir: &std::path::Path, mode: &str, acks: usize) -> Vec<String> {
    let test = "crash::lazily_opened_partitions_keep_acknowledged_records_through_sigkills";
    run_until_acked(test, (LAZY_CHILD, LAZY_MODE), dir, mode, acks)
}

/// A cleanly closed broker whose partitions open lazily is killed with
/// SIGKILL before any of them is used, twice in a row, then again after
/// writing to two of them (their first use): every record acknowledged
/// before any kill is there; the two written partitions are left to
/// recover (at first use) at the next open, the four never touched still
/// open lazily (their
/// clean-shutdown markers vouch for the closed-partitions file) at the
/// leader epoch announced before they opened.
#[test]
fn lazily_opened_partitions_keep_acknowledged_records_through_sigkills() {
    if let Ok(dir) = std::env::var(LAZY_CHILD) {
        lazy_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path());
    broker
        .create_topic("lazy", Some(LAZY_PARTITIONS as u32), no_configs())
        .expect("create");
    let mut expected: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for p in 0..LAZY_PARTITIONS {
        crate::lazy_open::produce_n(&broker, "lazy", p, 3);
        for o in 0..3 {
            expected.insert((p, o), format!("v{o}"));
        }
    }
    broker.close().expect("close");
    run_lazy_child(dir.path(), "idle", 0);
    run_lazy_child(dir.path(), "idle", 0);
    for line in run_lazy_child(dir.path(), "write", 40) {
        if let ["produced", p, o, v] = line.split_whitespace().collect::<Vec<_>>()[..] {
            if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                expected.insert((p, o), v.to_string());
            }
        }
    }
    assert!(expected.len() >= 18 + 40, "{} records", expected.len());
    let broker = Broker::open(
        dir.path(),
        pubsub_broker::BrokerConfig {
            background: false,
            ..test_config()
        },
    )
    .expect("open");
    let opened: Vec<i32> = broker
        .partitions()
        .iter()
        .filter(|p| p.topic() == "lazy")
        .map(|p| p.index())
        .collect();
    assert_eq!(opened, Vec::<i32>::new(), "none opened at start");
    assert_eq!(
        broker.pending_recovery(),
        2,
        "only the written partitions are left to recover"
    );
    let untouched_epoch = broker.leader_epoch("lazy", 4).expect("epoch");
    for p in 0..LAZY_PARTITIONS {
        let got = crate::lazy_open::values(&broker, "lazy", p);
        let want: Vec<String> = expected
            .range((p, 0)..(p + 1, 0))
            .map(|(_, v)| v.clone())
            .collect();
        assert!(
            got.len() >= want.len() && got[..want.len()] == want[..],
            "partition {p}: {got:?} lacks {want:?}"
        );
    }
    assert_eq!(
        broker.partition("lazy", 4).expect("p4").leader_epoch(),
        untouched_epoch
    );
    broker.close().expect("close");
}

const UNCLEAN_CHILD: &str = "PUBSUB_BROKER_CRASH_UNCLEAN_DIR";
const UNCLEAN_MODE: &str = "PUBSUB_BROKER_CRASH_UNCLEAN_MODE";
const UNCLEAN_PARTITIONS: i32 = 24;

/// Opens the broker (background clock and recovery pass on) and says so;
/// in mode `write`, then creates topic `unclean` if missing and appends
/// acks=all records to every partition in turn, reporting each
/// acknowledged one, until killed; in mode `recover`, does nothing more
/// (its background pass recovers what the last kill left) until killed.
fn unclean_child(dir: &str) -> ! {
    let topic = ("unclean", UNCLEAN_PARTITIONS, "u");
    produce_until_killed(dir, UNCLEAN_MODE, topic, |broker| {
        let _ = broker.create_topic("unclean", Some(UNCLEAN_PARTITIONS as u32), no_configs());
    })
}

/// Runs the unclean child in `mode` and kills it with SIGKILL: in mode
/// `write` once `acks` records were acknowledged, in mode `recover` as soon
/// as it has opened (its background recovery pass under way); returns its
/// stdout lines.
fn run_unclean_child(dir: &std::path::Path, mode: &str, acks: usize) -> Vec<String> {
    let test = "crash::unrecovered_partitions_are_recovered_at_first_use_or_in_the_background";
    run_until_acked(test, (UNCLEAN_CHILD, UNCLEAN_MODE), dir, mode, acks)
}

/// A crash-test child: opens the broker at `dir` and says `opened`; in
/// mode `write` (the environment variable `mode_var`), then runs `prepare`
/// and appends acks=all records `{prefix}{n}` to partitions `0..partitions`
/// of `topic` in turn, reporting each acknowledged one (`produced P O V`),
/// until killed; in any other mode, touches nothing until killed.
fn produce_until_killed(
    dir: &str,
    mode_var: &str,
    (topic, partitions, prefix): (&str, i32, &str),
    prepare: impl FnOnce(&Broker),
) -> ! {
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("stdout");
    let broker = Broker::open(dir, test_config()).expect("child open");
    writeln!(out, "opened").expect("stdout");
    out.flush().expect("flush");
    if std::env::var(mode_var).as_deref() != Ok("write") {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    prepare(&broker);
    let producer = broker
        .producer(ProducerConfig {
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        })
        .expect("producer");
    let mut seq: u64 = 0;
    loop {
        let mut pending = Vec::new();
        for p in 0..partitions {
            let v = format!("{prefix}{seq}");
            seq += 1;
            pending.push((
                v.clone(),
                producer
                    .send(&ProducerRecord::new(topic, v.as_bytes()).partition(p))
                    .expect("send"),
            ));
        }
        for (v, d) in pending {
            let m = d.wait().expect("delivered");
            writeln!(out, "produced {} {} {v}", m.partition, m.offset).expect("stdout");
        }
        out.flush().expect("flush");
    }
}

/// Runs the child of test `test` on `dir` in `mode` (the environment
/// variables `dir_var` and `mode_var`) and kills it with SIGKILL once it
/// has opened and, in mode `write`, had `acks` records acknowledged;
/// returns its stdout lines.
fn run_until_acked(
    test: &str,
    (dir_var, mode_var): (&str, &str),
    dir: &std::path::Path,
    mode: &str,
    acks: usize,
) -> Vec<String> {
    let mut child = spawn_child(
        test,
        &[
            (dir_var, dir.as_os_str()),
            (mode_var, std::ffi::OsStr::new(mode)),
        ],
    );
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut acked = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        acked += usize::from(line.starts_with("produced"));
        let done = match mode {
            "write" => acked >= acks,
            _ => line == "opened",
        };
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l == "opened"),
        "the {mode} child died before opening"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    lines
}

/// A broker killed with SIGKILL during acks=all writes to every partition
/// of a topic opens without recovering them (none is opened by the open);
/// killed again right after such an open, while its background pass
/// recovers them, and again while writing (first uses racing the pass).
/// At the last open: every partition is unrecovered, describing one
/// recovers it first (its end offset covers what was acknowledged, never
/// a stale figure), reading one recovers it at its first use, the
/// recovery pass does the rest, each partition is recovered once, and
/// every acknowledged record is at its offset.
#[test]
fn unrecovered_partitions_are_recovered_at_first_use_or_in_the_background() {
    if let Ok(dir) = std::env::var(UNCLEAN_CHILD) {
        unclean_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let round = UNCLEAN_PARTITIONS as usize;
    let mut expected: BTreeMap<(i32, usize), String> = BTreeMap::new();
    for cycle in 0..2 {
        for line in run_unclean_child(dir.path(), "write", 3 * round + 5 * cycle) {
            if let ["produced", p, o, v] = line.split_whitespace().collect::<Vec<_>>()[..] {
                if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                    expected.insert((p, o), v.to_string());
                }
            }
        }
        run_unclean_child(dir.path(), "recover", 0);
    }
    assert!(expected.len() >= 6 * round, "{} records", expected.len());

    let config = pubsub_broker::BrokerConfig {
        background: false,
        ..test_config()
    };
    let broker = Broker::open(dir.path(), config).expect("open");
    let opened = |broker: &Broker| -> Vec<i32> {
        broker
            .partitions()
            .iter()
            .filter(|p| p.topic() == "unclean")
            .map(|p| p.index())
            .collect()
    };
    assert_eq!(
        opened(&broker),
        Vec::<i32>::new(),
        "the open recovered none"
    );
    assert_eq!(broker.pending_recovery(), UNCLEAN_PARTITIONS as usize);
    let acked_end = |p: i32| {
        expected
            .range((p, 0)..(p + 1, 0))
            .next_back()
            .map_or(0, |((_, o), _)| *o as u64 + 1)
    };
    // Metadata's epochs and a metrics scrape recover nothing: the epochs
    // come from the partitions' files, the scrape leaves them out.
    let told: Vec<i32> = (0..UNCLEAN_PARTITIONS)
        .map(|p| broker.leader_epoch("unclean", p).expect("epoch"))
        .collect();
    assert!(told.iter().all(|&e| e > 0), "{told:?}");
    assert!(broker
        .partition_descriptions()
        .iter()
        .all(|(t, _)| t != "unclean"));
    assert_eq!(opened(&broker), Vec::<i32>::new(), "no recovery for them");
    assert_eq!(broker.pending_recovery(), UNCLEAN_PARTITIONS as usize);
    let described = broker.describe_partition("unclean", 5).expect("describe");
    assert!(
        described.log_end_offset >= acked_end(5),
        "{described:?} lacks acknowledged records"
    );
    assert_eq!(opened(&broker), [5], "recovered before describing");
    let check = |broker: &Broker, p: i32| {
        let got = crate::lazy_open::values(broker, "unclean", p);
        for ((_, o), v) in expected.range((p, 0)..(p + 1, 0)) {
            assert_eq!(got.get(*o), Some(v), "partition {p} offset {o}");
        }
    };
    for p in 0..4 {
        check(&broker, p);
    }
    assert_eq!(broker.pending_recovery(), UNCLEAN_PARTITIONS as usize - 5);
    assert_eq!(broker.recover_pending(), UNCLEAN_PARTITIONS as usize - 5);
    assert_eq!(broker.pending_recovery(), 0);
    for p in 0..UNCLEAN_PARTITIONS {
        check(&broker, p);
        let recovered = broker.partition("unclean", p).expect("partition");
        assert_eq!(
            recovered.leader_epoch(),
            told[p as usize],
            "partition {p}: recovery gave another epoch than Metadata told"
        );
    }
    assert_eq!(
        broker
            .partition_descriptions()
            .iter()
            .filter(|(t, _)| t == "unclean")
            .count(),
        UNCLEAN_PARTITIONS as usize
    );
    let mut reports: Vec<i32> = broker
        .recovery_reports()
        .into_iter()
        .filter(|(t, _, _)| t == "unclean")
        .map(|(_, p, r)| {
            assert!(!r.clean_shutdown, "partition {p} was not closed cleanly");
            p
        })
        .collect();
    reports.sort_unstable();
    assert_eq!(
        reports,
        (0..UNCLEAN_PARTITIONS).collect::<Vec<_>>(),
        "each recovered once"
    );
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(broker.pending_recovery(), 0, "closed cleanly since");
    broker.close().expect("close");
}

/// The background recovery pass takes no admin lock (the open lock of
/// each partition orders it against a deletion), so a topic can be deleted
/// and re-created under it while it runs:
/// whatever the interleaving, the re-created topic keeps what is written to
/// it (the pass neither recovers the deleted topic's partitions into the
/// new directories nor sets them aside), and nothing stays pending.
#[test]
fn a_topic_deleted_and_recreated_during_the_recovery_pass_keeps_its_new_data() {
    if let Ok(dir) = std::env::var(UNCLEAN_CHILD) {
        unclean_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    run_unclean_child(dir.path(), "write", 2 * UNCLEAN_PARTITIONS as usize);
    let config = pubsub_broker::BrokerConfig {
        background: false,
        ..test_config()
    };
    let broker = Broker::open(dir.path(), config).expect("open");
    assert_eq!(broker.pending_recovery(), UNCLEAN_PARTITIONS as usize);
    let pass = {
        let broker = broker.clone();
        std::thread::spawn(move || broker.recover_pending())
    };
    broker.delete_topic("unclean").expect("delete");
    broker
        .create_topic("unclean", Some(UNCLEAN_PARTITIONS as u32), no_configs())
        .expect("re-create");
    for p in 0..UNCLEAN_PARTITIONS {
        let value = format!("new{p}");
        let mut b = pubsub_records::BatchBuilder::new();
        b.push(&pubsub_records::NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
        let mut batch = b.build().expect("build");
        broker
            .produce("unclean", p, &mut batch, pubsub_broker::Acks::All)
            .expect("produce");
    }
    let recovered = pass.join().expect("pass");
    assert!(recovered <= UNCLEAN_PARTITIONS as usize);
    assert_eq!(broker.pending_recovery(), 0);
    for p in 0..UNCLEAN_PARTITIONS {
        assert_eq!(
            crate::lazy_open::values(&broker, "unclean", p),
            [format!("new{p}")],
            "partition {p}"
        );
    }
    broker.close().expect("close");
    let broker = open(dir.path());
    for p in 0..UNCLEAN_PARTITIONS {
        assert_eq!(
            crate::lazy_open::values(&broker, "unclean", p),
            [format!("new{p}")],
            "partition {p} after a restart"
        );
    }
    broker.close().expect("close");
}

const CREATE_CHILD: &str = "PUBSUB_BROKER_CRASH_CREATE_DIR";
const CREATE_TOPICS: usize = 60;
const CREATE_PARTITIONS: u32 = 20;

fn create_topic_name(i: usize) -> String {
    format!("ct{i:04}")
}

/// Opens the broker and creates [`CREATE_TOPICS`] topics of
/// [`CREATE_PARTITIONS`] partitions in one call (as one CreateTopics
/// request), saying "created" once it answered; then waits to be killed.
fn create_child(dir: &str) -> ! {
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("stdout");
    let broker = Broker::open(dir, test_config()).expect("child open");
    writeln!(out, "opened").expect("stdout");
    out.flush().expect("flush");
    let new = (0..CREATE_TOPICS)
        .map(|i| pubsub_broker::NewTopic {
            name: create_topic_name(i),
            partitions: Some(CREATE_PARTITIONS),
            configs: no_configs(),
        })
        .collect();
    for r in broker.create_topics(new) {
        r.expect("create");
    }
    writeln!(out, "created").expect("stdout");
    out.flush().expect("flush");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Partition directories of the topics the create child makes.
fn created_dirs(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ct"))
                .collect()
        })
        .unwrap_or_default()
}

/// A broker killed with SIGKILL in the middle of a CreateTopics of many
/// topics (once some of their partition directories exist, before it
/// answered) reopens with each topic of the request complete or absent:
/// every topic it lists has all its partitions, each takes a write and
/// reads it back (also after another restart), and no directory is left
/// of a topic it does not list.
#[test]
fn a_broker_killed_during_a_large_create_topics_keeps_each_topic_whole_or_absent() {
    if let Ok(dir) = std::env::var(CREATE_CHILD) {
        create_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child(
        "crash::a_broker_killed_during_a_large_create_topics_keeps_each_topic_whole_or_absent",
        &[(CREATE_CHILD, dir.path().as_os_str())],
    );
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(
        lines.any(|l| l == "opened"),
        "the child died before opening"
    );
    // Killed once a tenth of the partitions have their directories (if the
    // request ended first, the outcome must hold all the same).
    let wanted = CREATE_TOPICS * CREATE_PARTITIONS as usize / 10;
    while created_dirs(dir.path()).len() < wanted {
        if child.try_wait().expect("wait").is_some() {
            panic!("the create child exited");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let broker = Broker::open(
        dir.path(),
        pubsub_broker::BrokerConfig {
            background: false,
            ..test_config()
        },
    )
    .expect("open");
    let listed: Vec<String> = broker
        .topics(false)
        .into_iter()
        .filter(|t| t.starts_with("ct"))
        .collect();
    for t in &listed {
        assert_eq!(broker.partition_count(t), Some(CREATE_PARTITIONS), "{t}");
    }
    for t in (0..CREATE_TOPICS).map(create_topic_name) {
        if !listed.contains(&t) {
            let prefix = format!("{t}-");
            assert!(
                !created_dirs(dir.path())
                    .iter()
                    .any(|d| d.starts_with(&prefix)),
                "{t} is absent but left directories"
            );
        }
    }
    let write = |broker: &Broker, t: &str, p: i32| {
        let value = format!("{t}/{p}");
        let mut b = pubsub_records::BatchBuilder::new();
        b.push(&pubsub_records::NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
        let mut batch = b.build().expect("build");
        broker
            .produce(t, p, &mut batch, pubsub_broker::Acks::Leader)
            .expect("produce");
    };
    for t in &listed {
        for p in 0..CREATE_PARTITIONS as i32 {
            write(&broker, t, p);
        }
    }
    broker.close().expect("close");
    let broker = open(dir.path());
    assert_eq!(
        broker
            .topics(false)
            .into_iter()
            .filter(|t| t.starts_with("ct"))
            .collect::<Vec<_>>(),
        listed
    );
    for t in &listed {
        for p in 0..CREATE_PARTITIONS as i32 {
            assert_eq!(
                crate::lazy_open::values(&broker, t, p),
                [format!("{t}/{p}")],
                "{t}-{p}"
            );
        }
    }
    broker.close().expect("close");
}
