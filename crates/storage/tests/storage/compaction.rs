//! Compaction: the latest record per key survives, offsets never change,
//! tombstones expire, compressed batches are re-encoded, and a crash at any
//! step leaves either the old or the new segments.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use pubsub_records::{Batches, Compression};
use pubsub_storage::fault::{FaultFs, FaultPlan};
use pubsub_storage::{CleanupPolicy, Log, LogConfig};

use crate::common::*;

fn compact_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: 1000,
        ..small_config()
    }
}

/// What compaction must leave: for records below `active_base`, the latest
/// per key (tombstones only if newer than the horizon); everything from
/// `active_base` on untouched.
fn expected_after(all: &[Rec], active_base: u64, horizon: i64) -> Vec<Rec> {
    let mut latest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for r in all.iter().filter(|r| r.offset < active_base) {
        if let Some(k) = &r.key {
            latest.insert(k.clone(), r.offset);
        }
    }
    all.iter()
        .filter(|r| {
            r.offset >= active_base
                || r.key.as_ref().is_some_and(|k| {
                    latest.get(k) == Some(&r.offset)
                        && !(r.value.is_none() && r.timestamp < horizon)
                })
        })
        .cloned()
        .collect()
}

/// Writes keyed records (some tombstones, some keyless) over several codecs.
fn fill_keyed(log: &Log, batches: usize, seed: u64) {
    let mut rng = Rng(seed);
    let codecs = Compression::ALL;
    for i in 0..batches {
        let n = 1 + rng.below(5) as usize;
        let keys: Vec<String> = (0..n).map(|_| format!("key-{}", rng.below(12))).collect();
        let values: Vec<String> = (0..n).map(|j| format!("v{i}.{j}")).collect();
        let recs: Vec<Spec<'_>> = (0..n)
            .map(|j| {
                let key = (rng.below(10) != 0).then(|| keys[j].as_bytes());
                let value = (rng.below(6) != 0).then(|| values[j].as_bytes());
                (key, value, 10_000 + (i * 10 + j) as i64)
            })
            .collect();
        let codec = codecs[rng.below(5) as usize];
        log.append(&mut batch_of(&recs, codec)).expect("append");
    }
}

#[test]
fn keeps_the_latest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), compact_config()).expect("open");
    fill_keyed(&log, 200, 7);
    let before = read_all(&log);
    let segments_before = log.segments().len();
    let active_base = log.segments().last().expect("active").base_offset;
    let now = 20_000; // every tombstone (timestamps < 12_000) has expired
    let report = log.compact(now).expect("compact");
    assert!(report.groups_rewritten > 0, "{report:?}");
    assert!(report.superseded_removed > 0 && report.keyless_removed > 0);
    assert!(report.tombstones_removed > 0, "{report:?}");
    assert!(report.bytes_after < report.bytes_before);
    let after = read_all(&log);
    assert_eq!(after, expected_after(&before, active_base, now - 1000));
    assert_eq!(
        key_view(&after, active_base),
        key_view(&before, active_base)
    );
    // The now small segments merge on the next pass; nothing else changes.
    let merge = log.compact(now).expect("compact");
    assert!(merge.segments_merged_away > 0, "{merge:?}");
    assert_eq!(read_all(&log), after);
    let segs = log.segments();
    assert!(segs.len() < segments_before);
    for pair in segs.windows(2) {
        assert_eq!(pair[0].end_offset, pair[1].base_offset);
    }
    assert_eq!(segs.last().expect("active").base_offset, active_base);
    assert_eq!(
        log.log_end_offset(),
        before.last().expect("last").offset + 1
    );
    // Every offset still reads (gaps resolve to the next batch).
    for off in log.log_start_offset()..log.log_end_offset() {
        let r = log.read(off, 1).expect("read");
        let b = pubsub_records::Batch::parse(&r.records).expect("batch");
        assert!(b.last_offset() as u64 >= off);
    }
    // A second pass finds nothing to do.
    let again = log.compact(now).expect("compact");
    assert_eq!(again.groups_rewritten, 0, "{again:?}");
    // The result survives clean and unclean reopen.
    log.close().expect("close");
    let (log, _) = Log::open(dir.path(), compact_config()).expect("reopen");
    assert_eq!(read_all(&log), after);
    drop(log);
    let (log, report) = Log::open(dir.path(), compact_config()).expect("reopen unclean");
    assert!(report.is_clean(), "{report}");
    assert_eq!(read_all(&log), after);
}

#[test]
fn tombstones_are_kept_until_the_delete_retention_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), compact_config()).expect("open");
    log.append(&mut batch_of(
        &[(Some(b"a"), Some(b"1"), 100)],
        Compression::None,
    ))
    .expect("append");
    log.append(&mut batch_of(&[(Some(b"a"), None, 200)], Compression::None))
        .expect("append");
    log.roll().expect("roll");
    log.compact(1000).expect("compact"); // horizon 0: the tombstone stays
    let recs = read_all(&log);
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].offset, recs[0].value.clone()), (1, None));
    log.compact(1201).expect("compact"); // horizon 201: it goes
    assert!(read_all(&log).is_empty());
    // Offsets are still accounted for: the emptied group keeps its last batch.
    assert_eq!(log.segments()[0].end_offset, 2);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn compressed_batches_keep_their_codec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), compact_config()).expect("open");
    for codec in Compression::ALL {
        let (x, y) = (format!("{codec}-x"), format!("{codec}-y"));
        let recs: Vec<Spec<'_>> = vec![
            (Some(x.as_bytes()), Some(b"old"), 1),
            (Some(y.as_bytes()), Some(b"keep"), 2),
            (Some(x.as_bytes()), Some(b"new"), 3),
        ];
        log.append(&mut batch_of(&recs, codec)).expect("append");
    }
    log.roll().expect("roll");
    let report = log.compact(10).expect("compact");
    assert_eq!(report.superseded_removed, 5);
    let r = log.read(0, 1 << 20).expect("read");
    let batches: Vec<(Compression, i32, i64)> = Batches::new(&r.records)
        .map(|b| {
            let b = b.expect("batch");
            (
                b.compression().expect("codec"),
                b.record_count(),
                b.last_offset(),
            )
        })
        .collect();
    let expected: Vec<(Compression, i32, i64)> = Compression::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, 2, i as i64 * 3 + 2))
        .collect();
    assert_eq!(
        batches, expected,
        "codec and offset span kept, one record gone"
    );
    let offsets: Vec<u64> = read_all(&log).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [1, 2, 4, 5, 7, 8, 10, 11, 13, 14]);
}

/// Records of `small` all appear, identical, in `big` (both in offset order).
fn is_sub(small: &[Rec], big: &[Rec]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// Key -> value of the latest record per key, tombstones and absent keys alike
/// meaning "deleted".
fn key_view(records: &[Rec], below: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut view = BTreeMap::new();
    for r in records.iter().filter(|r| r.offset < below) {
        if let Some(k) = &r.key {
            match &r.value {
                Some(v) => view.insert(k.clone(), v.clone()),
                None => view.remove(k),
            };
        }
    }
    view
}

fn snapshot(dir: &Path) -> Vec<Rec> {
    let (log, _) = Log::open(dir, compact_config()).expect("open");
    read_all(&log)
}

/// Crashes a compaction pass at every file operation in turn, from a copy of
/// `prepared` each time, and checks what reopening finds. Returns how many
/// crash points left a `.log.deleted` file (a merge caught mid-commit).
fn crash_at_every_step(prepared: &Path, now: i64) -> usize {
    let before = snapshot(prepared);
    let active_base = {
        let (log, _) = Log::open(prepared, compact_config()).expect("open");
        let base = log.segments().last().expect("active").base_offset;
        log.close().expect("close");
        base
    };
    let after = expected_after(&before, active_base, now - 1000);
    let mut crashed_runs = 0;
    let mut mid_merge = 0;
    for step in 0.. {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(prepared, work.path());
        let plan = FaultPlan::new();
        let (log, _) = Log::open_with(
            work.path(),
            compact_config(),
            Arc::new(FaultFs::new(plan.clone())),
        )
        .expect("open");
        plan.crash_after(step);
        let result = log.compact(now);
        let crashed = plan.crashed();
        drop(log);
        let leftovers = std::fs::read_dir(work.path())
            .expect("ls")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".deleted"))
            })
            .count();
        if leftovers > 0 {
            mid_merge += 1;
        }
        let seen = snapshot(work.path());
        // Each group is either old or new: nothing compaction keeps is
        // missing, nothing appears that was not there, and every key still
        // reads as its latest value (or as deleted).
        assert!(
            is_sub(&after, &seen),
            "crash after {step}: a kept record is missing"
        );
        assert!(
            is_sub(&seen, &before),
            "crash after {step}: a record appeared or changed"
        );
        assert_eq!(
            key_view(&seen, active_base),
            key_view(&before, active_base),
            "crash after {step}: a key's latest value changed"
        );
        // Reopening again (a crash during recovery's own clean-up) changes nothing.
        assert_eq!(snapshot(work.path()), seen, "crash after {step}");
        if !crashed {
            result.expect("compaction without a crash succeeds");
            assert_eq!(seen, after);
            break;
        }
        crashed_runs += 1;
    }
    assert!(
        crashed_runs > 10,
        "only {crashed_runs} crash points were tried"
    );
    mid_merge
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_segments() {
    let prepared = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(prepared.path(), compact_config()).expect("open");
    fill_keyed(&log, 120, 99);
    log.close().expect("close");
    let now = 11_500;
    // First pass: segments shrink one by one.
    crash_at_every_step(prepared.path(), now);
    // Second pass: the shrunken segments merge, renaming and deleting files.
    let (log, _) = Log::open(prepared.path(), compact_config()).expect("open");
    log.compact(now).expect("compact");
    log.close().expect("close");
    let mid_merge = crash_at_every_step(prepared.path(), now);
    assert!(mid_merge > 0, "no crash point fell inside a merge commit");
}
