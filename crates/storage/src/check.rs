//! Read-only validation of a stopped log's directory (what `pubsub log
//! check` runs): every batch of every segment is validated, every index is
//! compared with the one the log would build, and the report carries the
//! recovery plan: what opening the log will do, decided by the same code
//! that `Log::open` executes. Nothing on disk is changed.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::index::encode_entries;
use crate::layout::{INDEX_SUFFIX, TIME_INDEX_SUFFIX};
use crate::plan::{self, gap_text, RecoveryPlan, Scope};
use crate::scan::ScanStop;
use crate::segment::SegmentContext;

/// The findings for one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    /// Base offset (from the file name).
    pub base_offset: u64,
    /// File size.
    pub size: u64,
    /// Bytes of valid batches from the start.
    pub valid_bytes: u64,
    /// Valid batches.
    pub batches: u64,
    /// Last offset of the last valid batch.
    pub last_offset: Option<u64>,
    /// The first invalid batch, if any.
    pub invalid: Option<ScanStop>,
    /// Set when the segment ends before the next segment's base offset.
    pub gap: Option<String>,
    /// Why the offset index differs from the one the log would build.
    pub index_problem: Option<String>,
    /// Why the time index differs from the one the log would build.
    pub time_index_problem: Option<String>,
}

/// The findings for a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The directory.
    pub dir: PathBuf,
    /// A clean-shutdown marker matching the last segment is present.
    pub clean_shutdown: bool,
    /// The recovery-point checkpoint, if readable.
    pub recovery_point: Option<u64>,
    /// The first readable offset open will use: the first segment's base,
    /// or the start the checkpoint records if higher (DeleteRecords moved
    /// it); `None` without segments.
    pub log_start_offset: Option<u64>,
    /// Per segment, oldest first.
    pub segments: Vec<SegmentCheck>,
    /// Files recovery would remove or settle (temporaries, compaction leftovers).
    pub leftover_files: Vec<String>,
    /// Problems with the checkpoint files.
    pub checkpoint_problems: Vec<String>,
    /// What opening the log will do: the plan `Log::open` executes.
    pub plan: RecoveryPlan,
}

impl CheckReport {
    /// Nothing wrong anywhere.
    pub fn is_healthy(&self) -> bool {
        self.checkpoint_problems.is_empty()
            && self.segments.iter().all(|s| {
                s.invalid.is_none()
                    && s.gap.is_none()
                    && s.index_problem.is_none()
                    && s.time_index_problem.is_none()
            })
    }

    /// What opening the log would do, in one sentence (the plan's action).
    pub fn recovery_action(&self) -> String {
        self.plan.action()
    }

    /// Open refuses because the log ends below its recovery point: whole
    /// fsynced batches are missing (`is_healthy` looks at segments only).
    pub fn ends_below_recovery_point(&self) -> bool {
        self.plan.ends_below_recovery_point()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.dir.display())?;
        for s in &self.segments {
            write!(
                f,
                "  segment {:020}: {} bytes, {} batches",
                s.base_offset, s.size, s.batches
            )?;
            if let Some(l) = s.last_offset {
                write!(f, ", offsets {}..={l}", s.base_offset)?;
            }
            if let Some(p) = &s.invalid {
                write!(f, "; INVALID at byte {}: {}", p.position, p.reason)?;
            }
            if let Some(g) = &s.gap {
                write!(f, "; GAP: {g}")?;
            }
            if let Some(p) = &s.index_problem {
                write!(f, "; offset index: {p}")?;
            }
            if let Some(p) = &s.time_index_problem {
                write!(f, "; time index: {p}")?;
            }
            writeln!(f)?;
        }
        for p in &self.checkpoint_problems {
            writeln!(f, "  checkpoint: {p}")?;
        }
        for l in &self.leftover_files {
            writeln!(f, "  leftover: {l}")?;
        }
        write!(f, "  {}", self.recovery_action())
    }
}

fn compare(file: &Path, expected: &[u8]) -> Option<String> {
    match std::fs::read(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".into()),
        Err(e) => Some(format!("unreadable: {e}")),
        Ok(actual) if actual == expected => None,
        Ok(actual) => Some(format!(
            "{} bytes on disk, {} expected, contents differ",
            actual.len(),
            expected.len()
        )),
    }
}

/// Checks the log in `dir` without changing anything.
pub fn check(dir: &Path, config: &LogConfig) -> Result<CheckReport> {
    let ctx = SegmentContext {
        dir: dir.to_path_buf(),
        fs: std::sync::Arc::new(crate::fs::RealFs),
        max_index_bytes: config.max_index_bytes,
        index_interval: config.index_interval_bytes,
        handles: crate::handles::Handles::process().clone(),
        close_errors: std::sync::Arc::default(),
    };
    let survey = plan::survey(&ctx, Scope::Everything)?;
    let files = &survey.files;
    let mut segments = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let base = file.base;
        let scan = survey
            .scan(i)
            .ok_or_else(|| StorageError::Config(format!("check did not scan segment {base}")))?;
        let summary = &scan.summary;
        let is_last = i + 1 == files.len();
        let next = scan.next_offset(base);
        let gap = match files.get(i + 1) {
            Some(after) if summary.stop.is_none() && next != after.base => {
                Some(gap_text(next, after.base))
            }
            _ => None,
        };
        // Indexes are only comparable for whole segments; the active segment
        // of an unclean stop is rebuilt by recovery anyway.
        let (index_problem, time_index_problem) =
            if summary.stop.is_some() || (is_last && !survey.marker_matches) {
                (None, None)
            } else {
                let mut index = scan.index.clone();
                if !is_last {
                    scan.tracker.on_seal(&mut index, base)?;
                }
                (
                    compare(
                        &ctx.path(base, INDEX_SUFFIX),
                        &encode_entries(&index.offsets),
                    ),
                    compare(
                        &ctx.path(base, TIME_INDEX_SUFFIX),
                        &encode_entries(&index.times),
                    ),
                )
            };
        segments.push(SegmentCheck {
            base_offset: base,
            size: scan.file_len,
            valid_bytes: summary.valid_len,
            batches: summary.batches,
            last_offset: summary.last_offset,
            invalid: summary.stop.clone(),
            gap,
            index_problem,
            time_index_problem,
        });
    }
    let end = segments
        .iter()
        .rev()
        .find_map(|s| s.last_offset.map(|l| l + 1))
        .or_else(|| segments.last().map(|s| s.base_offset));
    let log_start_offset = segments.first().map(|first| {
        let recorded = survey.checkpoint.map_or(0, |c| c.log_start_offset);
        first
            .base_offset
            .max(recorded)
            .min(end.unwrap_or(first.base_offset))
    });
    Ok(CheckReport {
        dir: dir.to_path_buf(),
        clean_shutdown: survey.marker_matches,
        recovery_point: survey.checkpoint.map(|c| c.recovery_point),
        log_start_offset,
        segments,
        leftover_files: survey.leftovers,
        checkpoint_problems: survey.checkpoint_problems,
        plan: survey.plan,
    })
}
