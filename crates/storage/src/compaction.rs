//! Compaction for `cleanup.policy=compact`: keep the latest record of every
//! key in the sealed segments; offsets never change.
//!
//! 1. Make the sealed segments durable, then map every key in them to its
//!    latest offset (128-bit keyed hashes of the keys).
//! 2. Group adjacent sealed segments whose total size fits one segment.
//! 3. For each group, write `{base}.log.cleaned` (+ indexes): a batch whose
//!    records all survive is copied byte for byte; otherwise it is re-encoded
//!    with its codec, base offset, offset span and producer fields kept, and
//!    only the surviving records. A record survives if it is its key's latest
//!    and is not a tombstone older than `delete_retention_ms`; records
//!    without a key do not survive. An emptied batch is dropped, except the
//!    group's last one, kept with no records so the group still ends at the
//!    same offset (recovery relies on that). Control batches are kept.
//!    A merged group's aborted-transaction entries (markers are kept, so
//!    all of them) go to `{base}.txnindex.cleaned`.
//! 4. Commit, crash-safe at every step: rename the group's other segments to
//!    `.log.deleted` and drop the old offset and time indexes; rename the
//!    cleaned log over `{base}.log` (the commit point); rename the cleaned
//!    indexes (the `.txnindex` too); remove the `.deleted` files and the
//!    other segments' `.txnindex` files (kept until the commit point, so
//!    an undone commit restores them with their logs). Each step is
//!    followed by a directory fsync. Recovery finishes or undoes a
//!    half-done commit (see `recovery`); a merged `.txnindex` a crash kept
//!    from its place is found short by the broker's producer snapshot
//!    check and rebuilt from the log.
//!
//! The active segment is never touched.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use pubsub_records::{Batch, BatchBuilder, Header, NewRecord};

use crate::error::{Result, StorageError};
use crate::fs::OpenMode;
use crate::index::{IndexTracker, SegmentIndex};
use crate::layout::{
    segment_name, CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
};
use crate::log::Log;
use crate::scan::scan_file;
use crate::segment::Segment;
use crate::txn_index;

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Sealed segments looked at.
    pub segments_examined: usize,
    /// Groups rewritten (each becomes one segment).
    pub groups_rewritten: usize,
    /// Segments removed by merging groups.
    pub segments_merged_away: usize,
    /// Records dropped because a later record has the same key.
    pub superseded_removed: u64,
    /// Tombstones dropped after `delete_retention_ms`.
    pub tombstones_removed: u64,
    /// Records dropped for having no key.
    pub keyless_removed: u64,
    /// Records of aborted transactions dropped.
    pub aborted_removed: u64,
    /// Bytes of the rewritten groups before and after.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// 128-bit keyed hash: two independently seeded SipHashes. Random keys per
/// pass, so producers cannot craft colliding keys.
struct KeyHasher {
    a: std::collections::hash_map::RandomState,
    b: std::collections::hash_map::RandomState,
}

impl KeyHasher {
    fn new() -> Self {
        KeyHasher {
            a: std::collections::hash_map::RandomState::new(),
            b: std::collections::hash_map::RandomState::new(),
        }
    }
    fn hash(&self, key: &[u8]) -> u128 {
        (u128::from(self.a.hash_one(key)) << 64) | u128::from(self.b.hash_one(key))
    }
}

fn corrupt(seg: &Segment, position: u64, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        path: seg.path().to_path_buf(),
        position,
        reason: reason.to_string(),
    }
}

/// Calls `f` on every batch of a sealed segment, failing on invalid data.
fn for_each_batch(seg: &Segment, mut f: impl FnMut(u64, Batch<'_>) -> Result<()>) -> Result<()> {
    let file = seg.file()?;
    let summary = scan_file(
        file.as_ref(),
        seg.path(),
        seg.size(),
        seg.base_offset,
        |b| f(b.position, b.batch),
    )?;
    if let Some(stop) = summary.stop {
        return Err(corrupt(seg, stop.position, stop.reason));
    }
    Ok(())
}

impl Log {
    /// Runs one compaction pass over the sealed segments, as of `now_ms`
    /// (tombstone expiry). Does nothing unless the cleanup policy compacts.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionReport> {
        self.compact_below(now_ms, u64::MAX)
    }

    /// [`Log::compact`] of the sealed segments wholly below `upper` only:
    /// the broker passes the last stable offset, as Kafka's cleaner never
    /// cleans past the first unstable offset. Records of aborted
    /// transactions (as the aborted-transaction index says) are removed
    /// and never count as a key's latest value; markers are kept.
    pub fn compact_below(&self, now_ms: i64, upper: u64) -> Result<CompactionReport> {
        let mut report = CompactionReport::default();
        if !self.config().cleanup_policy.compacts() {
            return Ok(report);
        }
        let _m = self.maintenance.lock();
        self.check_writable()?;
        let active_base = self.writer.lock().active.base_offset;
        // Only fsynced data is rewritten.
        self.flush()?;
        let sealed: Vec<Arc<Segment>> = self
            .segment_list()
            .into_iter()
            .filter(|s| s.base_offset < active_base)
            .filter(|s| s.end_offset().is_some_and(|e| e <= upper))
            .collect();
        report.segments_examined = sealed.len();
        if sealed.is_empty() {
            return Ok(report);
        }
        self.unmark()?;
        // Hold everything open for the pass: readers of these segments keep
        // using the files a commit below renames (the budget cannot close
        // a file held here), and the replaced segments are retired, never
        // reopened by name.
        let mut _pinned = Vec::with_capacity(sealed.len());
        for seg in &sealed {
            _pinned.push((seg.file()?, seg.index()?));
        }

        let hasher = KeyHasher::new();
        let limit = self.config().max_decompressed_bytes;
        let aborted = self.aborted_txns(0, u64::MAX)?;
        let mut latest: HashMap<u128, u64> = HashMap::new();
        for seg in &sealed {
            for_each_batch(seg, |pos, batch| {
                if batch.is_control() || crate::AbortedTxn::covers_batch(&aborted, &batch) {
                    return Ok(());
                }
                let records = batch.records(limit).map_err(|e| corrupt(seg, pos, e))?;
                for r in records.iter() {
                    let r = r.map_err(|e| corrupt(seg, pos, e))?;
                    if let Some(key) = r.key {
                        latest.insert(hasher.hash(key), r.offset as u64);
                    }
                }
                Ok(())
            })?;
        }

        for group in self.groups(&sealed) {
            self.clean_group(&group, &latest, &aborted, &hasher, now_ms, &mut report)?;
        }
        Ok(report)
    }

    /// Adjacent sealed segments that fit in one segment together.
    fn groups(&self, sealed: &[Arc<Segment>]) -> Vec<Vec<Arc<Segment>>> {
        let mut groups: Vec<Vec<Arc<Segment>>> = Vec::new();
        let mut size = 0u64;
        for seg in sealed {
            let end = seg.end_offset().unwrap_or(seg.base_offset);
            let fits = groups.last().is_some_and(|g| {
                let base = g[0].base_offset;
                size + seg.size() <= self.config().segment_bytes
                    && end - base <= u64::from(u32::MAX)
            });
            if fits {
                size += seg.size();
                if let Some(g) = groups.last_mut() {
                    g.push(Arc::clone(seg));
                }
            } else {
                size = seg.size();
                groups.push(vec![Arc::clone(seg)]);
            }
        }
        groups
    }

    fn clean_group(
        &self,
        group: &[Arc<Segment>],
        latest: &HashMap<u128, u64>,
        aborted: &[crate::AbortedTxn],
        hasher: &KeyHasher,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<()> {
        let ctx = &self.ctx;
        let base = group[0].base_offset;
        let Some(end) = group[group.len() - 1].end_offset() else {
            return Ok(());
        };
        let group_bytes: u64 = group.iter().map(|s| s.size()).sum();
        let name = |suffix: &str| format!("{}{CLEANED_SUFFIX}", segment_name(base, suffix));
        let cleaned_log = ctx.dir.join(name(LOG_SUFFIX));
        let cleaned_index = ctx.dir.join(name(INDEX_SUFFIX));
        let cleaned_time = ctx.dir.join(name(TIME_INDEX_SUFFIX));
        let cleaned_txn = ctx.dir.join(name(TXN_INDEX_SUFFIX));
        let limit = self.config().max_decompressed_bytes;
        let tombstone_horizon = now_ms.saturating_sub(self.config().delete_retention_ms);

        let file = ctx
            .fs
            .open(&cleaned_log, OpenMode::Truncate)
            .map_err(|e| StorageError::io("create", &cleaned_log, e))?;
        // Room for the entries of the whole group (max_index_bytes applies
        // to active segments only).
        let mut index = SegmentIndex::open(
            &ctx.fs,
            &ctx.handles,
            &cleaned_index,
            &cleaned_time,
            0,
            true,
        )?;
        index.allow_for(group_bytes, ctx.index_interval);
        let mut tracker = IndexTracker::new(base);
        let mut pos = 0u64;
        let mut changed = group.len() > 1;
        let mut stats = CompactionReport::default();
        // The interval fixed at open, as every other index of this log.
        let interval = ctx.index_interval;

        for seg in group {
            for_each_batch(seg, |at, batch| {
                let is_last = batch.last_offset() as u64 + 1 == end;
                let rebuilt;
                let bytes: &[u8] = if batch.is_control() {
                    batch.as_bytes()
                } else {
                    let records = batch.records(limit).map_err(|e| corrupt(seg, at, e))?;
                    let mut kept = Vec::new();
                    if crate::AbortedTxn::covers_batch(aborted, &batch) {
                        stats.aborted_removed += records.len() as u64;
                    } else {
                        for r in records.iter() {
                            let r = r.map_err(|e| corrupt(seg, at, e))?;
                            let Some(key) = r.key else {
                                stats.keyless_removed += 1;
                                continue;
                            };
                            if latest.get(&hasher.hash(key)) != Some(&(r.offset as u64)) {
                                stats.superseded_removed += 1;
                            } else if r.is_tombstone() && r.timestamp < tombstone_horizon {
                                stats.tombstones_removed += 1;
                            } else {
                                kept.push(r);
                            }
                        }
                    }
                    if kept.len() == records.len() {
                        batch.as_bytes()
                    } else if kept.is_empty() && !is_last {
                        changed = true;
                        return Ok(());
                    } else {
                        changed = true;
                        rebuilt = rebuild(&batch, &kept).map_err(|e| corrupt(seg, at, e))?;
                        &rebuilt
                    }
                };
                file.write_all_at(bytes, pos)
                    .map_err(|e| StorageError::io("write", &cleaned_log, e))?;
                let header = Batch::parse(bytes).map_err(|e| corrupt(seg, at, e))?;
                tracker.on_batch(
                    &mut index,
                    base,
                    pos,
                    header.last_offset() as u64,
                    header.max_timestamp(),
                    bytes.len() as u64,
                    interval,
                )?;
                pos += bytes.len() as u64;
                Ok(())
            })
            .inspect_err(|_| self.discard(&[&cleaned_log, &cleaned_index, &cleaned_time]))?;
        }
        if !changed {
            drop(index);
            self.discard(&[&cleaned_log, &cleaned_index, &cleaned_time]);
            return Ok(());
        }
        // A merged group's aborted-transaction entries, in marker order:
        // the merged segment's index holds them all.
        let merged_txns = group.len() > 1 && group.iter().any(|s| s.has_aborted_txns());
        let finished = (|| {
            tracker.on_seal(&mut index, base)?;
            index.trim()?;
            index.flush()?;
            if merged_txns {
                let mut txns = Vec::new();
                for seg in group {
                    txns.extend(seg.aborted_txns()?.iter().copied());
                }
                txn_index::write_new(ctx.fs.as_ref(), &cleaned_txn, &txns)?;
            }
            file.sync_data()
                .map_err(|e| StorageError::io("fsync", &cleaned_log, e))
        })();
        if let Err(e) = finished {
            self.discard(&[&cleaned_log, &cleaned_index, &cleaned_time, &cleaned_txn]);
            return Err(e);
        }

        // Commit. From here a failure leaves the directory for recovery to
        // settle, so the log is poisoned until reopened.
        let cleaned = Cleaned {
            log: &cleaned_log,
            index: &cleaned_index,
            time: &cleaned_time,
            txn: merged_txns.then_some(cleaned_txn.as_path()),
        };
        let committed = self.commit_group(group, base, &cleaned);
        self.poison_on_err(committed)?;
        let seg = Arc::new(Segment::from_parts(
            ctx,
            base,
            file,
            index,
            pos,
            Some(end),
            &tracker,
        ));
        {
            let mut map = self.segments.write();
            for old in group {
                old.retire();
                map.remove(&old.base_offset);
            }
            map.insert(base, seg);
        }
        report.groups_rewritten += 1;
        report.segments_merged_away += group.len() - 1;
        report.superseded_removed += stats.superseded_removed;
        report.tombstones_removed += stats.tombstones_removed;
        report.keyless_removed += stats.keyless_removed;
        report.aborted_removed += stats.aborted_removed;
        report.bytes_before += group_bytes;
        report.bytes_after += pos;
        Ok(())
    }

    fn commit_group(&self, group: &[Arc<Segment>], base: u64, cleaned: &Cleaned<'_>) -> Result<()> {
        let ctx = &self.ctx;
        let fs = ctx.fs.as_ref();
        let dir = &ctx.dir;
        let sync_dir = || {
            fs.sync_dir(dir)
                .map_err(|e| StorageError::io("fsync directory", dir, e))
        };
        let rename = |from: &std::path::Path, to: &std::path::Path| {
            fs.rename(from, to)
                .map_err(|e| StorageError::io("rename", from, e))
        };
        let remove = |path: &std::path::Path| match fs.remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("delete", path, e)),
        };
        let deleted = |b: u64| dir.join(format!("{}{DELETED_SUFFIX}", segment_name(b, LOG_SUFFIX)));
        for old in &group[1..] {
            rename(
                &ctx.path(old.base_offset, LOG_SUFFIX),
                &deleted(old.base_offset),
            )?;
        }
        for old in group {
            remove(&ctx.path(old.base_offset, INDEX_SUFFIX))?;
            remove(&ctx.path(old.base_offset, TIME_INDEX_SUFFIX))?;
        }
        sync_dir()?;
        rename(cleaned.log, &ctx.path(base, LOG_SUFFIX))?;
        sync_dir()?;
        rename(cleaned.index, &ctx.path(base, INDEX_SUFFIX))?;
        rename(cleaned.time, &ctx.path(base, TIME_INDEX_SUFFIX))?;
        if let Some(txn) = cleaned.txn {
            rename(txn, &ctx.path(base, TXN_INDEX_SUFFIX))?;
        }
        for old in &group[1..] {
            remove(&ctx.path(old.base_offset, TXN_INDEX_SUFFIX))?;
            remove(&deleted(old.base_offset))?;
        }
        sync_dir()
    }

    /// Best-effort removal of uncommitted compaction output (open removes
    /// whatever is left).
    fn discard(&self, paths: &[&std::path::Path]) {
        for p in paths {
            let _ = self.ctx.fs.remove_file(p);
        }
    }
}

/// A group's compaction output, written and fsynced, to be renamed in.
struct Cleaned<'a> {
    log: &'a std::path::Path,
    index: &'a std::path::Path,
    time: &'a std::path::Path,
    /// The merged aborted-transaction index (a merged group with entries).
    txn: Option<&'a std::path::Path>,
}

/// Re-encodes `batch` with only `kept` records, keeping its codec, offsets,
/// timestamps and producer fields.
fn rebuild(
    batch: &Batch<'_>,
    kept: &[pubsub_records::Record<'_>],
) -> pubsub_records::Result<Vec<u8>> {
    let mut b = BatchBuilder::new()
        .compression(batch.compression()?)
        .timestamp_type(batch.timestamp_type())
        .base_offset(batch.base_offset())
        .partition_leader_epoch(batch.partition_leader_epoch())
        .producer(
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        )
        .transactional(batch.is_transactional())
        .base_timestamp(batch.base_timestamp())
        .last_offset_delta(batch.last_offset_delta());
    if kept.is_empty() || batch.timestamp_type() == pubsub_records::TimestampType::LogAppendTime {
        b = b.max_timestamp(batch.max_timestamp());
    }
    for r in kept {
        let headers: Vec<Header<'_>> = r.headers().collect();
        b.push_at(
            r.offset_delta,
            &NewRecord {
                timestamp: batch.base_timestamp().wrapping_add(r.timestamp_delta),
                key: r.key,
                value: r.value,
                headers: &headers,
            },
        )?;
    }
    b.build()
}
