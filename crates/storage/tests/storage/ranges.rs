//! `Log::read_range`: the file range a fetch sends holds exactly the bytes
//! `Log::read_into` copies, for every offset and byte budget, in the active
//! segment and in sealed ones (opened lazily after a reopen), without
//! reading the batches to find where the range ends.

use proptest::prelude::*;
use pubsub_storage::{FileRange, Log, LogConfig, StorageError};

use crate::common::simple_batch;

fn bytes_of(range: &FileRange) -> Vec<u8> {
    let mut out = Vec::new();
    range.read_into(&mut out).expect("read the range");
    out
}

/// Compares the two reads at every offset with the given budgets.
fn same_as_copying_read(log: &Log, budgets: &[usize]) {
    let end = log.log_end_offset();
    for offset in log.log_start_offset()..=end {
        for &max in budgets {
            let mut copied = Vec::new();
            let (s1, e1) = log.read_into(offset, max, &mut copied).expect("read_into");
            let (s2, e2, range) = log.read_range(offset, max, true).expect("read_range");
            assert_eq!((s1, e1), (s2, e2));
            match range {
                None => assert!(copied.is_empty(), "offset {offset} max {max}"),
                Some(r) => {
                    assert_eq!(bytes_of(&r), copied, "offset {offset} max {max}");
                    assert!(r.base_offset() <= offset && offset < r.next_offset());
                    assert_eq!(r.len(), copied.len() as u64);
                }
            }
            // Without min_one: the same, or nothing when it exceeds `max`.
            let (_, _, strict) = log.read_range(offset, max, false).expect("read_range");
            if copied.len() > max {
                assert!(strict.is_none(), "offset {offset} max {max}");
            } else {
                let strict = strict.as_ref().map(bytes_of).unwrap_or_default();
                assert_eq!(strict, copied, "offset {offset} max {max}");
            }
        }
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        max_index_bytes: 64 << 10,
        segment_ms: None,
        retention_ms: None,
        ..LogConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_range_holds_what_a_copying_read_returns(
        sizes in proptest::collection::vec(1usize..60, 1..40),
        budgets in proptest::collection::vec(0usize..20_000, 1..6),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut all = budgets.clone();
        all.extend([0, 1, usize::MAX]);
        {
            let (log, _) = Log::open(dir.path(), config()).expect("open");
            for (i, n) in sizes.iter().enumerate() {
                let mut b = simple_batch(&format!("batch-{i}-with-a-longer-value"), *n, i as i64);
                log.append(&mut b).expect("append");
            }
            same_as_copying_read(&log, &all);
            log.close().expect("close");
        }
        // Reopened: sealed segments open (and load their indexes) lazily.
        let (log, _) = Log::open(dir.path(), config()).expect("reopen");
        same_as_copying_read(&log, &all);
    }
}

#[test]
fn the_first_batch_comes_whole_past_the_budget_and_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), config()).expect("open");
    let mut big = simple_batch("big", 200, 0);
    let big_len = big.len() as u64;
    log.append(&mut big).expect("append");
    let mut small = simple_batch("small", 1, 0);
    log.append(&mut small).expect("append");
    let (_, _, range) = log.read_range(5, 1, true).expect("read");
    let range = range.expect("a range");
    assert_eq!((range.base_offset(), range.len()), (0, big_len));
    assert_eq!(range.next_offset(), 200);
    // Not the first partition of an answer with records: nothing.
    let (_, _, none) = log
        .read_range(5, big_len as usize - 1, false)
        .expect("read");
    assert!(none.is_none());
    let (_, _, whole) = log.read_range(5, big_len as usize, false).expect("read");
    assert_eq!(whole.map(|r| r.len()), Some(big_len));
    let (_, end, none) = log.read_range(201, 100, true).expect("read at the end");
    assert_eq!((end, none.is_none()), (201, true));
    assert!(matches!(
        log.read_range(202, 100, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}
