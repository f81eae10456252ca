//! Checking a segment's indexes against its log (docs/FORMAT.md 4.2), and
//! rebuilding them from the log when the check fails.
//!
//! The check reads entries through [`EntryList`], so it runs the same on the
//! mapped files of an open segment and on files read (not changed) by the
//! recovery plan: entries in order and within the segment, then the indexing
//! rule (4.1) replayed from the last offset entry to the end of the data.

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::fs::FileHandle;
use crate::index::{EntryList, IndexSink, IndexTracker, OffsetEntry, SegmentIndex, TimeEntry};
use crate::scan::{scan_file, ScanSummary};
use crate::segment::HeaderWalker;

/// Relative offsets are u32: a segment spans at most this many offsets.
pub(crate) const MAX_SPAN: u64 = u32::MAX as u64 + 1;

/// The segment data an index check reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentData<'a> {
    pub file: &'a dyn FileHandle,
    pub path: &'a Path,
    pub base: u64,
    /// Bytes of whole batches.
    pub size: u64,
    /// Offsets the segment may hold (the next segment's base minus this
    /// one's, or [`MAX_SPAN`]).
    pub span: u64,
    pub interval: u64,
}

/// What checking a segment's indexes found.
#[derive(Debug, Clone)]
pub(crate) struct IndexCheck {
    /// Why the indexes must be rebuilt, if they must.
    pub problem: Option<String>,
    /// The indexing state at the end of the data, from the indexes and the
    /// replayed tail (meaningful when there is no problem).
    pub tracker: IndexTracker,
    /// The last offset of the last batch, seen by the replay (meaningful
    /// when there is no problem: the replay then walked the segment's
    /// batches from the last indexed one to the end; `None`, no batch).
    pub last_offset: Option<u64>,
}

/// The first entry that is out of order with its predecessor or out of
/// range, as a message.
fn first_bad<E: Copy>(
    list: &impl EntryList<E>,
    bad: impl Fn(Option<&E>, &E) -> Option<&'static str>,
) -> Option<String> {
    if list.ragged() {
        return Some("length is not a whole number of entries".into());
    }
    let mut prev = None;
    for i in 0..list.count() {
        let e = list.get(i);
        if let Some(why) = bad(prev.as_ref(), &e) {
            return Some(format!("entry {i} {why}"));
        }
        prev = Some(e);
    }
    None
}

/// Why the offset entries cannot be right for a segment of `size` bytes
/// whose relative offsets stay below `span`, if they can't.
fn offsets_problem(list: &impl EntryList<OffsetEntry>, size: u64, span: u64) -> Option<String> {
    first_bad(list, |prev, e| {
        if u64::from(e.position) >= size.max(1) {
            Some("points past the end of the log")
        } else if u64::from(e.relative_offset) >= span {
            Some("names an offset beyond the segment")
        } else if prev
            .is_some_and(|p| e.relative_offset <= p.relative_offset || e.position <= p.position)
        {
            Some("does not increase")
        } else {
            None
        }
    })
}

/// Why the time entries cannot be right, if they can't.
fn times_problem(list: &impl EntryList<TimeEntry>, span: u64) -> Option<String> {
    first_bad(list, |prev, e| {
        if u64::from(e.relative_offset) >= span {
            Some("names an offset beyond the segment")
        } else if prev
            .is_some_and(|p| e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset)
        {
            Some("does not increase")
        } else {
            None
        }
    })
}

/// Checks a segment's two indexes against its data. A sealed segment's time
/// index must also end with its largest timestamp.
pub(crate) fn check_indexes(
    offsets: &impl EntryList<OffsetEntry>,
    times: &impl EntryList<TimeEntry>,
    data: SegmentData<'_>,
    sealed: bool,
) -> Result<IndexCheck> {
    let mut check = IndexCheck {
        problem: offsets_problem(offsets, data.size, data.span)
            .or_else(|| times_problem(times, data.span)),
        tracker: IndexTracker::new(data.base),
        last_offset: None,
    };
    if check.problem.is_some() {
        return Ok(check);
    }
    let last_time = times.last_entry();
    check.problem = replay_tail(
        offsets.last_entry(),
        data,
        &mut check.tracker,
        &mut check.last_offset,
    )?;
    let indexed = last_time.map_or(-1, |e| e.timestamp);
    if check.problem.is_none()
        && sealed
        && check.tracker.max_timestamp >= 0
        && indexed < check.tracker.max_timestamp
    {
        check.problem = Some("time index lacks the segment's largest timestamp".into());
    }
    // The largest timestamp so far: the time index's, unless the tail holds
    // a larger one.
    if let Some(e) = last_time.filter(|e| e.timestamp >= check.tracker.max_timestamp) {
        check.tracker.max_timestamp = e.timestamp;
        check.tracker.offset_of_max_timestamp = data.base + u64::from(e.relative_offset);
    }
    Ok(check)
}

/// Replays the indexing rule from the last offset-index entry to the end of
/// the data into `tracker` (which starts fresh): no entry may be missing, and
/// the last entry must name the batch at its position. `last_offset` gets
/// the last offset of the last batch walked.
fn replay_tail(
    last_entry: Option<OffsetEntry>,
    data: SegmentData<'_>,
    tracker: &mut IndexTracker,
    last_offset: &mut Option<u64>,
) -> Result<Option<String>> {
    let start = last_entry.map_or(0, |e| u64::from(e.position));
    let mut walker = HeaderWalker::new(data.file, data.path, start, data.size);
    let mut first = last_entry;
    loop {
        let (pos, header) = match walker.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(StorageError::Corrupt { reason, .. }) => {
                return Ok(Some(format!("log tail does not parse: {reason}")));
            }
            Err(e) => return Err(e),
        };
        if let Some(entry) = first.take() {
            if header.last_offset() as u64 != data.base + u64::from(entry.relative_offset) {
                return Ok(Some(format!(
                    "last offset-index entry does not match the batch at position {pos}"
                )));
            }
        } else if tracker.bytes_since_entry > data.interval {
            return Ok(Some(format!(
                "offset index lacks an entry for the batch at position {pos}"
            )));
        }
        *last_offset = Some(header.last_offset() as u64);
        tracker.bytes_since_entry += header.len as u64;
        if header.max_timestamp > tracker.max_timestamp {
            tracker.max_timestamp = header.max_timestamp;
            tracker.offset_of_max_timestamp = header.last_offset() as u64;
        }
    }
    Ok(first.map(|_| "last offset-index entry points at no batch".into()))
}

/// Scans the first `len` bytes of the segment at `path` (validating every
/// batch, see `scan`) and feeds the indexing rule's entries to `sink`.
pub(crate) fn scan_and_index(
    file: &dyn FileHandle,
    path: &Path,
    len: u64,
    base: u64,
    interval: u64,
    sink: &mut impl IndexSink,
) -> Result<(ScanSummary, IndexTracker)> {
    let mut tracker = IndexTracker::new(base);
    let summary = scan_file(file, path, len, base, |b| {
        tracker.on_batch(
            sink,
            base,
            b.position,
            b.batch.last_offset() as u64,
            b.batch.max_timestamp(),
            b.batch.len() as u64,
            interval,
        )
    })?;
    Ok((summary, tracker))
}

/// Rebuilds both indexes from the log, validating every batch. Invalid data
/// here is corruption: the segment's data was complete when it was sealed or
/// cleanly closed.
pub(crate) fn rebuild(
    index: &mut SegmentIndex,
    data: SegmentData<'_>,
    sealed: bool,
) -> Result<IndexTracker> {
    index.clear();
    index.allow_for(data.size, data.interval);
    let (summary, tracker) = scan_and_index(
        data.file,
        data.path,
        data.size,
        data.base,
        data.interval,
        index,
    )?;
    if let Some(stop) = summary.stop {
        return Err(StorageError::Corrupt {
            path: data.path.to_path_buf(),
            position: stop.position,
            reason: stop.reason,
        });
    }
    if sealed {
        tracker.on_seal(index, data.base)?;
        index.trim()?;
    }
    index.flush()?;
    Ok(tracker)
}
