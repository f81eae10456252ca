//! Moving the log start offset forward on request (Kafka's DeleteRecords):
//! records below it become unreadable at once, the new start is made
//! durable in the recovery-point checkpoint before the call returns, and
//! sealed segments lying wholly below it are deleted, as Kafka does.
//!
//! Order, so a crash at any point leaves a consistent log: everything below
//! the new start is fsynced first (recovery never ends below the start),
//! then the checkpoint carrying the new start is written, then segments
//! go. A crash before the segments go leaves them below the start, where
//! the next advance or retention round deletes them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::segment::Segment;

/// What advancing the log start offset did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOffsetReport {
    /// The log start offset afterwards (Kafka's low watermark).
    pub log_start_offset: u64,
    /// Base offsets of the segments deleted.
    pub deleted_segments: Vec<u64>,
    /// Bytes freed.
    pub deleted_bytes: u64,
}

impl Log {
    /// Makes `offset` the first readable offset, if it is above the current
    /// start (below it, nothing changes). `offset` may be anywhere up to the
    /// log end offset (the high watermark); beyond it is `OffsetOutOfRange`.
    /// Returns once the new start is durable.
    pub fn advance_start_offset(&self, offset: u64) -> Result<StartOffsetReport> {
        let _m = self.maintenance.lock();
        self.check_writable()?;
        self.unmark()?;
        let end = self.log_end_offset();
        let start = self.log_start_offset();
        if offset > end {
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        if offset > start {
            self.flush_until(offset)?;
            self.start_offset.fetch_max(offset, Ordering::AcqRel);
            self.write_checkpoint(self.durable_offset())?;
        }
        let mut report = StartOffsetReport::default();
        self.delete_segments_below_start(&mut report.deleted_segments, &mut report.deleted_bytes)?;
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }

    /// Deletes the sealed segments whose every offset lies below the log
    /// start offset (the next segment starts at or below it); never the
    /// active one. Call with the maintenance lock held.
    pub(crate) fn delete_segments_below_start(
        &self,
        deleted: &mut Vec<u64>,
        bytes: &mut u64,
    ) -> Result<()> {
        let start = self.log_start_offset();
        let doomed: Vec<Arc<Segment>> = {
            let mut map = self.segments.write();
            let bases: Vec<u64> = map.keys().copied().collect();
            let gone: Vec<u64> = bases
                .windows(2)
                .take_while(|w| w[1] <= start)
                .map(|w| w[0])
                .collect();
            gone.iter().filter_map(|b| map.remove(b)).collect()
        };
        if doomed.is_empty() {
            return Ok(());
        }
        for seg in &doomed {
            seg.retire();
            deleted.push(seg.base_offset);
            *bytes += seg.size();
            self.poison_on_err(seg.delete_files())?;
        }
        let dir = self.dir();
        let synced = self
            .ctx
            .fs
            .sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e));
        self.poison_on_err(synced)
    }
}
