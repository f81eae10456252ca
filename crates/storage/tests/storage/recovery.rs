//! Opening after unclean stops: torn tails, garbage, cut segments,
//! corruption below the recovery point, broken indexes and checkpoints.

use std::fs::OpenOptions;
use std::path::Path;

use pubsub_storage::{check, Log, LogConfig, StorageError, RECOVERY_CHECKPOINT};

use crate::common::*;

fn seg_path(dir: &Path, base: u64, suffix: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}{suffix}"))
}

fn fill(log: &Log, batches: usize) -> Vec<(u64, Vec<u8>)> {
    for i in 0..batches {
        log.append(&mut simple_batch(
            &format!("r{i}"),
            1 + i % 3,
            1000 + i as i64,
        ))
        .expect("append");
    }
    raw_batches(log)
}

#[test]
fn unclean_stop_keeps_everything_written_and_scans_from_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 120);
    let segments = log.segments();
    assert!(segments.len() >= 4);
    let rp = log.recovery_point();
    assert!(
        rp >= segments.last().expect("active").base_offset,
        "rolling moves the recovery point into the new segment"
    );
    drop(log); // no close: unclean
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(!report.clean_shutdown);
    assert_eq!(report.recovery_point, rp);
    assert_eq!(
        report.segments_scanned, 1,
        "only the active segment: {report}"
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(raw_batches(&log), before);
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 30);
    let active = log.segments().last().copied().expect("active");
    drop(log);
    let path = seg_path(dir.path(), active.base_offset, ".log");
    let len = std::fs::metadata(&path).expect("stat").len();
    let last_len = before.last().expect("last").1.len() as u64;
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(len - last_len / 2).expect("cut");
    drop(file);

    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    let t = report.truncation.as_ref().expect("truncated");
    assert_eq!(t.segment_base, active.base_offset);
    assert_eq!(t.position, len - last_len);
    assert_eq!(t.bytes, last_len - last_len / 2);
    assert_eq!(report.lost_bytes(), t.bytes);
    assert_eq!(raw_batches(&log), before[..before.len() - 1].to_vec());
    // Appends continue at the offset after the last whole batch.
    let next = before[before.len() - 1].0;
    assert_eq!(log.log_end_offset(), next);
    let info = log
        .append(&mut simple_batch("after", 1, 5))
        .expect("append");
    assert_eq!(info.base_offset, next);
}

#[test]
fn garbage_and_zeros_after_the_last_batch_are_truncated() {
    for tail in [
        vec![0u8; 777],
        (0..1000u32).map(|i| (i * 31 % 251) as u8).collect(),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = Log::open(dir.path(), small_config()).expect("open");
        let before = fill(&log, 25);
        let active = log.segments().last().copied().expect("active");
        drop(log);
        let path = seg_path(dir.path(), active.base_offset, ".log");
        let mut bytes = std::fs::read(&path).expect("read");
        let len = bytes.len() as u64;
        bytes.extend_from_slice(&tail);
        std::fs::write(&path, &bytes).expect("write");
        let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
        let t = report.truncation.as_ref().expect("truncated");
        assert_eq!((t.position, t.bytes), (len, tail.len() as u64));
        assert_eq!(raw_batches(&log), before);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), len);
    }
}

#[test]
fn a_cut_segment_above_the_recovery_point_drops_the_later_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    fill(&log, 20);
    // Remember an early recovery point, as if later fsyncs never completed.
    let early_checkpoint = std::fs::read(dir.path().join(RECOVERY_CHECKPOINT)).expect("cp");
    let early_rp = log.recovery_point();
    let before = fill(&log, 100);
    let segs = log.segments();
    drop(log);
    std::fs::write(dir.path().join(RECOVERY_CHECKPOINT), early_checkpoint).expect("restore");
    // Cut the first segment above that recovery point in half.
    let victim = segs
        .iter()
        .position(|s| s.base_offset > early_rp)
        .expect("a later segment");
    assert!(victim + 2 < segs.len(), "need segments after the victim");
    let path = seg_path(dir.path(), segs[victim].base_offset, ".log");
    let len = std::fs::metadata(&path).expect("stat").len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len / 2)
        .expect("cut");

    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert_eq!(report.recovery_point, early_rp);
    let t = report.truncation.as_ref().expect("truncation");
    assert_eq!(t.segment_base, segs[victim].base_offset);
    assert_eq!(report.dropped_segments.len(), segs.len() - victim - 1);
    assert!(report.lost_batches() > 0);
    for d in &report.dropped_segments {
        assert!(!seg_path(dir.path(), d.base_offset, ".log").exists());
    }
    // What is left is exactly a prefix of what was written.
    let after = raw_batches(&log);
    assert!(!after.is_empty() && after.len() < before.len());
    assert_eq!(after[..], before[..after.len()]);
    assert_eq!(log.segments().len(), victim + 1);
}

#[test]
fn bad_data_below_the_recovery_point_is_corruption_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    };
    let (log, _) = Log::open(dir.path(), config.clone()).expect("open");
    fill(&log, 40);
    log.checkpoint().expect("checkpoint"); // recovery point = end, inside the only segment
    fill(&log, 5);
    let rp = log.recovery_point();
    let batches = raw_batches(&log);
    drop(log);
    // Flip a bit in a batch below the recovery point.
    let path = seg_path(dir.path(), 0, ".log");
    let mut bytes = std::fs::read(&path).expect("read");
    let pos: usize = batches[..10].iter().map(|b| b.1.len()).sum::<usize>() + 40;
    bytes[pos] ^= 0x04;
    std::fs::write(&path, &bytes).expect("write");
    let listing = |d: &Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .expect("ls")
            .map(|e| {
                let e = e.expect("e");
                (
                    e.file_name().into_string().expect("utf8"),
                    e.metadata().expect("md").len(),
                )
            })
            .filter(|(n, _)| n.ends_with(".log"))
            .collect();
        v.sort();
        v
    };
    let files_before = listing(dir.path());
    match Log::open(dir.path(), config) {
        Err(StorageError::Corrupt {
            path: p,
            position,
            reason,
        }) => {
            assert_eq!(p, path);
            let batch_start: u64 = batches[..10].iter().map(|b| b.1.len() as u64).sum();
            assert_eq!(position, batch_start);
            assert!(reason.contains(&rp.to_string()), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(listing(dir.path()), files_before, "nothing deleted or cut");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
}

#[test]
fn indexes_are_rebuilt_when_missing_ragged_or_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 150);
    let segs = log.segments();
    log.close().expect("close");
    let victim = segs[1].base_offset;
    let index = seg_path(dir.path(), victim, ".index");
    let time_index = seg_path(dir.path(), victim, ".timeindex");
    let good_index = std::fs::read(&index).expect("index");
    let good_time = std::fs::read(&time_index).expect("timeindex");
    assert!(good_index.len() >= 16 && good_time.len() >= 12);

    type Damage<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let damage: Vec<Damage<'_>> = vec![
        (
            "deleted",
            Box::new(|| std::fs::remove_file(&index).expect("rm")),
        ),
        (
            "ragged",
            Box::new(|| std::fs::write(&index, &good_index[..good_index.len() - 3]).expect("w")),
        ),
        (
            "short",
            Box::new(|| std::fs::write(&index, &good_index[..good_index.len() - 8]).expect("w")),
        ),
        (
            "garbage",
            Box::new(|| std::fs::write(&index, vec![0xab; good_index.len()]).expect("w")),
        ),
        (
            "time deleted",
            Box::new(|| std::fs::remove_file(&time_index).expect("rm")),
        ),
        (
            "time short",
            Box::new(|| {
                std::fs::write(&time_index, &good_time[..good_time.len() - 12]).expect("w")
            }),
        ),
    ];
    for (what, harm) in damage {
        harm();
        let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
        assert!(report.clean_shutdown, "{what}: {report}");
        // Reads through the damaged segment are right (this loads and checks it).
        for off in segs[1].base_offset..segs[1].end_offset {
            let r = log.read(off, 1).expect("read");
            let b = pubsub_records::Batch::parse(&r.records).expect("batch");
            assert!(
                b.base_offset() as u64 <= off && off <= b.last_offset() as u64,
                "{what}"
            );
        }
        assert_eq!(
            log.offset_for_timestamp(1000)
                .expect("ts")
                .map(|t| t.offset),
            Some(0),
            "{what}"
        );
        assert_eq!(raw_batches(&log), before, "{what}");
        assert_eq!(
            std::fs::read(&index).expect("index"),
            good_index,
            "{what}: offset index rebuilt identically"
        );
        assert_eq!(
            std::fs::read(&time_index).expect("time"),
            good_time,
            "{what}: time index rebuilt identically"
        );
        log.close().expect("close");
    }
}

#[test]
fn a_marker_that_does_not_match_the_files_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 10);
    let active = log.segments().last().copied().expect("active");
    log.close().expect("close");
    // Something wrote after the clean close.
    let path = seg_path(dir.path(), active.base_offset, ".log");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    std::fs::write(&path, &bytes).expect("write");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(!report.clean_shutdown);
    assert!(
        report.notes.iter().any(|n| n.contains("marker")),
        "{report}"
    );
    assert_eq!(report.truncation.as_ref().map(|t| t.bytes), Some(13));
    assert_eq!(raw_batches(&log), before);
}

#[test]
fn a_corrupt_recovery_checkpoint_means_recovering_more_not_failing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 60);
    drop(log);
    let cp = dir.path().join(RECOVERY_CHECKPOINT);
    let mut bytes = std::fs::read(&cp).expect("cp");
    bytes[14] ^= 0xff;
    std::fs::write(&cp, bytes).expect("write");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(
        report.notes.iter().any(|n| n.contains("checkpoint")),
        "{report}"
    );
    assert_eq!(raw_batches(&log), before);
}

#[test]
fn stray_files_from_interrupted_work_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 10);
    log.close().expect("close");
    for name in [
        "recovery-point.checkpoint.tmp",
        "00000000000000000000.log.cleaned",
        "00000000000000000000.index.cleaned",
        "00000000000000099999.index",
        "00000000000000099999.timeindex",
    ] {
        std::fs::write(dir.path().join(name), b"junk").expect("write");
    }
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert_eq!(report.removed_files.len(), 5, "{report}");
    assert!(report.clean_shutdown);
    assert_eq!(raw_batches(&log), before);
}

#[test]
fn a_log_cut_below_its_recovery_point_fails_to_open_and_check_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let batches = fill(&log, 10);
    log.checkpoint().expect("checkpoint"); // everything was fsynced
    drop(log);
    // Whole batches vanish from the end: not a torn write, lost data.
    let keep: u64 = batches[..5].iter().map(|b| b.1.len() as u64).sum();
    OpenOptions::new()
        .write(true)
        .open(seg_path(dir.path(), 0, ".log"))
        .expect("open segment")
        .set_len(keep)
        .expect("truncate");
    let report = check(dir.path(), &small_config()).expect("check");
    assert!(
        report.recovery_action().starts_with("open would fail"),
        "{}",
        report.recovery_action()
    );
    match Log::open(dir.path(), small_config()) {
        Err(StorageError::Corrupt { reason, .. }) => {
            assert!(reason.contains("log ends at offset"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_restored_active_segment_gets_its_indexes_rebuilt_after_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 10);
    let active = log.segments().last().copied().expect("active").base_offset;
    log.close().expect("close");
    let index = seg_path(dir.path(), active, ".index");
    let time_index = seg_path(dir.path(), active, ".timeindex");
    let good_index = std::fs::read(&index).expect("index");
    let good_time = std::fs::read(&time_index).expect("timeindex");
    assert!(!good_index.is_empty() && !good_time.is_empty());
    // The active segment as a `.log.deleted` nothing reaches: open puts it
    // back and removes its index files, so they must be rebuilt.
    let log_path = seg_path(dir.path(), active, ".log");
    std::fs::rename(&log_path, seg_path(dir.path(), active, ".log.deleted")).expect("rename");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert_eq!(
        report.restored_files,
        vec![format!("{active:020}.log")],
        "{report}"
    );
    assert_eq!(report.rebuilt_indexes, vec![active], "{report}");
    assert_eq!(raw_batches(&log), before);
    log.close().expect("close");
    assert_eq!(std::fs::read(&index).expect("index"), good_index);
    assert_eq!(std::fs::read(&time_index).expect("time"), good_time);
}

#[test]
fn a_clean_open_finds_the_log_end_from_the_index_tail_and_from_the_start_when_the_index_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let before = fill(&log, 10);
    let end = log.log_end_offset();
    let active = log.segments().last().copied().expect("active");
    assert!(active.end_offset - active.base_offset > 1, "{active:?}");
    log.close().expect("close");
    let index = seg_path(dir.path(), active.base_offset, ".index");
    let entries = std::fs::read(&index).expect("index").len() / 8;
    assert!(entries >= 1, "the active segment has index entries");

    // The end comes from the batches after the last indexed one.
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(
        report.clean_shutdown && report.rebuilt_indexes.is_empty(),
        "{report}"
    );
    assert_eq!(log.log_end_offset(), end);
    log.close().expect("close");

    // An offset index whose last entry names no batch start: rebuilt, and
    // the end is found by walking the whole segment.
    let mut bytes = std::fs::read(&index).expect("index");
    let at = bytes.len() - 4;
    let position = u32::from_be_bytes(bytes[at..].try_into().expect("4 bytes"));
    bytes[at..].copy_from_slice(&(position + 1).to_be_bytes());
    std::fs::write(&index, &bytes).expect("damage");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert_eq!(report.rebuilt_indexes, vec![active.base_offset], "{report}");
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(raw_batches(&log), before);
    let more = log
        .append(&mut simple_batch("after", 2, 5000))
        .expect("append");
    assert_eq!(more.base_offset, end);
}

/// An open after an unclean stop fsyncs only what the recovery point does
/// not vouch for: nothing when the log was flushed and checkpointed up to
/// its end before the kill (no fsync, no checkpoint written), one fsync
/// (the active segment's data; no index, directory or checkpoint file)
/// when records lie above it. The recovery point on disk stays until the
/// log's next checkpoint, which records the log end.
#[test]
fn an_unclean_open_fsyncs_only_the_data_above_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rp_file = dir.path().join(RECOVERY_CHECKPOINT);
    let (log, _) = Log::open(dir.path(), LogConfig::default()).expect("open");
    let written = fill(&log, 5);
    log.checkpoint().expect("checkpoint");
    let end = log.log_end_offset();
    assert_eq!(log.recovery_point(), end);
    drop(log); // no close: unclean
    let rp_bytes = std::fs::read(&rp_file).expect("recovery point");

    let before = pubsub_storage::fs::fsyncs_on_this_thread();
    let (log, report) = Log::open(dir.path(), LogConfig::default()).expect("reopen");
    assert_eq!(
        pubsub_storage::fs::fsyncs_on_this_thread() - before,
        0,
        "everything kept lies below the recovery point: {report}"
    );
    assert!(!report.clean_shutdown);
    assert_eq!(report.segments_scanned, 1, "{report}");
    assert_eq!(report.log_end_offset, end);
    assert_eq!(raw_batches(&log), written);
    log.append(&mut simple_batch("late", 2, 5000))
        .expect("append");
    let written = raw_batches(&log);
    drop(log);

    let before = pubsub_storage::fs::fsyncs_on_this_thread();
    let (log, report) = Log::open(dir.path(), LogConfig::default()).expect("reopen");
    assert_eq!(
        pubsub_storage::fs::fsyncs_on_this_thread() - before,
        1,
        "the active segment's data only: {report}"
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.recovery_point, end);
    assert_eq!(raw_batches(&log), written);
    assert_eq!(
        std::fs::read(&rp_file).expect("recovery point"),
        rp_bytes,
        "the open wrote no recovery point"
    );
    assert_eq!(log.recovery_point(), end, "the point on disk");
    log.checkpoint().expect("checkpoint");
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert_ne!(std::fs::read(&rp_file).expect("recovery point"), rp_bytes);
    log.close().expect("close");
}

/// An unclean open whose recovery point file is gone writes one at the log
/// end, as before: keeping "no point" would make the next recovery start at
/// the last segment's base, so after a roll the previous segment's
/// unflushed tail would lie below it, unscanned after a power loss.
#[test]
fn an_unclean_open_without_a_recovery_point_writes_one_at_the_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rp_file = dir.path().join(RECOVERY_CHECKPOINT);
    let (log, _) = Log::open(dir.path(), LogConfig::default()).expect("open");
    let written = fill(&log, 5);
    log.checkpoint().expect("checkpoint");
    let end = log.log_end_offset();
    drop(log); // no close: unclean
    std::fs::remove_file(&rp_file).expect("remove the recovery point");

    let (log, report) = Log::open(dir.path(), LogConfig::default()).expect("reopen");
    assert!(!report.clean_shutdown, "{report}");
    assert_eq!(raw_batches(&log), written);
    assert!(rp_file.exists(), "the open wrote a recovery point");
    assert_eq!(
        log.recovery_point(),
        end,
        "the point on disk is the log end"
    );
    log.close().expect("close");
}

/// A clean open opens each file of the active segment once: the `.log`
/// (for writing) and the two index files (mapped), whose mapped entries the
/// recovery plan checks; before, the plan read the index files and the
/// `.log` for the check and the open then opened all three again. Sealed
/// segments are not opened at all. The log then reads and appends as
/// before, and its indexes stay valid through another clean close.
#[test]
fn a_clean_open_opens_each_file_of_the_active_segment_once() {
    use pubsub_storage::fault::{FaultFs, FaultPlan};
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), small_config()).expect("open");
    let written = fill(&log, 40);
    assert!(log.segments().len() >= 3);
    log.close().expect("close");

    let plan = FaultPlan::new();
    let fs = std::sync::Arc::new(FaultFs::new(plan.clone()));
    let (log, report) = Log::open_with(dir.path(), small_config(), fs).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert!(report.rebuilt_indexes.is_empty(), "{report}");
    assert_eq!(plan.opens(".log"), 1, "the active .log");
    assert_eq!(plan.opens(".index"), 1, "the active offset index");
    assert_eq!(plan.opens(".timeindex"), 1, "the active time index");
    assert_eq!(raw_batches(&log), written);
    log.append(&mut simple_batch("more", 2, 9000))
        .expect("append");
    let written = raw_batches(&log);
    log.close().expect("close");
    let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
    assert!(report.clean_shutdown, "{report}");
    assert!(report.rebuilt_indexes.is_empty(), "{report}");
    assert_eq!(raw_batches(&log), written);
    log.close().expect("close");
}

/// A log in the new directory `dir`, `batches` written and flushed under
/// deferred syncs (nothing fsynced), and its end.
fn written_under_deferred_syncs(dir: &Path, batches: usize) -> (Log, u64) {
    let (log, _) = Log::open(dir, small_config()).expect("open");
    let _deferred = pubsub_storage::fs::defer_syncs();
    fill(&log, batches);
    log.flush().expect("deferred flush");
    let end = log.log_end_offset();
    (log, end)
}

/// Appends and flushes under deferred syncs fsync nothing, so they make
/// nothing durable but for their own caller, who owes a filesystem sync: a
/// producer waiting for durability meanwhile (syncs not deferred) runs a
/// round that fsyncs every segment written so (the rolls' sealed segments
/// included), and only `record_recovery_point`, called after the caller's
/// filesystem sync, marks the deferred rounds durable.
#[test]
fn a_flush_under_deferred_syncs_makes_nothing_durable_for_a_waiting_producer() {
    // Fsyncs a producer's wait for the log end makes, and the segments.
    let fsyncs_to_durable = |deferred: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = Log::open(dir.path(), small_config()).expect("open");
        let durable_at_open = log.durable_offset();
        {
            let _deferred = deferred.then(pubsub_storage::fs::defer_syncs);
            let before = pubsub_storage::fs::fsyncs_on_this_thread();
            fill(&log, 100);
            log.flush().expect("flush");
            if deferred {
                assert_eq!(pubsub_storage::fs::fsyncs_on_this_thread(), before);
            }
        }
        assert!(log.segment_count() > 2, "rolled");
        let end = log.log_end_offset();
        if deferred {
            assert_eq!(
                log.durable_offset(),
                durable_at_open,
                "nothing is durable before the deferring caller's filesystem sync"
            );
        } else {
            assert_eq!(log.durable_offset(), end);
        }
        let before = pubsub_storage::fs::fsyncs_on_this_thread();
        log.wait_durable(end - 1).expect("wait durable");
        assert_eq!(log.durable_offset(), end);
        (
            pubsub_storage::fs::fsyncs_on_this_thread() - before,
            log.segment_count() as u64,
        )
    };
    assert_eq!(fsyncs_to_durable(false).0, 0, "flushed: nothing owed");
    let (fsyncs, segments) = fsyncs_to_durable(true);
    assert!(
        fsyncs >= segments,
        "every segment written under deferred syncs is fsynced by the producer's round: {fsyncs} fsyncs, {segments} segments"
    );

    // The deferring caller syncs the filesystem, then records the point.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, end) = written_under_deferred_syncs(dir.path(), 100);
    pubsub_storage::fs::sync_filesystem(dir.path()).expect("sync the filesystem");
    log.record_recovery_point().expect("record");
    assert_eq!(log.durable_offset(), end);
    assert_eq!(log.recovery_point(), end);
    let before = pubsub_storage::fs::fsyncs_on_this_thread();
    log.wait_durable(end - 1).expect("wait durable");
    assert_eq!(
        pubsub_storage::fs::fsyncs_on_this_thread(),
        before,
        "durable since the recorded point: nothing left to fsync"
    );

    // The caller's filesystem sync failed: the deferred round is forgotten,
    // a later record marks nothing, and the next flush fsyncs it all.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, end) = written_under_deferred_syncs(dir.path(), 100);
    let durable_at_open = 0; // a new log: nothing durable before its first fsync
    log.forget_deferred();
    log.record_recovery_point().expect("record");
    assert_eq!(log.durable_offset(), durable_at_open, "nothing marked");
    let before = pubsub_storage::fs::fsyncs_on_this_thread();
    log.wait_durable(end - 1).expect("wait durable");
    assert!(
        pubsub_storage::fs::fsyncs_on_this_thread() - before >= log.segment_count() as u64,
        "every segment fsynced by the next flush"
    );
    assert_eq!(log.durable_offset(), end);
}

/// A close under deferred syncs writes its clean-shutdown marker and
/// recovery point in the same filesystem sync as whatever it flushes, so it
/// marks the log clean only when everything was flushed before the caller's
/// previous sync (the broker's close: flush all, sync, close all, sync). A
/// log appended to in between closes unmarked, its recovery point at what
/// was flushed, and its next open recovers the tail.
#[test]
fn a_close_under_deferred_syncs_marks_only_what_an_earlier_sync_covered() {
    let close_after = |append_between: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, flushed) = written_under_deferred_syncs(dir.path(), 30);
        pubsub_storage::fs::sync_filesystem(dir.path()).expect("sync");
        if append_between {
            log.append(&mut simple_batch("late", 2, 9000))
                .expect("append");
        }
        let written = raw_batches(&log);
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            log.close().expect("close");
        }
        pubsub_storage::fs::sync_filesystem(dir.path()).expect("sync");
        let marked = log.is_marked_clean();
        assert_eq!(
            dir.path().join(pubsub_storage::CLEAN_SHUTDOWN).exists(),
            marked
        );
        assert_eq!(log.recovery_point(), flushed);
        drop(log);
        let (log, report) = Log::open(dir.path(), small_config()).expect("reopen");
        assert_eq!(report.clean_shutdown, marked, "{report}");
        assert_eq!(raw_batches(&log), written, "nothing lost either way");
        marked
    };
    assert!(close_after(false), "flushed before the sync: marked clean");
    assert!(
        !close_after(true),
        "appended after the sync: closed unmarked"
    );
}
