//! Retention by age and size: whole old segments go, the start offset
//! moves, reads below it are out of range.

use pubsub_storage::{CleanupPolicy, Log, LogConfig, StorageError};

use crate::common::*;

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
        .filter(|n| n.ends_with(".log") || n.ends_with("index"))
        .collect();
    v.sort();
    v
}

#[test]
fn retention_by_age_deletes_old_segments_and_moves_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: Some(10_000),
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config.clone()).expect("open");
    // One batch per second of record time.
    for i in 0..100i64 {
        log.append(&mut simple_batch("t", 2, 1_000_000 + i * 1000))
            .expect("append");
    }
    let before = log.segments();
    let now = 1_000_000 + 60_000; // records older than 1_050_000 expire
    let report = log.apply_retention(now).expect("retention");
    assert!(!report.deleted_segments.is_empty());
    let start = log.log_start_offset();
    assert_eq!(report.log_start_offset, start);
    assert_eq!(start, log.segments()[0].base_offset);
    // Deleted segments held only expired records; the first kept one does not.
    for seg in before.iter().filter(|s| s.base_offset < start) {
        let last_batch_ts = 1_000_000 + ((seg.end_offset - 1) / 2) as i64 * 1000;
        assert!(
            last_batch_ts < now - 10_000,
            "segment {seg:?} was not expired"
        );
        assert!(!dir
            .path()
            .join(format!("{:020}.log", seg.base_offset))
            .exists());
    }
    let first_kept_max = 1_000_000 + ((log.segments()[0].end_offset - 1) / 2) as i64 * 1000;
    assert!(first_kept_max >= now - 10_000);
    assert!(matches!(
        log.read(start - 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log).first().map(|r| r.offset), Some(start));
    // The start survives a reopen, clean or not.
    drop(log);
    let (log, _) = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn when_everything_expired_the_active_segment_goes_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: Some(1000),
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config).expect("open");
    for i in 0..30 {
        log.append(&mut simple_batch("old", 3, i)).expect("append");
    }
    let end = log.log_end_offset();
    let report = log.apply_retention(1_000_000).expect("retention");
    assert!(!report.deleted_segments.is_empty());
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.segments()[0].size, 0);
    assert!(log.read(end, 100).expect("read").records.is_empty());
    assert_eq!(files(dir.path()).len(), 3, "one empty segment left");
    let info = log.append(&mut simple_batch("new", 1, 5)).expect("append");
    assert_eq!(info.base_offset, end, "offsets never go back");
}

#[test]
fn retention_by_size_deletes_oldest_until_under_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_bytes: Some(3000),
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config).expect("open");
    for i in 0..100 {
        log.append(&mut simple_batch("s", 2, i)).expect("append");
    }
    let total_before = log.size_bytes();
    assert!(total_before > 6000);
    let report = log.apply_retention(0).expect("retention");
    assert_eq!(report.deleted_bytes, total_before - log.size_bytes());
    assert!(log.size_bytes() >= 3000, "never below the limit");
    let oldest = log.segments()[0];
    assert!(
        log.size_bytes() - oldest.size < 3000,
        "deleting one more would go below the limit"
    );
    // Running it again changes nothing.
    assert!(log
        .apply_retention(0)
        .expect("retention")
        .deleted_segments
        .is_empty());
}

#[test]
fn compact_only_logs_are_not_deleted_by_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: Some(1),
        retention_bytes: Some(1),
        cleanup_policy: CleanupPolicy::Compact,
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config).expect("open");
    for i in 0..40 {
        log.append(&mut simple_batch("k", 2, i)).expect("append");
    }
    let report = log.apply_retention(1 << 40).expect("retention");
    assert!(report.deleted_segments.is_empty());
    assert_eq!(log.log_start_offset(), 0);
}
