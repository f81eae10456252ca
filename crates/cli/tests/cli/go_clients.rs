//! The Go client suites of `compat/go` (franz-go's kgo and kadm, IBM
//! sarama: produce, consume, consumer groups, admin) run by `go test`
//! against a fresh pubsub daemon and against a real Apache Kafka
//! (`compat/kafka`), the reference: every Go test must pass on both.
//!
//! Needs Go (and Java and Maven for Kafka). Without Go the test says so and
//! passes, unless `COMPAT_REQUIRE_KAFKA=1` (which `.ci/run` sets) makes that
//! a failure; without Java or Maven only the pubsub run happens, as
//! `Kafka::start` decides.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use crate::daemon::Daemon;
use crate::reference::Kafka;

/// The Go module at `compat/go`.
fn module() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/go")
}

/// Whether `go` runs here; without it, a message (or a failure where
/// `COMPAT_REQUIRE_KAFKA=1`).
fn go_found() -> bool {
    crate::reference::tools_found(&[("go", "version")], "the Go client suites do not run")
}

/// Runs `go test ./... -count=1 -v` in `compat/go` against `bootstrap`,
/// failing with go's output if any Go test fails.
fn go_test(broker: &str, bootstrap: &str) {
    let out = Command::new("go")
        .args(["test", "./...", "-count=1", "-v"])
        .current_dir(module())
        .env("BOOTSTRAP", bootstrap)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Go client suites failed against {broker} ({bootstrap}):\n{stdout}\n{stderr}"
    );
    // Every suite ran: none skipped, each client's tests present.
    assert!(
        !stdout.contains("--- SKIP"),
        "a Go test was skipped against {broker}:\n{stdout}"
    );
    for suite in ["--- PASS: TestFranz", "--- PASS: TestSarama"] {
        assert!(
            stdout.contains(suite),
            "no `{suite}` against {broker}:\n{stdout}"
        );
    }
}

#[test]
fn franz_go_and_sarama_pass_against_pubsub_and_apache_kafka() {
    if !go_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    go_test("pubsub", &daemon.addr.to_string());
    drop(daemon);
    let Some(kafka) = Kafka::start() else { return };
    go_test("Apache Kafka", &kafka.bootstrap);
}
