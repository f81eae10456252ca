//! The randomized transaction checker (`compat/txn/checker.py`, with
//! confluent-kafka) against the binary just built: transactional producers
//! committing and aborting at random over several partitions,
//! read_committed readers, the broker killed with SIGKILL at random points
//! (some while a commit is in flight) and restarted. The checker verifies
//! that no aborted record is read, no committed one lost or duplicated,
//! every transaction all visible or not at all, and each producer's order
//! per partition kept; see its doc.
//!
//! A short run by default; `PUBSUB_TXN_CHECK_SECONDS=600` makes a long
//! one, and `PUBSUB_TXN_CHECK_SEED=N` replays a seed (printed on failure).
//! `benches/txn-checker.sh` runs it long outside the test harness; the
//! long runs' figures are in docs/BENCHMARKS.md.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::daemon::binary;
use crate::reference::output_within;

#[test]
fn transactions_stay_whole_across_random_sigkills_of_the_broker() {
    let checker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/txn/checker.py");
    let seconds: u64 = std::env::var("PUBSUB_TXN_CHECK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut command = Command::new("python3");
    command
        .arg(&checker)
        .arg("--bin")
        .arg(binary())
        .arg("--seconds")
        .arg(seconds.to_string());
    if let Ok(seed) = std::env::var("PUBSUB_TXN_CHECK_SEED") {
        command.arg("--seed").arg(seed);
    }
    let (ok, out, err) = output_within(command, "", Duration::from_secs(seconds + 900));
    let noise: Vec<&str> = err.lines().filter(|l| !l.starts_with('%')).collect();
    assert!(ok, "the checker failed:\n{out}\n{}", noise.join("\n"));
    println!("{out}");
    // The run exercised what it checks: both outcomes, and kills.
    let summary = out.lines().last().unwrap_or_default();
    let field = |name: &str| -> u64 {
        summary
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the summary {summary:?}"))
    };
    assert!(field("committed") > 0, "{summary}");
    assert!(field("aborted") > 0, "{summary}");
    assert!(field("kills") > 0, "{summary}");
    assert!(field("records") > 0, "{summary}");
}
