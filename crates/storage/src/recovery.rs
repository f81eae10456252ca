//! Opening a log directory: tidy up what an interrupted operation left,
//! decide whether the last stop was clean, and if not, validate everything
//! written after the recovery point and cut off what is not whole.
//!
//! The rules (docs/FORMAT.md, "Recovery"):
//!
//! 1. `*.tmp` and `*.cleaned` files are unfinished work: removed.
//! 2. `{X}.log.deleted` was folded into a compacted segment `{B}.log`
//!    (B < X). If segment B reaches offset X the compaction committed and the
//!    file is removed; otherwise it is renamed back.
//! 3. Index files without a `.log` are removed.
//! 4. A valid clean-shutdown marker that matches the last segment's size
//!    means nothing needs scanning; the marker is then removed.
//! 5. Otherwise every segment from the one holding the recovery point on is
//!    scanned batch by batch and its indexes rebuilt. At the first invalid
//!    batch, or where a segment stops short of the next one's base offset:
//!    if that point is below the recovery point, the data had been fsynced
//!    and is now bad, so opening fails with `Corrupt` and nothing is deleted;
//!    otherwise the segment is truncated there and later segments removed,
//!    and the report says how many bytes and batches went. Without a
//!    recovery-point checkpoint, the last segment's base is assumed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use tracing::warn;

use crate::checkpoint::{Checkpoint, CleanShutdown, RecoveryCheckpoint};
use crate::error::{Result, StorageError};
use crate::fs::OpenMode;
use crate::index::IndexTracker;
use crate::layout::{
    classify, segment_name, FileKind, CLEAN_SHUTDOWN, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use crate::scan::scan;
use crate::segment::{HeaderWalker, Segment, SegmentContext};

/// Where recovery cut a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Base offset of the segment that was cut.
    pub segment_base: u64,
    /// Byte position of the cut.
    pub position: u64,
    /// Bytes removed from that segment.
    pub bytes: u64,
    /// Why: the first invalid batch, or a gap before the next segment.
    pub reason: String,
}

/// A segment recovery removed because an earlier one was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedSegment {
    /// Its base offset.
    pub base_offset: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Valid batches it held.
    pub batches: u64,
}

/// What opening a log did. Log it: anything but a clean open means data
/// written after the last fsync may be gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous close was clean and the files matched it.
    pub clean_shutdown: bool,
    /// Recovery point used (offsets below were fsynced).
    pub recovery_point: u64,
    /// Segments scanned.
    pub segments_scanned: usize,
    /// Valid bytes scanned.
    pub bytes_scanned: u64,
    /// Valid batches scanned.
    pub batches_scanned: u64,
    /// Where a segment was cut, if one was.
    pub truncation: Option<Truncation>,
    /// Segments removed after the cut.
    pub dropped_segments: Vec<DroppedSegment>,
    /// Segments whose indexes were rebuilt outside a scan.
    pub rebuilt_indexes: Vec<u64>,
    /// Leftover files removed.
    pub removed_files: Vec<String>,
    /// Files put back (an interrupted compaction).
    pub restored_files: Vec<String>,
    /// Anything else worth saying (a corrupt checkpoint, a mismatched marker).
    pub notes: Vec<String>,
    /// The log end offset after opening.
    pub log_end_offset: u64,
}

impl RecoveryReport {
    /// Bytes recovery removed (the cut tail plus dropped segments).
    pub fn lost_bytes(&self) -> u64 {
        self.truncation.as_ref().map_or(0, |t| t.bytes)
            + self.dropped_segments.iter().map(|d| d.bytes).sum::<u64>()
    }

    /// Valid batches recovery removed (in dropped segments).
    pub fn lost_batches(&self) -> u64 {
        self.dropped_segments.iter().map(|d| d.batches).sum()
    }

    /// True if recovery changed nothing on disk.
    pub fn is_clean(&self) -> bool {
        self.truncation.is_none()
            && self.dropped_segments.is_empty()
            && self.restored_files.is_empty()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clean_shutdown {
            write!(f, "clean shutdown, no recovery needed")?;
        } else {
            write!(
                f,
                "recovered from offset {}: scanned {} segment(s), {} batches, {} bytes",
                self.recovery_point,
                self.segments_scanned,
                self.batches_scanned,
                self.bytes_scanned
            )?;
        }
        if let Some(t) = &self.truncation {
            write!(
                f,
                "; truncated segment {} at byte {} ({} bytes removed: {})",
                t.segment_base, t.position, t.bytes, t.reason
            )?;
        }
        if !self.dropped_segments.is_empty() {
            write!(
                f,
                "; dropped {} later segment(s) ({} bytes, {} batches)",
                self.dropped_segments.len(),
                self.dropped_segments.iter().map(|d| d.bytes).sum::<u64>(),
                self.lost_batches()
            )?;
        }
        if !self.rebuilt_indexes.is_empty() {
            write!(f, "; rebuilt indexes of {:?}", self.rebuilt_indexes)?;
        }
        if !self.removed_files.is_empty() {
            write!(f, "; removed {:?}", self.removed_files)?;
        }
        if !self.restored_files.is_empty() {
            write!(f, "; restored {:?}", self.restored_files)?;
        }
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        write!(f, "; log end offset {}", self.log_end_offset)
    }
}

/// The opened segments and the state the writer continues from.
#[derive(Debug)]
pub(crate) struct Opened {
    pub segments: Vec<Arc<Segment>>,
    pub tracker: IndexTracker,
    pub rolling_timestamp: Option<i64>,
    pub next_offset: u64,
    pub checkpoint: Option<RecoveryCheckpoint>,
    pub report: RecoveryReport,
}

fn remove(ctx: &SegmentContext, name: &str, report: &mut RecoveryReport) -> Result<()> {
    let path = ctx.dir.join(name);
    match ctx.fs.remove_file(&path) {
        Ok(()) => {
            report.removed_files.push(name.to_string());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("delete", path, e)),
    }
}

/// Last offset held by the segment file `{base}{suffix}` (walking headers,
/// stopping at the first that does not parse).
fn last_offset_of(ctx: &SegmentContext, base: u64, suffix: &str) -> Result<Option<u64>> {
    let path = ctx.dir.join(segment_name(base, suffix));
    let file = ctx
        .fs
        .open(&path, OpenMode::ReadOnly)
        .map_err(|e| StorageError::io("open", &path, e))?;
    let len = file.len().map_err(|e| StorageError::io("stat", &path, e))?;
    let mut walker = HeaderWalker::new(file.as_ref(), &path, 0, len);
    let mut last = None;
    while let Ok(Some((_, h))) = walker.next() {
        last = Some(h.last_offset() as u64);
    }
    Ok(last)
}

/// Reads a checkpoint; a corrupt one is noted in the report and ignored
/// (the log then recovers more, never less).
fn read_or_note<C: Checkpoint>(
    ctx: &SegmentContext,
    report: &mut RecoveryReport,
) -> Result<Option<C>> {
    match C::read_from(&ctx.dir) {
        Err(StorageError::CorruptCheckpoint { path, reason }) => {
            report.notes.push(format!(
                "ignored corrupt checkpoint {}: {reason}",
                path.display()
            ));
            Ok(None)
        }
        other => other,
    }
}

fn first_batch_timestamp(seg: &Segment) -> Result<Option<i64>> {
    if seg.size() == 0 {
        return Ok(None);
    }
    let file = seg.file()?;
    let path = seg.path();
    let mut walker = HeaderWalker::new(file.as_ref(), path, 0, seg.size());
    Ok(walker.next()?.map(|(_, h)| h.max_timestamp))
}

/// Opens the segments of `ctx.dir`, recovering as the module docs say.
pub(crate) fn open(ctx: &Arc<SegmentContext>) -> Result<Opened> {
    let dir = &ctx.dir;
    let mut report = RecoveryReport::default();
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
        if let Some(parent) = dir.parent() {
            ctx.fs
                .sync_dir(parent)
                .map_err(|e| StorageError::io("fsync directory", parent, e))?;
        }
    }
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();

    let mut logs = BTreeSet::new();
    let mut indexes: Vec<(u64, String)> = Vec::new();
    let mut deleted = Vec::new();
    let mut marker_present = false;
    for name in &names {
        match classify(name) {
            FileKind::Log(b) => {
                logs.insert(b);
            }
            FileKind::Index(b) | FileKind::TimeIndex(b) => indexes.push((b, name.clone())),
            FileKind::Cleaned | FileKind::Temporary => remove(ctx, name, &mut report)?,
            FileKind::DeletedLog(b) => deleted.push(b),
            FileKind::CleanShutdown => marker_present = true,
            FileKind::RecoveryCheckpoint => {}
            FileKind::Unknown => {
                warn!(file = %dir.join(name).display(), "ignoring unknown file in a partition directory")
            }
        }
    }

    // An interrupted compaction: did it commit?
    for x in deleted {
        let deleted_name = format!("{}{DELETED_SUFFIX}", segment_name(x, LOG_SUFFIX));
        let owner = logs.range(..x).next_back().copied();
        let committed = match owner {
            Some(b) => last_offset_of(ctx, b, LOG_SUFFIX)?.is_some_and(|last| last >= x),
            None => false,
        };
        if committed || logs.contains(&x) {
            remove(ctx, &deleted_name, &mut report)?;
        } else {
            let from = dir.join(&deleted_name);
            let to = dir.join(segment_name(x, LOG_SUFFIX));
            ctx.fs
                .rename(&from, &to)
                .map_err(|e| StorageError::io("rename", &from, e))?;
            report.restored_files.push(segment_name(x, LOG_SUFFIX));
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove(ctx, &segment_name(x, suffix), &mut report)?;
            }
            logs.insert(x);
        }
    }
    for (base, name) in indexes {
        if !logs.contains(&base) {
            remove(ctx, &name, &mut report)?;
        }
    }
    if !report.removed_files.is_empty() || !report.restored_files.is_empty() {
        ctx.fs
            .sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
    }

    let marker: Option<CleanShutdown> = read_or_note(ctx, &mut report)?;
    let rcp: Option<RecoveryCheckpoint> = read_or_note(ctx, &mut report)?;
    if marker_present {
        // Consumed before anything is written: from here on a crash must
        // look unclean.
        let path = dir.join(CLEAN_SHUTDOWN);
        ctx.fs
            .remove_file(&path)
            .map_err(|e| StorageError::io("delete", &path, e))?;
        ctx.fs
            .sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
    }
    if logs.is_empty() {
        let base = rcp.map_or(0, |c| c.recovery_point.max(c.log_start_offset));
        let seg = Segment::create(ctx, base)?;
        seg.sync(false)?;
        ctx.fs
            .sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
        report.clean_shutdown = marker.is_some() || rcp.is_none();
        report.recovery_point = base;
        report.log_end_offset = base;
        return Ok(Opened {
            segments: vec![Arc::new(seg)],
            tracker: IndexTracker::new(base),
            rolling_timestamp: None,
            next_offset: base,
            checkpoint: None,
            report,
        });
    }

    let bases: Vec<u64> = logs.into_iter().collect();
    let mut sizes = BTreeMap::new();
    for &b in &bases {
        let path = ctx.path(b, LOG_SUFFIX);
        let len = std::fs::metadata(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?
            .len();
        sizes.insert(b, len);
    }
    let last_base = bases[bases.len() - 1];
    let clean = match marker {
        Some(m)
            if m.active_segment_base == last_base
                && Some(&m.active_segment_size) == sizes.get(&last_base) =>
        {
            true
        }
        Some(_) => {
            report
                .notes
                .push("clean-shutdown marker does not match the segments; recovering".into());
            false
        }
        None => false,
    };

    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let tracker;
    let next_offset;
    if clean {
        for w in bases.windows(2) {
            segments.push(Arc::new(Segment::sealed(ctx, w[0], sizes[&w[0]], w[1])));
        }
        let (active, t, rebuilt) = Segment::open_active(ctx, last_base, sizes[&last_base])?;
        if let Some(reason) = rebuilt {
            report.rebuilt_indexes.push(last_base);
            report
                .notes
                .push(format!("active segment index rebuilt: {reason}"));
        }
        next_offset = last_offset_of(ctx, last_base, LOG_SUFFIX)?.map_or(last_base, |l| l + 1);
        tracker = t;
        segments.push(Arc::new(active));
        report.clean_shutdown = true;
        report.recovery_point = next_offset;
    } else {
        let rp = rcp.map_or(last_base, |c| c.recovery_point).max(bases[0]);
        report.recovery_point = rp;
        let first_scanned = bases.iter().rposition(|&b| b <= rp).unwrap_or(0);
        for i in 0..first_scanned {
            segments.push(Arc::new(Segment::sealed(
                ctx,
                bases[i],
                sizes[&bases[i]],
                bases[i + 1],
            )));
        }
        let mut carried = None;
        for i in first_scanned..bases.len() {
            let base = bases[i];
            let mut r = Segment::rescan(ctx, base)?;
            report.segments_scanned += 1;
            report.bytes_scanned += r.summary.valid_len;
            report.batches_scanned += r.summary.batches;
            let expected_next = r.summary.last_offset.map_or(base, |l| l + 1);
            let is_last = i + 1 == bases.len();
            let cut = match &r.summary.stop {
                Some(stop) => Some((stop.position, stop.reason.clone())),
                None if !is_last && expected_next != bases[i + 1] => Some((
                    r.summary.valid_len,
                    format!(
                        "segment ends before offset {} where the next segment starts (next expected {expected_next})",
                        bases[i + 1]
                    ),
                )),
                None if is_last && expected_next < rp => Some((
                    r.summary.valid_len,
                    format!("log ends at offset {expected_next}"),
                )),
                None => None,
            };
            let path = ctx.path(base, LOG_SUFFIX);
            if let Some((position, reason)) = cut {
                if expected_next < rp {
                    return Err(StorageError::Corrupt {
                        path,
                        position,
                        reason: format!(
                            "{reason}; offsets up to {rp} were fsynced, so this is corruption, not a torn write (nothing was deleted)"
                        ),
                    });
                }
                let removed = r.file_len - position;
                if removed > 0 {
                    r.file
                        .set_len(position)
                        .map_err(|e| StorageError::io("truncate", &path, e))?;
                }
                report.truncation = Some(Truncation {
                    segment_base: base,
                    position,
                    bytes: removed,
                    reason,
                });
                for &later in &bases[i + 1..] {
                    let lpath = ctx.path(later, LOG_SUFFIX);
                    let file = ctx
                        .fs
                        .open(&lpath, OpenMode::ReadOnly)
                        .map_err(|e| StorageError::io("open", &lpath, e))?;
                    let len = sizes[&later];
                    let summary = scan(file.as_ref(), len, later, |_| {})
                        .map_err(|e| StorageError::io("read", &lpath, e))?;
                    report.dropped_segments.push(DroppedSegment {
                        base_offset: later,
                        bytes: len,
                        batches: summary.batches,
                    });
                    Segment::sealed(ctx, later, len, later).delete_files()?;
                }
                carried = Some((r, expected_next, base));
                break;
            }
            if is_last {
                carried = Some((r, expected_next, base));
                break;
            }
            r.tracker.on_seal(&mut r.index, base)?;
            r.index.trim()?;
            r.index.flush()?;
            let seg = Segment::from_parts(
                ctx,
                base,
                r.file,
                r.index,
                r.summary.valid_len,
                Some(bases[i + 1]),
                &r.tracker,
            );
            seg.sync(false)?;
            segments.push(Arc::new(seg));
        }
        let Some((r, expected_next, base)) = carried else {
            return Err(StorageError::Config(
                "recovery found no last segment".into(),
            ));
        };
        let seg = Segment::from_parts(
            ctx,
            base,
            r.file,
            r.index,
            r.summary.valid_len,
            None,
            &r.tracker,
        );
        // Everything kept is now made durable, so it can count as fsynced.
        seg.sync(true)?;
        tracker = r.tracker;
        next_offset = expected_next;
        segments.push(Arc::new(seg));
        ctx.fs
            .sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
    }

    let rolling_timestamp = match segments.last() {
        Some(s) => first_batch_timestamp(s)?,
        None => None,
    };
    report.log_end_offset = next_offset;
    Ok(Opened {
        segments,
        tracker,
        rolling_timestamp,
        next_offset,
        checkpoint: if clean { rcp } else { None },
        report,
    })
}
