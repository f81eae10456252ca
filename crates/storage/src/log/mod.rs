//! [`Log`]: one partition, an ordered set of segments of which the last is
//! active.
//!
//! Concurrency: appends are serialised by the writer lock, which covers
//! assigning offsets, writing, indexing and rolling. Readers never take it:
//! they find a segment in the segment map (a brief read lock), then read only
//! bytes the writer has published (the segment's `size` and the log end
//! offset are stored after the data is written), so a reader never sees part
//! of a batch. fsyncs happen outside the writer lock, shared by every waiter
//! (group commit).
//!
//! Here: opening, accessors, reads, timestamp lookups and close; appending
//! and rolling are in `append`, group commit, checkpoints and poisoning in
//! `flush`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::{Checkpoint, CleanShutdown, RecoveryCheckpoint};
use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::fs::{FileSystem, RealFs};
use crate::handles::Handles;
use crate::index::IndexTracker;
use crate::recovery::{self, RecoveryReport};

mod append;
mod flush;
mod range;
mod space;

use crate::segment::{Segment, SegmentContext};
use crate::stats::{Histogram, HistogramSnapshot};
pub use append::AppendInfo;
use flush::FlushState;
pub use range::FileRange;
use space::SpaceState;

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Zero or more whole batches, laid end to end as on disk. The first
    /// holds the requested offset (or is the first after it, where
    /// compaction removed offsets), so it may start below that offset.
    pub records: Vec<u8>,
    /// Log start offset when the read was made.
    pub log_start_offset: u64,
    /// Log end offset (the high watermark) when the read was made.
    pub log_end_offset: u64,
}

/// An offset found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's offset.
    pub offset: u64,
    /// The record's timestamp.
    pub timestamp: i64,
    /// The partitionLeaderEpoch of the record's batch (-1: none).
    pub leader_epoch: i32,
}

/// Facts about one segment, for tools and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First offset the segment may hold.
    pub base_offset: u64,
    /// Offset after the last one it holds (the next segment's base, or the
    /// log end offset for the active segment).
    pub end_offset: u64,
    /// Bytes.
    pub size: u64,
    /// The segment appends go to.
    pub active: bool,
}

pub(crate) struct Writer {
    pub active: Arc<Segment>,
    pub tracker: IndexTracker,
    /// maxTimestamp of the active segment's first batch (for `segment_ms`).
    pub rolling_timestamp: Option<i64>,
    pub next_offset: u64,
    /// Sealed segments not yet fsynced.
    pub unflushed: Vec<Arc<Segment>>,
    /// A file was created or removed since the directory was last fsynced.
    pub dir_dirty: bool,
}

/// How many times a read or lookup starts again when a segment it was
/// using left the log under it (retention or compaction; each retry sees
/// the segments that replaced it).
const RETIRED_RETRIES: u32 = 3;

/// One partition: an append-only, segmented, indexed log.
pub struct Log {
    pub(crate) ctx: Arc<SegmentContext>,
    config: RwLock<Arc<LogConfig>>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    end_offset: AtomicU64,
    pub(crate) start_offset: AtomicU64,
    flush: Mutex<FlushState>,
    flushed: Condvar,
    /// Why the log refuses writes, once a write or fsync failed (the first
    /// cause; set once, read without a lock).
    poison: OnceCell<String>,
    /// Set while writes fail for want of space (they work again once it
    /// returns).
    space: SpaceState,
    closed: AtomicBool,
    /// Serialises retention, compaction and close.
    pub(crate) maintenance: Mutex<()>,
    checkpointed: Mutex<Option<RecoveryCheckpoint>>,
    /// The clean-shutdown marker of the last close is still on disk: nothing
    /// changed since the open. Removed (durably) before the first change.
    marked: AtomicBool,
    /// Serialises removing the marker.
    unmarking: Mutex<()>,
    /// Durations of group-commit fsync rounds, for monitoring.
    flush_stats: Histogram,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.ctx.dir)
            .field("start", &self.log_start_offset())
            .field("end", &self.log_end_offset())
            .finish()
    }
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it if it was not
    /// closed cleanly. The report says what recovery did; log it.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<(Log, RecoveryReport)> {
        Log::open_with(dir, config, Arc::new(RealFs))
    }

    /// [`Log::open`] over a given file layer (tests inject faults with it).
    pub fn open_with(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        fs: Arc<dyn FileSystem>,
    ) -> Result<(Log, RecoveryReport)> {
        Log::open_budgeted(dir, config, fs, Handles::process().clone())
    }

    /// [`Log::open_with`] under a given descriptor and map budget (the
    /// others use the process-wide one, [`Handles::process`]).
    pub fn open_budgeted(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        fs: Arc<dyn FileSystem>,
        handles: Handles,
    ) -> Result<(Log, RecoveryReport)> {
        config.validate()?;
        let ctx = Arc::new(SegmentContext {
            dir: dir.into(),
            fs,
            max_index_bytes: config.max_index_bytes,
            index_interval: config.index_interval_bytes,
            handles,
            close_errors: Arc::default(),
        });
        let opened = recovery::open(&ctx)?;
        let next = opened.next_offset;
        // The first segment's base, or where DeleteRecords moved the start
        // (never past the log end, should recovery have cut below it).
        let start = opened
            .segments
            .first()
            .map_or(next, |s| s.base_offset)
            .max(opened.checkpointed_start.unwrap_or(0))
            .min(next);
        let active = opened
            .segments
            .last()
            .map(Arc::clone)
            .ok_or_else(|| StorageError::Config("log opened without segments".into()))?;
        // No recovery point yet (a new log, or one whose file was lost):
        // what an open under deferred syncs created is not durable, so the
        // first flush also syncs the directory.
        let never_checkpointed = opened.checkpoint.is_none();
        let map: BTreeMap<u64, Arc<Segment>> = opened
            .segments
            .into_iter()
            .map(|s| (s.base_offset, s))
            .collect();
        let log = Log {
            ctx,
            config: RwLock::new(Arc::new(config)),
            writer: Mutex::new(Writer {
                active,
                tracker: opened.tracker,
                rolling_timestamp: opened.rolling_timestamp,
                next_offset: next,
                unflushed: Vec::new(),
                dir_dirty: never_checkpointed && crate::fs::syncs_deferred(),
            }),
            segments: RwLock::new(map),
            end_offset: AtomicU64::new(next),
            start_offset: AtomicU64::new(start),
            // Under deferred syncs not on disk yet either: an opener that
            // defers syncs serves nothing before its filesystem sync.
            flush: Mutex::new(FlushState {
                durable: next,
                deferred: next,
                in_progress: false,
                last_flush: Instant::now(),
            }),
            flushed: Condvar::new(),
            poison: OnceCell::new(),
            space: SpaceState::default(),
            closed: AtomicBool::new(false),
            maintenance: Mutex::new(()),
            checkpointed: Mutex::new(opened.checkpoint),
            marked: AtomicBool::new(opened.marked),
            unmarking: Mutex::new(()),
            flush_stats: Histogram::new(),
        };
        // Whatever recovery kept is now fsynced. Under deferred syncs
        // nothing is fsynced yet: the caller syncs the filesystem, then
        // calls `record_recovery_point`. Otherwise a new or cleanly closed
        // log records its point now (nothing is written when the file
        // already says it); a recovered one keeps the point on disk (true:
        // it only promises less) until its next checkpoint or its close
        // records the log end, so its first use after a kill writes no
        // checkpoint file (two fsyncs) on the way. Only a readable point is
        // kept: without one, the next recovery would take the last segment's
        // base as the point, and once the log rolls, the unflushed tail of
        // the segment before would lie below it, unscanned after a power loss.
        if !crate::fs::syncs_deferred() {
            match opened.scanned {
                Some(Some(on_disk)) => *log.checkpointed.lock() = Some(on_disk),
                Some(None) | None => log.write_checkpoint(next)?,
            }
        }
        Ok((log, opened.report))
    }

    /// Writes the recovery point an open or a flush under deferred syncs
    /// left unwritten (see [`crate::fs::DeferSyncs`]): call it only once
    /// the filesystem is synced since, for it also marks what those
    /// flushed durable. Nothing is written when the checkpoint already
    /// says it.
    ///
    /// One caller at a time defers flushes of a log (the broker's clock,
    /// or its close once the clock has stopped), so what this marks is
    /// what that caller flushed before its sync.
    pub fn record_recovery_point(&self) -> Result<()> {
        let durable = {
            let mut st = self.flush.lock();
            st.durable = st.durable.max(st.deferred);
            st.durable
        };
        self.write_checkpoint(durable)
    }

    /// Forgets what flushes under deferred syncs did, after their caller's
    /// filesystem sync failed: nothing of it counts, and the next flush
    /// fsyncs the log's files itself (an fsync of a file whose writeback
    /// failed reports it, and poisons the log).
    pub fn forget_deferred(&self) {
        let mut st = self.flush.lock();
        st.deferred = st.durable;
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.ctx.dir
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.config.read())
    }

    /// Changes the configuration of an open log. Everything but the index
    /// settings (`index_interval_bytes`, `max_index_bytes`, which shape files
    /// already written) takes effect at once; those apply after a reopen.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        *self.config.write() = Arc::new(config);
        Ok(())
    }

    /// First offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.start_offset.load(Ordering::Acquire)
    }

    /// Offset the next record will get (the high watermark of a single node).
    pub fn log_end_offset(&self) -> u64 {
        self.end_offset.load(Ordering::Acquire)
    }

    /// Every offset below this is fsynced.
    pub fn durable_offset(&self) -> u64 {
        self.flush.lock().durable
    }

    /// The recovery point last written to the checkpoint file.
    pub fn recovery_point(&self) -> u64 {
        self.checkpointed.lock().map_or(0, |c| c.recovery_point)
    }

    /// The reason the log refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        self.poison.get().cloned()
    }

    /// Why the last write failed for want of space (ENOSPC or EDQUOT), while
    /// the log is in that state: writes fail until space returns, and then
    /// work without a reopen. Cleared by the first append that succeeds (written
    /// and indexed), or quietly by a checkpoint that fits (the probe for a
    /// partition nobody writes to; a failing append sets it again).
    pub fn out_of_space(&self) -> Option<String> {
        self.space.reason()
    }

    /// How many times the log has run out of space since it was opened: an
    /// episode starts with a write that finds no space (logged once) and ends
    /// with the next append that succeeds (logged once); a checkpoint that
    /// fits in between does not end it.
    pub fn out_of_space_episodes(&self) -> u64 {
        self.space.episodes()
    }

    /// A file written for this partition outside the log (its leader-epoch
    /// cache, say) found no space: the partition is out of space as if an
    /// append had failed, logged once, and ends it with the next append
    /// that succeeds.
    pub fn note_out_of_space(&self, cause: &dyn std::fmt::Display) {
        self.space.ran_out(self.dir(), cause);
    }

    /// The descriptor and map budget the log lives under.
    pub fn handles(&self) -> &Handles {
        &self.ctx.handles
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let end = self.log_end_offset();
        let map = self.segments.read();
        let n = map.len();
        map.values()
            .enumerate()
            .map(|(i, s)| SegmentInfo {
                base_offset: s.base_offset,
                end_offset: s.end_offset().unwrap_or(end),
                size: s.size(),
                active: i + 1 == n,
            })
            .collect()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// The oldest segment's largest timestamp (-1 when it holds none) and
    /// its bytes: what retention judges first, so a caller that recorded
    /// them can tell without opening the log whether retention would
    /// delete anything (see [`Log::apply_retention`]).
    pub fn oldest_segment(&self) -> Result<(i64, u64)> {
        let first = self.segments.read().values().next().cloned();
        match first {
            Some(s) => Ok((s.max_timestamp()?.0, s.size())),
            None => Ok((-1, 0)),
        }
    }

    /// How many group-commit fsync rounds this log has run since it was
    /// opened, and how long each took (failed ones included). A round
    /// fdatasyncs the active segment, plus sealed segments and the
    /// directory when they changed; concurrent waiters share it.
    pub fn flush_stats(&self) -> HistogramSnapshot {
        self.flush_stats.snapshot()
    }

    pub(crate) fn segment_list(&self) -> Vec<Arc<Segment>> {
        self.segments.read().values().cloned().collect()
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed {
                dir: self.ctx.dir.clone(),
            });
        }
        self.check_not_poisoned()
    }

    /// Removes the clean-shutdown marker the open left in place (an open
    /// after a clean stop removes nothing), durably, before the log first
    /// changes: from then on a crash must look unclean. Once per open.
    pub(crate) fn unmark(&self) -> Result<()> {
        if !self.marked.load(Ordering::Acquire) {
            return Ok(());
        }
        let _u = self.unmarking.lock();
        if !self.marked.load(Ordering::Acquire) {
            return Ok(());
        }
        let removed = recovery::consume_marker(&self.ctx).or_else(|e| match &e {
            StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            _ => Err(e),
        });
        self.poison_on_err(removed)?;
        self.marked.store(false, Ordering::Release);
        Ok(())
    }

    /// Makes files the caller just wrote into the partition directory
    /// durable with the removal of the clean-shutdown marker the open left
    /// (if it is still there): the marker goes, then one directory fsync
    /// covers both, so the first change after a clean open pays one
    /// directory fsync instead of two. The caller has fsynced its files'
    /// contents and renamed them into place (a checkpoint written with
    /// [`crate::checkpoint::write_unsynced_dir`]). A failed fsync poisons the
    /// log, as a failed unmark would. Refused, with nothing removed, once
    /// the log is closed or poisoned (as an append is: under the writer
    /// lock, so a close's marker is never removed).
    pub fn sync_dir_unmarking(&self) -> Result<()> {
        let _w = self.writer.lock();
        self.check_writable()?;
        let _u = self.unmarking.lock();
        if self.marked.load(Ordering::Acquire) {
            let removed = self
                .ctx
                .fs
                .remove_file(&self.ctx.dir.join(crate::layout::CLEAN_SHUTDOWN))
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| StorageError::io("delete", &self.ctx.dir, e));
            self.poison_on_err(removed)?;
        }
        let synced = self
            .ctx
            .fs
            .sync_dir(&self.ctx.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.ctx.dir, e));
        self.poison_on_err(synced)?;
        self.marked.store(false, Ordering::Release);
        Ok(())
    }

    /// Reads whole batches starting with the one holding `offset`, up to
    /// `max_bytes` (but always at least that one batch). Reading at the log
    /// end offset returns nothing; outside `[start, end]` is an error.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadResult> {
        let mut records = Vec::new();
        let (log_start_offset, log_end_offset) = self.read_into(offset, max_bytes, &mut records)?;
        Ok(ReadResult {
            records,
            log_start_offset,
            log_end_offset,
        })
    }

    /// [`Log::read`] into a caller's buffer (cleared first, its allocation
    /// reused). Returns the log start and end offsets as of the read.
    pub fn read_into(
        &self,
        offset: u64,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        self.read_into_below(offset, max_bytes, u64::MAX, out)
    }

    /// [`Log::read_into`] of the batches wholly below `upper` only (see
    /// [`Log::read_range_below`]); nothing when the first batch reaches it.
    pub fn read_into_below(
        &self,
        offset: u64,
        max_bytes: usize,
        upper: u64,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        let end = self.log_end_offset();
        let start = self.log_start_offset();
        if offset < start || offset > end {
            out.clear();
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        let read = self.at_first_batch(offset, end.min(upper), |seg, pos, header| {
            // `None`: the first batch reaches `upper`, nothing to read.
            range::bytes_below(seg, pos, header, max_bytes, upper)?
                .map(|max_bytes| seg.read_batches_into(pos, header.len, max_bytes, out))
                .transpose()
        });
        let read = read.map(Option::flatten);
        if !matches!(read, Ok(Some(()))) {
            out.clear();
        }
        read.map(|_| (start, end))
    }

    /// Finds the batch holding `offset` (or the first after it, below
    /// `end`) and calls `read` with its segment, position and header; `None`
    /// when there is none. A segment that retention or compaction retired
    /// under the lookup or the read is looked up again (the map no longer
    /// holds it), up to [`RETIRED_RETRIES`] times; a file gone for another
    /// reason reads as an offset out of range.
    pub(crate) fn at_first_batch<T>(
        &self,
        offset: u64,
        end: u64,
        mut read: impl FnMut(&Segment, u64, &pubsub_records::BatchHeader) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut target = offset;
        let mut retries = RETIRED_RETRIES;
        while target < end {
            let Some((seg, next_base)) = self.segment_at(target) else {
                break;
            };
            let found = seg
                .find_batch(target)
                .and_then(|found| found.map(|(pos, h)| read(&seg, pos, &h)).transpose());
            match found {
                Err(_) if seg.is_retired() && retries > 0 => {
                    retries -= 1;
                    continue;
                }
                Err(e) => return Err(self.vanished(e, offset)),
                Ok(Some(value)) => return Ok(Some(value)),
                Ok(None) => {}
            }
            match next_base {
                Some(b) => target = target.max(b),
                None => break,
            }
        }
        Ok(None)
    }

    /// Calls `f` with the position-independent header of every batch from the
    /// one holding `from` to the end, in order (e.g. to rebuild producer
    /// state). Only headers are read.
    pub fn for_each_batch_header(
        &self,
        from: u64,
        mut f: impl FnMut(&pubsub_records::BatchHeader),
    ) -> Result<()> {
        let end = self.log_end_offset();
        let mut from = from.max(self.log_start_offset());
        let mut retries = RETIRED_RETRIES;
        'again: loop {
            for seg in self.segment_list() {
                if seg.end_offset().is_some_and(|e| e <= from) {
                    continue;
                }
                let size = seg.size();
                let opened = seg.scan_start(from).and_then(|s| Ok((s, seg.file()?)));
                let (start, file) = match opened {
                    // Retention or compaction took the segment out of the
                    // log under the walk: go on from where it stopped, in
                    // the segments there now.
                    Err(_) if seg.is_retired() && retries > 0 => {
                        retries -= 1;
                        continue 'again;
                    }
                    opened => opened?,
                };
                let path = seg.path();
                let mut walker =
                    crate::segment::HeaderWalker::new(file.as_ref(), path, start, size);
                while let Some((_, header)) = walker.next()? {
                    let last = header.last_offset() as u64;
                    if last >= from && last < end {
                        f(&header);
                        from = last + 1;
                    }
                }
            }
            return Ok(());
        }
    }

    /// The segment that would hold `offset`, and the next segment's base.
    pub(crate) fn segment_at(&self, offset: u64) -> Option<(Arc<Segment>, Option<u64>)> {
        let map = self.segments.read();
        let (_, seg) = map.range(..=offset).next_back()?;
        let next = map.range(seg.base_offset + 1..).next().map(|(b, _)| *b);
        Some((Arc::clone(seg), next))
    }

    /// A read racing with retention may find its segment's files gone (and
    /// not retried, or retried too often): the offset it wanted is then
    /// out of range, and the error says so ([`StorageError::OffsetOutOfRange`]
    /// with the log's current bounds).
    fn vanished(&self, e: StorageError, offset: u64) -> StorageError {
        match &e {
            StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StorageError::OffsetOutOfRange {
                    offset,
                    start: self.log_start_offset(),
                    end: self.log_end_offset(),
                }
            }
            _ => e,
        }
    }

    /// The first record whose timestamp is at or after `timestamp` (Kafka's
    /// ListOffsets by time); `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let mut retries = RETIRED_RETRIES;
        'again: loop {
            // As Kafka: the first record at or after the log start offset
            // (which DeleteRecords may have put inside a batch) with such a
            // timestamp.
            let start = self.log_start_offset();
            for seg in self.segment_list() {
                let found = seg.max_timestamp().and_then(|(max, _)| {
                    if max < timestamp {
                        return Ok(None);
                    }
                    seg.find_timestamp(timestamp, start, self.config().max_decompressed_bytes)
                });
                let found = match found {
                    // Retention or compaction replaced the segment after
                    // the list was taken: look again in the segments now.
                    Err(_) if seg.is_retired() && retries > 0 => {
                        retries -= 1;
                        continue 'again;
                    }
                    found => found?,
                };
                if let Some((offset, ts, epoch)) = found {
                    return Ok(Some(TimestampOffset {
                        offset,
                        timestamp: ts,
                        leader_epoch: epoch,
                    }));
                }
            }
            return Ok(None);
        }
    }

    /// The largest timestamp in the log and the first record carrying it
    /// (ListOffsets with timestamp -3, as Kafka answers it: the first segment
    /// reaching that timestamp, the first batch in it, the first record in
    /// that batch).
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        let mut retries = RETIRED_RETRIES;
        'again: loop {
            let mut best: Option<(i64, u64, Arc<Segment>)> = None;
            for seg in self.segment_list() {
                let (ts, offset) = match seg.max_timestamp() {
                    Err(_) if seg.is_retired() && retries > 0 => {
                        retries -= 1;
                        continue 'again;
                    }
                    found => found?,
                };
                if ts >= 0 && best.as_ref().is_none_or(|b| ts > b.0) {
                    best = Some((ts, offset, seg));
                }
            }
            let Some((timestamp, offset, seg)) = best else {
                return Ok(None);
            };
            let found = match seg.first_with_timestamp(
                offset,
                timestamp,
                self.config().max_decompressed_bytes,
            ) {
                Err(_) if seg.is_retired() && retries > 0 => {
                    retries -= 1;
                    continue 'again;
                }
                found => found.map_err(|e| self.vanished(e, offset))?,
            };
            return Ok(found.map(|(offset, leader_epoch)| TimestampOffset {
                offset,
                timestamp,
                leader_epoch,
            }));
        }
    }

    /// Closes cleanly: flushes, trims the active indexes, records the
    /// recovery point and writes the clean-shutdown marker, so the next open
    /// skips recovery ([`Log::is_marked_clean`] says whether it did). A
    /// poisoned log is not marked clean.
    ///
    /// Under deferred syncs the caller syncs the filesystem once after its
    /// closes, and the marker and recovery point written here would share
    /// that sync, unordered, with anything flushed now: they vouch only for
    /// what was flushed before the caller's previous sync (its flushes under
    /// deferred syncs). A log appended to since, or while it closes, is
    /// closed without a marker, and its next open recovers the tail.
    pub fn close(&self) -> Result<()> {
        let _m = self.maintenance.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Err(e) = self.check_writable() {
            self.closed.store(true, Ordering::Release);
            return Err(e);
        }
        let end = self.log_end_offset();
        let flushed_before = {
            let st = self.flush.lock();
            st.durable.max(st.deferred)
        };
        self.flush_until(end)?;
        let w = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        let vouched = if crate::fs::syncs_deferred() {
            flushed_before.min(end)
        } else {
            end
        };
        let clean = vouched == end && w.next_offset == end;
        // Nothing changed since a clean open: its marker still holds.
        let marked = self.marked.load(Ordering::Acquire);
        let active = Arc::clone(&w.active);
        let done = (|| {
            {
                let index = active.index()?;
                let mut index = index.write();
                index.trim()?;
                index.flush()?;
            }
            self.write_checkpoint(vouched)?;
            if marked || !clean {
                return Ok(());
            }
            CleanShutdown {
                log_end_offset: end,
                active_segment_base: active.base_offset,
                active_segment_size: active.size(),
            }
            .write_to(self.ctx.fs.as_ref(), &self.ctx.dir)?;
            self.marked.store(true, Ordering::Release);
            Ok(())
        })();
        drop(w);
        self.heal_or_poison(done)
    }

    /// Whether the log's clean-shutdown marker is on disk: left by a clean
    /// close and untouched since its open, or written by its own close.
    pub fn is_marked_clean(&self) -> bool {
        self.marked.load(Ordering::Acquire)
    }
}
