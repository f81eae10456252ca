//! `pubsub serve` under the open-files limit a shell gives (1024): the soft
//! limit is raised to the hard one (and logged), and with the hard limit at
//! 1024 too, thousands of partitions are written and read through a budget
//! of open segment files, with descriptors kept for connections.

use crate::client::{create_topic, produce, Client};
use crate::daemon::{Daemon, Options};
use crate::kafka::{batch, fetch_all};
use crate::metrics::{scrape, value};

/// The soft and hard RLIMIT_NOFILE of process `pid`, from /proc.
fn open_files_limits(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().expect("soft").to_string(),
        fields.next().expect("hard").to_string(),
    )
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_raises_the_soft_open_files_limit_to_the_hard_one_and_logs_both() {
    let (_, hard) = pubsub_storage::handles::nofile_limits().expect("limits");
    if hard <= 1024 {
        eprintln!("skipped: the hard open-files limit here is {hard}, nothing to raise 1024 to");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let hard = hard as u64;
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        Options {
            open_files: Some((1024, hard)),
            ..Options::default()
        },
    );
    let (soft_now, hard_now) = open_files_limits(daemon.pid());
    assert_eq!(soft_now, hard_now, "soft raised to hard");
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("raised the open-files limit")
            && stderr.contains("soft_before=1024")
            && stderr.contains(&format!("soft={hard}"))
            && stderr.contains(&format!("hard={hard}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("storage budget of open files and maps"),
        "{stderr}"
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_partitions_are_written_and_read_with_an_open_files_limit_of_1024() {
    const TOPICS: usize = 30;
    const PARTITIONS: usize = 100;
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        Options {
            open_files: Some((1024, 1024)),
            metrics: true,
            ..Options::default()
        },
    );
    let metrics = daemon.metrics.expect("metrics");
    let budget = value(&scrape(metrics).await, "pubsub_storage_descriptor_budget");
    assert!(
        budget > 0.0 && budget <= 512.0,
        "half of 1024 at most: {budget}"
    );

    let mut c = Client::connect(daemon.addr).await;
    for t in 0..TOPICS {
        let topic = format!("many-{t}");
        create_topic(&mut c, &topic, PARTITIONS as i32, &[]).await;
        for p in 0..PARTITIONS {
            let values = vec![format!("{topic}/{p}")];
            let r = produce(&mut c, &topic, p as i32, 1, batch(&values)).await;
            assert_eq!(
                r.error_code, 0,
                "produce {topic}/{p}: {:?}",
                r.error_message
            );
        }
    }
    // Every partition read back, oldest first: each read reopens files the
    // later partitions' writes closed.
    for t in 0..TOPICS {
        let topic = format!("many-{t}");
        for p in 0..PARTITIONS {
            let got = fetch_all(&mut c, &topic, p as i32).await;
            assert_eq!(got, vec![(0, format!("{topic}/{p}"))], "{topic}/{p}");
        }
    }
    // More connections still get in while storage is at its budget.
    let mut others = Vec::new();
    for _ in 0..50 {
        others.push(Client::connect(daemon.addr).await);
    }
    let got = fetch_all(&mut others[49], "many-0", 0).await;
    assert_eq!(got, vec![(0, "many-0/0".to_string())]);

    let m = scrape(metrics).await;
    let open = value(&m, "pubsub_storage_open_descriptors");
    let maps = value(&m, "pubsub_storage_index_maps");
    assert!(open <= budget, "{open} segment files open, budget {budget}");
    assert!(
        maps <= value(&m, "pubsub_storage_map_budget"),
        "{maps} maps"
    );
    assert!(value(&m, "pubsub_storage_evictions_total") > 0.0);
    assert_eq!(value(&m, "pubsub_partitions_poisoned"), 0.0);
    assert!(open_fds(daemon.pid()) < 1024);
    drop(others);
    drop(c);
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
}
