//! Advancing the log start offset (DeleteRecords): reads below it are out of
//! range, whole segments below it go, and it survives clean and unclean
//! reopens and `check`.

use pubsub_storage::{Log, StorageError};

use crate::common::*;

#[test]
fn advancing_the_start_hides_records_deletes_whole_segments_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config();
    let (log, _) = Log::open(dir.path(), config.clone()).expect("open");
    for i in 0..100i64 {
        log.append(&mut simple_batch("r", 2, i)).expect("append");
    }
    let end = log.log_end_offset();
    let segments = log.segments();
    assert!(segments.len() > 3, "{segments:?}");
    // Inside the third segment, in the middle of a batch.
    let target = segments[2].base_offset + 1;
    let report = log.advance_start_offset(target).expect("advance");
    assert_eq!(report.log_start_offset, target);
    assert_eq!(
        report.deleted_segments,
        vec![segments[0].base_offset, segments[1].base_offset]
    );
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.segments()[0].base_offset, segments[2].base_offset);
    assert!(!dir
        .path()
        .join(format!("{:020}.log", segments[0].base_offset))
        .exists());
    assert!(matches!(
        log.read(target - 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // The batch holding the start is returned whole.
    let read = log.read(target, 1 << 20).expect("read at the start");
    assert_eq!(first_base(&read.records), Some(target - 1));
    assert_eq!(read.log_start_offset, target);
    assert_eq!(read_all(&log).first().map(|r| r.offset), Some(target));
    // By timestamp: the first record at or after the start, even where the
    // batch holding it has older records before it.
    assert_eq!(
        log.offset_for_timestamp(0)
            .expect("by time")
            .map(|t| t.offset),
        Some(target)
    );
    // Lower than the start: nothing changes. Beyond the end: refused.
    assert_eq!(
        log.advance_start_offset(1).expect("lower").log_start_offset,
        target
    );
    assert!(matches!(
        log.advance_start_offset(end + 1),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Unclean reopen (no close): the start is in the checkpoint.
    drop(log);
    let (log, _) = Log::open(dir.path(), config.clone()).expect("reopen");
    assert_eq!(log.log_start_offset(), target);
    // Up to the end: everything but the active segment goes.
    let report = log.advance_start_offset(end).expect("to the end");
    assert_eq!(report.log_start_offset, end);
    assert_eq!(log.segments().len(), 1);
    assert!(log.read(end, 100).expect("read at end").records.is_empty());
    log.close().expect("close");
    let check = pubsub_storage::check(dir.path(), &config).expect("check");
    assert_eq!(check.log_start_offset, Some(end));
    let (log, _) = Log::open(dir.path(), config).expect("clean reopen");
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end);
    log.append(&mut simple_batch("after", 1, 0))
        .expect("append");
    assert_eq!(read_all(&log).first().map(|r| r.offset), Some(end));
}
