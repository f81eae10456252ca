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

/// Appends batches of `sizes` records (values of about 40 bytes) and
/// returns each as stored: (base offset, last offset, bytes).
fn append_all(log: &Log, sizes: &[usize]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut stored = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let mut b = simple_batch(
            &format!("batch-{i}-with-a-longer-value-{}", "v".repeat(8)),
            *n,
            i as i64,
        );
        let info = log.append(&mut b).expect("append");
        stored.push((info.base_offset, info.last_offset, b));
    }
    stored
}

/// The first batch of a read at every offset is the stored batch holding
/// that offset: an oracle independent of the log's lookup (which
/// `same_as_copying_read` shares with the copying read).
fn first_batch_is_the_one_holding(log: &Log, stored: &[(u64, u64, Vec<u8>)]) {
    for (base, last, bytes) in stored {
        for offset in *base..=*last {
            let (_, _, range) = log.read_range(offset, 1, true).expect("read_range");
            let range = range.expect("a batch");
            assert_eq!(
                (range.base_offset(), range.next_offset()),
                (*base, last + 1),
                "offset {offset}"
            );
            assert_eq!(&bytes_of(&range), bytes, "offset {offset}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Batches longer than one read of the header walk, with every batch
    /// indexed or several between index entries: the lookup tries the
    /// batch of the next index entry first and falls back to the walk.
    #[test]
    fn lookups_over_batches_longer_than_a_walk_read(
        sizes in proptest::collection::vec(1usize..400, 1..40),
        interval in prop_oneof![Just(512u64), Just(4096), Just(40_000)],
        budgets in proptest::collection::vec(0usize..60_000, 1..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 64 << 10,
            index_interval_bytes: interval,
            ..config()
        };
        let mut all = budgets.clone();
        all.extend([0, usize::MAX]);
        let stored = {
            let (log, _) = Log::open(dir.path(), config.clone()).expect("open");
            let stored = append_all(&log, &sizes);
            first_batch_is_the_one_holding(&log, &stored);
            same_as_copying_read(&log, &all);
            log.close().expect("close");
            stored
        };
        let (log, _) = Log::open(dir.path(), config).expect("reopen");
        first_batch_is_the_one_holding(&log, &stored);
    }
}

/// A consumer reading in order over batches longer than the header walk's
/// read (every batch indexed): a fetch reads two batch headers, the first
/// batch's and the one at the budget's end, not three or four.
#[test]
fn an_in_order_read_of_large_batches_reads_two_headers_a_fetch() {
    use pubsub_storage::fault::{FaultFs, FaultPlan};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = FaultPlan::new();
    let config = LogConfig {
        segment_bytes: 8 << 20,
        index_interval_bytes: 4096,
        ..config()
    };
    let (log, _) =
        Log::open_with(dir.path(), config, Arc::new(FaultFs::new(plan.clone()))).expect("open");
    let stored = append_all(&log, &[200; 60]);
    let batch = stored[0].2.len();
    assert!(batch > 8 << 10, "batches of {batch} bytes");
    // Budgets ending inside a batch and exactly at one's end.
    // The first fetch (from offset 0) is not counted: its lookup has no
    // batch before it and is not the case measured.
    let first = stored[0].1 + 1;
    for max in [3 * batch + batch / 2, 4 * batch] {
        let mut offset = first;
        let mut fetches = 0;
        let before = plan.reads();
        while offset < log.log_end_offset() {
            let (_, _, range) = log.read_range(offset, max, true).expect("read");
            let range = range.expect("records");
            offset = range.next_offset();
            fetches += 1;
        }
        let reads = plan.reads() - before;
        assert!(
            reads <= 2 * fetches,
            "{reads} reads for {fetches} fetches of {max} bytes"
        );
    }
}

/// `from_page_cache_only`: a read whose batch headers are not in the page
/// cache fails at once as `WouldBlock` (and changes nothing); once they are,
/// the read answers as an ordinary one.
#[test]
fn a_read_from_the_page_cache_only_would_block_on_evicted_pages() {
    use pubsub_storage::fs::from_page_cache_only;
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 8 << 20,
        index_interval_bytes: 4096,
        ..config()
    };
    {
        let (log, _) = Log::open(dir.path(), config.clone()).expect("open");
        append_all(&log, &[200; 20]);
        log.close().expect("close");
    }
    let (log, _) = Log::open(dir.path(), config).expect("reopen");
    // Written to disk (the reopen may have read some), then dropped from the page cache.
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let f = std::fs::File::open(&path).expect("open segment");
            f.sync_all().expect("sync");
            // SAFETY: a valid open descriptor; advice only.
            let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(r, 0, "fadvise");
        }
    }
    let offset = 1000;
    let cold = from_page_cache_only(|| log.read_range(offset, 1 << 20, true));
    match cold {
        Err(e) => assert!(e.is_would_block(), "{e}"),
        Ok(r) => panic!("a read of evicted pages answered {r:?}"),
    }
    let (s, e, warm) = log
        .read_range(offset, 1 << 20, true)
        .expect("ordinary read");
    let warm = warm.expect("records");
    let (s2, e2, cached) = from_page_cache_only(|| log.read_range(offset, 1 << 20, true))
        .expect("the same read, now cached");
    let cached = cached.expect("records");
    assert_eq!((s, e), (s2, e2));
    assert_eq!(
        (cached.pos(), cached.len(), cached.next_offset()),
        (warm.pos(), warm.len(), warm.next_offset())
    );
}
