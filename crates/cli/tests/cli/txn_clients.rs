//! Transactions with kafkajs and kafka-python (`compat/txn/clients_kafkajs.js`,
//! `compat/txn/clients_kafka_python.py`): commit, abort, an open transaction
//! invisible to read_committed until it ends, zombie fencing and offsets
//! sent in a transaction, each client against a fresh pubsub daemon and
//! against one Apache Kafka (`compat/kafka`). Every scenario must pass on
//! both (the scripts check what read_committed and read_uncommitted
//! return), and what the clients observed (offsets and values read, the
//! zombie's error) must be the same.
//!
//! Scenarios in [`AWAITING_PUBSUB_API`] run against Kafka only until pubsub
//! serves the API they need. Without node, Java or Maven the test says so
//! and passes, unless `COMPAT_REQUIRE_KAFKA=1`.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::reference::{output_within, tools_found, Kafka};

/// Every scenario each script runs.
const SCENARIOS: &[&str] = &[
    "txn.commit",
    "txn.abort",
    "txn.open-invisible-to-read-committed",
    "txn.zombie-fenced",
    "txn.send-offsets",
];

/// Scenarios skipped against pubsub, with the API each waits for.
const AWAITING_PUBSUB_API: &[(&str, &str)] = &[];

/// The command that runs `name`'s script (kafkajs or kafka-python); the
/// broker's address and `--skip` follow.
fn client(name: &str) -> Command {
    let txn = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/txn");
    match name {
        "kafkajs" => {
            let mut c = Command::new("node");
            c.arg(txn.join("clients_kafkajs.js")).env(
                "NODE_PATH",
                crate::security::kafkajs_dir().join("node_modules"),
            );
            c
        }
        _ => {
            let mut c = Command::new("python3");
            c.arg(txn.join("clients_kafka_python.py"));
            c
        }
    }
}

/// What one run reported: passed and skipped scenarios, observations.
#[derive(Default)]
struct Report {
    passed: BTreeSet<String>,
    skipped: BTreeSet<String>,
    observed: BTreeSet<String>,
}

fn run(name: &str, broker: &str, bootstrap: &str, skip: &[&str]) -> Report {
    let mut command = client(name);
    command.arg(bootstrap);
    if !skip.is_empty() {
        command.arg("--skip").arg(skip.join(","));
    }
    let (ok, out, err) = output_within(command, "", Duration::from_secs(900));
    assert!(
        ok,
        "{name}'s transaction scenarios failed against {broker} ({bootstrap}):\n{out}\n{err}"
    );
    let mut report = Report::default();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("PASS ") {
            report.passed.insert(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("SKIP ") {
            report.skipped.insert(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("OBSERVE ") {
            // Only the scenarios both brokers ran are compared.
            if !skip.contains(&rest.split(' ').next().unwrap_or_default()) {
                report.observed.insert(rest.to_string());
            }
        }
    }
    report
}

#[test]
fn kafkajs_and_kafka_python_transactions_behave_as_on_apache_kafka() {
    if !tools_found(
        &[("node", "--version"), ("python3", "--version")],
        "the kafkajs and kafka-python transaction scenarios do not run",
    ) {
        return;
    }
    let clients = ["kafkajs", "kafka-python"];
    let all: BTreeSet<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let awaiting: Vec<&str> = AWAITING_PUBSUB_API.iter().map(|(n, _)| *n).collect();
    let skipped: BTreeSet<String> = awaiting.iter().map(|s| s.to_string()).collect();
    assert!(
        skipped.is_subset(&all),
        "AWAITING_PUBSUB_API names no scenario"
    );

    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let bootstrap = daemon.addr.to_string();
    let ours: Vec<Report> = clients
        .iter()
        .map(|c| run(c, "pubsub", &bootstrap, &awaiting))
        .collect();
    drop(daemon);
    for (name, report) in clients.iter().zip(&ours) {
        let expected: BTreeSet<String> = all.difference(&skipped).cloned().collect();
        assert_eq!(report.passed, expected, "{name}: passed against pubsub");
        assert_eq!(report.skipped, skipped, "{name}: skipped against pubsub");
    }

    let Some(kafka) = Kafka::start() else { return };
    let theirs: Vec<Report> = clients
        .iter()
        .map(|c| run(c, "Apache Kafka", &kafka.bootstrap, &[]))
        .collect();
    drop(kafka);
    for ((name, ours), theirs) in clients.iter().zip(&ours).zip(&theirs) {
        assert_eq!(theirs.passed, all, "{name}: passed against Apache Kafka");
        let theirs_seen: BTreeSet<&String> = theirs
            .observed
            .iter()
            .filter(|l| !skipped.contains(l.split(' ').next().unwrap_or_default()))
            .collect();
        let ours_seen: BTreeSet<&String> = ours.observed.iter().collect();
        assert!(!ours_seen.is_empty(), "{name} observed nothing");
        assert_eq!(
            ours_seen, theirs_seen,
            "{name} observed differently on pubsub (left) and Apache Kafka (right)"
        );
    }
}
