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
    // The appends evicted already: count only what the reads evict.
    let before = handles.stats().evictions;
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
    // The readers really raced with eviction (each of the 8 logs' 20
    // passes reopens segments the others closed).
    let evicted = handles.stats().evictions - before;
    assert!(evicted > 8 * 20, "{evicted} evictions during the reads");
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

/// Keyed records `key-{k}` = `{round}.{k}` for the keys of `keys`.
fn keyed_batch(round: usize, keys: &[usize]) -> Vec<u8> {
    let keys: Vec<String> = keys.iter().map(|k| format!("key-{k}")).collect();
    let values: Vec<String> = keys.iter().map(|k| format!("{round}.{k}")).collect();
    let recs: Vec<crate::common::Spec<'_>> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| (Some(k.as_bytes()), Some(v.as_bytes()), round as i64))
        .collect();
    crate::common::batch_of(&recs, pubsub_records::Compression::None)
}

/// Reads the whole log once, through `read` (copying) or `read_range`
/// (file ranges), and checks that offsets only grow. Panics on any error.
fn read_through(log: &Log, ranges: bool) -> usize {
    let mut next = log.log_start_offset();
    let mut records = 0;
    let mut buf = Vec::new();
    loop {
        let end = log.log_end_offset();
        if next >= end {
            return records;
        }
        buf.clear();
        if ranges {
            let (_, _, range) = log
                .read_range(next, 300, true)
                .unwrap_or_else(|e| panic!("read_range at {next}: {e}"));
            match range {
                Some(r) => r.read_into(&mut buf).expect("read the range"),
                None => return records,
            }
        } else {
            log.read_into(next, 300, &mut buf)
                .unwrap_or_else(|e| panic!("read at {next}: {e}"));
        }
        let got = crate::common::records_in(&buf);
        let Some(last) = got.last() else {
            return records;
        };
        assert!(last.offset >= next, "read at {next} went back to {last:?}");
        records += got.iter().filter(|r| r.offset >= next).count();
        next = last.offset + 1;
    }
}

#[test]
fn readers_of_a_log_compacted_under_a_budget_of_one_never_miss_its_segments() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = Handles::new(HandleLimits {
        descriptors: 1,
        maps: 1,
    });
    let config = LogConfig {
        cleanup_policy: pubsub_storage::CleanupPolicy::Compact,
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    };
    let log = Arc::new(open(&dir.path().join("c"), &config, &handles));
    const ROUNDS: usize = 40;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let log = Arc::clone(&log);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut passes = 0u64;
                while !done.load(Ordering::Acquire) || passes == 0 {
                    read_through(&log, i == 1);
                    if i == 2 {
                        // Lookups by time load indexes of sealed segments too.
                        log.offset_for_timestamp(ROUNDS as i64 / 2)
                            .unwrap_or_else(|e| panic!("offset_for_timestamp: {e}"));
                        log.max_timestamp()
                            .unwrap_or_else(|e| panic!("max_timestamp: {e}"));
                        // Each batch once, in order.
                        let mut last = None;
                        log.for_each_batch_header(0, |h| {
                            let at = h.last_offset();
                            assert!(last < Some(at), "{at} after {last:?}");
                            last = Some(at);
                        })
                        .unwrap_or_else(|e| panic!("for_each_batch_header: {e}"));
                    }
                    passes += 1;
                }
                passes
            })
        })
        .collect();
    let mut rewritten = 0;
    let evictions_before = handles.stats().evictions;
    for round in 0..ROUNDS {
        for k in 0..4 {
            log.append(&mut keyed_batch(round, &[k * 3, k * 3 + 1, k * 3 + 2]))
                .expect("append");
        }
        rewritten += log.compact(0).expect("compact").groups_rewritten;
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
    assert!(rewritten > ROUNDS, "compaction rewrote {rewritten} groups");
    assert!(
        handles.stats().evictions > evictions_before,
        "{:?}",
        handles.stats()
    );
    // Every key reads as its latest value.
    let mut latest = std::collections::BTreeMap::new();
    for r in read_all(&log) {
        let key = String::from_utf8(r.key.expect("key")).expect("utf8");
        latest.insert(
            key,
            String::from_utf8(r.value.expect("value")).expect("utf8"),
        );
    }
    let want: std::collections::BTreeMap<String, String> = (0..12)
        .map(|k| (format!("key-{k}"), format!("{}.key-{k}", ROUNDS - 1)))
        .collect();
    assert_eq!(latest, want);
}

#[test]
fn a_reopen_that_finds_no_descriptor_fails_cleanly_and_never_poisons_but_a_failed_fsync_does() {
    use pubsub_storage::StorageError;
    let dir = tempfile::tempdir().expect("tempdir");
    const ROOM: HandleLimits = HandleLimits {
        descriptors: 8,
        maps: 8,
    };
    let handles = Handles::new(ROOM);
    let plan = FaultPlan::new();
    let fs = Arc::new(FaultFs::new(plan.clone()));
    let config = LogConfig {
        flush: FlushPolicy::Never,
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    let open_faulty = |name: &str| {
        Log::open_budgeted(
            dir.path().join(name),
            config.clone(),
            fs.clone(),
            handles.clone(),
        )
        .expect("open")
        .0
    };
    // Closes every idle file and map, as a budget under pressure does.
    let evict = || {
        handles.set_limits(HandleLimits {
            descriptors: 0,
            maps: 0,
        });
        handles.set_limits(ROOM);
        assert_eq!(handles.stats().descriptors, 0);
        assert_eq!(handles.stats().maps, 0);
    };
    let log = open_faulty("p");
    let seg = dir.path().join("p").join("00000000000000000000.log");
    let seg_len = || std::fs::metadata(&seg).expect("stat").len();
    let mut acked = vec!["first-0".to_string()];
    log.append(&mut simple_batch("first", 1, 1_000))
        .expect("append");
    let retriable = |what: &str, e: StorageError| {
        assert!(e.is_out_of_handles(), "{what}: {e}");
        assert!(e.is_storage_failure(), "{what}: KAFKA_STORAGE_ERROR");
        assert!(log.poisoned().is_none(), "{what} poisoned the log");
    };

    // An append that cannot reopen the evicted segment file, or map its
    // evicted indexes again, fails with nothing written.
    for suffix in [".log", ".index", ".timeindex"] {
        evict();
        plan.fail_opens_with(libc::EMFILE, suffix);
        let (end, len) = (log.log_end_offset(), seg_len());
        let e = log
            .append(&mut simple_batch("refused", 1, 2_000))
            .expect_err("append without a descriptor");
        retriable(suffix, e);
        assert_eq!((log.log_end_offset(), seg_len()), (end, len), "{suffix}");
        plan.fail_opens_with(0, "");
        log.append(&mut simple_batch(&format!("after{suffix}"), 1, 3_000))
            .expect("the next append works");
        acked.push(format!("after{suffix}-0"));
    }

    // An index that must grow in the middle of an append and cannot reopen
    // its file: the written batch is cut off again.
    let fresh = open_faulty("q");
    let q_seg = dir.path().join("q").join("00000000000000000000.log");
    fresh
        .append(&mut simple_batch("q-first", 1, 1_000))
        .expect("append");
    let len = std::fs::metadata(&q_seg).expect("stat").len();
    plan.fail_opens_with(libc::EMFILE, ".index");
    let e = fresh
        .append(&mut simple_batch("q-refused", 1, 2_000))
        .expect_err("the index cannot grow");
    assert!(e.is_out_of_handles(), "{e}");
    assert!(fresh.poisoned().is_none());
    assert_eq!(std::fs::metadata(&q_seg).expect("stat").len(), len);
    assert_eq!(fresh.log_end_offset(), 1);
    plan.fail_opens_with(0, "");
    fresh
        .append(&mut simple_batch("q-second", 1, 3_000))
        .expect("append");
    assert_eq!(values(&fresh), ["q-first-0", "q-second-0"]);

    // An fsync round that cannot reopen the file syncs nothing and counts
    // nothing as durable; the next round does it.
    let durable = log.durable_offset();
    assert!(durable < log.log_end_offset());
    evict();
    plan.fail_opens_with(libc::EMFILE, ".log");
    let syncs = plan.syncs();
    retriable("fsync round", log.flush().expect_err("flush"));
    assert_eq!(log.durable_offset(), durable);
    assert_eq!(plan.syncs(), syncs);
    // A read too: an error, not "out of range", and nothing poisoned.
    retriable("read", log.read(0, 1 << 20).expect_err("read"));
    plan.fail_opens_with(0, "");
    log.flush().expect("the next round works");
    assert_eq!(log.durable_offset(), log.log_end_offset());
    assert_eq!(values(&log), acked);

    // A failed fsync (EIO) still poisons.
    log.append(&mut simple_batch("unsynced", 1, 4_000))
        .expect("append");
    plan.fail_syncs(true);
    let e = log.flush().expect_err("fsync fails");
    assert!(!e.is_out_of_handles(), "{e}");
    assert!(log.poisoned().is_some());
    plan.fail_syncs(false);
    drop(log);
    let (log, _) = Log::open_budgeted(
        dir.path().join("p"),
        config.clone(),
        Arc::new(RealFs),
        handles.clone(),
    )
    .expect("reopen");
    let after = values(&log);
    assert_eq!(after[..acked.len()], acked[..]);
}
