//! Failed writes and fsyncs: the failing append is not acknowledged; after a
//! failed fsync the log refuses writes until reopened, and reopening keeps
//! every acknowledged batch; after a write that ran out of space (ENOSPC) the
//! log undoes it and takes writes again as soon as space returns.

use std::sync::Arc;

use pubsub_storage::fault::{FaultFs, FaultPlan};
use pubsub_storage::{FlushPolicy, Log, LogConfig, StorageError};

use crate::common::*;

fn open_faulty(dir: &std::path::Path, config: LogConfig) -> (Log, Arc<FaultPlan>) {
    let plan = FaultPlan::new();
    let (log, _) = Log::open_with(dir, config, Arc::new(FaultFs::new(plan.clone()))).expect("open");
    (log, plan)
}

#[test]
fn a_failed_fsync_poisons_the_log_and_nothing_unsynced_is_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush: FlushPolicy::Always,
        ..small_config()
    };
    let (log, plan) = open_faulty(dir.path(), config.clone());
    let mut acked = Vec::new();
    for i in 0..10 {
        let info = log.append(&mut simple_batch("ok", 2, i)).expect("append");
        acked.push(info.base_offset);
    }
    plan.fail_syncs(true);
    let err = log
        .append(&mut simple_batch("lost", 2, 99))
        .expect_err("fsync fails");
    assert!(matches!(err, StorageError::Io { op: "fsync", .. }), "{err}");
    assert!(log.poisoned().is_some());
    // Even with the disk healthy again, writes are refused until reopened:
    // the kernel may have dropped the pages it failed to write.
    plan.fail_syncs(false);
    assert!(matches!(
        log.append(&mut simple_batch("later", 1, 100)),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(log.flush(), Err(StorageError::Poisoned { .. })));
    assert!(log.close().is_err(), "a poisoned log is not closed cleanly");
    // Reads still work.
    assert_eq!(read_all(&log).len(), 22);
    drop(log);

    assert!(!dir.path().join(pubsub_storage::CLEAN_SHUTDOWN).exists());
    let (log, report) = Log::open(dir.path(), config).expect("reopen");
    assert!(!report.clean_shutdown);
    let all = read_all(&log);
    for base in acked {
        assert!(all.iter().any(|r| r.offset == base), "acked {base} lost");
    }
    log.append(&mut simple_batch("again", 1, 1))
        .expect("writable after reopen");
}

fn is_enospc(err: &StorageError) -> bool {
    matches!(err, StorageError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
}

/// The log's directory checks clean once closed: every batch valid, both
/// indexes of every segment exactly what the log would build.
fn assert_checks_clean(log: Log, dir: &std::path::Path, config: &LogConfig) {
    log.close().expect("close");
    drop(log);
    let report = pubsub_storage::check(dir, config).expect("check");
    for seg in &report.segments {
        assert_eq!(seg.size, seg.valid_bytes, "{report}");
        assert!(seg.invalid.is_none(), "{report}");
        assert!(seg.index_problem.is_none(), "{report}");
        assert!(seg.time_index_problem.is_none(), "{report}");
    }
    assert!(report.leftover_files.is_empty(), "{report}");
}

fn active_file_len(log: &Log) -> u64 {
    let active = log.segments().last().copied().expect("a segment");
    std::fs::metadata(log.dir().join(format!("{:020}.log", active.base_offset)))
        .expect("segment file")
        .len()
}

#[test]
fn a_full_disk_fails_the_append_cuts_the_partial_batch_and_heals_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    for i in 0..5 {
        log.append(&mut simple_batch("ok", 3, i)).expect("append");
    }
    let size = log.size_bytes();
    plan.limit_writes(40); // the next batch gets 40 bytes in, then ENOSPC
    let err = log
        .append(&mut simple_batch("partial", 3, 9))
        .expect_err("disk full");
    assert!(
        matches!(&err, StorageError::Io { op: "write", .. }) && is_enospc(&err),
        "{err}"
    );
    assert!(err.is_out_of_space() && err.is_storage_failure());
    assert_eq!(log.log_end_offset(), 15, "the failed batch got no offsets");
    assert_eq!(log.size_bytes(), size);
    assert_eq!(active_file_len(&log), size, "the partial batch is cut");
    assert!(log.poisoned().is_none(), "a full disk does not poison");
    assert!(log.out_of_space().is_some());
    // Still full: the next write fails the same way, and is cut too.
    let err = log
        .append(&mut simple_batch("x", 1, 1))
        .expect_err("still full");
    assert!(is_enospc(&err), "{err}");
    assert_eq!(active_file_len(&log), size);
    assert_eq!(read_all(&log).len(), 15, "readers never see partial bytes");

    // Space returns: the periodic checkpoint finds it (the log need not
    // wait for a producer to try), and the same log takes writes, no reopen.
    plan.unlimited_writes();
    log.checkpoint().expect("checkpoint");
    assert!(log.out_of_space().is_none());
    let info = log
        .append(&mut simple_batch("again", 2, 10))
        .expect("writable once space returns");
    assert_eq!(info.base_offset, 15);
    assert!(log.out_of_space().is_none());
    log.flush().expect("flush");
    let all = read_all(&log);
    assert_eq!(all.len(), 17);
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..17).collect::<Vec<_>>()
    );
    assert_checks_clean(log, dir.path(), &small_config());
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.truncation.is_none(), "{report}");
    assert_eq!(read_all(&log).len(), 17);
}

#[test]
fn an_append_of_several_batches_that_runs_out_of_space_is_undone_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    log.append(&mut simple_batch("first", 2, 1))
        .expect("append");
    let size = log.size_bytes();
    let mut two = simple_batch("a", 2, 2);
    let one_len = two.len();
    two.extend(simple_batch("b", 2, 3));
    plan.limit_writes(one_len as u64 + 5); // the first batch fits, the second not
    let err = log.append(&mut two).expect_err("disk full");
    assert!(is_enospc(&err), "{err}");
    assert_eq!(log.log_end_offset(), 2, "neither batch got offsets");
    assert_eq!(active_file_len(&log), size);
    assert_eq!(read_all(&log).len(), 2);
    plan.unlimited_writes();
    let mut two = simple_batch("a", 2, 2);
    two.extend(simple_batch("b", 2, 3));
    let info = log.append(&mut two).expect("append once space returns");
    assert_eq!((info.base_offset, info.last_offset), (2, 5));
    assert_checks_clean(log, dir.path(), &small_config());
}

#[test]
fn a_failed_fsync_at_roll_poisons_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    // Fill the first segment, then make fsyncs fail: the roll must fsync the
    // sealed segment (and the directory), and that failure is an error.
    let mut n = 0;
    let err = loop {
        if log.size_bytes() > 900 {
            plan.fail_syncs(true);
        }
        match log.append(&mut simple_batch("fill", 4, n)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000, "never rolled");
    };
    assert!(matches!(err, StorageError::Io { op: "fsync", .. }), "{err}");
    assert_eq!(log.segments().len(), 2);
    assert!(log.poisoned().is_some());
}

#[test]
fn a_failed_checkpoint_write_leaves_the_old_one_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    for i in 0..30 {
        log.append(&mut simple_batch("c", 2, i)).expect("append");
    }
    let cp_path = dir.path().join(pubsub_storage::RECOVERY_CHECKPOINT);
    let old = std::fs::read(&cp_path).expect("cp");
    // Crash in the middle of the checkpoint protocol (after the temp file).
    log.append(&mut simple_batch("c", 1, 1)).expect("append");
    log.flush().expect("flush");
    plan.crash_after(2);
    assert!(log.checkpoint().is_err());
    assert_eq!(
        std::fs::read(&cp_path).expect("cp"),
        old,
        "old checkpoint untouched"
    );
    drop(log);
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(
        report.removed_files.iter().any(|f| f.ends_with(".tmp")),
        "{report}"
    );
    assert_eq!(log.log_end_offset(), 61);
}

#[test]
fn an_index_that_cannot_grow_fails_the_append_cleanly_and_heals() {
    // Index files grow by writing zeros, so a full disk is an error here, not
    // a SIGBUS on a store into an unallocated mapped page.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    let mut first = simple_batch("first-batch-bigger-than-the-interval", 4, 1);
    assert!(first.len() > 128);
    log.append(&mut first).expect("append");
    let size = log.size_bytes();
    // The next batch needs the first index entry, and the index file is
    // empty: the batch is written, then growing the index fails.
    let mut second = simple_batch("second", 1, 2);
    plan.limit_writes(second.len() as u64 + 10);
    let err = log
        .append(&mut second)
        .expect_err("index growth hits ENOSPC");
    assert!(
        matches!(err, StorageError::Io { op: "extend", .. }),
        "{err}"
    );
    assert!(err.is_out_of_space());
    assert!(log.poisoned().is_none());
    assert!(log.out_of_space().is_some());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(active_file_len(&log), size, "the written batch is cut");
    let index_len = std::fs::metadata(dir.path().join(format!("{:020}.index", 0)))
        .expect("index")
        .len();
    assert_eq!(index_len, 0, "the half-grown index is given back");

    plan.unlimited_writes();
    let mut third = simple_batch("third", 1, 3);
    let info = log.append(&mut third).expect("writable once space returns");
    assert_eq!(info.base_offset, 4);
    let got = read_all(&log);
    assert_eq!(got[..4], records_in(&first)[..], "the acknowledged batch");
    assert_eq!(got.len(), 5);
    assert_checks_clean(log, dir.path(), &small_config());
}

#[test]
fn a_batch_that_fits_while_its_index_cannot_grow_is_one_episode_not_a_flap() {
    // Each failing append writes its batch (it fits), then cannot grow the
    // index: the log has not found space, so it must not say so in between.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    let mut first = simple_batch("first-batch-bigger-than-the-interval", 4, 1);
    assert!(first.len() > 128);
    log.append(&mut first).expect("append");
    let size = log.size_bytes();
    for attempt in 0..3 {
        let mut second = simple_batch("second", 1, 2);
        plan.limit_writes(second.len() as u64 + 10);
        let err = log
            .append(&mut second)
            .expect_err("index growth hits ENOSPC");
        assert!(
            matches!(err, StorageError::Io { op: "extend", .. }),
            "{err}"
        );
        assert!(log.out_of_space().is_some());
        assert_eq!(log.out_of_space_episodes(), 1, "attempt {attempt}");
        assert_eq!(active_file_len(&log), size);
    }
    plan.unlimited_writes();
    log.append(&mut simple_batch("second", 1, 2))
        .expect("writable once space returns");
    assert!(log.out_of_space().is_none());
    assert_eq!(log.out_of_space_episodes(), 1);
    // A new episode counts anew.
    plan.limit_writes(0);
    log.append(&mut simple_batch("third", 1, 3))
        .expect_err("full again");
    assert_eq!(log.out_of_space_episodes(), 2);
}

#[test]
fn a_checkpoint_that_fits_clears_health_quietly_and_does_not_end_the_episode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    log.append(&mut simple_batch("a", 2, 1)).expect("append");
    let long = "x".repeat(60);
    plan.limit_writes(0);
    log.append(&mut simple_batch(&long, 8, 2))
        .expect_err("full");
    assert!(log.out_of_space().is_some());
    assert_eq!(log.out_of_space_episodes(), 1);
    // Room for a checkpoint (a few dozen bytes), not for a batch.
    for round in 0..3 {
        plan.limit_writes(200);
        log.checkpoint().expect("a checkpoint fits");
        assert!(
            log.out_of_space().is_none(),
            "round {round}: /health clears"
        );
        log.append(&mut simple_batch(&long, 8, 2))
            .expect_err("the batch does not fit");
        assert!(log.out_of_space().is_some(), "round {round}");
        assert_eq!(
            log.out_of_space_episodes(),
            1,
            "round {round}: still the first episode, not warned again"
        );
    }
    plan.unlimited_writes();
    log.append(&mut simple_batch(&long, 8, 2))
        .expect("space returns");
    assert!(log.out_of_space().is_none());
    plan.limit_writes(0);
    log.append(&mut simple_batch(&long, 8, 3))
        .expect_err("full again");
    assert_eq!(log.out_of_space_episodes(), 2, "a new episode");
    plan.unlimited_writes();
    assert_checks_clean(log, dir.path(), &small_config());
}

#[test]
fn the_append_that_heals_is_acknowledged_only_once_everything_written_is_durable() {
    // A file system that reports a write error late (NFS: at the fsync) may
    // have lost what was written before the disk filled.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    for i in 0..3 {
        log.append(&mut simple_batch("before", 2, i))
            .expect("append");
    }
    assert!(log.durable_offset() < 6, "flush=never: nothing fsynced yet");
    plan.limit_writes(0);
    log.append(&mut simple_batch("full", 2, 9))
        .expect_err("full");
    plan.unlimited_writes();
    plan.fail_syncs(true);
    let err = log
        .append(&mut simple_batch("heal", 2, 10))
        .expect_err("the fsync reports the lost writes");
    assert!(matches!(err, StorageError::Io { op: "fsync", .. }), "{err}");
    assert!(log.poisoned().is_some());
    drop(log);

    // With a sound disk, the healing append is durable with all before it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    for i in 0..3 {
        log.append(&mut simple_batch("before", 2, i))
            .expect("append");
    }
    plan.limit_writes(0);
    log.append(&mut simple_batch("full", 2, 9))
        .expect_err("full");
    plan.unlimited_writes();
    log.append(&mut simple_batch("heal", 2, 10))
        .expect("space returned");
    assert_eq!(log.durable_offset(), 8);
    log.append(&mut simple_batch("after", 2, 11))
        .expect("append");
    assert_eq!(log.durable_offset(), 8, "later appends are not fsynced");
}

#[test]
fn retention_whose_roll_finds_no_space_still_deletes_the_expired_sealed_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: Some(1000),
        ..small_config()
    };
    let (log, plan) = open_faulty(dir.path(), config.clone());
    for i in 0..30 {
        log.append(&mut simple_batch("old", 3, i)).expect("append");
    }
    let before = log.segments();
    assert!(before.len() >= 3, "{before:?}");
    let active = *before.last().expect("active");
    let end = log.log_end_offset();
    // Everything expired, but the roll that would let the active segment go
    // cannot create the new one.
    plan.limit_creates(0);
    let report = log
        .apply_retention(1_000_000)
        .expect("the sealed segments go");
    assert_eq!(
        report.deleted_segments,
        before[..before.len() - 1]
            .iter()
            .map(|s| s.base_offset)
            .collect::<Vec<_>>()
    );
    assert_eq!(log.segments(), vec![active], "the active one stays");
    assert_eq!(log.log_start_offset(), active.base_offset);
    assert!(log.poisoned().is_none());
    assert!(log.out_of_space().is_some());
    // With space, the next round takes the active segment too, and the log
    // takes writes.
    plan.unlimited_creates();
    let report = log.apply_retention(1_000_000).expect("retention");
    assert_eq!(report.deleted_segments, vec![active.base_offset]);
    assert_eq!(log.log_start_offset(), end);
    let info = log
        .append(&mut simple_batch("new", 1, 2_000_000))
        .expect("append");
    assert_eq!(info.base_offset, end);
    assert!(log.out_of_space().is_none());
    assert_checks_clean(log, dir.path(), &config);
}

#[test]
fn an_append_that_runs_out_of_space_during_a_group_commit_leaves_the_waiter_and_its_data_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    let log = Arc::new(log);
    let mut acked = Vec::new();
    let mut last = 0;
    for i in 0..3 {
        let mut b = simple_batch("durable", 2, i);
        last = log.append(&mut b).expect("append").last_offset;
        acked.extend(records_in(&b));
    }
    // A waiter's fsync is in flight when another append finds no space and
    // cuts its partial batch off the same file.
    plan.hold_syncs();
    let waiter = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.wait_durable(last))
    };
    while plan.syncs_waiting() == 0 {
        std::thread::yield_now();
    }
    plan.limit_writes(30);
    let err = log
        .append(&mut simple_batch("refused", 4, 9))
        .expect_err("full");
    assert!(is_enospc(&err), "{err}");
    plan.unlimited_writes();
    plan.release_syncs();
    waiter
        .join()
        .expect("waiter thread")
        .expect("the waiter's data is durable");
    assert!(log.durable_offset() > last);
    assert!(log.poisoned().is_none());
    let mut b = simple_batch("after", 1, 10);
    log.append(&mut b).expect("space returned");
    acked.extend(records_in(&b));
    drop(log);

    // A crash now (no clean close): everything acknowledged is there, at its
    // offset, and nothing of the refused batch.
    let (log, _) = Log::open(dir.path(), small_config()).expect("reopen");
    let got = read_all(&log);
    assert_eq!(got.len(), acked.len());
    for (i, (g, a)) in got.iter().zip(&acked).enumerate() {
        assert_eq!(g.offset, i as u64);
        assert_eq!(g.value, a.value);
    }
}

#[test]
fn a_roll_that_cannot_create_the_new_segment_leaves_the_old_one_active_and_heals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config();
    let (log, plan) = open_faulty(dir.path(), config.clone());
    let mut n = 0;
    while log.size_bytes() + 200 < config.segment_bytes {
        log.append(&mut simple_batch("fill", 2, n)).expect("append");
        n += 1;
    }
    let before = log.segments();
    let end = log.log_end_offset();
    let files = |d: &std::path::Path| {
        let mut f: Vec<String> = std::fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    let listing = files(dir.path());
    // 0: the new .log cannot be created; 1: it can, its .index not.
    for creates in [0, 1] {
        plan.limit_creates(creates);
        let err = log
            .append(&mut simple_batch("roll", 8, 100))
            .expect_err("the roll fails");
        assert!(is_enospc(&err), "{err}");
        assert!(err.is_out_of_space(), "{err}");
        assert!(log.poisoned().is_none());
        assert!(log.out_of_space().is_some());
        assert_eq!(log.segments(), before, "the old segment stays active");
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(files(dir.path()), listing, "nothing half-created is left");
    }
    plan.unlimited_creates();
    let info = log
        .append(&mut simple_batch("roll", 8, 100))
        .expect("rolls once space returns");
    assert_eq!(info.base_offset, end);
    assert_eq!(log.segments().len(), before.len() + 1);
    assert!(log.out_of_space().is_none());
    assert_eq!(read_all(&log).len() as u64, end + 8);
    assert_checks_clean(log, dir.path(), &config);
}

#[test]
fn a_seal_whose_trim_finds_no_space_leaves_the_active_segment_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config();
    let (log, plan) = open_faulty(dir.path(), config.clone());
    let mut n = 0;
    while log.size_bytes() + 200 < config.segment_bytes {
        log.append(&mut simple_batch("fill", 2, n)).expect("append");
        n += 1;
    }
    let before = log.segments();
    // The seal adds its time entry, then cannot trim the index files.
    plan.fail_shrinks_with(libc::ENOSPC);
    let err = log
        .append(&mut simple_batch("roll", 8, 100))
        .expect_err("the roll fails");
    assert!(matches!(err, StorageError::Io { op: "trim", .. }), "{err}");
    assert!(err.is_out_of_space());
    assert!(log.poisoned().is_none());
    assert_eq!(log.segments(), before, "the old segment stays active");
    plan.fail_shrinks_with(0);
    // A batch more in the old segment (a later timestamp), then the roll: an
    // entry the failed seal left behind would not be where the log puts it.
    log.append(&mut simple_batch("s", 1, 200))
        .expect("fits in the old segment");
    assert_eq!(log.segments().len(), before.len());
    log.append(&mut simple_batch("roll", 8, 300))
        .expect("rolls once space returns");
    assert_eq!(log.segments().len(), before.len() + 1);
    assert_checks_clean(log, dir.path(), &config);
}

#[test]
fn a_checkpoint_that_finds_no_space_does_not_poison_and_is_written_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    for i in 0..3 {
        log.append(&mut simple_batch("c", 2, i)).expect("append");
    }
    let cp_path = dir.path().join(pubsub_storage::RECOVERY_CHECKPOINT);
    let old = std::fs::read(&cp_path).expect("cp");
    plan.limit_writes(0);
    let err = log.checkpoint().expect_err("no space for the checkpoint");
    assert!(err.is_out_of_space(), "{err}");
    assert!(log.poisoned().is_none());
    assert!(log.out_of_space().is_some());
    assert_eq!(std::fs::read(&cp_path).expect("cp"), old, "old one intact");
    assert!(
        !std::fs::read_dir(dir.path()).expect("dir").any(|e| e
            .expect("entry")
            .path()
            .extension()
            .is_some_and(|x| x == "tmp")),
        "the partial temp file is removed"
    );
    plan.unlimited_writes();
    log.checkpoint().expect("checkpoint once space returns");
    assert!(log.out_of_space().is_none());
    assert_eq!(log.recovery_point(), 6);
    assert_ne!(std::fs::read(&cp_path).expect("cp"), old);
    log.append(&mut simple_batch("after", 1, 9))
        .expect("append");
}

#[test]
fn a_roll_whose_checkpoint_finds_no_space_still_acknowledges_the_durable_data() {
    // The roll fsyncs the sealed segment and then moves the recovery point:
    // the data is on disk, so a checkpoint without space fails nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush: FlushPolicy::Always,
        ..small_config()
    };
    let (log, plan) = open_faulty(dir.path(), config.clone());
    let mut n = 0;
    while log.size_bytes() + 200 < config.segment_bytes {
        log.append(&mut simple_batch("fill", 2, n)).expect("append");
        n += 1;
    }
    let end = log.log_end_offset();
    plan.limit_creates(3); // the new segment's three files, not the checkpoint's temp file
    let info = log
        .append(&mut simple_batch("roll", 8, 100))
        .expect("acknowledged: durable, only the recovery point lags");
    assert_eq!(info.base_offset, end);
    assert_eq!(log.durable_offset(), end + 8);
    assert!(log.poisoned().is_none());
    assert!(log.recovery_point() < end + 8);
    // The disk is full (the checkpoint's file could not be created), and the
    // log says so although the append was acknowledged.
    assert!(log.out_of_space().is_some());
    assert_eq!(log.out_of_space_episodes(), 1);
    plan.unlimited_creates();
    log.checkpoint().expect("checkpoint");
    assert_eq!(log.recovery_point(), end + 8);
    assert!(log.out_of_space().is_none());
}

#[test]
fn an_fsync_that_reports_enospc_poisons_the_log_through_flush_and_checkpoint() {
    // Writeback of pages the kernel had accepted found no space: they may be
    // gone, whatever the errno says, so the log does not heal.
    type Step = fn(&Log) -> pubsub_storage::Result<()>;
    let steps: [(&str, Step); 2] = [("flush", Log::flush), ("checkpoint", Log::checkpoint)];
    for (name, step) in steps {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, plan) = open_faulty(dir.path(), small_config());
        for i in 0..3 {
            log.append(&mut simple_batch("s", 2, i)).expect("append");
        }
        plan.fail_syncs_with(libc::ENOSPC);
        let err = step(&log).expect_err("the fsync fails");
        assert!(
            matches!(&err, StorageError::Io { op: "fsync", .. }) && is_enospc(&err),
            "{name}: {err}"
        );
        assert!(log.poisoned().is_some(), "{name}");
        assert!(log.out_of_space().is_none(), "{name}: not a heal");
        plan.fail_syncs(false);
        assert!(
            matches!(
                log.append(&mut simple_batch("later", 1, 9)),
                Err(StorageError::Poisoned { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn only_the_listed_operations_that_run_out_of_space_heal() {
    let enospc = || std::io::Error::from_raw_os_error(libc::ENOSPC);
    let edquot = || std::io::Error::from_raw_os_error(libc::EDQUOT);
    for op in pubsub_storage::SPACE_OPS {
        assert!(pubsub_storage::is_out_of_space_io(op, &enospc()), "{op}");
        assert!(pubsub_storage::is_out_of_space_io(op, &edquot()), "{op}");
        assert!(!pubsub_storage::is_out_of_space_io(
            op,
            &std::io::Error::from_raw_os_error(libc::EIO)
        ));
    }
    // Writeback of pages the kernel had accepted failed: they may be gone,
    // whatever the errno says. So for a sync under any name, including one
    // nobody has written yet.
    for op in [
        "fsync",
        "fsync directory",
        "msync",
        "fdatasync",
        "sync range",
        "truncate",
    ] {
        assert!(!pubsub_storage::is_out_of_space_io(op, &enospc()), "{op}");
        let err = StorageError::Io {
            op,
            path: "x".into(),
            source: enospc(),
        };
        assert!(!err.is_out_of_space(), "{op}");
        assert!(err.is_storage_failure());
    }
}

#[test]
fn an_index_that_cannot_grow_mid_append_gives_back_the_entries_of_the_earlier_batches() {
    // An entry for every batch (interval 1): the time index (12-byte
    // entries) is first grown to 682 entries, and the append below needs its
    // 682nd and 683rd, so its first batch is indexed and its second needs
    // the index to grow, which the full disk refuses.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 1,
        max_index_bytes: 64 << 10,
        ..small_config()
    };
    let (log, plan) = open_faulty(dir.path(), config.clone());
    for i in 0..682 {
        log.append(&mut simple_batch("x", 1, i)).expect("append");
    }
    let size = log.size_bytes();
    let mut three = simple_batch("a", 1, 1000);
    three.extend(simple_batch("b", 1, 1001));
    three.extend(simple_batch("c", 1, 1002));
    plan.limit_writes(three.len() as u64 + 100);
    let err = log
        .append(&mut three)
        .expect_err("the time index cannot grow");
    assert!(
        matches!(err, StorageError::Io { op: "extend", .. }),
        "{err}"
    );
    assert!(log.poisoned().is_none());
    assert_eq!(log.log_end_offset(), 682);
    assert_eq!(active_file_len(&log), size);

    // Space returns; batches of other sizes land where the failed ones were
    // cut: entries left behind by the failed append would point at the
    // wrong bytes, and the check below would find them.
    plan.unlimited_writes();
    for i in 0..3 {
        let mut b = simple_batch("longer-than-before", 2, 2000 + i);
        log.append(&mut b).expect("append once space returns");
    }
    assert_eq!(log.log_end_offset(), 688);
    assert_eq!(read_all(&log).len(), 688);
    assert_checks_clean(log, dir.path(), &config);
}
