//! Appending: validating batches outside the writer lock, assigning offsets,
//! writing and indexing under it, and rolling segments by size, age, index
//! capacity and offset range.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pubsub_records::{Batch, BatchMut};

use crate::config::{FlushPolicy, LogConfig};
use crate::error::{Result, StorageError};
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
        let written = active.file().and_then(|f| {
            f.write_all_at(records, position)
                .map_err(|e| StorageError::io("write", path, e))
        });
        self.poison_on_err(written)?;
        // Each full chunk of the segment written gets its writeback started,
        // so dirty pages stream to disk steadily instead of in bursts that
        // stall appends (and fsyncs have less left to do).
        let end = position + records.len() as u64;
        if end / WRITEBACK_CHUNK > position / WRITEBACK_CHUNK {
            let from = position / WRITEBACK_CHUNK * WRITEBACK_CHUNK;
            let to = end / WRITEBACK_CHUNK * WRITEBACK_CHUNK;
            if let Ok(f) = active.file() {
                crate::writeback::request(&f, from, to - from);
            }
        }

        let interval = self.ctx.index_interval;
        {
            let index = self.poison_on_err(active.index())?;
            let mut index = index.write();
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
                self.poison_on_err(indexed)?;
                pos += m.len as u64;
                offset = last + 1;
            }
        }
        active.set_max_timestamp(w.tracker.max_timestamp, w.tracker.offset_of_max_timestamp);
        if w.rolling_timestamp.is_none() {
            w.rolling_timestamp = metas.first().map(|m| m.max_ts);
        }
        active.publish(position + total as u64);
        w.next_offset = next;
        self.end_offset.store(next, Ordering::Release);
        drop(w);

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
            self.poison_on_err(self.roll_locked(w))?;
            return Ok(true);
        }
        Ok(false)
    }

    fn roll_locked(&self, w: &mut Writer) -> Result<()> {
        let new_base = w.next_offset;
        let old = Arc::clone(&w.active);
        old.seal(&w.tracker, new_base)?;
        let seg = Arc::new(Segment::create(&self.ctx, new_base)?);
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
        self.poison_on_err(self.roll_locked(&mut w))?;
        let base = w.next_offset;
        drop(w);
        self.flush_until(base)
    }
}
