//! The descriptor and map budget: many logs under a tiny [`Handles`]
//! budget, evicted active segments that keep taking appends and survive an
//! unclean stop, and a failed close that poisons its log.

use std::path::Path;
use std::sync::Arc;
use std::thread;

use pubsub_storage::fault::{FaultFs, FaultPlan};
use pubsub_storage::fs::RealFs;
use pubsub_storage::{FlushPolicy, HandleLimits, Handles, Log, LogConfig};

use crate::common::{read_all, simple_batch};

/// Descriptors of this process open on files under `dir` (what the kernel
/// says, not what the budget counts).
fn open_fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Memory maps of this process of files under `dir`.
fn maps_under(dir: &Path) -> usize {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .expect("maps")
        .lines()
        .filter(|l| l.contains(dir.as_str()))
        .count()
}

fn open(dir: &Path, config: &LogConfig, handles: &Handles) -> Log {
    Log::open_budgeted(dir, config.clone(), Arc::new(RealFs), handles.clone())
        .expect("open")
        .0
}

fn values(log: &Log) -> Vec<String> {
    read_all(log)
        .into_iter()
        .map(|r| String::from_utf8(r.value.expect("value")).expect("utf8"))
        .collect()
}

#[test]
fn two_thousand_logs_are_written_and_read_under_a_budget_of_fifty_descriptors() {
    const LOGS: usize = 2000;
    const FDS: usize = 50;
    const MAPS: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = Handles::new(HandleLimits {
        descriptors: FDS,
        maps: MAPS,
    });
    let config = LogConfig::default();
    let within_budget = |when: &str| {
        let fds = open_fds_under(dir.path());
        let maps = maps_under(dir.path());
        assert!(fds <= FDS, "{when}: {fds} descriptors open");
        assert!(maps <= MAPS, "{when}: {maps} maps");
        let stats = handles.stats();
        assert_eq!(
            stats.descriptors, fds,
            "{when}: the budget counts what is open"
        );
        assert_eq!(stats.maps, maps, "{when}: the budget counts what is mapped");
    };
    let mut logs = Vec::with_capacity(LOGS);
    for i in 0..LOGS {
        let log = open(&dir.path().join(format!("p-{i}")), &config, &handles);
        log.append(&mut simple_batch(&format!("first{i}"), 2, 1_000))
            .expect("append");
        logs.push(log);
        if i % 250 == 0 {
            within_budget("while opening");
        }
    }
    within_budget("after opening");
    // Every log again: appends reopen evicted active segments, reads
    // reopen and remap what the appends of the others closed.
    for (i, log) in logs.iter().enumerate() {
        log.append(&mut simple_batch(&format!("second{i}"), 1, 2_000))
            .expect("append");
    }
    within_budget("after appending again");
    for (i, log) in logs.iter().enumerate().rev() {
        assert_eq!(
            values(log),
            [
                format!("first{i}-0"),
                format!("first{i}-1"),
                format!("second{i}-0")
            ],
            "log {i}"
        );
    }
    within_budget("after reading");
    assert!(handles.stats().evictions > LOGS as u64);

    // Idle logs cost nothing once the room is wanted.
    handles.set_limits(HandleLimits {
        descriptors: 0,
        maps: 0,
    });
    assert_eq!(open_fds_under(dir.path()), 0);
    assert_eq!(maps_under(dir.path()), 0);
    // ... and come back on use, with a clean close.
    handles.set_limits(HandleLimits {
        descriptors: FDS,
        maps: MAPS,
    });
    for log in &logs {
        log.close().expect("close");
    }
    within_budget("after closing");
    drop(logs);
    let log = open(&dir.path().join("p-1234"), &config, &handles);
    assert_eq!(values(&log), ["first1234-0", "first1234-1", "second1234-0"]);
}

#[test]
fn readers_racing_with_eviction_read_the_right_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two descriptors and two index maps for eight logs: nearly every
    // read and append closes something another thread may be using.
    let handles = Handles::new(HandleLimits {
        descriptors: 2,
        maps: 4,
    });
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    };
    let logs: Vec<Arc<Log>> = (0..8)
        .map(|i| Arc::new(open(&dir.path().join(format!("p-{i}")), &config, &handles)))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        for round in 0..40 {
            log.append(&mut simple_batch(&format!("log{i}-round{round}"), 3, 1_000))
                .expect("append");
        }
        assert!(log.segment_count() > 3, "several segments per log");
    }
    let threads: Vec<_> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let log = Arc::clone(log);
            thread::spawn(move || {
                for _ in 0..20 {
                    let got = values(&log);
                    let want: Vec<String> = (0..40)
                        .flat_map(|round| (0..3).map(move |k| format!("log{i}-round{round}-{k}")))
                        .collect();
                    assert_eq!(got, want, "log {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("reader");
    }
    assert!(handles.stats().evictions > 0);
}

#[test]
fn an_evicted_active_segment_takes_appends_and_survives_an_unclean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = Handles::new(HandleLimits {
        descriptors: 1,
        maps: 2,
    });
    // Small segments: rolls seal segments whose indexes the other log's
    // appends unmap before the fsync round syncs them.
    let config = LogConfig {
        flush: FlushPolicy::Always,
        segment_bytes: 400,
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    let a = open(&dir.path().join("a"), &config, &handles);
    let b = open(&dir.path().join("b"), &config, &handles);
    for round in 0..30 {
        // Each append evicts the other log's active segment file and maps.
        a.append(&mut simple_batch(&format!("a{round}"), 1, 1_000))
            .expect("append a");
        b.append(&mut simple_batch(&format!("b{round}"), 1, 1_000))
            .expect("append b");
    }
    assert!(handles.stats().evictions >= 58, "{:?}", handles.stats());
    assert!(a.segment_count() > 5 && b.segment_count() > 5);
    // No close: the next open recovers.
    drop(a);
    drop(b);
    for name in ["a", "b"] {
        // Every segment and index as written, sealed indexes complete.
        let report = pubsub_storage::check(&dir.path().join(name), &config).expect("check");
        for seg in &report.segments[..report.segments.len() - 1] {
            assert_eq!(seg.index_problem, None, "{name} {}", seg.base_offset);
            assert_eq!(seg.time_index_problem, None, "{name} {}", seg.base_offset);
            assert!(seg.invalid.is_none());
        }
    }
    for name in ["a", "b"] {
        let (log, report) = Log::open_budgeted(
            dir.path().join(name),
            config.clone(),
            Arc::new(RealFs),
            handles.clone(),
        )
        .expect("reopen");
        assert!(!report.clean_shutdown);
        assert!(report.is_clean(), "nothing torn: {report}");
        let want: Vec<String> = (0..30).map(|r| format!("{name}{r}-0")).collect();
        assert_eq!(values(&log), want);
    }
}

#[test]
fn a_failed_close_of_an_evicted_segment_poisons_its_log_before_anything_counts_as_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = Handles::new(HandleLimits {
        descriptors: 1,
        maps: 2,
    });
    let plan = FaultPlan::new();
    let fs = Arc::new(FaultFs::new(plan.clone()));
    let open_faulty = |name: &str| {
        Log::open_budgeted(
            dir.path().join(name),
            LogConfig::default(),
            fs.clone(),
            handles.clone(),
        )
        .expect("open")
        .0
    };
    let a = open_faulty("a");
    let info = a
        .append(&mut simple_batch("unsynced", 1, 1_000))
        .expect("append");
    // Closing a's descriptor (evicted for b) reports a failed writeback.
    plan.fail_closes(true);
    let b = open_faulty("b");
    b.append(&mut simple_batch("other", 1, 1_000))
        .expect("append b");
    plan.fail_closes(false);
    assert!(open_fds_under(&dir.path().join("a")) == 0, "a was evicted");

    // The fsync on a new descriptor succeeds, but the data written through
    // the old one may be lost: never acknowledged as durable.
    let waited = a.wait_durable(info.last_offset);
    assert!(waited.is_err(), "{waited:?}");
    assert!(a.durable_offset() <= info.base_offset);
    assert!(a.poisoned().is_some());
    assert!(a.append(&mut simple_batch("more", 1, 1_000)).is_err());
    // b was not touched by a's failure.
    b.wait_durable(0).expect("b durable");
    assert!(b.poisoned().is_none());
}
