//! Aborted transactions: each segment's `.txnindex` lists the transactions
//! whose ABORT marker is in that segment, so a `read_committed` fetch can
//! tell its consumer which producers' records to skip in the range it reads
//! (Kafka's `aborted_transactions`).
//!
//! The file is small and rare (one entry per aborted transaction, only in
//! segments that hold an ABORT marker), so it costs no descriptor and no map
//! while idle: it is opened for the moment an entry is appended or the file
//! is first read, and its entries are then kept in memory with the segment.
//! A descriptor opened for that moment comes out of the reserve the
//! descriptor budget leaves, as checkpoints do (see [`crate::handles`]).
//!
//! The entries are derived data: the broker, which knows where each
//! transaction began, rebuilds them from the log after an unclean shutdown
//! or when a file is missing ([`Log::reset_aborted_txns`]). Byte layout:
//! docs/FORMAT.md 4.3.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::fs::{FileSystem, OpenMode};
use crate::log::Log;
use crate::segment::Segment;

/// File header: magic, version, reserved.
const MAGIC: [u8; 4] = *b"PSTX";
/// The only version so far.
pub const TXN_INDEX_VERSION: u16 = 1;
const HEADER: usize = 8;
/// One entry: four 8-byte fields and a CRC-32 of them.
const ENTRY: usize = 36;

/// One aborted transaction of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The producer that aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first batch (the marker's own offset
    /// when the transaction wrote nothing here).
    pub first_offset: u64,
    /// Offset of the ABORT marker.
    pub last_offset: u64,
    /// The last stable offset once this transaction ended: every
    /// transaction that began below it had ended by then, so a reader
    /// collecting aborted transactions below an offset can stop at the
    /// first entry whose `last_stable_offset` reaches it.
    pub last_stable_offset: u64,
}

impl AbortedTxn {
    /// Whether `batch` holds records of one of the `aborted` transactions:
    /// a transactional batch of the same producer whose base offset lies in
    /// its span (one transaction at a time per producer). What
    /// read_committed readers skip and compaction drops.
    pub fn covers_batch(aborted: &[AbortedTxn], batch: &pubsub_records::Batch<'_>) -> bool {
        if !batch.is_transactional() {
            return false;
        }
        let (pid, at) = (batch.producer_id(), batch.base_offset().max(0) as u64);
        aborted
            .iter()
            .any(|t| t.producer_id == pid && t.first_offset <= at && at <= t.last_offset)
    }
}

impl AbortedTxn {
    fn encode(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
        let crc = crc32fast::hash(&out[at..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let b: &[u8; ENTRY] = b.get(..ENTRY)?.try_into().ok()?;
        let field = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            x
        };
        let crc = u32::from_be_bytes([b[32], b[33], b[34], b[35]]);
        if crc32fast::hash(&b[..32]) != crc {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64::from_be_bytes(field(0)),
            first_offset: u64::from_be_bytes(field(1)),
            last_offset: u64::from_be_bytes(field(2)),
            last_stable_offset: u64::from_be_bytes(field(3)),
        })
    }
}

fn header() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + ENTRY);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&TXN_INDEX_VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// The entries of a file's bytes, up to the first torn or corrupt one (a
/// crash in the middle of an append leaves at most that one), and whether
/// the whole file was good. An unknown header reads as no entries.
pub(crate) fn decode(bytes: &[u8]) -> (Vec<AbortedTxn>, bool) {
    if bytes.is_empty() {
        return (Vec::new(), true);
    }
    let version_ok = bytes.len() >= HEADER
        && bytes[..4] == MAGIC
        && u16::from_be_bytes([bytes[4], bytes[5]]) == TXN_INDEX_VERSION;
    if !version_ok {
        return (Vec::new(), false);
    }
    let mut out = Vec::new();
    let mut at = HEADER;
    while at < bytes.len() {
        match AbortedTxn::decode(&bytes[at..]) {
            Some(e) => out.push(e),
            None => return (out, false),
        }
        at += ENTRY;
    }
    (out, true)
}

/// The entries in the file at `path` (none if it does not exist) and
/// whether it was whole.
pub(crate) fn read(fs: &dyn FileSystem, path: &Path) -> Result<(Vec<AbortedTxn>, bool)> {
    let file = match fs.open(path, OpenMode::ReadOnly) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), true)),
        Err(e) => return Err(StorageError::io("open", path, e)),
    };
    let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(64 << 20)];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| StorageError::io("read", path, e))?;
    Ok(decode(&bytes))
}

/// Appends `txn` after the `valid` good entries of the file at `path`
/// (created with its header if missing; a torn tail is overwritten), and
/// fsyncs it (and the directory, when the file is new).
pub(crate) fn append(
    fs: &dyn FileSystem,
    dir: &Path,
    path: &Path,
    valid: usize,
    txn: &AbortedTxn,
) -> Result<()> {
    let file = fs
        .open(path, OpenMode::ReadWrite)
        .map_err(|e| StorageError::io("open", path, e))?;
    let len = file.len().map_err(|e| StorageError::io("stat", path, e))?;
    let created = len == 0;
    let mut bytes = if valid == 0 { header() } else { Vec::new() };
    txn.encode(&mut bytes);
    let at = if valid == 0 {
        0
    } else {
        (HEADER + valid * ENTRY) as u64
    };
    let end = at + bytes.len() as u64;
    file.write_all_at(&bytes, at)
        .map_err(|e| StorageError::io("write", path, e))?;
    if len > end {
        file.set_len(end)
            .map_err(|e| StorageError::io("truncate", path, e))?;
    }
    file.sync_data()
        .map_err(|e| StorageError::io("fsync", path, e))?;
    if created {
        fs.sync_dir(dir)
            .map_err(|e| StorageError::io("fsync directory", dir, e))?;
    }
    Ok(())
}

/// Replaces the file at `path` with `entries` (removes it when there are
/// none): written to a temporary file, fsynced, renamed over it.
pub(crate) fn rewrite(
    fs: &dyn FileSystem,
    dir: &Path,
    path: &Path,
    entries: &[AbortedTxn],
) -> Result<()> {
    if entries.is_empty() {
        match fs.remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("delete", path, e)),
        }
    } else {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(crate::layout::TMP_SUFFIX);
        let tmp = std::path::PathBuf::from(tmp);
        write_new(fs, &tmp, entries)?;
        fs.rename(&tmp, path)
            .map_err(|e| StorageError::io("rename", &tmp, e))?;
    }
    fs.sync_dir(dir)
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Writes `entries` to a new file at `path` (replacing any), fsynced; the
/// caller renames it into place and syncs the directory.
pub(crate) fn write_new(fs: &dyn FileSystem, path: &Path, entries: &[AbortedTxn]) -> Result<()> {
    let mut bytes = header();
    for e in entries {
        e.encode(&mut bytes);
    }
    let file = fs
        .open(path, OpenMode::Truncate)
        .map_err(|e| StorageError::io("create", path, e))?;
    file.write_all_at(&bytes, 0)
        .map_err(|e| StorageError::io("write", path, e))?;
    file.sync_data()
        .map_err(|e| StorageError::io("fsync", path, e))
}

/// A segment's aborted transactions, as loaded (shared, read without
/// copying).
pub(crate) type Entries = Arc<Vec<AbortedTxn>>;

impl Log {
    /// Records an aborted transaction in the index of the segment that
    /// holds its ABORT marker (`txn.last_offset`, just appended), durably.
    /// A failure poisons the log: the marker is in the log without its
    /// entry, and only the rebuild at the next open puts it back.
    pub fn append_aborted_txn(&self, txn: AbortedTxn) -> Result<()> {
        let (seg, _) = self
            .segment_at(txn.last_offset)
            .ok_or(StorageError::OffsetOutOfRange {
                offset: txn.last_offset,
                start: self.log_start_offset(),
                end: self.log_end_offset(),
            })?;
        self.unmark()?;
        let r = seg.add_aborted_txn(&txn);
        self.poison_on_err(r)
    }

    /// The aborted transactions a read of `[from, upper)` needs to know
    /// (Kafka's `collectAbortedTransactions`): those whose records may be
    /// in that range (`last_offset >= from` and `first_offset < upper`), in
    /// marker order. Segments are searched from the one holding `from`
    /// until an entry shows every transaction begun below `upper` ended.
    pub fn aborted_txns(&self, from: u64, upper: u64) -> Result<Vec<AbortedTxn>> {
        self.collect_aborted_txns(from, upper, |seg| seg.aborted_txns().map(Some))
            .map(Option::unwrap_or_default)
    }

    /// [`Log::aborted_txns`] if it needs no disk read: `None` when a
    /// segment it would search has not had its index read yet (the caller
    /// then calls [`Log::aborted_txns`] where blocking is allowed).
    pub fn aborted_txns_in_memory(&self, from: u64, upper: u64) -> Option<Vec<AbortedTxn>> {
        self.collect_aborted_txns(from, upper, |seg| Ok(seg.loaded_aborted_txns()))
            .ok()
            .flatten()
    }

    /// The search of [`Log::aborted_txns`], with `entries` giving each
    /// segment's index (`None`: give up, the whole answer is `None`).
    fn collect_aborted_txns(
        &self,
        from: u64,
        upper: u64,
        entries: impl Fn(&Segment) -> Result<Option<Entries>>,
    ) -> Result<Option<Vec<AbortedTxn>>> {
        let mut out = Vec::new();
        for seg in self.segment_list() {
            if seg.end_offset().is_some_and(|e| e <= from) {
                continue;
            }
            let Some(index) = entries(&seg)? else {
                return Ok(None);
            };
            for e in index.iter() {
                if e.last_offset >= from && e.first_offset < upper {
                    out.push(*e);
                }
                if e.last_stable_offset >= upper {
                    return Ok(Some(out));
                }
            }
        }
        Ok(Some(out))
    }

    /// How many aborted transactions each segment's index holds, for the
    /// segments that hold any (read from their files when not loaded yet).
    pub fn aborted_txn_counts(&self) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for seg in self.segment_list() {
            let n = seg.aborted_txns()?.len() as u64;
            if n > 0 {
                out.push((seg.base_offset, n));
            }
        }
        Ok(out)
    }

    /// The segments whose index does not hold what `counts` (as
    /// [`Log::aborted_txn_counts`] returned them when the producer
    /// snapshot was taken at `below`) says: the number of entries below
    /// `below`, summed over the bases inside each segment (compaction
    /// merges segments and their indexes), or whose file was not read
    /// whole. Bases before the first segment (deleted by retention) are
    /// skipped. Empty: the index is intact.
    pub fn aborted_txns_mismatched(&self, counts: &[(u64, u64)], below: u64) -> Result<Vec<u64>> {
        let segments = self.segment_list();
        let mut out = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map_or(u64::MAX, |s| s.base_offset);
            let expected: u64 = counts
                .iter()
                .filter(|(b, _)| *b >= seg.base_offset && *b < next)
                .map(|(_, n)| n)
                .sum();
            if expected == 0 {
                continue;
            }
            let entries = seg.aborted_txns()?;
            let n = entries.iter().filter(|e| e.last_offset < below).count() as u64;
            if n != expected || !seg.aborted_txns_whole() {
                out.push(seg.base_offset);
            }
        }
        Ok(out)
    }

    /// Replaces every index entry whose marker is at or after `from` with
    /// `entries` (markers at or after `from`, as the broker found them in
    /// the log): the rebuild after an unclean shutdown, or of the whole log
    /// (`from` = the log start) when an index was missing. Only segments
    /// whose entries change are rewritten.
    pub fn reset_aborted_txns(&self, from: u64, entries: &[AbortedTxn]) -> Result<()> {
        let segments = self.segment_list();
        for (i, seg) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map_or(u64::MAX, |s| s.base_offset);
            if next <= from && seg.aborted_txns_whole() {
                continue;
            }
            let current = seg.aborted_txns()?;
            let mut wanted: Vec<AbortedTxn> = current
                .iter()
                .filter(|e| e.last_offset < from)
                .copied()
                .collect();
            wanted.extend(
                entries
                    .iter()
                    .filter(|e| e.last_offset >= seg.base_offset && e.last_offset < next),
            );
            if wanted != **current || !seg.aborted_txns_whole() {
                let r = seg.set_aborted_txns(wanted);
                self.poison_on_err(r)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: u64, last: u64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_round_trip_and_a_torn_tail_is_dropped() {
        let mut bytes = header();
        txn(7, 1, 5).encode(&mut bytes);
        txn(-3, 6, 9).encode(&mut bytes);
        assert_eq!(decode(&bytes), (vec![txn(7, 1, 5), txn(-3, 6, 9)], true));
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(decode(torn), (vec![txn(7, 1, 5)], false));
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 1;
        assert_eq!(decode(&flipped), (vec![], false));
        let mut future = bytes;
        future[5] = 9;
        assert_eq!(decode(&future), (vec![], false));
        assert_eq!(decode(&[]), (vec![], true));
    }
}
