//! Read-only validation of a stopped log's directory (what `pubsub log
//! check` runs): every batch of every segment is validated, every index is
//! compared with the one the log would build, and the report says what
//! opening the log would do. Nothing on disk is changed.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CleanShutdown, RecoveryCheckpoint};
use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::fs::OpenMode;
use crate::index::{encode_entries, MemIndex};
use crate::layout::{classify, FileKind, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::scan::ScanStop;
use crate::segment::{scan_and_index, SegmentContext};

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
    /// Per segment, oldest first.
    pub segments: Vec<SegmentCheck>,
    /// Files recovery would remove or settle (temporaries, compaction leftovers).
    pub leftover_files: Vec<String>,
    /// Problems with the checkpoint files.
    pub checkpoint_problems: Vec<String>,
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

    /// What opening the log would do, in one sentence.
    pub fn recovery_action(&self) -> String {
        if self.segments.is_empty() {
            return "open would create an empty log".into();
        }
        let last_base = self.segments[self.segments.len() - 1].base_offset;
        let rp = if self.clean_shutdown {
            return "clean shutdown: open would not scan anything (indexes with problems are rebuilt when first used)".into();
        } else {
            self.recovery_point
                .unwrap_or(last_base)
                .max(self.segments[0].base_offset)
        };
        let first = self
            .segments
            .iter()
            .rposition(|s| s.base_offset <= rp)
            .unwrap_or(0);
        for (i, s) in self.segments.iter().enumerate().skip(first) {
            let next = s.last_offset.map_or(s.base_offset, |l| l + 1);
            let problem = s
                .invalid
                .as_ref()
                .map(|p| (p.position, p.reason.clone()))
                .or_else(|| s.gap.as_ref().map(|g| (s.valid_bytes, g.clone())));
            if let Some((position, reason)) = problem {
                if next < rp {
                    return format!(
                        "open would fail: segment {} is corrupt at byte {position} ({reason}) below the recovery point {rp}",
                        s.base_offset
                    );
                }
                let dropped = self.segments.len() - i - 1;
                return format!(
                    "open would truncate segment {} at byte {position} ({} bytes: {reason}) and drop {dropped} later segment(s)",
                    s.base_offset,
                    s.size - position
                );
            }
        }
        // Recovery's last rule: the log may not end below what was fsynced.
        let last = &self.segments[self.segments.len() - 1];
        let end = last.last_offset.map_or(last.base_offset, |l| l + 1);
        if end < rp {
            return format!(
                "open would fail: the log ends at offset {end}, below the recovery point {rp} (fsynced data is missing)"
            );
        }
        format!(
            "open would scan {} segment(s) from the recovery point {rp} and keep everything",
            self.segments.len() - first
        )
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
    };
    let mut report = CheckReport {
        dir: dir.to_path_buf(),
        clean_shutdown: false,
        recovery_point: None,
        segments: Vec::new(),
        leftover_files: Vec::new(),
        checkpoint_problems: Vec::new(),
    };
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        match classify(&name) {
            FileKind::Log(b) => bases.push(b),
            FileKind::Cleaned | FileKind::Temporary | FileKind::DeletedLog(_) => {
                report.leftover_files.push(name)
            }
            _ => {}
        }
    }
    bases.sort_unstable();
    let marker = CleanShutdown::read_from(dir).unwrap_or_else(|e| {
        report.checkpoint_problems.push(e.to_string());
        None
    });
    match RecoveryCheckpoint::read_from(dir) {
        Ok(c) => report.recovery_point = c.map(|c| c.recovery_point),
        Err(e) => report.checkpoint_problems.push(e.to_string()),
    }
    for (i, &base) in bases.iter().enumerate() {
        let path = ctx.path(base, LOG_SUFFIX);
        let handle = ctx
            .fs
            .open(&path, OpenMode::ReadOnly)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let size = handle
            .len()
            .map_err(|e| StorageError::io("stat", &path, e))?;
        let is_last = i + 1 == bases.len();
        if is_last {
            report.clean_shutdown = marker
                .is_some_and(|m| m.active_segment_base == base && m.active_segment_size == size);
        }
        let mut index = MemIndex::default();
        let (summary, tracker) = scan_and_index(
            handle.as_ref(),
            &path,
            size,
            base,
            config.index_interval_bytes,
            &mut index,
        )?;
        let next = summary.last_offset.map_or(base, |l| l + 1);
        let gap = (!is_last && summary.stop.is_none() && next != bases[i + 1]).then(|| {
            format!(
                "ends before offset {} (next segment starts at {})",
                next,
                bases[i + 1]
            )
        });
        if !is_last {
            tracker.on_seal(&mut index, base)?;
        }
        // Indexes are only comparable for whole segments; the active segment
        // of an unclean stop is rebuilt by recovery anyway.
        let (index_problem, time_index_problem) =
            if summary.stop.is_some() || (is_last && !report.clean_shutdown) {
                (None, None)
            } else {
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
        report.segments.push(SegmentCheck {
            base_offset: base,
            size,
            valid_bytes: summary.valid_len,
            batches: summary.batches,
            last_offset: summary.last_offset,
            invalid: summary.stop,
            gap,
            index_problem,
            time_index_problem,
        });
    }
    Ok(report)
}
