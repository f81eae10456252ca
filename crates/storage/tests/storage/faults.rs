//! Failed writes and fsyncs: the failing append is not acknowledged, the log
//! refuses writes until reopened, and reopening keeps every acknowledged batch.

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

#[test]
fn a_full_disk_fails_the_append_keeps_earlier_data_and_recovery_cuts_the_partial_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(log.append(&mut simple_batch("ok", 3, i)).expect("append"));
    }
    plan.limit_writes(40); // the next batch gets 40 bytes in, then ENOSPC
    let err = log
        .append(&mut simple_batch("partial", 3, 9))
        .expect_err("disk full");
    match &err {
        StorageError::Io { op, source, .. } => {
            assert_eq!(*op, "write");
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(log.log_end_offset(), 15, "the failed batch got no offsets");
    assert!(matches!(
        log.append(&mut simple_batch("x", 1, 1)),
        Err(StorageError::Poisoned { .. })
    ));
    // Readers never see the partial bytes.
    assert_eq!(read_all(&log).len(), 15);
    drop(log);

    plan.unlimited_writes();
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    let t = report.truncation.as_ref().expect("partial batch cut");
    assert_eq!(t.bytes, 40);
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(read_all(&log).len(), 15);
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
fn an_index_that_cannot_grow_fails_the_append_cleanly() {
    // Index files grow by writing zeros, so a full disk is an error here, not
    // a SIGBUS on a store into an unallocated mapped page.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, plan) = open_faulty(dir.path(), small_config());
    let mut first = simple_batch("first-batch-bigger-than-the-interval", 4, 1);
    assert!(first.len() > 128);
    log.append(&mut first).expect("append");
    // The next batch needs the first index entry, and the index file is empty.
    let mut second = simple_batch("second", 1, 2);
    plan.limit_writes(second.len() as u64 + 10);
    let err = log
        .append(&mut second)
        .expect_err("index growth hits ENOSPC");
    assert!(
        matches!(err, StorageError::Io { op: "extend", .. }),
        "{err}"
    );
    assert!(log.poisoned().is_some());
    drop(log);
    plan.unlimited_writes();
    let (log, _) = Log::open(dir.path(), small_config()).expect("reopen");
    let got = read_all(&log);
    assert_eq!(
        got[..4],
        records_in(&first)[..],
        "the acknowledged batch is there"
    );
    // The refused batch may or may not have reached the file: it was never
    // acknowledged, and nothing else is there.
    assert!(got.len() == 4 || got.len() == 5, "{} records", got.len());
}
