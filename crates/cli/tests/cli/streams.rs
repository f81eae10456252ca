//! Kafka Streams against pubsub and against Apache Kafka: the word count in
//! compat/java (`pubsub.compat.streams.WordCount`: lines in, a groupBy on
//! the word through the repartition topic `wordcount-words-repartition`, a
//! count store with its changelog `wordcount-counts-changelog`, counts
//! out; `processing.guarantee=at_least_once`), the same scenario on each
//! broker:
//!
//! 1. feed lines, run the app, read the output topic: the last count of
//!    each word equals the number of times it was fed;
//! 2. stop the app (a clean close commits), feed more, start it again with
//!    an empty state dir: the store is rebuilt from its changelog and the
//!    counts continue (no reset);
//! 3. once the app has committed everything (the group's lag is 0), crash
//!    the broker (SIGKILL) and start it on the same data and port, with the
//!    app running; feed more: counts still exact, because nothing was left
//!    to reprocess and a changelog replay writes absolute counts;
//! 4. crash the broker again while the app processes a batch, and
//! 5. SIGKILL the app while it processes one, then start it again:
//!    at_least_once guarantees every fed word is counted at least once, not
//!    once. What the app processed after its last commit is processed again,
//!    so a word of that batch may be counted twice; a word not fed since the
//!    last commit keeps its count exactly.
//!
//! The counts of steps 1-3 and the internal topics (with the configs
//! Streams set on them) are compared between the brokers. Streams purges consumed
//! repartition records with AdminClient.deleteRecords (DeleteRecords, 21):
//! on both brokers the repartition topic's log start offset advances.
//!
//! The same word count with `processing.guarantee=exactly_once_v2` (a
//! transaction per commit, every 200 ms, holding the repartition, changelog
//! and output records and the consumed offsets), slowed to 10 ms per count
//! so that kills land inside open transactions, on each broker:
//!
//! 1. feed lines, run the app: the output topic read with
//!    `isolation.level=read_committed` holds each word's exact count;
//! 2. SIGKILL the broker while the app processes a batch, start it on the
//!    same data and port;
//! 3. SIGKILL the app while it processes a batch; `kafka-transactions list`
//!    (ListTransactions, 66) then shows its transaction `Ongoing` (the kill
//!    landed inside an open transaction; tried up to three times); start it
//!    again on the same state dir (its transactional id, fencing the dead
//!    one's and aborting its transaction), feed more;
//! 4. stop the app: the output topic and the changelog, read_committed,
//!    hold each word's count exactly as fed (exactly once: no double count
//!    where at_least_once may count twice), and read_uncommitted shows more
//!    records than read_committed (the aborted transaction's records stay
//!    in the log, skipped).
//!
//! The final counts, the transactions hit and the internal topics are
//! compared between the brokers.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, Options};
use crate::reference::Kafka;

const APP: &str = "pubsub.compat.streams.WordCount";
const APP_ID: &str = "wordcount";
const INPUT: &str = "lines";
const OUTPUT: &str = "counts";
const REPARTITION: &str = "wordcount-words-repartition";
const CHANGELOG: &str = "wordcount-counts-changelog";

/// Longest wait for the app to catch up before the test gives up (a
/// bound against hanging, not a timed assertion).
const PATIENCE: Duration = Duration::from_secs(300);

const WORDS: [&str; 12] = [
    "kafka",
    "stream",
    "broker",
    "topic",
    "record",
    "offset",
    "group",
    "commit",
    "log",
    "store",
    "partition",
    "leader",
];

/// `n` lines of words, batch `seed`: deterministic, words repeating.
fn lines(seed: usize, n: usize, words: &[&str]) -> Vec<String> {
    (0..n)
        .map(|i| {
            let len = 1 + (i * 7 + seed) % 5;
            (0..len)
                .map(|j| words[(i * 5 + j * 3 + seed) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// How many times each word occurs in `lines`, added to `counts`.
fn count_into(counts: &mut BTreeMap<String, u64>, lines: &[String]) {
    for line in lines {
        for word in line.split_whitespace() {
            *counts.entry(word.to_string()).or_default() += 1;
        }
    }
}

/// A broker the scenario can crash and restart.
trait Broker {
    fn bootstrap(&self) -> String;
    /// SIGKILL, then start again on the same data dir and address.
    fn crash_and_restart(&mut self);
    /// The last lines of the broker's own log, for a failure report.
    fn log_tail(&self) -> String;
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

struct Pubsub {
    daemon: Option<Daemon>,
    data: PathBuf,
    /// What the daemons before a crash logged (each restart's log starts
    /// afresh).
    crashed_logs: String,
}

impl Broker for Pubsub {
    fn bootstrap(&self) -> String {
        self.daemon.as_ref().unwrap().addr.to_string()
    }

    fn crash_and_restart(&mut self) {
        let daemon = self.daemon.take().unwrap();
        let addr = daemon.addr;
        self.crashed_logs.push_str(&daemon.kill9());
        let options = Options {
            listen: Some(addr),
            ..Options::default()
        };
        self.daemon = Some(Daemon::start_with(&self.data, options));
    }

    fn log_tail(&self) -> String {
        let now = self.daemon.as_ref().map(Daemon::stderr).unwrap_or_default();
        format!(
            "before the last crash:\n{}\nsince:\n{}",
            tail(&self.crashed_logs, 40),
            tail(&now, 40)
        )
    }
}

struct Reference<'a>(&'a Kafka);

impl Broker for Reference<'_> {
    fn bootstrap(&self) -> String {
        self.0.bootstrap.clone()
    }

    fn crash_and_restart(&mut self) {
        self.0.kill9();
        self.0.restart();
    }

    /// Since the last restart (`compat/kafka` keeps the log before it
    /// beside it, as `server.log.<time>`).
    fn log_tail(&self) -> String {
        tail(
            &std::fs::read_to_string(self.0.server_log()).unwrap_or_default(),
            40,
        )
    }
}

/// Runs a one-shot mode of the Java word count; its stdout.
fn java(kafka: &Kafka, args: &[&str], stdin: &str) -> String {
    let mut command = kafka.command(APP);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "WordCount {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The output topic read to its end: (records, last count of each word).
fn counts(kafka: &Kafka, bootstrap: &str) -> (u64, BTreeMap<String, u64>) {
    counts_in(kafka, bootstrap, OUTPUT, "read_uncommitted")
}

/// `topic` (word -> count) read to its end with `isolation`: (records,
/// last count of each word).
fn counts_in(
    kafka: &Kafka,
    bootstrap: &str,
    topic: &str,
    isolation: &str,
) -> (u64, BTreeMap<String, u64>) {
    let out = java(kafka, &["counts", bootstrap, topic, isolation], "");
    let mut records = None;
    let mut last = BTreeMap::new();
    for line in out.lines() {
        let (k, v) = line.split_once(' ').unwrap();
        let v: u64 = v.parse().unwrap();
        if k == "records" {
            records = Some(v);
        } else {
            last.insert(k.to_string(), v);
        }
    }
    (records.unwrap(), last)
}

/// The app's group lag (end offsets minus committed offsets of the input
/// and repartition partitions), or `None` before it committed anything.
fn lag(kafka: &Kafka, bootstrap: &str) -> Option<u64> {
    let out = java(kafka, &["lag", bootstrap, APP_ID], "");
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (field("committed ") > 0).then(|| field("lag "))
}

/// Each partition's (earliest, latest) offsets.
fn offsets(kafka: &Kafka, bootstrap: &str, topic: &str) -> Vec<(u64, u64)> {
    java(kafka, &["offsets", bootstrap, topic], "")
        .lines()
        .map(|l| {
            let f: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            (f[1], f[2])
        })
        .collect()
}

/// The running Streams app: a JVM whose stdin, once closed, makes it close
/// cleanly; killed on drop.
struct App {
    child: Child,
    output: Arc<Mutex<String>>,
    log: PathBuf,
}

impl App {
    fn start(kafka: &Kafka, bootstrap: &str, state_dir: &Path) -> App {
        App::start_with(kafka, bootstrap, state_dir, &[])
    }

    /// [`App::start`] with the optional `GUARANTEE PAUSE_MS` arguments.
    fn start_with(kafka: &Kafka, bootstrap: &str, state_dir: &Path, extra: &[&str]) -> App {
        let mut command = kafka.command(APP);
        command
            .args(["run", bootstrap, APP_ID, INPUT, OUTPUT])
            .arg(state_dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        App {
            child,
            output,
            log: kafka.tool_log(),
        }
    }

    /// What it printed, and the tail of the log Streams writes.
    fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "app output:\n{}\nlog tail:\n{}",
            self.output.lock().unwrap(),
            tail(&log, 40)
        )
    }

    /// Panics if the app died or reported an error.
    fn check(&mut self) {
        let failed = self.output.lock().unwrap().contains("error ")
            || self.output.lock().unwrap().contains("state ERROR");
        let exited = self.child.try_wait().unwrap();
        assert!(
            !failed && exited.is_none(),
            "the Streams app failed ({exited:?}):\n{}",
            self.report()
        );
    }

    /// Closes stdin: the app closes its KafkaStreams (committing) and exits.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        // The reader threads finish at EOF; give them the final lines.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            status.success() && self.output.lock().unwrap().contains("closed"),
            "the Streams app did not close cleanly ({status}):\n{}",
            self.report()
        );
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The last `processed N` the app printed (0 before any): the counts
    /// it made since it started, with a pause given.
    fn processed(&self) -> u64 {
        self.output
            .lock()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("processed ")?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// Waits until the app has made `n` more counts than `since`.
    fn wait_processed(&mut self, since: u64, n: u64) {
        let start = Instant::now();
        while self.processed() < since + n {
            self.check();
            assert!(
                start.elapsed() < PATIENCE,
                "the app did not process {n} counts\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the output topic until every word of `expected` has reached its
/// count; the counts then.
fn wait_for_counts(
    kafka: &Kafka,
    bootstrap: &str,
    app: &mut App,
    expected: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    wait_for_counts_in(kafka, (bootstrap, "read_uncommitted"), app, expected)
}

/// Polls the output topic, read with `isolation`, until every word of
/// `expected` has reached its count; the counts then.
fn wait_for_counts_in(
    kafka: &Kafka,
    (bootstrap, isolation): (&str, &str),
    app: &mut App,
    expected: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let start = Instant::now();
    loop {
        app.check();
        let (_, now) = counts_in(kafka, bootstrap, OUTPUT, isolation);
        if expected
            .iter()
            .all(|(w, n)| now.get(w).is_some_and(|c| c >= n))
        {
            return now;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the {isolation} counts did not reach {expected:?}; last seen {now:?}\n{}",
            app.report()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Polls until the app's group has committed everything it consumed.
fn wait_for_commit(kafka: &Kafka, bootstrap: &str, app: &mut App) {
    let start = Instant::now();
    loop {
        app.check();
        if lag(kafka, bootstrap) == Some(0) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the app's lag did not reach 0\n{}",
            app.report()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn feed(kafka: &Kafka, bootstrap: &str, lines: &[String]) {
    let out = java(
        kafka,
        &["feed", bootstrap, INPUT],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(out.trim(), format!("fed {}", lines.len()));
}

/// Feeds a batch of the first four words while the app runs, calls `crash`
/// once the app has counted part of it, feeds the rest, and checks what
/// at_least_once promises once the app has caught up and stopped (which
/// the caller does): every word of the batch counted at least as often as
/// fed, possibly more (what the app processed after its last commit before
/// the crash is processed again); every other word exactly, since it was
/// not fed since the last commit. The batch is added to `expected`.
fn crash_mid_batch(
    kafka: &Kafka,
    b: &str,
    expected: &mut BTreeMap<String, u64>,
    seed: usize,
    app: &mut App,
    crash: impl FnOnce(&mut App),
) {
    let few = &WORDS[..4];
    let batch = lines(seed, 200, few);
    let before = expected.clone();
    count_into(expected, &batch);
    let (half, rest) = batch.split_at(100);
    feed(kafka, b, half);
    let mut partly = before.clone();
    count_into(&mut partly, &half[..10]);
    wait_for_counts(kafka, b, app, &partly);
    crash(app);
    feed(kafka, b, rest);
    let now = wait_for_counts(kafka, b, app, expected);
    for (word, n) in expected.iter() {
        let got = now.get(word).copied().unwrap_or_default();
        if few.contains(&word.as_str()) {
            assert!(got >= *n, "{word}: counted {got} times, fed {n} times");
        } else {
            assert_eq!(got, *n, "{word} was not fed since the last commit");
        }
    }
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
}

/// The scenario against one broker; the steps to compare.
fn scenario(kafka: &Kafka, broker: &mut dyn Broker) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    let b = broker.bootstrap();
    java(kafka, &["create", &b, "2", INPUT, OUTPUT], "");
    let state = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();

    // 1. Count a first batch.
    let batch = lines(1, 40, &WORDS);
    count_into(&mut expected, &batch);
    feed(kafka, &b, &batch);
    let mut app = App::start(kafka, &b, state.path());
    wait_for_counts(kafka, &b, &mut app, &expected);
    app.stop();
    let (records, now) = counts(kafka, &b);
    assert_eq!(now, expected, "first batch");
    steps.push((
        "first batch: records out, counts".into(),
        format!("{records} {now:?}"),
    ));

    // 2. Stopped, more lines, started again on an empty state dir: the
    //    store comes back from the changelog and the counts go on.
    let batch = lines(2, 30, &WORDS);
    count_into(&mut expected, &batch);
    feed(kafka, &b, &batch);
    let state = tempfile::tempdir().unwrap();
    let mut app = App::start(kafka, &b, state.path());
    wait_for_counts(kafka, &b, &mut app, &expected);
    wait_for_commit(kafka, &b, &mut app);
    let (records, now) = counts(kafka, &b);
    assert_eq!(now, expected, "after the app's restart");
    steps.push((
        "after the app's restart: records out, counts".into(),
        format!("{records} {now:?}"),
    ));

    // 3. The broker crashes with the app running and everything committed.
    broker.crash_and_restart();
    let batch = lines(3, 30, &WORDS);
    count_into(&mut expected, &batch);
    feed(kafka, &b, &batch);
    wait_for_counts(kafka, &b, &mut app, &expected);
    // Streams purges at its commits (DeleteRecords): wait for one.
    let start = Instant::now();
    while offsets(kafka, &b, REPARTITION).iter().all(|(e, _)| *e == 0) {
        app.check();
        assert!(start.elapsed() < PATIENCE, "no purge\n{}", app.report());
        std::thread::sleep(Duration::from_millis(500));
    }
    app.stop();
    let (_, now) = counts(kafka, &b);
    assert_eq!(now, expected, "after the broker's crash");
    steps.push((
        "after the broker's crash: counts".into(),
        format!("{now:?}"),
    ));
    let repartition = offsets(kafka, &b, REPARTITION);
    assert!(
        repartition.iter().any(|(earliest, _)| *earliest > 0),
        "the repartition topic was purged: {repartition:?}"
    );

    // 4. The broker crashes while the app processes, 5. the app does:
    //    at least once, not exactly once.
    let mut app = App::start(kafka, &b, state.path());
    crash_mid_batch(kafka, &b, &mut expected, 4, &mut app, |_| {
        broker.crash_and_restart()
    });
    app.stop();
    let mut app = App::start(kafka, &b, state.path());
    crash_mid_batch(kafka, &b, &mut expected, 5, &mut app, |app| {
        app.kill9();
        *app = App::start(kafka, &b, state.path());
    });
    app.stop();

    let topics = java(kafka, &["topics", &b], "");
    assert!(
        topics.contains(&format!("{REPARTITION} partitions=2 cleanup.policy=delete"))
            && topics.contains(&format!("{CHANGELOG} partitions=2 cleanup.policy=compact")),
        "internal topics:\n{topics}"
    );
    steps.push(("topics".into(), topics));
    steps
}

#[test]
fn kafka_streams_word_count_gives_the_same_counts_on_pubsub_and_apache_kafka() {
    same_on_pubsub_and_kafka(scenario, "Kafka Streams");
}

/// Runs `scenario` on a pubsub daemon and on Apache Kafka (where Java and
/// Maven are): the steps must read the same.
fn same_on_pubsub_and_kafka(
    scenario: fn(&Kafka, &mut dyn Broker) -> Vec<(String, String)>,
    what: &str,
) {
    let Some(kafka) = Kafka::start() else { return };
    kafka.compile();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut pubsub = Pubsub {
        daemon: Some(Daemon::start(&data)),
        data,
        crashed_logs: String::new(),
    };
    let ours = run_on("pubsub", scenario, &kafka, &mut pubsub);
    let theirs = run_on("Apache Kafka", scenario, &kafka, &mut Reference(&kafka));
    let differences = crate::reference::differences(&ours, &theirs);
    assert!(
        differences.is_empty(),
        "{what} saw differences:\n{differences}"
    );
}

/// `scenario` against `broker`; if it fails, the tail of the broker's log
/// is printed under its name before the failure goes on (the failure's own
/// message shows the app's side, and does not say which broker it was).
fn run_on(
    name: &str,
    scenario: fn(&Kafka, &mut dyn Broker) -> Vec<(String, String)>,
    kafka: &Kafka,
    broker: &mut dyn Broker,
) -> Vec<(String, String)> {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(kafka, broker)));
    run.unwrap_or_else(|failure| {
        eprintln!(
            "the scenario failed on {name}; the tail of {name}'s log:\n{}",
            broker.log_tail()
        );
        std::panic::resume_unwind(failure)
    })
}

const EXACTLY_ONCE: [&str; 2] = ["exactly_once_v2", "10"];
const TRANSACTIONS: &str = "org.apache.kafka.tools.TransactionsCommand";

/// Polls the output topic, read_committed, until every word of `expected`
/// has reached its count; the counts then.
fn wait_for_committed(
    kafka: &Kafka,
    bootstrap: &str,
    app: &mut App,
    expected: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    wait_for_counts_in(kafka, (bootstrap, "read_committed"), app, expected)
}

/// `kafka-transactions list`: the app's transactional ids (`wordcount-`)
/// and their state, in order.
fn app_transactions(kafka: &Kafka, bootstrap: &str) -> Vec<(String, String)> {
    let (ok, out, err) = kafka.tool(TRANSACTIONS, &["--bootstrap-server", bootstrap, "list"], "");
    assert!(ok, "kafka-transactions list failed:\n{out}\n{err}");
    let mut found: Vec<(String, String)> = out
        .lines()
        .filter(|l| l.starts_with(&format!("{APP_ID}-")))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields[0].to_string(), fields.last().unwrap().to_string())
        })
        .collect();
    found.sort();
    found
}

/// The exactly_once_v2 scenario against one broker; the steps to compare.
fn exactly_once_scenario(kafka: &Kafka, broker: &mut dyn Broker) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    let b = broker.bootstrap();
    java(kafka, &["create", &b, "2", INPUT, OUTPUT], "");
    let state = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();

    // 1. A first batch, counted once.
    let batch = lines(1, 20, &WORDS);
    count_into(&mut expected, &batch);
    feed(kafka, &b, &batch);
    let mut app = App::start_with(kafka, &b, state.path(), &EXACTLY_ONCE);
    let now = wait_for_committed(kafka, &b, &mut app, &expected);
    assert_eq!(now, expected, "first batch, read_committed");

    // 2. The broker is killed while the app processes a batch.
    let batch = lines(2, 60, &WORDS[..6]);
    count_into(&mut expected, &batch);
    let since = app.processed();
    feed(kafka, &b, &batch);
    app.wait_processed(since, 20);
    broker.crash_and_restart();
    let now = wait_for_committed(kafka, &b, &mut app, &expected);
    assert_eq!(now, expected, "after the broker's crash, read_committed");

    // 3. The app is killed while it processes a batch, until a kill lands
    //    inside an open transaction that already wrote to the output topic
    //    (nearly every kill does: the app holds a transaction through each
    //    pause; but a kill right after a transaction's first count finds
    //    only its changelog record sent), then started again; more lines.
    let mut hit = Vec::new();
    for seed in 3..9 {
        let batch = lines(seed, 60, &WORDS[6..]);
        count_into(&mut expected, &batch);
        let since = app.processed();
        feed(kafka, &b, &batch);
        app.wait_processed(since, 20);
        app.kill9();
        let open: Vec<_> = app_transactions(kafka, &b)
            .into_iter()
            .filter(|(_, state)| state == "Ongoing")
            .collect();
        // The dead app's open transaction holds output records back from
        // read_committed (the last stable offset) but not from
        // read_uncommitted.
        let output_held_back = !open.is_empty() && {
            let (committed, _) = counts_in(kafka, &b, OUTPUT, "read_committed");
            let (uncommitted, _) = counts_in(kafka, &b, OUTPUT, "read_uncommitted");
            uncommitted > committed
        };
        app = App::start_with(kafka, &b, state.path(), &EXACTLY_ONCE);
        if output_held_back {
            hit = open;
            break;
        }
    }
    assert!(
        !hit.is_empty(),
        "none of six kills of the app landed inside an open transaction with output records"
    );
    let batch = lines(6, 20, &WORDS);
    count_into(&mut expected, &batch);
    feed(kafka, &b, &batch);
    wait_for_committed(kafka, &b, &mut app, &expected);
    app.stop();

    // 4. Exactly once, in the output topic and in the changelog.
    let (committed, now) = counts_in(kafka, &b, OUTPUT, "read_committed");
    assert_eq!(now, expected, "output, read_committed");
    let (_, changelog) = counts_in(kafka, &b, CHANGELOG, "read_committed");
    assert_eq!(changelog, expected, "changelog, read_committed");
    let (uncommitted, _) = counts_in(kafka, &b, OUTPUT, "read_uncommitted");
    assert!(
        uncommitted > committed,
        "read_uncommitted sees {uncommitted} records, read_committed {committed}: \
         no aborted transaction's records in the output topic"
    );
    // The counts themselves depend on how many kills step 3 took (each try
    // feeds one more batch), which differs between brokers by chance: what
    // both must show is that every word fed was counted exactly once (the
    // asserts above), not the same totals.
    steps.push((
        "counts, read_committed".into(),
        "each word counted exactly once".into(),
    ));
    steps.push((
        "changelog, read_committed".into(),
        "each word counted exactly once".into(),
    ));
    steps.push((
        "kill inside an open transaction: transactional ids hit".into(),
        hit.len().to_string(),
    ));
    steps.push(("topics".into(), java(kafka, &["topics", &b], "")));
    steps
}

#[test]
fn kafka_streams_exactly_once_v2_counts_each_word_once_across_kills_on_pubsub_and_apache_kafka() {
    same_on_pubsub_and_kafka(exactly_once_scenario, "Kafka Streams exactly_once_v2");
}
