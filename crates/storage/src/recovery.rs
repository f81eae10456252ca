//! Opening a log directory: executing the recovery plan (`plan`), phase by
//! phase in the order of docs/FORMAT.md section 6 (tidy leftovers, consume
//! the clean-shutdown marker, then open cleanly, or recover: keep, truncate
//! and drop, or refuse), and the report of what was done.

use std::fmt;
use std::sync::Arc;

use tracing::warn;

use crate::checkpoint::RecoveryCheckpoint;
use crate::error::{Result, StorageError};
use crate::fs::OpenMode;
use crate::index::IndexTracker;
use crate::layout::{segment_name, CLEAN_SHUTDOWN, DELETED_SUFFIX, LOG_SUFFIX};
use crate::plan::{self, Cut, Outcome, Scope, SegmentFile, Survey, TidyStep};
use crate::segment::{ActiveFiles, HeaderWalker, Segment, SegmentContext};

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
    /// The log start offset the checkpoint recorded (DeleteRecords may
    /// have moved it above the first segment's base), if readable.
    pub checkpointed_start: Option<u64>,
    /// The clean-shutdown marker is still on disk (see `Log::unmark`).
    pub marked: bool,
    /// Recovery scanned segments (an unclean stop), and this recovery
    /// checkpoint is what the directory holds (if a readable one): the
    /// recovery point stays there until the next checkpoint or close.
    pub scanned: Option<Option<RecoveryCheckpoint>>,
    pub report: RecoveryReport,
}

/// Opens the segments of `ctx.dir`: plans (see `plan`), then executes the
/// plan phase by phase, in the order of docs/FORMAT.md section 6.
pub(crate) fn open(ctx: &Arc<SegmentContext>) -> Result<Opened> {
    create_dir(ctx)?;
    let mut survey = plan::survey(ctx, Scope::Recovery)?;
    let active_files = survey.active_files.take();
    let plan = &survey.plan;
    let mut report = RecoveryReport {
        clean_shutdown: plan.clean_shutdown,
        recovery_point: plan.recovery_point,
        notes: plan.notes.clone(),
        ..RecoveryReport::default()
    };
    for name in &survey.unknown {
        warn!(file = %ctx.dir.join(name).display(), "ignoring unknown file in a partition directory");
    }
    tidy(ctx, &plan.tidy, &mut report)?;
    // After a clean stop the marker stays until the log first changes
    // (`Log::unmark`): opening thousands of untouched partitions removes
    // nothing. Any other outcome changes the log now, so it goes now.
    let marked = survey.marker_present && plan.outcome == Outcome::Clean;
    if survey.marker_present && !marked {
        consume_marker(ctx)?;
    }
    let (segments, tracker) = match &plan.outcome {
        Outcome::CreateEmpty { base } => create_empty(ctx, *base)?,
        Outcome::Clean => open_clean(ctx, &survey, active_files, &mut report)?,
        Outcome::Refuse(cut) => return Err(refusal(ctx, cut, plan.recovery_point)),
        Outcome::KeepAll | Outcome::Truncate { .. } => recover(ctx, &survey, &mut report)?,
    };
    let next_offset = plan
        .log_end_offset
        .ok_or_else(|| StorageError::Config("recovery plan without a log end offset".into()))?;
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
        checkpoint: if plan.outcome == Outcome::Clean {
            survey.checkpoint
        } else {
            None
        },
        checkpointed_start: survey.checkpoint.map(|c| c.log_start_offset),
        marked,
        scanned: matches!(plan.outcome, Outcome::KeepAll | Outcome::Truncate { .. })
            .then_some(survey.checkpoint),
        report,
    })
}

fn sync_dir(ctx: &SegmentContext) -> Result<()> {
    ctx.fs
        .sync_dir(&ctx.dir)
        .map_err(|e| StorageError::io("fsync directory", &ctx.dir, e))
}

/// Creates the partition directory if it is missing.
fn create_dir(ctx: &SegmentContext) -> Result<()> {
    let dir = &ctx.dir;
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
    if let Some(parent) = dir.parent() {
        ctx.fs
            .sync_dir(parent)
            .map_err(|e| StorageError::io("fsync directory", parent, e))?;
    }
    Ok(())
}

/// Rule 1: removes and restores leftover files.
fn tidy(ctx: &SegmentContext, steps: &[TidyStep], report: &mut RecoveryReport) -> Result<()> {
    for step in steps {
        match step {
            TidyStep::Remove(name) => {
                let path = ctx.dir.join(name);
                match ctx.fs.remove_file(&path) {
                    Ok(()) => report.removed_files.push(name.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("delete", path, e)),
                }
            }
            TidyStep::Restore(base) => {
                let name = segment_name(*base, LOG_SUFFIX);
                let from = ctx.dir.join(format!("{name}{DELETED_SUFFIX}"));
                ctx.fs
                    .rename(&from, &ctx.dir.join(&name))
                    .map_err(|e| StorageError::io("rename", &from, e))?;
                report.restored_files.push(name);
            }
        }
    }
    if !report.removed_files.is_empty() || !report.restored_files.is_empty() {
        sync_dir(ctx)?;
    }
    Ok(())
}

/// Removes the clean-shutdown marker before anything is written: from here
/// on a crash must look unclean.
pub(crate) fn consume_marker(ctx: &SegmentContext) -> Result<()> {
    let path = ctx.dir.join(CLEAN_SHUTDOWN);
    ctx.fs
        .remove_file(&path)
        .map_err(|e| StorageError::io("delete", &path, e))?;
    sync_dir(ctx)
}

/// No segments: one empty segment at `base`.
fn create_empty(ctx: &Arc<SegmentContext>, base: u64) -> Result<(Vec<Arc<Segment>>, IndexTracker)> {
    let seg = Segment::create(ctx, base)?;
    seg.sync(false)?;
    sync_dir(ctx)?;
    Ok((vec![Arc::new(seg)], IndexTracker::new(base)))
}

/// The first `n` segments, sealed (each ends at the next one's base) and
/// opened lazily: nothing of them is read at open.
fn lazy_sealed(ctx: &Arc<SegmentContext>, files: &[SegmentFile], n: usize) -> Vec<Arc<Segment>> {
    files[..n]
        .iter()
        .zip(&files[1..])
        .map(|(f, next)| Arc::new(Segment::sealed(ctx, f.base, f.size, next.base)))
        .collect()
}

/// Rule 2: sealed segments open lazily; the active one's indexes are
/// rebuilt if the plan found them wrong.
fn open_clean(
    ctx: &Arc<SegmentContext>,
    survey: &Survey,
    files_opened: Option<ActiveFiles>,
    report: &mut RecoveryReport,
) -> Result<(Vec<Arc<Segment>>, IndexTracker)> {
    let files = &survey.files;
    let mut segments = lazy_sealed(ctx, files, files.len().saturating_sub(1));
    let (last, check) = match (files.last(), &survey.active_index) {
        (Some(last), Some(check)) => (last, check),
        _ => {
            return Err(StorageError::Config(
                "clean open without an active segment".into(),
            ))
        }
    };
    let (active, tracker) = Segment::open_active(ctx, last.base, last.size, check, files_opened)?;
    report
        .rebuilt_indexes
        .clone_from(&survey.plan.rebuilt_indexes);
    segments.push(Arc::new(active));
    Ok((segments, tracker))
}

/// Rule 3 refuses: fsynced data is bad or missing.
fn refusal(ctx: &SegmentContext, cut: &Cut, rp: u64) -> StorageError {
    StorageError::Corrupt {
        path: ctx.path(cut.segment_base, LOG_SUFFIX),
        position: cut.position,
        reason: format!(
            "{}; offsets up to {rp} were fsynced, so this is corruption, not a torn write (nothing was deleted)",
            cut.reason_text()
        ),
    }
}

/// Rules 3 and 4 after an unclean stop: segments below the recovery point
/// open lazily; scanned ones get the indexes the scan built; the cut segment
/// is truncated and later ones deleted; everything kept is made durable
/// (the data above the recovery point fsynced, docs/FORMAT.md 6 rule 4).
fn recover(
    ctx: &Arc<SegmentContext>,
    survey: &Survey,
    report: &mut RecoveryReport,
) -> Result<(Vec<Arc<Segment>>, IndexTracker)> {
    let plan = &survey.plan;
    let files = &survey.files;
    let first = plan.first_scanned;
    let rp = plan.recovery_point;
    let mut segments = lazy_sealed(ctx, files, first);
    // Whether a file was deleted (its directory then owes an fsync).
    let mut deleted = false;
    let (last, cut) = match &plan.outcome {
        Outcome::Truncate { cut, dropped } => {
            for d in dropped {
                Segment::sealed(ctx, d.base_offset, d.bytes, d.base_offset).delete_files()?;
                deleted = true;
            }
            report.dropped_segments.clone_from(dropped);
            let at = files.iter().position(|f| f.base == cut.segment_base);
            (at.unwrap_or(files.len() - 1), Some(cut))
        }
        _ => (files.len() - 1, None),
    };
    let mut tracker = IndexTracker::new(files[last].base);
    for i in first..=last {
        let base = files[i].base;
        let scan = survey
            .scan(i)
            .ok_or_else(|| StorageError::Config(format!("recovery did not scan segment {base}")))?;
        report.segments_scanned += 1;
        report.bytes_scanned += scan.summary.valid_len;
        report.batches_scanned += scan.summary.batches;
        let path = ctx.path(base, LOG_SUFFIX);
        let file = ctx
            .fs
            .open(&path, OpenMode::ReadWrite)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let is_last = i == last;
        let mut truncated = false;
        if let Some(cut) = cut.filter(|_| is_last) {
            if cut.bytes > 0 {
                file.set_len(cut.position)
                    .map_err(|e| StorageError::io("truncate", &path, e))?;
                truncated = true;
            }
            report.truncation = Some(cut.truncation());
        }
        let end = (!is_last).then(|| files[i + 1].base);
        let seg = Segment::with_entries(
            ctx,
            base,
            file,
            scan.summary.valid_len,
            scan.file_len,
            end,
            &scan.index,
            &scan.tracker,
        )?;
        // Everything kept is now made durable, so it can count as fsynced:
        // the segment's data, unless all of it lies below the recovery
        // point (fsynced before the stop: a log killed after its last
        // flush) and nothing was cut. Indexes are derived: the next
        // recovery rebuilds what it scans, a clean close flushes them.
        let kept_end = match cut.filter(|_| is_last) {
            Some(cut) => cut.end_offset,
            None => scan.next_offset(base),
        };
        if kept_end > rp || truncated {
            seg.sync(false)?;
        }
        segments.push(Arc::new(seg));
        tracker = scan.tracker;
    }
    if deleted {
        sync_dir(ctx)?;
    }
    Ok((segments, tracker))
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
