//! The recovery plan: what opening a log will do, decided once from what is
//! on disk, without changing anything (for an open after a clean stop the
//! active segment's files are opened as the log keeps them, its missing
//! index files then created empty, as the open would). `Log::open`
//! executes it (`recovery`), `check` reports it, so the two cannot
//! disagree.
//!
//! The plan follows docs/FORMAT.md section 6 in order:
//!
//! 1. leftovers: `*.tmp` and `*.cleaned` are removed; `{X}.log.deleted` is
//!    removed if the segment below X reaches offset X (the compaction
//!    committed), else renamed back; index files without a `.log` are
//!    removed;
//! 2. a valid clean-shutdown marker that names the last segment's base and
//!    size means a clean stop: nothing is scanned, the active segment's
//!    indexes are checked (4.2) and rebuilt if wrong;
//! 3. otherwise every segment from the one holding the recovery point `rp`
//!    is scanned. At the first invalid batch, where a segment ends before the
//!    next one's base, or where the last one ends below `rp`, the log is cut:
//!    below `rp` that is corruption and open refuses; at or above `rp` the
//!    segment is truncated there and every later one dropped;
//! 4. everything kept is made durable (done by `recovery`: the data above
//!    the recovery point is fsynced).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::checkpoint::{Checkpoint, CleanShutdown, RecoveryCheckpoint};
use crate::error::{Result, StorageError};
use crate::fs::OpenMode;
use crate::index::{IndexTracker, MemIndex, OffsetEntry, StoredIndex, TimeEntry};
use crate::layout::{
    classify, segment_name, FileKind, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::recovery::{DroppedSegment, Truncation};
use crate::scan::ScanSummary;
use crate::segment::{
    check_indexes, scan_and_index, ActiveFiles, HeaderWalker, IndexCheck, SegmentContext,
    SegmentData, MAX_SPAN,
};

/// One step of tidying the directory (rule 1), in the order it is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TidyStep {
    /// Remove this leftover file.
    Remove(String),
    /// Rename `{base}.log.deleted` back to `{base}.log` (a compaction that
    /// did not commit).
    Restore(u64),
}

/// Why recovery cuts the log at a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutReason {
    /// The first invalid batch, and why it is invalid.
    Invalid(String),
    /// The segment ends before the next segment's base offset.
    Gap {
        /// The offset after the segment's last batch.
        next_expected: u64,
        /// The next segment's base offset.
        next_base: u64,
    },
    /// The last segment ends below the recovery point.
    EndsBelowRecoveryPoint,
}

/// A point where recovery cuts the log (or refuses to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Base offset of the segment cut.
    pub segment_base: u64,
    /// Byte position of the cut.
    pub position: u64,
    /// Bytes from the cut to the end of that segment's file.
    pub bytes: u64,
    /// The offset after the last valid batch before the cut.
    pub end_offset: u64,
    /// Why.
    pub reason: CutReason,
}

impl Cut {
    /// Recovery's wording of the reason (the report's and the error's).
    pub fn reason_text(&self) -> String {
        match &self.reason {
            CutReason::Invalid(why) => why.clone(),
            CutReason::Gap {
                next_expected,
                next_base,
            } => format!(
                "segment ends before offset {next_base} where the next segment starts (next expected {next_expected})"
            ),
            CutReason::EndsBelowRecoveryPoint => format!("log ends at offset {}", self.end_offset),
        }
    }

    /// The truncation this cut makes.
    pub fn truncation(&self) -> Truncation {
        Truncation {
            segment_base: self.segment_base,
            position: self.position,
            bytes: self.bytes,
            reason: self.reason_text(),
        }
    }
}

/// What recovery does with the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No segments: one empty segment is created at `base`.
    CreateEmpty {
        /// Its base offset.
        base: u64,
    },
    /// A clean stop (rule 2): nothing is scanned.
    Clean,
    /// Every scanned segment is whole: everything is kept.
    KeepAll,
    /// A torn write (rule 3): one segment is truncated, later ones dropped.
    Truncate {
        /// Where.
        cut: Cut,
        /// The segments after it.
        dropped: Vec<DroppedSegment>,
    },
    /// Fsynced data is bad or missing (rule 3): open fails with `Corrupt`
    /// and changes no segment.
    Refuse(Cut),
}

/// What opening the log will do, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Rule 1: leftover files removed or put back, in order.
    pub tidy: Vec<TidyStep>,
    /// The stop was clean (or there is nothing to recover).
    pub clean_shutdown: bool,
    /// The recovery point used: offsets below it were fsynced.
    pub recovery_point: u64,
    /// Base offsets of the segments after tidying, oldest first.
    pub segments: Vec<u64>,
    /// Index (in `segments`) of the first segment scanned (rule 3).
    pub first_scanned: usize,
    /// What happens to the segments.
    pub outcome: Outcome,
    /// Segments whose indexes are rebuilt outside a scan (the active one
    /// after a clean stop, if its indexes are wrong).
    pub rebuilt_indexes: Vec<u64>,
    /// Anything else worth saying (a corrupt checkpoint, a mismatched marker).
    pub notes: Vec<String>,
    /// The log end offset after opening (`None` if open refuses).
    pub log_end_offset: Option<u64>,
}

impl RecoveryPlan {
    /// Files removed by tidying.
    pub fn removed_files(&self) -> Vec<String> {
        let removed = self.tidy.iter().filter_map(|s| match s {
            TidyStep::Remove(name) => Some(name.clone()),
            TidyStep::Restore(_) => None,
        });
        removed.collect()
    }

    /// Files put back by tidying.
    pub fn restored_files(&self) -> Vec<String> {
        let restored = self.tidy.iter().filter_map(|s| match s {
            TidyStep::Restore(base) => Some(segment_name(*base, LOG_SUFFIX)),
            TidyStep::Remove(_) => None,
        });
        restored.collect()
    }

    /// Where a segment is truncated, if one is.
    pub fn truncation(&self) -> Option<Truncation> {
        match &self.outcome {
            Outcome::Truncate { cut, .. } => Some(cut.truncation()),
            _ => None,
        }
    }

    /// Segments dropped after the truncation.
    pub fn dropped_segments(&self) -> &[DroppedSegment] {
        match &self.outcome {
            Outcome::Truncate { dropped, .. } => dropped,
            _ => &[],
        }
    }

    /// True if open refuses because the log ends below its recovery point
    /// (whole fsynced batches are missing).
    pub fn ends_below_recovery_point(&self) -> bool {
        matches!(
            &self.outcome,
            Outcome::Refuse(Cut {
                reason: CutReason::EndsBelowRecoveryPoint,
                ..
            })
        )
    }

    /// What opening the log would do, in one sentence (what `check` says).
    pub fn action(&self) -> String {
        let rp = self.recovery_point;
        match &self.outcome {
            Outcome::CreateEmpty { .. } => "open would create an empty log".into(),
            Outcome::Clean => "clean shutdown: open would not scan anything (indexes with problems are rebuilt when first used)".into(),
            Outcome::KeepAll => format!(
                "open would scan {} segment(s) from the recovery point {rp} and keep everything",
                self.segments.len() - self.first_scanned
            ),
            Outcome::Truncate { cut, dropped } => format!(
                "open would truncate segment {} at byte {} ({} bytes: {}) and drop {} later segment(s)",
                cut.segment_base,
                cut.position,
                cut.bytes,
                check_wording(cut),
                dropped.len()
            ),
            Outcome::Refuse(cut) if cut.reason == CutReason::EndsBelowRecoveryPoint => format!(
                "open would fail: the log ends at offset {}, below the recovery point {rp} (fsynced data is missing)",
                cut.end_offset
            ),
            Outcome::Refuse(cut) => format!(
                "open would fail: segment {} is corrupt at byte {} ({}) below the recovery point {rp}",
                cut.segment_base,
                cut.position,
                check_wording(cut)
            ),
        }
    }
}

impl fmt::Display for RecoveryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.action())
    }
}

/// `check`'s wording of a cut's reason (its GAP column).
fn check_wording(cut: &Cut) -> String {
    match &cut.reason {
        CutReason::Gap {
            next_expected,
            next_base,
        } => gap_text(*next_expected, *next_base),
        _ => cut.reason_text(),
    }
}

/// How `check` describes a segment ending before the next one starts.
pub(crate) fn gap_text(next_expected: u64, next_base: u64) -> String {
    format!("ends before offset {next_expected} (next segment starts at {next_base})")
}

/// How much of the log the plan scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// What recovery needs: from the recovery point on, after an unclean stop.
    Recovery,
    /// Every segment (`check`).
    Everything,
}

/// A `.log` file of the tidied directory.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub base: u64,
    pub size: u64,
    /// Where its bytes are now (`.log`, or `.log.deleted` before a restore).
    pub path: PathBuf,
}

/// A segment the plan scanned: its valid prefix and the indexes the
/// indexing rule gives it.
#[derive(Debug)]
pub(crate) struct ScannedSegment {
    pub file_len: u64,
    pub summary: ScanSummary,
    pub index: MemIndex,
    pub tracker: IndexTracker,
}

impl ScannedSegment {
    /// The offset after its last valid batch.
    pub fn next_offset(&self, base: u64) -> u64 {
        self.summary.last_offset.map_or(base, |l| l + 1)
    }
}

/// The plan and what was read to make it.
#[derive(Debug)]
pub(crate) struct Survey {
    pub plan: RecoveryPlan,
    /// The segments after tidying.
    pub files: Vec<SegmentFile>,
    /// Scans of `files[scan_from..]`.
    pub scans: Vec<ScannedSegment>,
    pub scan_from: usize,
    /// A clean-shutdown marker file is present (valid or not).
    pub marker_present: bool,
    /// The marker is valid and names the last segment's base and size.
    pub marker_matches: bool,
    pub checkpoint: Option<RecoveryCheckpoint>,
    /// Unreadable checkpoints, as errors.
    pub checkpoint_problems: Vec<String>,
    /// Leftover files (temporaries, compaction leftovers), by name.
    pub leftovers: Vec<String>,
    /// Files of no known kind.
    pub unknown: Vec<String>,
    /// After a clean stop: the check of the active segment's indexes.
    pub active_index: Option<IndexCheck>,
    /// After a clean stop, for recovery: the active segment's files the
    /// check read, kept open for the log (see [`ActiveFiles`]).
    pub active_files: Option<ActiveFiles>,
}

impl Survey {
    /// The scan of `files[i]`, if it was scanned.
    pub fn scan(&self, i: usize) -> Option<&ScannedSegment> {
        i.checked_sub(self.scan_from)
            .and_then(|k| self.scans.get(k))
    }
}

/// Reads a checkpoint; a corrupt one is noted and ignored (the log then
/// recovers more, never less).
fn read_or_note<C: Checkpoint>(
    ctx: &SegmentContext,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Result<Option<C>> {
    match C::read_from(&ctx.dir) {
        Err(e @ StorageError::CorruptCheckpoint { .. }) => {
            if let StorageError::CorruptCheckpoint { path, reason } = &e {
                notes.push(format!(
                    "ignored corrupt checkpoint {}: {reason}",
                    path.display()
                ));
            }
            problems.push(e.to_string());
            Ok(None)
        }
        other => other,
    }
}

/// Last offset held by the segment file at `path` (walking headers,
/// stopping at the first that does not parse).
fn last_offset_in(ctx: &SegmentContext, path: &std::path::Path) -> Result<Option<u64>> {
    let file = ctx
        .fs
        .open(path, OpenMode::ReadOnly)
        .map_err(|e| StorageError::io("open", path, e))?;
    let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
    let mut walker = HeaderWalker::new(file.as_ref(), path, 0, len);
    let mut last = None;
    while let Ok(Some((_, h))) = walker.next() {
        last = Some(h.last_offset() as u64);
    }
    Ok(last)
}

/// Scans a segment file whole, validating every batch and building its
/// indexes in memory.
fn scan_segment(ctx: &SegmentContext, file: &SegmentFile) -> Result<ScannedSegment> {
    let path = &file.path;
    let handle = ctx
        .fs
        .open(path, OpenMode::ReadOnly)
        .map_err(|e| StorageError::io("open", path, e))?;
    let file_len = handle
        .len()
        .map_err(|e| StorageError::io("stat", path, e))?;
    let mut index = MemIndex::default();
    let (summary, tracker) = scan_and_index(
        handle.as_ref(),
        path,
        file_len,
        file.base,
        ctx.index_interval,
        &mut index,
    )?;
    Ok(ScannedSegment {
        file_len,
        summary,
        index,
        tracker,
    })
}

/// Checks the active segment's indexes as open will find them (rule 2): as
/// they are on disk, or none if the segment is put back from `.log.deleted`
/// (rule 1 removes its index files).
fn check_active_index(ctx: &SegmentContext, file: &SegmentFile) -> Result<IndexCheck> {
    let fs = ctx.fs.as_ref();
    let restored = file.path != ctx.path(file.base, LOG_SUFFIX);
    let (offsets, times) = if restored {
        (
            StoredIndex::<OffsetEntry>::empty(),
            StoredIndex::<TimeEntry>::empty(),
        )
    } else {
        (
            StoredIndex::read(fs, &ctx.path(file.base, INDEX_SUFFIX))?,
            StoredIndex::read(fs, &ctx.path(file.base, TIME_INDEX_SUFFIX))?,
        )
    };
    let handle = ctx
        .fs
        .open(&file.path, OpenMode::ReadOnly)
        .map_err(|e| StorageError::io("open", &file.path, e))?;
    let data = SegmentData {
        file: handle.as_ref(),
        path: &file.path,
        base: file.base,
        size: file.size,
        span: MAX_SPAN,
        interval: ctx.index_interval,
    };
    check_indexes(&offsets, &times, data, false)
}

/// Where rule 3 cuts the log, looking at the scanned segment `i`.
fn cut_in(files: &[SegmentFile], i: usize, scan: &ScannedSegment, rp: u64) -> Option<Cut> {
    let base = files[i].base;
    let next = scan.next_offset(base);
    let valid = scan.summary.valid_len;
    let (position, reason) = match (&scan.summary.stop, files.get(i + 1)) {
        (Some(stop), _) => (stop.position, CutReason::Invalid(stop.reason.clone())),
        (None, Some(after)) if next != after.base => (
            valid,
            CutReason::Gap {
                next_expected: next,
                next_base: after.base,
            },
        ),
        (None, None) if next < rp => (valid, CutReason::EndsBelowRecoveryPoint),
        (None, _) => return None,
    };
    Some(Cut {
        segment_base: base,
        position,
        bytes: scan.file_len - position,
        end_offset: next,
        reason,
    })
}

/// Lists the directory and decides rule 1: the tidy steps and the segment
/// files that remain.
struct Listing {
    tidy: Vec<TidyStep>,
    logs: BTreeMap<u64, PathBuf>,
    leftovers: Vec<String>,
    unknown: Vec<String>,
    marker_present: bool,
}

fn list(ctx: &SegmentContext) -> Result<Listing> {
    let dir = &ctx.dir;
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Listing {
        tidy: Vec::new(),
        logs: BTreeMap::new(),
        leftovers: Vec::new(),
        unknown: Vec::new(),
        marker_present: false,
    };
    let mut indexes = Vec::new();
    let mut deleted = Vec::new();
    for name in &names {
        match classify(name) {
            FileKind::Log(b) => {
                out.logs.insert(b, dir.join(name));
            }
            FileKind::Index(b) | FileKind::TimeIndex(b) | FileKind::TxnIndex(b) => {
                indexes.push((b, name.clone()))
            }
            FileKind::Cleaned | FileKind::Temporary => {
                out.leftovers.push(name.clone());
                out.tidy.push(TidyStep::Remove(name.clone()));
            }
            FileKind::DeletedLog(b) => {
                out.leftovers.push(name.clone());
                deleted.push(b);
            }
            FileKind::CleanShutdown => out.marker_present = true,
            FileKind::RecoveryCheckpoint | FileKind::BrokerCheckpoint => {}
            FileKind::Unknown => out.unknown.push(name.clone()),
        }
    }
    // An interrupted compaction: did it commit?
    for x in deleted {
        let deleted_name = format!("{}{DELETED_SUFFIX}", segment_name(x, LOG_SUFFIX));
        let committed = match out.logs.range(..x).next_back() {
            Some((_, owner)) => last_offset_in(ctx, owner)?.is_some_and(|last| last >= x),
            None => false,
        };
        if committed || out.logs.contains_key(&x) {
            out.tidy.push(TidyStep::Remove(deleted_name));
        } else {
            out.tidy.push(TidyStep::Restore(x));
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let name = segment_name(x, suffix);
                if names.contains(&name) {
                    out.tidy.push(TidyStep::Remove(name));
                }
            }
            out.logs.insert(x, dir.join(deleted_name));
        }
    }
    for (base, name) in indexes {
        if !out.logs.contains_key(&base) {
            out.tidy.push(TidyStep::Remove(name));
        }
    }
    Ok(out)
}

/// Decides what opening the log in `ctx.dir` will do, reading (never
/// changing) the directory; `scope` says which segments are scanned.
pub(crate) fn survey(ctx: &SegmentContext, scope: Scope) -> Result<Survey> {
    let listing = list(ctx)?;
    let mut notes = Vec::new();
    let mut checkpoint_problems = Vec::new();
    let marker: Option<CleanShutdown> = read_or_note(ctx, &mut notes, &mut checkpoint_problems)?;
    let rcp: Option<RecoveryCheckpoint> = read_or_note(ctx, &mut notes, &mut checkpoint_problems)?;
    let mut files = Vec::new();
    for (&base, path) in &listing.logs {
        let size = std::fs::metadata(path)
            .map_err(|e| StorageError::io("stat", path, e))?
            .len();
        files.push(SegmentFile {
            base,
            size,
            path: path.clone(),
        });
    }
    let mut survey = Survey {
        plan: RecoveryPlan {
            tidy: listing.tidy,
            clean_shutdown: false,
            recovery_point: 0,
            segments: files.iter().map(|f| f.base).collect(),
            first_scanned: 0,
            outcome: Outcome::KeepAll,
            rebuilt_indexes: Vec::new(),
            notes,
            log_end_offset: None,
        },
        files: Vec::new(),
        scans: Vec::new(),
        scan_from: 0,
        marker_present: listing.marker_present,
        marker_matches: false,
        checkpoint: rcp,
        checkpoint_problems,
        leftovers: listing.leftovers,
        unknown: listing.unknown,
        active_index: None,
        active_files: None,
    };
    let plan = &mut survey.plan;
    let Some(last) = files.last().cloned() else {
        let base = rcp.map_or(0, |c| c.recovery_point.max(c.log_start_offset));
        plan.clean_shutdown = marker.is_some() || rcp.is_none();
        plan.recovery_point = base;
        plan.outcome = Outcome::CreateEmpty { base };
        plan.log_end_offset = Some(base);
        return Ok(survey);
    };
    survey.marker_matches = marker
        .is_some_and(|m| m.active_segment_base == last.base && m.active_segment_size == last.size);
    if marker.is_some() && !survey.marker_matches {
        plan.notes
            .push("clean-shutdown marker does not match the segments; recovering".into());
    }

    // Rule 2: a clean stop.
    if survey.marker_matches {
        // Recovery opens the active segment's files once: the check reads
        // the mapped indexes and the `.log` the log keeps (a segment put
        // back from `.log.deleted` loses its index files to tidying first,
        // so it is checked as `check` does). `check` changes nothing.
        let restored = last.path != ctx.path(last.base, LOG_SUFFIX);
        let (check, opened) = match scope {
            Scope::Recovery if !restored => {
                let opened = ActiveFiles::open(ctx, last.base)?;
                let data = SegmentData {
                    file: opened.file.as_ref(),
                    path: &last.path,
                    base: last.base,
                    size: last.size,
                    span: MAX_SPAN,
                    interval: ctx.index_interval,
                };
                let index = &opened.index;
                let check = check_indexes(&index.offsets, &index.times, data, false)?;
                (check, Some(opened))
            }
            _ => (check_active_index(ctx, &last)?, None),
        };
        if let Some(reason) = &check.problem {
            plan.rebuilt_indexes.push(last.base);
            plan.notes
                .push(format!("active segment index rebuilt: {reason}"));
        }
        // The check walked the batches from the last indexed one to the
        // end: its last is the log's (no walk of the whole segment). Only
        // indexes to be rebuilt leave the end to a walk from the start.
        let last_offset = match check.problem {
            None => check.last_offset,
            Some(_) => last_offset_in(ctx, &last.path)?,
        };
        let end = last_offset.map_or(last.base, |l| l + 1);
        plan.clean_shutdown = true;
        plan.recovery_point = end;
        plan.first_scanned = files.len();
        plan.outcome = Outcome::Clean;
        plan.log_end_offset = Some(end);
        survey.active_index = Some(check);
        survey.active_files = opened;
    } else {
        let rp = rcp
            .map_or(last.base, |c| c.recovery_point)
            .max(files[0].base);
        plan.recovery_point = rp;
        plan.first_scanned = files.iter().rposition(|f| f.base <= rp).unwrap_or(0);
    }

    // What the scope asks to scan: from the recovery point for recovery
    // (nothing after a clean stop), everything for `check`.
    let first = survey.plan.first_scanned;
    survey.scan_from = match scope {
        Scope::Everything => 0,
        Scope::Recovery => first,
    };
    for file in &files[survey.scan_from..] {
        survey.scans.push(scan_segment(ctx, file)?);
    }
    survey.files = files;
    if survey.plan.outcome != Outcome::Clean {
        decide_cut(&mut survey);
    }
    Ok(survey)
}

/// Rule 3 after an unclean stop: the first cut from the recovery point on
/// decides between keeping everything, truncating and refusing.
fn decide_cut(survey: &mut Survey) {
    let rp = survey.plan.recovery_point;
    let mut end = None;
    for i in survey.plan.first_scanned..survey.files.len() {
        let Some(scan) = survey.scan(i) else { break };
        end = Some(scan.next_offset(survey.files[i].base));
        let Some(cut) = cut_in(&survey.files, i, scan, rp) else {
            continue;
        };
        if cut.end_offset < rp {
            survey.plan.outcome = Outcome::Refuse(cut);
            return;
        }
        let dropped = (i + 1..survey.files.len())
            .map(|j| DroppedSegment {
                base_offset: survey.files[j].base,
                bytes: survey.files[j].size,
                batches: survey.scan(j).map_or(0, |s| s.summary.batches),
            })
            .collect();
        survey.plan.log_end_offset = Some(cut.end_offset);
        survey.plan.outcome = Outcome::Truncate { cut, dropped };
        return;
    }
    survey.plan.outcome = Outcome::KeepAll;
    survey.plan.log_end_offset = end;
}
