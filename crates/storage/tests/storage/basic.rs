//! Appends, reads, rolls, lookups and clean reopening.

use std::sync::Arc;

use pubsub_records::{Batch, Batches, Compression};
use pubsub_storage::fault::{FaultFs, FaultPlan};
use pubsub_storage::{FlushPolicy, Log, LogConfig, StorageError};

use crate::common::*;

#[test]
fn append_assigns_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, report) = Log::open(dir.path(), small_config()).expect("open");
    assert!(
        report.clean_shutdown,
        "a new log needs no recovery: {report}"
    );
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));

    let mut a = simple_batch("a", 3, 1000);
    let info = log.append(&mut a).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    let mut b = simple_batch("b", 5, 2000);
    let info = log.append(&mut b).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (3, 7));
    assert_eq!(info.max_timestamp, 2004);
    assert_eq!(log.log_end_offset(), 8);

    // Reading offset 4 returns the whole batch holding it (base 3).
    let r = log.read(4, 1 << 20).expect("read");
    assert_eq!(first_base(&r.records), Some(3));
    assert_eq!(r.records, b, "stored bytes are the appended bytes");
    assert_eq!(r.log_end_offset, 8);
    // A tiny max_bytes still returns the first whole batch.
    let r = log.read(0, 1).expect("read");
    assert_eq!(Batches::new(&r.records).count(), 1);
    // At the end: nothing. Beyond it: an error.
    assert!(log.read(8, 100).expect("read at end").records.is_empty());
    assert!(matches!(
        log.read(9, 100),
        Err(StorageError::OffsetOutOfRange {
            offset: 9,
            start: 0,
            end: 8
        })
    ));
    let all = read_all(&log);
    assert_eq!(all.len(), 8);
    assert_eq!(all[7].value.as_deref(), Some(&b"b-4"[..]));
}

#[test]
fn several_batches_in_one_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let mut buf = [simple_batch("x", 2, 1), simple_batch("y", 3, 2)].concat();
    let info = log.append(&mut buf).expect("append");
    assert_eq!(
        (info.base_offset, info.last_offset, info.batches),
        (0, 4, 2)
    );
    let offsets: Vec<u64> = read_all(&log).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
}

#[test]
fn invalid_batches_are_refused_and_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let mut bad = simple_batch("x", 2, 1);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        log.append(&mut bad),
        Err(StorageError::InvalidBatch(_))
    ));
    let mut truncated = simple_batch("x", 2, 1);
    truncated.pop();
    assert!(log.append(&mut truncated).is_err());
    assert!(log.append(&mut []).is_err());
    // A good batch followed by garbage: refused as a whole.
    let mut mixed = [simple_batch("x", 1, 1), vec![0u8; 30]].concat();
    assert!(log.append(&mut mixed).is_err());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    // Bigger than a segment.
    let big = vec![7u8; 5000];
    let mut huge = batch_of(&[(None, Some(&big), 1)], Compression::None);
    assert!(matches!(
        log.append(&mut huge),
        Err(StorageError::BatchTooLarge { .. })
    ));
}

#[test]
fn trusted_appends_skip_only_the_crc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let mut good = simple_batch("t", 3, 1);
    assert_eq!(
        log.append_trusted(&mut good).expect("append").last_offset,
        2
    );
    // Structure is still checked: a batch whose count disagrees with its
    // offsets, or a truncated one, is refused.
    let mut bad_count = simple_batch("t", 3, 1);
    bad_count[57..61].copy_from_slice(&2i32.to_be_bytes());
    assert!(log.append_trusted(&mut bad_count).is_err());
    let mut truncated = simple_batch("t", 3, 1);
    truncated.truncate(70);
    assert!(log.append_trusted(&mut truncated).is_err());
    // The untrusted path catches the same corruption by CRC.
    let mut flipped = simple_batch("t", 3, 1);
    flipped[70] ^= 1;
    assert!(matches!(
        log.append(&mut flipped),
        Err(StorageError::InvalidBatch(
            pubsub_records::RecordsError::CrcMismatch { .. }
        ))
    ));
    assert_eq!(read_all(&log).len(), 3);
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    for i in 0..100 {
        log.append(&mut simple_batch(&format!("s{i}"), 4, i * 10))
            .expect("append");
    }
    let segs = log.segments();
    assert!(
        segs.len() > 5,
        "expected several segments, got {}",
        segs.len()
    );
    for pair in segs.windows(2) {
        assert_eq!(pair[0].end_offset, pair[1].base_offset);
        assert!(pair[0].size <= 1024);
    }
    assert!(segs.last().expect("active").active);
    let all = read_all(&log);
    assert_eq!(all.len(), 400);
    assert!(all.iter().enumerate().all(|(i, r)| r.offset == i as u64));
    // Every offset is readable and lands in the right batch.
    for off in (0..400).step_by(7) {
        let r = log.read(off, 10).expect("read");
        let b = Batch::parse(&r.records).expect("batch");
        assert!(b.base_offset() as u64 <= off && off <= b.last_offset() as u64);
    }
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
        .collect();
    assert!(files.contains(&"00000000000000000000.log".to_string()));
    assert!(files.contains(&"00000000000000000000.index".to_string()));
    assert!(files.contains(&"00000000000000000000.timeindex".to_string()));
}

#[test]
fn rolls_by_age_of_record_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: Some(1000),
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config).expect("open");
    log.append(&mut simple_batch("a", 1, 10_000))
        .expect("append");
    log.append(&mut simple_batch("b", 1, 10_900))
        .expect("append");
    assert_eq!(log.segments().len(), 1);
    log.append(&mut simple_batch("c", 1, 11_001))
        .expect("append");
    assert_eq!(log.segments().len(), 2, "1001 ms after the first batch");
    assert_eq!(log.segments()[1].base_offset, 2);
}

#[test]
fn rolls_when_an_index_is_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 1,
        max_index_bytes: 48, // 4 time entries, 6 offset entries
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config).expect("open");
    for i in 0..40 {
        log.append(&mut simple_batch("i", 1, i)).expect("append");
    }
    assert!(log.segments().len() >= 8, "{:?}", log.segments());
    assert_eq!(read_all(&log).len(), 40);
    drop(log);
    // The indexes written that way are consistent: a clean reopen keeps them.
    let (log, report) = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 1,
            max_index_bytes: 48,
            ..small_config()
        },
    )
    .expect("reopen");
    assert!(report.truncation.is_none(), "{report}");
    assert_eq!(read_all(&log).len(), 40);
}

#[test]
fn timestamp_lookups_find_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    // Timestamps rise overall but not monotonically within batches, and some
    // batches are compressed.
    let mut expected = Vec::new();
    for i in 0..200i64 {
        let ts = 1_000_000 + i * 10 + if i % 3 == 0 { 7 } else { 0 };
        expected.push(ts);
    }
    for chunk in 0..40 {
        let recs: Vec<Spec<'_>> = (0..5)
            .map(|j| (None, Some(&b"v"[..]), expected[chunk * 5 + j]))
            .collect();
        let codec = if chunk % 2 == 0 {
            Compression::None
        } else {
            Compression::Gzip
        };
        log.append(&mut batch_of(&recs, codec)).expect("append");
    }
    for target in [
        0, 1_000_000, 1_000_001, 1_000_555, 1_001_000, 1_001_990, 1_001_997,
    ] {
        let want = expected
            .iter()
            .position(|&t| t >= target)
            .map(|o| (o as u64, expected[o]));
        let got = log
            .offset_for_timestamp(target)
            .expect("lookup")
            .map(|t| (t.offset, t.timestamp));
        assert_eq!(got, want, "target {target}");
    }
    assert_eq!(log.offset_for_timestamp(9_999_999).expect("lookup"), None);
    let max = log.max_timestamp().expect("max").expect("some");
    assert_eq!(max.timestamp, *expected.iter().max().expect("max"));
}

#[test]
fn the_max_timestamp_is_found_at_the_first_record_that_carries_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let v = Some(&b"v"[..]);
    log.append(&mut batch_of(
        &[(None, v, 5), (None, v, 3)],
        Compression::None,
    ))
    .expect("append");
    // Offsets 2..=5: the largest timestamp (9) twice, mid-batch, compressed.
    let recs: Vec<Spec<'_>> = vec![(None, v, 7), (None, v, 9), (None, v, 9), (None, v, 8)];
    log.append(&mut batch_of(&recs, Compression::Gzip))
        .expect("append");
    let max = log.max_timestamp().expect("max").expect("some");
    // As Kafka answers ListOffsets -3: the record, not its batch's last offset.
    assert_eq!((max.offset, max.timestamp), (3, 9));
}

#[test]
fn clean_close_reopens_without_recovery_and_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (log, _) = Log::open(dir.path(), small_config()).expect("open");
        for i in 0..60 {
            log.append(&mut simple_batch("c", 3, i)).expect("append");
        }
        log.close().expect("close");
        assert!(matches!(
            log.append(&mut simple_batch("late", 1, 0)),
            Err(StorageError::Closed { .. })
        ));
    }
    assert!(dir.path().join(pubsub_storage::CLEAN_SHUTDOWN).exists());
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert_eq!(report.segments_scanned, 0);
    assert!(
        dir.path().join(pubsub_storage::CLEAN_SHUTDOWN).exists(),
        "an untouched log keeps its marker: opening writes nothing"
    );
    assert_eq!(log.log_end_offset(), 180);
    log.append(&mut simple_batch("more", 2, 99))
        .expect("append");
    assert!(
        !dir.path().join(pubsub_storage::CLEAN_SHUTDOWN).exists(),
        "the marker goes before the first write"
    );
    let all = read_all(&log);
    assert_eq!(all.len(), 182);
    assert_eq!(all[181].value.as_deref(), Some(&b"more-1"[..]));
    // Dropped without close (a crash): the next open recovers.
    drop(log);
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(!report.clean_shutdown, "{report}");
    assert_eq!(log.log_end_offset(), 182);
    // Opened cleanly and closed untouched: the marker still holds.
    log.close().expect("close");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    log.close().expect("close");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert_eq!(log.log_end_offset(), 182);
}

#[test]
fn concurrent_waiters_share_one_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = FaultPlan::new();
    let config = LogConfig {
        flush: FlushPolicy::Always,
        ..small_config()
    };
    let (log, _) =
        Log::open_with(dir.path(), config, Arc::new(FaultFs::new(plan.clone()))).expect("open");
    let log = Arc::new(log);
    plan.hold_syncs();
    let syncs_before = plan.syncs();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                log.append(&mut simple_batch(&format!("t{t}"), 1, t))
                    .expect("append")
            })
        })
        .collect();
    // Wait until all eight are written and blocked behind the held fsync.
    while log.log_end_offset() < 8 {
        std::thread::yield_now();
    }
    plan.release_syncs();
    for t in threads {
        t.join().expect("thread");
    }
    let syncs = plan.syncs() - syncs_before;
    assert!(
        syncs <= 2,
        "8 appends waiting together needed {syncs} fsyncs; group commit should need at most 2"
    );
    assert_eq!(log.durable_offset(), 8);
}

#[test]
fn wait_durable_flushes_under_flush_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = FaultPlan::new();
    let (log, _) = Log::open_with(
        dir.path(),
        small_config(),
        Arc::new(FaultFs::new(plan.clone())),
    )
    .expect("open");
    let before = plan.syncs();
    let info = log.append(&mut simple_batch("n", 2, 0)).expect("append");
    assert_eq!(plan.syncs(), before, "FlushPolicy::Never does not fsync");
    assert!(log.durable_offset() <= info.base_offset);
    log.wait_durable(info.last_offset).expect("durable");
    assert_eq!(plan.syncs(), before + 1);
    assert_eq!(log.durable_offset(), 2);
    // Already durable: no second fsync.
    log.wait_durable(info.last_offset).expect("durable");
    assert_eq!(plan.syncs(), before + 1);
}

#[test]
fn readers_run_alongside_a_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let log = Arc::new(log);
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..500 {
                log.append(&mut simple_batch(&format!("w{i}"), 1 + (i % 4) as usize, i))
                    .expect("append");
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reads = 0;
                while log.log_end_offset() < 1000 || reads < 50 {
                    let end = log.log_end_offset();
                    let recs = read_from(&log, 0, 4096);
                    // Everything below the end seen before reading is there,
                    // in order, with no gaps.
                    assert!(recs.len() as u64 >= end);
                    assert!(recs.iter().enumerate().all(|(i, r)| r.offset == i as u64));
                    reads += 1;
                    if end >= 1250 {
                        break;
                    }
                }
            })
        })
        .collect();
    writer.join().expect("writer");
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(read_all(&log).len(), 1250);
}

#[test]
fn aborted_transactions_come_from_memory_only_once_their_index_was_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    log.append(&mut simple_batch("t", 3, 1000)).expect("append");
    let aborted = pubsub_storage::AbortedTxn {
        producer_id: 7,
        first_offset: 0,
        last_offset: 2,
        last_stable_offset: 3,
    };
    log.append_aborted_txn(aborted).expect("index the abort");
    assert_eq!(log.aborted_txns_in_memory(0, 3), Some(vec![aborted]));
    log.close().expect("close");
    drop(log);

    // Reopened, the index is on disk only: the in-memory answer declines
    // (the caller reads it where blocking is allowed), the read loads it,
    // and from then on memory answers the same.
    let (log, _) = Log::open(dir.path(), small_config()).expect("reopen");
    assert_eq!(log.aborted_txns_in_memory(0, 3), None);
    assert_eq!(log.aborted_txns(0, 3).expect("read"), vec![aborted]);
    assert_eq!(log.aborted_txns_in_memory(0, 3), Some(vec![aborted]));
    assert_eq!(log.aborted_txns_in_memory(3, 4), Some(vec![]));
}
