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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_records::{Batch, BatchMut};
use tracing::error;

use crate::checkpoint::{Checkpoint, CleanShutdown, RecoveryCheckpoint};
use crate::config::{FlushPolicy, LogConfig};
use crate::error::{Result, StorageError};
use crate::fs::{FileSystem, RealFs};
use crate::index::IndexTracker;
use crate::recovery::{self, RecoveryReport};
use crate::segment::{Segment, SegmentContext};
use crate::stats::{Histogram, HistogramSnapshot};

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

struct FlushState {
    /// Every offset below this is on disk.
    durable: u64,
    in_progress: bool,
    last_flush: Instant,
}

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
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    /// Serialises retention, compaction and close.
    pub(crate) maintenance: Mutex<()>,
    checkpointed: Mutex<Option<RecoveryCheckpoint>>,
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
        config.validate()?;
        let ctx = Arc::new(SegmentContext {
            dir: dir.into(),
            fs,
            max_index_bytes: config.max_index_bytes,
            index_interval: config.index_interval_bytes,
        });
        let opened = recovery::open(&ctx)?;
        let next = opened.next_offset;
        let start = opened.segments.first().map_or(next, |s| s.base_offset);
        let active = opened
            .segments
            .last()
            .map(Arc::clone)
            .ok_or_else(|| StorageError::Config("log opened without segments".into()))?;
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
                dir_dirty: false,
            }),
            segments: RwLock::new(map),
            end_offset: AtomicU64::new(next),
            start_offset: AtomicU64::new(start),
            flush: Mutex::new(FlushState {
                durable: next,
                in_progress: false,
                last_flush: Instant::now(),
            }),
            flushed: Condvar::new(),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            maintenance: Mutex::new(()),
            checkpointed: Mutex::new(opened.checkpoint),
            flush_stats: Histogram::new(),
        };
        // Whatever recovery kept is now fsynced: make the next recovery start here.
        log.write_checkpoint(next)?;
        Ok((log, opened.report))
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
        self.poison.lock().clone()
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

    /// `Poisoned` once a write or fsync has failed.
    fn check_not_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned {
                dir: self.ctx.dir.clone(),
                reason: self.poisoned().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Refuses all further writes until the log is reopened.
    pub(crate) fn poison(&self, cause: &StorageError) {
        let mut p = self.poison.lock();
        if p.is_none() {
            error!(dir = %self.ctx.dir.display(), error = %cause, "log poisoned: refusing writes until reopened");
            *p = Some(cause.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
        drop(p);
        self.flushed.notify_all();
    }

    /// Runs `f`; if it fails with a storage failure, poisons the log.
    pub(crate) fn poison_on_err<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_storage_failure() {
                self.poison(e);
            }
        }
        r
    }

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
                crate::writeback::request(f, from, to - from);
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
        if w.active.size() == 0 {
            return Ok(());
        }
        self.poison_on_err(self.roll_locked(&mut w))?;
        let base = w.next_offset;
        drop(w);
        self.flush_until(base)
    }

    /// fsyncs everything appended so far.
    pub fn flush(&self) -> Result<()> {
        self.flush_until(self.log_end_offset())
    }

    /// Returns once every offset up to and including `offset` is on disk
    /// (fsyncing if needed; concurrent callers share one fsync).
    pub fn wait_durable(&self, offset: u64) -> Result<()> {
        self.flush_until(offset.saturating_add(1))
    }

    /// For [`FlushPolicy::Interval`]: flushes if the interval has passed.
    /// A broker calls this from a timer so idle logs get flushed too.
    pub fn flush_if_due(&self) -> Result<()> {
        if let FlushPolicy::Interval(every) = self.config().flush {
            let due = self.flush.lock().last_flush.elapsed() >= every;
            if due && self.durable_offset() < self.log_end_offset() {
                return self.flush();
            }
        }
        Ok(())
    }

    /// Group commit: makes every offset below `target` durable. The first
    /// caller to find no flush running runs one covering everything written
    /// at that moment; the others wait for it and rarely need another.
    fn flush_until(&self, target: u64) -> Result<()> {
        let target = target.min(self.log_end_offset());
        let mut st = self.flush.lock();
        loop {
            if st.durable >= target {
                return Ok(());
            }
            self.check_not_poisoned()?;
            if st.in_progress {
                self.flushed.wait(&mut st);
                continue;
            }
            st.in_progress = true;
            drop(st);
            let started = Instant::now();
            let result = self.run_flush();
            self.flush_stats.observe(started.elapsed());
            st = self.flush.lock();
            st.in_progress = false;
            st.last_flush = Instant::now();
            match result {
                Ok(end) => st.durable = st.durable.max(end),
                Err(e) => {
                    drop(st);
                    self.poison(&e);
                    return Err(e);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// One fsync round: sealed segments waiting for it, the active segment,
    /// the directory if files came or went; then the recovery point if a
    /// segment was sealed. Returns the offset now durable.
    fn run_flush(&self) -> Result<u64> {
        let (end, active, sealed, dir_dirty) = {
            let mut w = self.writer.lock();
            (
                w.next_offset,
                Arc::clone(&w.active),
                std::mem::take(&mut w.unflushed),
                std::mem::take(&mut w.dir_dirty),
            )
        };
        for seg in &sealed {
            seg.sync(true)?;
        }
        active.sync(false)?;
        if dir_dirty {
            self.ctx
                .fs
                .sync_dir(&self.ctx.dir)
                .map_err(|e| StorageError::io("fsync directory", &self.ctx.dir, e))?;
        }
        if !sealed.is_empty() {
            self.write_checkpoint(end)?;
        }
        Ok(end)
    }

    /// Writes the recovery-point checkpoint (if it changed).
    pub(crate) fn write_checkpoint(&self, recovery_point: u64) -> Result<()> {
        let mut last = self.checkpointed.lock();
        let cp = RecoveryCheckpoint {
            recovery_point,
            log_start_offset: self.log_start_offset(),
        };
        if last.is_some_and(|l| l == cp) {
            return Ok(());
        }
        let written = cp.write_to(self.ctx.fs.as_ref(), &self.ctx.dir);
        self.poison_on_err(written)?;
        *last = Some(cp);
        Ok(())
    }

    /// Flushes, then records the recovery point, so recovery after a crash
    /// scans only what was written after this call. A broker calls it
    /// periodically (Kafka: every 60 s).
    pub fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        let end = self.log_end_offset();
        self.flush_until(end)?;
        self.write_checkpoint(end)
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
        let end = self.log_end_offset();
        let start = self.log_start_offset();
        if offset < start || offset > end {
            out.clear();
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        let mut target = offset;
        while target < end {
            let (seg, next_base) = {
                let map = self.segments.read();
                let Some((_, seg)) = map.range(..=target).next_back() else {
                    break;
                };
                let next = map.range(seg.base_offset + 1..).next().map(|(b, _)| *b);
                (Arc::clone(seg), next)
            };
            let found = seg
                .find_batch(target)
                .map_err(|e| self.vanished(e, offset))?;
            if let Some((pos, header)) = found {
                if let Err(e) = seg.read_batches_into(pos, header.len, max_bytes, out) {
                    out.clear();
                    return Err(self.vanished(e, offset));
                }
                return Ok((start, end));
            }
            match next_base {
                Some(b) => target = target.max(b),
                None => break,
            }
        }
        out.clear();
        Ok((start, end))
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
        let from = from.max(self.log_start_offset());
        for seg in self.segment_list() {
            if seg.end_offset().is_some_and(|e| e <= from) {
                continue;
            }
            let size = seg.size();
            let start = seg.scan_start(from)?;
            let file = seg.file()?;
            let path = seg.path();
            let mut walker = crate::segment::HeaderWalker::new(file.as_ref(), path, start, size);
            while let Some((_, header)) = walker.next()? {
                let last = header.last_offset() as u64;
                if last >= from && last < end {
                    f(&header);
                }
            }
        }
        Ok(())
    }

    /// A read racing with retention may find its segment's files gone.
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
        for seg in self.segment_list() {
            let (max, _) = seg.max_timestamp()?;
            if max < timestamp {
                continue;
            }
            if let Some((offset, ts)) =
                seg.find_timestamp(timestamp, self.config().max_decompressed_bytes)?
            {
                if offset >= self.log_start_offset() {
                    return Ok(Some(TimestampOffset {
                        offset,
                        timestamp: ts,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the last offset of its batch
    /// (ListOffsets with timestamp -3).
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        let mut best: Option<TimestampOffset> = None;
        for seg in self.segment_list() {
            let (ts, offset) = seg.max_timestamp()?;
            if ts >= 0 && best.is_none_or(|b| ts > b.timestamp) {
                best = Some(TimestampOffset {
                    offset,
                    timestamp: ts,
                });
            }
        }
        Ok(best)
    }

    /// Closes cleanly: flushes, trims the active indexes, records the
    /// recovery point and writes the clean-shutdown marker, so the next open
    /// skips recovery. A poisoned log is not marked clean.
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
        self.flush_until(end)?;
        let w = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        let active = Arc::clone(&w.active);
        let done = (|| {
            {
                let mut index = active.index()?.write();
                index.trim()?;
                index.flush()?;
            }
            self.write_checkpoint(end)?;
            CleanShutdown {
                log_end_offset: end,
                active_segment_base: active.base_offset,
                active_segment_size: active.size(),
            }
            .write_to(self.ctx.fs.as_ref(), &self.ctx.dir)
        })();
        drop(w);
        self.poison_on_err(done)
    }
}
