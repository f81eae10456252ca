//! Prints the benchmark figures from `target/criterion` as a table, each
//! measurement next to the baseline of its group and their ratio.
//!
//! `cargo bench -p pubsub-benches && cargo run -p pubsub-benches --bin bench-report`

use std::path::{Path, PathBuf};

use serde_json::Value;

/// (group, measurement, baseline in the same group)
const PAIRS: &[(&str, &str, &str)] = &[
    ("append_16KiB", "log", "raw_write"),
    ("append_16KiB", "log_trusted", "raw_write"),
    ("append_1MiB", "log", "raw_write"),
    ("append_1MiB", "log_trusted", "raw_write"),
    ("append_fsync_16KiB", "log", "raw_write_fdatasync"),
    ("append_fsync_1MiB", "log", "raw_write_fdatasync"),
    ("read_1GiB", "log", "raw_read"),
    (
        "recovery_1GiB",
        "rp_one_segment_behind",
        "raw_read_scanned_bytes",
    ),
    ("produce_100B", "embedded", "storage_append"),
    ("produce_1KiB", "embedded", "storage_append"),
    ("consume_100B", "embedded", "storage_read"),
    ("consume_1KiB", "embedded", "storage_read"),
];

const SINGLES: &[(&str, &str)] = &[
    ("lookup_1GiB", "offset"),
    ("lookup_1GiB", "timestamp"),
    ("recovery_1GiB_full", "rp_zero"),
    ("open_clean", "1000_segments"),
];

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Mean time in ns and bytes per iteration, if any.
fn load(root: &Path, group: &str, name: &str) -> Option<(f64, Option<f64>)> {
    let dir = root.join(group).join(name).join("new");
    let est = read_json(&dir.join("estimates.json"))?;
    let mean = est["mean"]["point_estimate"].as_f64()?;
    let bench = read_json(&dir.join("benchmark.json"))?;
    let bytes = bench["throughput"]["Bytes"].as_f64();
    Some((mean, bytes))
}

fn fmt_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn fmt(m: (f64, Option<f64>)) -> String {
    match m.1 {
        Some(bytes) => format!("{:.0} MB/s ({})", bytes / m.0 * 1e3, fmt_time(m.0)),
        None => fmt_time(m.0),
    }
}

fn main() {
    let root: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    println!("| benchmark | pubsub | baseline | ratio |");
    println!("|---|---|---|---|");
    for (group, ours, base) in PAIRS {
        match (load(&root, group, ours), load(&root, group, base)) {
            (Some(a), Some(b)) => println!(
                "| {group}/{ours} | {} | {base}: {} | {:.2}x |",
                fmt(a),
                fmt(b),
                b.0 / a.0
            ),
            _ => println!("| {group}/{ours} | not run | | |"),
        }
    }
    for case in ["acks1_linger0", "acks1_linger5ms", "acksall_linger0"] {
        let path = root.join("e2e_latency").join(case).join("summary.json");
        match read_json(&path) {
            Some(v) => println!(
                "| e2e_latency/{case} (1 KiB, {} msg/s, 1 partition) | p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms | | |",
                v["rate"], v["p50_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"]
            ),
            None => println!("| e2e_latency/{case} | not run | | |"),
        }
    }
    for (group, name) in SINGLES {
        match load(&root, group, name) {
            Some(m) => println!("| {group}/{name} | {} | | |", fmt(m)),
            None => println!("| {group}/{name} | not run | | |"),
        }
    }
}
