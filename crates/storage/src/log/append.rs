//! Appending: validating batches outside the writer lock, assigning offsets,
//! writing and indexing under it, and rolling segments by size, age, index
//! capacity and offset range.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pubsub_records::{Batch, BatchMut};

use crate::config::{FlushPolicy, LogConfig};
use crate::error::{Result, StorageError};
use crate::fs::FileHandle;
use crate::index::IndexTracker;
use crate::log::{Log, Writer};
use crate::segment::Segment;

/// Bytes of a segment between two early-writeback hints.
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// Largest maxTimestamp among the appended batches.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: u64,
    /// Batches appended.
    pub batches: usize,
    /// Bytes appended.
    pub bytes: usize,
}

impl Log {
    /// Appends one or more batches laid end to end in `records`.
    ///
    /// Each batch must be a valid RecordBatch v2 as a producer sends it (CRC,
    /// one record per offset). The log rewrites their base offsets in place,
    /// writes them, and returns the offsets given. With
    /// [`FlushPolicy::Always`] it returns once they are on disk; otherwise
    /// call [`Log::wait_durable`] when that matters.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo> {
        self.append_checked(records, true)
    }

    /// [`Log::append`] for batches this process built itself with
    /// `pubsub_records::BatchBuilder` (the embedded producer): the CRC that
    /// the builder just computed is not computed again. Every other check
    /// still applies. Never use it for bytes that came from outside.
    pub fn append_trusted(&self, records: &mut [u8]) -> Result<AppendInfo> {
        self.append_checked(records, false)
    }

    fn append_checked(&self, records: &mut [u8], verify_crc: bool) -> Result<AppendInfo> {
        struct Meta {
            at: usize,
            len: usize,
            delta: u64,
            max_ts: i64,
        }
        if records.is_empty() {
            return Err(StorageError::InvalidBatch(
                pubsub_records::RecordsError::Truncated {
                    needed: pubsub_records::HEADER_LEN,
                    available: 0,
                },
            ));
        }
        // Validate outside the lock: CRC work does not serialise writers.
        let mut metas = Vec::with_capacity(1);
        let mut at = 0;
        while at < records.len() {
            let batch = Batch::parse(&records[at..])?;
            if verify_crc {
                batch.validate_crc()?;
            }
            batch.validate_for_append_header()?;
            metas.push(Meta {
                at,
                len: batch.len(),
                delta: batch.last_offset_delta() as u64,
                max_ts: batch.max_timestamp(),
            });
            at += batch.len();
        }
        let config = self.config();
        let total = records.len();
        if total as u64 > config.segment_bytes {
            return Err(StorageError::BatchTooLarge {
                size: total,
                max: config.segment_bytes,
            });
        }
        let offsets: u64 = metas.iter().map(|m| m.delta + 1).sum();
        let append_max_ts = metas.iter().map(|m| m.max_ts).max().unwrap_or(-1);

        let mut w = self.writer.lock();
        self.check_writable()?;
        self.unmark()?;
        let rolled = self.maybe_roll(
            &mut w,
            &config,
            total as u64,
            metas.len(),
            offsets,
            append_max_ts,
        )?;

        let base_offset = w.next_offset;
        let mut next = base_offset;
        let mut info = AppendInfo {
            base_offset,
            last_offset: base_offset + offsets - 1,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            batches: metas.len(),
            bytes: total,
        };
        for m in &metas {
            let mut batch = BatchMut::parse(&mut records[m.at..])?;
            batch.set_base_offset(next as i64);
            let last = next + m.delta;
            if m.max_ts > info.max_timestamp {
                info.max_timestamp = m.max_ts;
                info.offset_of_max_timestamp = last;
            }
            next = last + 1;
        }

        let active = Arc::clone(&w.active);
        let position = active.size();
        let path = active.path();
        // Whatever the budget closed is reopened before anything is
        // written: an open or map that finds no descriptor or memory fails
        // the append with nothing written, and the log stays writable.
        // Held, they stay open until the append is done.
        let file = self.poison_on_err(active.file())?;
        let index = self.poison_on_err(active.index())?;
        let written = file
            .write_all_at(records, position)
            .map_err(|e| StorageError::io("write", path, e));
        if let Err(e) = written {
            return Err(self.undo_write(file.as_ref(), path, position, e));
        }
        // Each full chunk of the segment written gets its writeback started,
        // so dirty pages stream to disk steadily instead of in bursts that
        // stall appends (and fsyncs have less left to do).
        let end = position + records.len() as u64;
        if end / WRITEBACK_CHUNK > position / WRITEBACK_CHUNK {
            let from = position / WRITEBACK_CHUNK * WRITEBACK_CHUNK;
            let to = end / WRITEBACK_CHUNK * WRITEBACK_CHUNK;
            crate::writeback::request(&file, from, to - from);
        }

        let interval = self.ctx.index_interval;
        {
            let mut index = index.write();
            // What to go back to should an index fail to grow.
            let before = (w.tracker, index.offsets.len(), index.times.len());
            let mut pos = position;
            let mut offset = base_offset;
            for m in &metas {
                let last = offset + m.delta;
                let indexed = w.tracker.on_batch(
                    &mut *index,
                    active.base_offset,
                    pos,
                    last,
                    m.max_ts,
                    m.len as u64,
                    interval,
                );
                if let Err(e) = indexed {
                    w.tracker = before.0;
                    index.offsets.truncate(before.1);
                    index.times.truncate(before.2);
                    drop(index);
                    return Err(self.undo_write(file.as_ref(), path, position, e));
                }
                pos += m.len as u64;
                offset = last + 1;
            }
        }
        drop(index);
        drop(file);
        // Holding them may have kept the budget exceeded (a reopen could
        // not close them): close what is over it now that they are unused.
        self.ctx.handles.make_room(0, 0);
        active.set_max_timestamp(w.tracker.max_timestamp, w.tracker.offset_of_max_timestamp);
        if w.rolling_timestamp.is_none() {
            w.rolling_timestamp = metas.first().map(|m| m.max_ts);
        }
        active.publish(position + total as u64);
        w.next_offset = next;
        self.end_offset.store(next, Ordering::Release);
        // Only now, written and indexed, has the append found space: an
        // index that cannot grow after the batch fitted is still a full disk.
        let healed = !self.space.is_clear();
        if healed {
            self.space.returned(&self.ctx.dir);
        }
        drop(w);

        if healed {
            // The log heals only once everything written is durable: on a
            // file system that reports write errors late (NFS), data written
            // before the ENOSPC may be lost, and only an fsync says so (it
            // then poisons, and this append is not acknowledged).
            self.flush_until(next)?;
        }

        if rolled {
            // Seal the previous segment durably and move the recovery point.
            self.flush_until(base_offset)?;
        }
        match config.flush {
            FlushPolicy::Always => self.flush_until(next)?,
            FlushPolicy::Interval(every) => {
                if self.flush.lock().last_flush.elapsed() >= every {
                    self.flush_until(next)?;
                }
            }
            FlushPolicy::Never => {}
        }
        Ok(info)
    }

    fn maybe_roll(
        &self,
        w: &mut Writer,
        config: &LogConfig,
        bytes: u64,
        batches: usize,
        offsets: u64,
        max_ts: i64,
    ) -> Result<bool> {
        let active = &w.active;
        let size = active.size();
        if size == 0 {
            return Ok(false);
        }
        let full = size + bytes > config.segment_bytes;
        let aged = match (config.segment_ms, w.rolling_timestamp) {
            (Some(ms), Some(first)) => max_ts.saturating_sub(first) > ms,
            _ => false,
        };
        let index_full = self.poison_on_err(active.index())?.read().remaining() < batches + 1;
        let offsets_overflow =
            w.next_offset + offsets - 1 - active.base_offset > u64::from(u32::MAX);
        if full || aged || index_full || offsets_overflow {
            self.heal_or_poison(self.roll_locked(w))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A write of this append to the active segment's `file` (at `path`)
    /// failed after the segment held `position` bytes. If it ran out of
    /// space, or an index could not grow for want of a descriptor or of
    /// memory, the segment is cut back to `position` (the partial batch
    /// gone, nothing published, the indexes already back where they were):
    /// the log takes writes again once space (or a descriptor) returns; any
    /// other failure, or a cut that fails, poisons it. Returns the error to
    /// answer.
    #[cold]
    fn undo_write(
        &self,
        file: &dyn FileHandle,
        path: &Path,
        position: u64,
        e: StorageError,
    ) -> StorageError {
        if e.is_out_of_space() || e.is_out_of_handles() {
            let cut = file
                .set_len(position)
                .map_err(|c| StorageError::io("truncate", path, c));
            match cut {
                Ok(()) if e.is_out_of_space() => self.space.ran_out(&self.ctx.dir, &e),
                Ok(()) => {}
                Err(c) => self.poison(&c),
            }
        } else if e.is_storage_failure() {
            self.poison(&e);
        }
        e
    }

    /// Seals the active segment and starts a new one. The new segment's files
    /// are created first, so a failure (a full disk) leaves the active
    /// segment as it was and removes whatever was created.
    fn roll_locked(&self, w: &mut Writer) -> Result<()> {
        let new_base = w.next_offset;
        let old = Arc::clone(&w.active);
        let created = Segment::create(&self.ctx, new_base).map(Arc::new);
        let sealed = created.and_then(|seg| old.seal(&w.tracker, new_base).map(|()| seg));
        let seg = match sealed {
            Ok(seg) => seg,
            Err(e) => {
                // Nothing else refers to the new base's files yet.
                let _ = Segment::sealed(&self.ctx, new_base, 0, new_base).delete_files();
                return Err(e);
            }
        };
        w.unflushed.push(old);
        w.dir_dirty = true;
        w.active = Arc::clone(&seg);
        w.tracker = IndexTracker::new(new_base);
        w.rolling_timestamp = None;
        self.segments.write().insert(new_base, seg);
        Ok(())
    }

    /// Seals the active segment and starts a new one (if the active one holds
    /// anything), then makes the sealed one durable.
    pub fn roll(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.unmark()?;
        if w.active.size() == 0 {
            return Ok(());
        }
        self.heal_or_poison(self.roll_locked(&mut w))?;
        let base = w.next_offset;
        drop(w);
        self.flush_until(base)
    }
}
