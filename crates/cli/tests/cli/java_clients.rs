//! The Java client suite of `compat/java` (`pubsub.compat.clients.Suite`:
//! kafka-clients 4.1.1, the reference client; producer, consumer, groups
//! with live rebalances and static membership, AdminClient, transactions:
//! commit, abort, an open transaction invisible to read_committed, zombie
//! fencing, consume-transform-produce, all on transaction version 2 with
//! both brokers, one scenario checking the epoch moves on at every commit
//! and abort as only version 2 does) run against a
//! fresh pubsub daemon and against a real Apache Kafka (`compat/kafka`):
//! every scenario must pass on both, and what the scenarios observed
//! (error classes and messages, offsets, config values and sources, group
//! states) must be the same.
//!
//! The scenarios in [`AWAITING_PUBSUB_API`] need an API pubsub does not
//! serve yet; they run against Kafka only until it does.
//!
//! Needs Java 17+ (with javac) and Maven. Without them the test says so and
//! passes, unless `COMPAT_REQUIRE_KAFKA=1` (which `.ci/run` sets) makes that
//! a failure.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::{binary, Daemon};
use crate::reference::Kafka;

/// Scenarios skipped against pubsub, each with the API it waits for. Empty
/// an entry once pubsub serves that API.
const AWAITING_PUBSUB_API: &[(&str, &str)] = &[];

/// The Maven project at `compat/java`.
fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/java")
}

/// Compiles the suite's sources with Kafka's jars into `classes`; false
/// (with a message, or a failure where `COMPAT_REQUIRE_KAFKA=1`) when
/// there is no `javac`.
fn compile(classes: &Path) -> bool {
    if !crate::reference::tools_found(
        &[("javac", "-version")],
        "the Java client suite does not run",
    ) {
        return false;
    }
    let sources: Vec<PathBuf> =
        std::fs::read_dir(project().join("src/main/java/pubsub/compat/clients"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "java"))
            .collect();
    let out = Command::new("javac")
        .arg("-d")
        .arg(classes)
        .arg("-cp")
        .arg(project().join("target/lib/*"))
        .args(&sources)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// What one run of the suite reported.
struct Report {
    passed: BTreeSet<String>,
    skipped: BTreeSet<String>,
    /// `scenario key = value` lines.
    observed: BTreeSet<String>,
}

/// Runs the suite against `bootstrap`, skipping `skip`; fails the test
/// with the suite's report where a scenario failed.
fn run(classes: &Path, logs: &Path, broker: &str, bootstrap: &str, skip: &[&str]) -> Report {
    let classpath = format!(
        "{}:{}",
        classes.display(),
        project().join("target/lib/*").display()
    );
    let mut command = Command::new("java");
    command
        .arg("-Xmx512m")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            project().join("log4j2.properties").display()
        ))
        .arg(format!("-Dkafka.logs.dir={}", logs.display()))
        .arg("-cp")
        .arg(&classpath)
        .arg("pubsub.compat.clients.Suite")
        .arg(bootstrap)
        .env("PUBSUB_BIN", binary());
    if !skip.is_empty() {
        command.arg("--skip").arg(skip.join(","));
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Java client suite failed against {broker} ({bootstrap}):\n{stdout}\n{stderr}"
    );
    let mut report = Report {
        passed: BTreeSet::new(),
        skipped: BTreeSet::new(),
        observed: BTreeSet::new(),
    };
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("PASS ") {
            report
                .passed
                .insert(rest.split(' ').next().unwrap().to_string());
        } else if let Some(name) = line.strip_prefix("SKIP ") {
            report.skipped.insert(name.to_string());
        } else if let Some(seen) = line.strip_prefix("OBSERVE ") {
            report.observed.insert(seen.to_string());
        }
    }
    report
}

/// Every scenario the suite has, by `Suite --list`.
fn scenarios(classes: &Path) -> BTreeSet<String> {
    let classpath = format!(
        "{}:{}",
        classes.display(),
        project().join("target/lib/*").display()
    );
    let out = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg("pubsub.compat.clients.Suite")
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success(), "Suite --list failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The observations of the scenarios not in `skipped`.
fn observed_outside(report: &Report, skipped: &BTreeSet<String>) -> BTreeSet<String> {
    report
        .observed
        .iter()
        .filter(|l| !skipped.contains(l.split(' ').next().unwrap_or_default()))
        .cloned()
        .collect()
}

#[test]
fn the_java_client_suite_passes_against_pubsub_and_apache_kafka() {
    // The jars come with `compat/kafka setup`, which Kafka::start runs; the
    // pubsub run goes first, so fetch them here.
    if !java_and_jars() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes");
    if !compile(&classes) {
        return;
    }
    let all = scenarios(&classes);
    for (name, _) in AWAITING_PUBSUB_API {
        assert!(
            all.contains(*name),
            "AWAITING_PUBSUB_API names {name}, which is no scenario"
        );
    }
    let awaiting: Vec<&str> = AWAITING_PUBSUB_API.iter().map(|(n, _)| *n).collect();
    let skipped: BTreeSet<String> = awaiting.iter().map(|s| s.to_string()).collect();

    let daemon = Daemon::start(&dir.path().join("data"));
    let ours = run(
        &classes,
        dir.path(),
        "pubsub",
        &daemon.addr.to_string(),
        &awaiting,
    );
    drop(daemon);
    let expected: BTreeSet<String> = all.difference(&skipped).cloned().collect();
    assert_eq!(ours.passed, expected, "scenarios passed against pubsub");
    assert_eq!(ours.skipped, skipped, "scenarios skipped against pubsub");

    let Some(kafka) = Kafka::start() else { return };
    let theirs = run(&classes, dir.path(), "Apache Kafka", &kafka.bootstrap, &[]);
    drop(kafka);
    assert_eq!(theirs.passed, all, "scenarios passed against Apache Kafka");

    let ours_seen = observed_outside(&ours, &skipped);
    let theirs_seen = observed_outside(&theirs, &skipped);
    let only_ours: Vec<&String> = ours_seen.difference(&theirs_seen).collect();
    let only_theirs: Vec<&String> = theirs_seen.difference(&ours_seen).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "the Java clients observed differences:\npubsub only:\n{}\nApache Kafka only:\n{}",
        only_ours
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        only_theirs
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// Whether Java, Maven and Kafka's jars (`compat/kafka setup`) are here;
/// without them, a message (a failure where `COMPAT_REQUIRE_KAFKA=1`).
fn java_and_jars() -> bool {
    if !crate::reference::java_and_maven("the Java client suite does not run") {
        return false;
    }
    let out = Command::new(project().join("../kafka"))
        .arg("setup")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compat/kafka setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// The Java consumer uses incremental fetch sessions (KIP-227) on its own:
/// one consumer assigned 2,000 partitions reads a record from each, then a
/// second record from every seventh (`ManyPartitions` in `compat/java`),
/// while the daemon holds its session; no fetch was refused for a session
/// error along the way.
#[test]
fn a_java_consumer_of_2000_partitions_reads_every_record_through_a_fetch_session() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    if !java_and_jars() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes");
    if !compile(&classes) {
        return;
    }
    let daemon = Daemon::start_with_metrics(&dir.path().join("data"));
    let stderr_path = dir.path().join("many-partitions.stderr");
    let mut child = Command::new("java")
        .arg("-Xmx512m")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            project().join("log4j2.properties").display()
        ))
        .arg(format!("-Dkafka.logs.dir={}", dir.path().display()))
        .arg("-cp")
        .arg(format!(
            "{}:{}",
            classes.display(),
            project().join("target/lib/*").display()
        ))
        .arg("pubsub.compat.clients.ManyPartitions")
        .arg(daemon.addr.to_string())
        .arg("many")
        .arg("2000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("READ ") => break line,
            Some(Ok(line)) => seen.push(line),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ManyPartitions ended without reading everything:\n{}\n{}",
                    seen.join("\n"),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    };
    // Every seventh of 2,000 partitions: 0, 7, ..., 1995.
    assert_eq!(read, "READ 2000 286", "{}", seen.join("\n"));
    let metrics = daemon.metrics.unwrap();
    let page = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::metrics::scrape(metrics));
    let sessions = crate::metrics::value(&page, "pubsub_fetch_sessions");
    let session_errors: Vec<&String> = page
        .keys()
        .filter(|k| {
            k.starts_with("pubsub_errors_total{")
                && k.contains("api=\"Fetch\"")
                && (k.contains("code=\"70\"") || k.contains("code=\"71\""))
        })
        .collect();
    // Let the consumer close (it closes its session on the way).
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "ManyPartitions failed");
    assert!(
        sessions >= 1.0,
        "the consumer's fetch session is in the cache ({sessions})"
    );
    assert!(session_errors.is_empty(), "{session_errors:?}");
}
