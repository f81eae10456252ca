//! The stock-monitoring example, run twice on one data directory: the
//! second run continues from the committed positions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/broker-<hash> -> target/<profile>/examples/stock_monitor
    let exe = std::env::current_exe().expect("exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile_dir.join("examples").join("stock_monitor")
}

fn run(dir: &std::path::Path) -> String {
    let out = Command::new(example_binary())
        .args(["--seconds", "1", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run the example (cargo test builds it)");
    assert!(
        out.status.success(),
        "example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// (consumer, topic/partition@offset) of every delivery printed.
fn deliveries(output: &str) -> BTreeSet<(String, String)> {
    output
        .lines()
        .filter(|l| l.contains('@') && l.starts_with('['))
        .filter_map(|l| {
            let who = l.split(']').next()?.trim_start_matches('[').to_string();
            let place = l.split_whitespace().nth(2)?.to_string();
            Some((who, place))
        })
        .collect()
}

#[test]
fn the_stock_monitor_runs_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = run(dir.path());
    for name in [
        "price-analyzer",
        "alert-generator",
        "news-aggregator",
        "sentiment-analyzer",
        "trade-processor",
        "order-verifier",
        "portfolio-manager",
    ] {
        assert!(
            first.contains(&format!("summary: {name}")),
            "{name} missing:\n{first}"
        );
    }
    assert!(first.contains("starting at offset 0"));
    let d1 = deliveries(&first);
    assert!(d1.len() > 10, "the first run delivered records:\n{first}");
    let second = run(dir.path());
    assert!(
        second
            .lines()
            .any(|l| l.contains("starting at offset") && !l.ends_with("offset 0")),
        "the second run resumes from committed positions:\n{second}"
    );
    let places =
        |d: &BTreeSet<(String, String)>| d.iter().map(|(_, p)| p.clone()).collect::<BTreeSet<_>>();
    let (p1, p2) = (places(&d1), places(&deliveries(&second)));
    // Within a group a record is delivered once: nothing from run one comes
    // again in run two (groups are compared by topic, each topic has one group).
    assert!(
        p1.is_disjoint(&p2),
        "records redelivered: {:?}",
        p1.intersection(&p2).collect::<Vec<_>>()
    );
}
