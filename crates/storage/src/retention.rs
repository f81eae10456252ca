//! Retention for `cleanup.policy=delete`: whole segments go, oldest first,
//! when their newest record is older than `retention_ms` or while the log is
//! larger than `retention_bytes`. The log start offset moves to the first
//! remaining segment (or stays above it, where DeleteRecords moved it);
//! reads below it get `OffsetOutOfRange`.

use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::segment::Segment;

/// What retention deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<u64>,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// Log start offset afterwards.
    pub log_start_offset: u64,
}

impl Log {
    /// Deletes segments past the retention limits, as of `now_ms`. The
    /// active segment goes too (after a roll) if everything in it expired.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        let mut report = RetentionReport {
            log_start_offset: self.log_start_offset(),
            ..RetentionReport::default()
        };
        if !self.config().cleanup_policy.deletes() {
            return Ok(report);
        }
        let _m = self.maintenance.lock();
        self.check_writable()?;
        let mut segments = self.segment_list();
        let mut doomed: Vec<Arc<Segment>> = Vec::new();

        if let Some(retention) = self.config().retention_ms {
            let cutoff = now_ms.saturating_sub(retention);
            for seg in &segments[..segments.len() - 1] {
                if seg.max_timestamp()?.0 < cutoff {
                    doomed.push(Arc::clone(seg));
                } else {
                    break;
                }
            }
            let active = &segments[segments.len() - 1];
            if doomed.len() + 1 == segments.len()
                && active.size() > 0
                && active.max_timestamp()?.0 < cutoff
            {
                // Everything expired: seal the active segment so it can go
                // too. A roll that finds no space (the log has noted it)
                // keeps the active segment; the sealed ones still go, and
                // free the space that the next round's roll needs.
                match self.roll() {
                    Ok(()) => {
                        doomed.push(Arc::clone(active));
                        segments = self.segment_list();
                    }
                    Err(e) if e.is_out_of_space() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(limit) = self.config().retention_bytes {
            let mut remaining: u64 = segments.iter().map(|s| s.size()).sum::<u64>()
                - doomed.iter().map(|s| s.size()).sum::<u64>();
            for seg in &segments[doomed.len()..segments.len() - 1] {
                if remaining.saturating_sub(seg.size()) >= limit {
                    remaining -= seg.size();
                    doomed.push(Arc::clone(seg));
                } else {
                    break;
                }
            }
        }
        if !doomed.is_empty() {
            self.unmark()?;
            {
                let mut map = self.segments.write();
                for seg in &doomed {
                    map.remove(&seg.base_offset);
                }
                // A start moved past the first remaining segment's base
                // (DeleteRecords) stays where it is.
                if let Some((&first, _)) = map.iter().next() {
                    self.start_offset
                        .fetch_max(first, std::sync::atomic::Ordering::AcqRel);
                }
            }
            for seg in &doomed {
                seg.retire();
                report.deleted_segments.push(seg.base_offset);
                report.deleted_bytes += seg.size();
                self.poison_on_err(seg.delete_files())?;
            }
            let dir = self.dir();
            let synced = self
                .ctx
                .fs
                .sync_dir(dir)
                .map_err(|e| StorageError::io("fsync directory", dir, e));
            self.poison_on_err(synced)?;
        }
        // Segments left wholly below a start that DeleteRecords moved (a
        // crash between its checkpoint and its deletions) go too.
        self.delete_segments_below_start(&mut report.deleted_segments, &mut report.deleted_bytes)?;
        if report.deleted_segments.is_empty() {
            return Ok(report);
        }
        match self.write_checkpoint(self.durable_offset()) {
            // The segments are gone (a reopen starts at the first one left);
            // a later checkpoint records the start once it finds space.
            Err(e) if e.is_out_of_space() => {}
            other => other?,
        }
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }
}
