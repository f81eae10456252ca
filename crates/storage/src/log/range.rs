//! Reads that name bytes instead of copying them: [`Log::read_range`]
//! answers a fetch with a [`FileRange`], a run of whole batches in one
//! segment file that the network layer can hand to `sendfile(2)`.
//!
//! The range holds its own reference to the open file, so retention,
//! compaction or a descriptor budget dropping the segment cannot close the
//! descriptor under a send; an unlinked file stays readable while it is
//! open. A file truncated under a send (recovery or a leader-epoch
//! truncation rewriting the tail) makes the send come up short: the caller
//! must then drop the connection (see the server's connection writer).

use std::fmt;
use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::fs::FileHandle;
use crate::log::Log;

/// Whole batches, laid end to end as on disk, in one segment file.
#[derive(Clone)]
pub struct FileRange {
    file: Arc<dyn FileHandle>,
    pos: u64,
    len: u64,
    base_offset: u64,
    next_offset: u64,
}

impl fmt::Debug for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRange")
            .field("pos", &self.pos)
            .field("len", &self.len)
            .field("base_offset", &self.base_offset)
            .field("next_offset", &self.next_offset)
            .finish()
    }
}

impl FileRange {
    /// `len` bytes of `file` from `pos`, said to hold whole batches with
    /// offsets from `base_offset` to before `next_offset` (trusted: reads
    /// make ranges from the log; tests make their own).
    pub fn new(
        file: Arc<dyn FileHandle>,
        pos: u64,
        len: u64,
        base_offset: u64,
        next_offset: u64,
    ) -> Self {
        FileRange {
            file,
            pos,
            len,
            base_offset,
            next_offset,
        }
    }

    /// The open file the batches are in.
    pub fn file(&self) -> &Arc<dyn FileHandle> {
        &self.file
    }
    /// Position of the first batch in the file.
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether the range is empty (never, for a range a read returns).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Base offset of the first batch (may be below the offset asked for).
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }
    /// The offset after the last batch.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
    /// Offsets the range spans: its record count where no compaction left
    /// gaps (counted without reading the batches).
    pub fn offsets(&self) -> u64 {
        self.next_offset.saturating_sub(self.base_offset)
    }
    /// Copies the range into `out` (appended): the copying path, for a
    /// transport that cannot send from a file (TLS) and for tests.
    pub fn read_into(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let at = out.len();
        let len = usize::try_from(self.len)
            .map_err(|_| std::io::Error::other("file range larger than memory"))?;
        out.resize(at + len, 0);
        self.file.read_exact_at(&mut out[at..], self.pos)
    }
}

impl Log {
    /// As [`Log::read_into`], without reading: the whole batches from the
    /// one holding `offset` (or the first after it) that fit in `max_bytes`,
    /// as a range of its segment file; `None` when the log holds nothing at
    /// or after `offset`. Returns the log start and end offsets as of the
    /// read too.
    ///
    /// `min_one`: the first batch comes whole even past `max_bytes` (Kafka's
    /// `minOneMessage`, given to the first partition of a fetch answer with
    /// records). Without it a first batch larger than `max_bytes` gives
    /// `None`, as Kafka answers no records when the first entry would be
    /// incomplete.
    pub fn read_range(
        &self,
        offset: u64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(u64, u64, Option<FileRange>)> {
        self.read_range_below(offset, max_bytes, min_one, u64::MAX)
    }

    /// [`Log::read_range`] of the batches wholly below `upper` only (a
    /// `read_committed` fetch stops at the last stable offset, which is
    /// where a batch starts).
    pub fn read_range_below(
        &self,
        offset: u64,
        max_bytes: usize,
        min_one: bool,
        upper: u64,
    ) -> Result<(u64, u64, Option<FileRange>)> {
        let end = self.log_end_offset();
        let start = self.log_start_offset();
        if offset < start || offset > end {
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        let range = self.at_first_batch(offset, end.min(upper), |seg, pos, header| {
            let Some(max_bytes) = bytes_below(seg, pos, header, max_bytes, upper)? else {
                return Ok(None);
            };
            if !min_one && header.len as u64 > max_bytes as u64 {
                // The first batch does not fit and may not exceed the room.
                return Ok(None);
            }
            let run = seg.batch_run(pos, header, max_bytes)?;
            Ok(Some(FileRange {
                file: seg.file()?,
                pos,
                len: run.end - pos,
                base_offset: header.base_offset.max(0) as u64,
                next_offset: run.next_offset,
            }))
        })?;
        Ok((start, end, range.flatten()))
    }
}

/// `max_bytes` cut to the bytes from `pos` (where `first` starts) to the
/// first batch of `seg` reaching `upper`; `None` when `first` does.
///
/// When `upper` is the log end (the last stable offset with no transaction
/// open), the batch at `upper` may be appended while this runs: the
/// segment's size is taken before looking for that batch, so a batch
/// appended after the look (an open transaction's, past `upper`) lies
/// beyond the cut, and one appended before it is found and cut at.
pub(crate) fn bytes_below(
    seg: &crate::segment::Segment,
    pos: u64,
    first: &pubsub_records::BatchHeader,
    max_bytes: usize,
    upper: u64,
) -> Result<Option<usize>> {
    if upper == u64::MAX {
        return Ok(Some(max_bytes));
    }
    if first.last_offset() as u64 >= upper {
        return Ok(None);
    }
    let size = seg.size();
    let stop = match seg.find_batch(upper)? {
        Some((at, _)) => at.min(size),
        None => size,
    };
    Ok(Some(if stop > pos {
        max_bytes.min(usize::try_from(stop - pos).unwrap_or(usize::MAX))
    } else {
        max_bytes
    }))
}
