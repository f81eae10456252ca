//! Runs the Python compatibility suite (`tests/compat`) against the binary
//! just built: confluent-kafka (librdkafka), kafka-python 3.x and kcat, each
//! test with its own `pubsub serve` process; and the same suite, with the
//! same assertions, against a real Apache Kafka 4.1.1 (one JVM for the whole
//! run, see `reference.rs`), so that what the tests expect is Kafka's
//! behaviour and not only pubsub's. Tests marked `pubsub_only` (SIGKILL and
//! restart of the broker process) run against pubsub alone.
//!
//! Needs `python3` with the packages of `tests/compat/requirements.txt`
//! and `kcat` (`.ci/run` installs them). Set `PUBSUB_COMPAT_ARGS` to pass
//! extra pytest arguments (e.g. `-k crash`).

use std::path::Path;
use std::process::Command;

use crate::daemon::binary;
use crate::reference::Kafka;

#[test]
fn python_clients() {
    run_suite(None);
}

#[test]
fn python_clients_against_apache_kafka() {
    let Some(kafka) = Kafka::start() else { return };
    run_suite(Some(&kafka.bootstrap));
}

/// Runs pytest over the suite: each test with its own pubsub daemon, or all
/// against `reference` (HOST:PORT) when given.
fn run_suite(reference: Option<&str>) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let probe = Command::new("python3")
        .args(["-c", "import confluent_kafka, kafka, pytest, snappy"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the compatibility suite needs its Python packages: pip install -r {}\n{}",
            suite.join("requirements.txt").display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the compatibility suite needs python3: {e}"),
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",
        "--durations=10",
    ])
    .arg("--basetemp")
    .arg(tmp.path().join("pytest"))
    .arg(&suite)
    .env("PUBSUB_BIN", binary())
    .current_dir(&suite);
    if let Some(bootstrap) = reference {
        cmd.env("COMPAT_KAFKA_BOOTSTRAP", bootstrap);
    }
    if let Ok(extra) = std::env::var("PUBSUB_COMPAT_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let out = cmd.output().expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // librdkafka's connection chatter goes to stderr; keep only pytest's report.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the Kafka client compatibility suite failed against {}:\n{stdout}\n{}",
        reference.map_or("pubsub".to_string(), |b| format!("Apache Kafka at {b}")),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with('%'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
