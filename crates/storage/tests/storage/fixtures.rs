//! Committed fixtures in `data/fixtures/storage/`: a golden log and damaged
//! copies of it. Each is opened (from a copy) and the outcome checked; the
//! golden log is also regenerated and compared byte for byte, so a change to
//! the on-disk format cannot go unnoticed.
//!
//! Regenerate after an intended format change with
//! `PUBSUB_WRITE_FIXTURES=1 cargo test -p pubsub-storage fixtures`
//! (and update docs/FORMAT.md).

use std::path::{Path, PathBuf};

use pubsub_records::{BatchBuilder, NewRecord};
use pubsub_storage::checkpoint::{Checkpoint, RecoveryCheckpoint};
use pubsub_storage::fs::RealFs;
use pubsub_storage::{check, Log, LogConfig, Outcome, StorageError, CLEAN_SHUTDOWN};

use crate::common::*;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fixtures/storage")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        max_index_bytes: 4096,
        segment_ms: None,
        retention_ms: None,
        ..LogConfig::default()
    }
}

const BATCHES: u64 = 40;

/// The golden content: batch `i` holds `1 + i % 4` records.
fn golden_batch(i: u64) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for j in 0..1 + i % 4 {
        let key = format!("key-{}", i % 7);
        let value = format!("value-{i}-{j}");
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000 + (i * 1000 + j) as i64,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    b.build().expect("build")
}

fn golden_records() -> Vec<Rec> {
    let mut out = Vec::new();
    for i in 0..BATCHES {
        let mut bytes = golden_batch(i);
        pubsub_records::BatchMut::parse(&mut bytes)
            .expect("batch")
            .set_base_offset(out.len() as i64);
        out.extend(records_in(&bytes));
    }
    out
}

fn write_golden(dir: &Path) {
    let (log, _) = Log::open(dir, config()).expect("open");
    for i in 0..BATCHES {
        log.append(&mut golden_batch(i)).expect("append");
    }
    log.close().expect("close");
}

fn seg(dir: &Path, base: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}{suffix}"))
}

fn bases(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| {
            let name = e.expect("e").file_name().into_string().expect("utf8");
            name.strip_suffix(".log").and_then(|b| b.parse().ok())
        })
        .collect();
    v.sort_unstable();
    v
}

fn set_recovery_point(dir: &Path, rp: u64) {
    RecoveryCheckpoint {
        recovery_point: rp,
        log_start_offset: 0,
    }
    .write_to(&RealFs, dir)
    .expect("checkpoint");
}

/// Byte length of the last batch of a segment file.
fn last_batch_len(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("read");
    let mut last = 0;
    for b in pubsub_records::Batches::new(&bytes) {
        last = b.expect("batch").len() as u64;
    }
    last
}

/// Makes each damaged fixture from a copy of the golden log.
fn derive(name: &str, golden: &Path, out: &Path) {
    copy_dir(golden, out);
    let b = bases(out);
    let active = b[b.len() - 1];
    let unclean = || std::fs::remove_file(out.join(CLEAN_SHUTDOWN)).expect("rm marker");
    match name {
        "torn-tail" => {
            unclean();
            set_recovery_point(out, active);
            let path = seg(out, active, ".log");
            let len = std::fs::metadata(&path).expect("stat").len();
            let cut = last_batch_len(&path) / 2;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            f.set_len(len - cut).expect("cut");
        }
        "garbage-tail" => {
            unclean();
            let path = seg(out, active, ".log");
            let mut bytes = std::fs::read(&path).expect("read");
            bytes.extend((0..100u32).map(|i| (i * 37 + 11) as u8));
            std::fs::write(&path, bytes).expect("write");
        }
        "bitflip-tail" => {
            unclean();
            set_recovery_point(out, active);
            let path = seg(out, active, ".log");
            let mut bytes = std::fs::read(&path).expect("read");
            let at = bytes.len() - 5;
            bytes[at] ^= 0x10;
            std::fs::write(&path, bytes).expect("write");
        }
        "bitflip-sealed" => {
            unclean();
            set_recovery_point(out, active);
            let path = seg(out, b[0], ".log");
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[300] ^= 0x01;
            std::fs::write(&path, bytes).expect("write");
        }
        "missing-index" => {
            std::fs::remove_file(seg(out, b[1], ".index")).expect("rm");
            std::fs::remove_file(seg(out, b[1], ".timeindex")).expect("rm");
        }
        "truncated-index" => {
            let index = seg(out, b[0], ".index");
            let bytes = std::fs::read(&index).expect("read");
            std::fs::write(&index, &bytes[..bytes.len() - 3]).expect("write");
            let time = seg(out, b[1], ".timeindex");
            let bytes = std::fs::read(&time).expect("read");
            std::fs::write(&time, &bytes[..bytes.len() - 12]).expect("write");
        }
        other => panic!("unknown fixture {other}"),
    }
}

const DAMAGED: [&str; 6] = [
    "torn-tail",
    "garbage-tail",
    "bitflip-tail",
    "bitflip-sealed",
    "missing-index",
    "truncated-index",
];

fn regenerate() {
    let root = fixtures_root();
    let _ = std::fs::remove_dir_all(&root);
    let golden = root.join("golden");
    write_golden(&golden);
    for name in DAMAGED {
        derive(name, &golden, &root.join(name));
    }
}

fn open_copy(
    name: &str,
) -> (
    tempfile::TempDir,
    Result<(Log, pubsub_storage::RecoveryReport), StorageError>,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures_root().join(name), tmp.path());
    let opened = Log::open(tmp.path(), config());
    (tmp, opened)
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| {
            let e = e.expect("e");
            (
                e.file_name().into_string().expect("utf8"),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn fixtures_open_as_specified() {
    if std::env::var_os("PUBSUB_WRITE_FIXTURES").is_some() {
        regenerate();
    }
    let golden = fixtures_root().join("golden");
    assert!(
        golden.exists(),
        "missing fixtures: run with PUBSUB_WRITE_FIXTURES=1"
    );
    let expected = golden_records();
    let active = *bases(&golden).last().expect("segments");
    assert!(
        bases(&golden).len() >= 3,
        "golden log should have several segments"
    );

    // The format has not changed: writing the same data gives the same bytes.
    let fresh = tempfile::tempdir().expect("tempdir");
    write_golden(fresh.path());
    assert!(
        files_of(fresh.path()) == files_of(&golden),
        "the on-disk format changed: update docs/FORMAT.md and regenerate the fixtures"
    );
    let report = check(&golden, &config()).expect("check");
    assert!(report.is_healthy() && report.clean_shutdown, "{report}");

    // golden: clean open, every record, lookups.
    let (_t, opened) = open_copy("golden");
    let (log, report) = opened.expect("open golden");
    assert!(report.clean_shutdown, "{report}");
    assert_eq!(read_all(&log), expected);
    let ts = expected[50].timestamp;
    assert_eq!(
        log.offset_for_timestamp(ts).expect("ts").map(|t| t.offset),
        Some(50)
    );

    // torn-tail: the half-written last batch is cut; everything before stays.
    let last_batch_records = 1 + (BATCHES - 1) % 4;
    let (t, opened) = open_copy("torn-tail");
    let (log, report) = opened.expect("open torn-tail");
    let cut = report.truncation.as_ref().expect("truncated");
    assert_eq!(cut.segment_base, active);
    let whole = std::fs::metadata(seg(&golden, active, ".log"))
        .expect("stat")
        .len();
    assert_eq!(
        cut.position,
        whole - last_batch_len(&seg(&golden, active, ".log"))
    );
    assert_eq!(
        read_all(&log),
        expected[..expected.len() - last_batch_records as usize]
    );
    drop((log, t));

    // garbage-tail: exactly the 100 garbage bytes go.
    let (_t, opened) = open_copy("garbage-tail");
    let (log, report) = opened.expect("open garbage-tail");
    let cut = report.truncation.as_ref().expect("truncated");
    assert_eq!((cut.position, cut.bytes), (whole, 100));
    assert_eq!(read_all(&log), expected);

    // bitflip-tail: the last batch fails its CRC above the recovery point: cut.
    let (_t, opened) = open_copy("bitflip-tail");
    let (log, report) = opened.expect("open bitflip-tail");
    let cut = report.truncation.as_ref().expect("truncated");
    assert!(cut.reason.contains("CRC"), "{}", cut.reason);
    assert_eq!(
        read_all(&log),
        expected[..expected.len() - last_batch_records as usize]
    );

    // bitflip-sealed: a sealed segment below the recovery point is corrupt.
    // `check` reports it; opening does not scan or delete it; and when the
    // recovery point says it was fsynced, open refuses instead of cutting.
    let sealed = fixtures_root().join("bitflip-sealed");
    let report = check(&sealed, &config()).expect("check");
    let bad = &report.segments[0];
    assert!(
        bad.invalid
            .as_ref()
            .is_some_and(|p| p.reason.contains("CRC")),
        "{report}"
    );
    assert!(
        report.recovery_action().contains("scan 1 segment"),
        "{report}"
    );
    let (t, opened) = open_copy("bitflip-sealed");
    let (log, report) = opened.expect("open bitflip-sealed");
    assert!(report.is_clean(), "sealed data is never cut: {report}");
    assert_eq!(log.segments().len(), bases(&golden).len());
    drop(log);
    // A recovery point inside segment 0, past the flipped batch: that batch
    // had been fsynced.
    set_recovery_point(t.path(), bases(&golden)[1] - 1);
    match Log::open(t.path(), config()) {
        Err(StorageError::Corrupt {
            position, reason, ..
        }) => {
            assert!(reason.contains("CRC"), "{reason}");
            assert!(position <= 300);
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|(_, r)| r)),
    }
    assert_eq!(
        std::fs::read(seg(t.path(), 0, ".log")).expect("read"),
        std::fs::read(seg(&sealed, 0, ".log")).expect("read"),
        "nothing was deleted"
    );

    // missing-index and truncated-index: rebuilt, identical to the golden ones.
    for name in ["missing-index", "truncated-index"] {
        let report = check(&fixtures_root().join(name), &config()).expect("check");
        assert!(!report.is_healthy(), "{name}: {report}");
        let (t, opened) = open_copy(name);
        let (log, report) = opened.unwrap_or_else(|e| panic!("open {name}: {e}"));
        assert!(report.clean_shutdown, "{name}: {report}");
        assert_eq!(read_all(&log), expected, "{name}");
        for b in bases(&golden) {
            for suffix in [".index", ".timeindex"] {
                if b == active {
                    continue; // the active segment's indexes were never damaged
                }
                assert_eq!(
                    std::fs::read(seg(t.path(), b, suffix)).expect("rebuilt"),
                    std::fs::read(seg(&golden, b, suffix)).expect("golden"),
                    "{name}: {b}{suffix}"
                );
            }
        }
    }
}

/// Opens a copy of `dir` and checks that it does exactly what the recovery
/// plan `check` reports for `dir` says.
fn assert_open_follows_plan(name: &str, dir: &Path) {
    let plan = check(dir, &config())
        .unwrap_or_else(|e| panic!("{name}: check: {e}"))
        .plan;
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(dir, tmp.path());
    let opened = Log::open(tmp.path(), config());
    if let Outcome::Refuse(cut) = &plan.outcome {
        match opened {
            Err(StorageError::Corrupt { position, .. }) => {
                assert_eq!(position, cut.position, "{name}: {plan:?}")
            }
            other => panic!(
                "{name}: the plan refuses ({plan}), open gave {:?}",
                other.map(|(_, r)| r)
            ),
        }
        return;
    }
    let (log, report) = opened.unwrap_or_else(|e| panic!("{name}: open: {e} (plan: {plan})"));
    assert_eq!(report.truncation, plan.truncation(), "{name}");
    assert_eq!(report.dropped_segments, plan.dropped_segments(), "{name}");
    assert_eq!(report.rebuilt_indexes, plan.rebuilt_indexes, "{name}");
    assert_eq!(report.removed_files, plan.removed_files(), "{name}");
    assert_eq!(report.restored_files, plan.restored_files(), "{name}");
    assert_eq!(report.clean_shutdown, plan.clean_shutdown, "{name}");
    assert_eq!(report.recovery_point, plan.recovery_point, "{name}");
    assert_eq!(report.notes, plan.notes, "{name}");
    assert_eq!(Some(report.log_end_offset), plan.log_end_offset, "{name}");
    // The resulting log: the planned segments less the dropped ones, the cut
    // one ending at the cut, the log end where the plan said.
    assert_eq!(Some(log.log_end_offset()), plan.log_end_offset, "{name}");
    let dropped: Vec<u64> = plan
        .dropped_segments()
        .iter()
        .map(|d| d.base_offset)
        .collect();
    let kept: Vec<u64> = plan
        .segments
        .iter()
        .copied()
        .filter(|b| !dropped.contains(b))
        .collect();
    let segments = log.segments();
    let bases: Vec<u64> = segments.iter().map(|s| s.base_offset).collect();
    assert_eq!(bases, kept, "{name}");
    if let Some(cut) = plan.truncation() {
        let cut_segment = segments.iter().find(|s| s.base_offset == cut.segment_base);
        assert_eq!(cut_segment.map(|s| s.size), Some(cut.position), "{name}");
    }
    log.close().expect("close");
    let after = check(tmp.path(), &config()).expect("check after open");
    assert_eq!(after.plan.outcome, Outcome::Clean, "{name}: {after}");
}

#[test]
fn recovery_plan_and_open_agree_on_every_fixture() {
    let root = fixtures_root();
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("ls fixtures")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    assert!(names.len() > DAMAGED.len(), "{names:?}");
    for name in &names {
        assert_open_follows_plan(name, &root.join(name));
    }
    // bitflip-sealed with a recovery point past the flipped batch: refused.
    let refused = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("bitflip-sealed"), refused.path());
    set_recovery_point(refused.path(), bases(refused.path())[1] - 1);
    let plan = check(refused.path(), &config()).expect("check").plan;
    assert!(matches!(plan.outcome, Outcome::Refuse(_)), "{plan}");
    assert_open_follows_plan("bitflip-sealed, fsynced", refused.path());
}
