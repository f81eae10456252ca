//! Validating scans of segment bytes: the one place that decides whether the
//! bytes of a segment are a valid sequence of batches. Recovery, index
//! rebuilds, `check` and the fuzzers all use it.
//!
//! A batch is valid when its length fits in what is left of the file, its
//! magic is 2, its CRC-32C matches, its header fields agree
//! ([`Batch::validate`]), its base offset is at or above the segment's base
//! and above the previous batch's last offset, and its last offset is
//! within 2^32 - 1 of the segment's base (index entries store relative
//! offsets as u32). The scan stops at the first invalid batch; everything
//! before it is the valid prefix.

use std::io;

use pubsub_records::{batch_len, Batch, LOG_OVERHEAD};

/// Positional reads: a file or a byte slice.
pub trait ReadAt {
    /// Reads at `pos`; returns bytes read, 0 at the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let Ok(pos) = usize::try_from(pos) else {
            return Ok(0);
        };
        if pos >= self.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.len() - pos);
        buf[..n].copy_from_slice(&self[pos..pos + n]);
        Ok(n)
    }
}

impl<F: crate::fs::FileHandle + ?Sized> ReadAt for F {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        crate::fs::FileHandle::read_at(self, buf, pos)
    }
}

/// Fills `buf` from `pos`, failing with `UnexpectedEof` at the end.
pub(crate) fn read_exact(
    r: &(impl ReadAt + ?Sized),
    mut buf: &mut [u8],
    mut pos: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match r.read_at(buf, pos) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment ended early",
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where and why a scan stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanStop {
    /// Byte position of the first invalid batch.
    pub position: u64,
    /// Why it is invalid.
    pub reason: String,
}

/// The outcome of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    /// Bytes of valid batches from the start.
    pub valid_len: u64,
    /// Valid batches.
    pub batches: u64,
    /// Last offset of the last valid batch.
    pub last_offset: Option<u64>,
    /// Set when invalid bytes follow the valid prefix.
    pub stop: Option<ScanStop>,
}

/// One valid batch met by a scan.
#[derive(Debug)]
pub struct ScannedBatch<'a> {
    /// Position in the segment.
    pub position: u64,
    /// The batch.
    pub batch: Batch<'a>,
}

const CHUNK: usize = 1 << 20;

/// Scans the first `len` bytes of a segment whose base offset is
/// `base_offset`, calling `on_batch` for each valid batch in order.
/// I/O errors are returned; invalid data ends the scan with `stop` set.
pub fn scan<R: ReadAt + ?Sized>(
    reader: &R,
    len: u64,
    base_offset: u64,
    mut on_batch: impl FnMut(ScannedBatch<'_>),
) -> io::Result<ScanSummary> {
    let mut summary = ScanSummary {
        valid_len: 0,
        batches: 0,
        last_offset: None,
        stop: None,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64; // file position of buf[0]
    let mut pos = 0u64;
    let stop = |position: u64, reason: String| Some(ScanStop { position, reason });
    while pos < len {
        let left = len - pos;
        if left < LOG_OVERHEAD as u64 {
            summary.stop = stop(pos, format!("{left} trailing bytes: a torn batch header"));
            break;
        }
        // Make sure the length prefix is buffered.
        let in_buf = |p: u64, n: u64, buf: &Vec<u8>, start: u64| {
            p >= start && p + n <= start + buf.len() as u64
        };
        if !in_buf(pos, LOG_OVERHEAD as u64, &buf, buf_start) {
            let n = (CHUNK as u64).min(left) as usize;
            buf.resize(n, 0);
            read_exact(reader, &mut buf, pos)?;
            buf_start = pos;
        }
        let at = (pos - buf_start) as usize;
        let total = match batch_len(&buf[at..]) {
            Ok(t) => t as u64,
            Err(e) => {
                summary.stop = stop(pos, e.to_string());
                break;
            }
        };
        if total > left {
            summary.stop = stop(
                pos,
                format!(
                    "batch of {total} bytes runs past the end of the segment ({left} bytes left)"
                ),
            );
            break;
        }
        if !in_buf(pos, total, &buf, buf_start) {
            let n = (CHUNK as u64).max(total).min(left) as usize;
            buf.resize(n, 0);
            read_exact(reader, &mut buf, pos)?;
            buf_start = pos;
        }
        let at = (pos - buf_start) as usize;
        let bytes = &buf[at..at + total as usize];
        let batch = match Batch::parse(bytes) {
            Ok(b) => b,
            Err(e) => {
                summary.stop = stop(pos, e.to_string());
                break;
            }
        };
        if let Err(e) = batch.validate() {
            summary.stop = stop(pos, e.to_string());
            break;
        }
        let base = batch.base_offset() as u64; // validate() rejects negatives
        let last = batch.last_offset() as u64;
        let floor = summary.last_offset.map_or(base_offset, |l| l + 1);
        if base < floor {
            summary.stop = stop(
                pos,
                format!("base offset {base} is below the expected {floor}"),
            );
            break;
        }
        if last - base_offset > u64::from(u32::MAX) {
            summary.stop = stop(
                pos,
                format!("offset {last} is too far from the segment base {base_offset}"),
            );
            break;
        }
        on_batch(ScannedBatch {
            position: pos,
            batch,
        });
        summary.batches += 1;
        summary.last_offset = Some(last);
        pos += total;
        summary.valid_len = pos;
    }
    Ok(summary)
}

/// [`scan`] over a segment file at `path` with a fallible `on_batch`: the
/// first error it returns ends the work (later batches are still validated,
/// not passed on) and is returned; I/O errors become `StorageError::Io`.
pub(crate) fn scan_file(
    file: &dyn crate::fs::FileHandle,
    path: &std::path::Path,
    len: u64,
    base_offset: u64,
    mut on_batch: impl FnMut(ScannedBatch<'_>) -> crate::error::Result<()>,
) -> crate::error::Result<ScanSummary> {
    let mut failure = None;
    let summary = scan(file, len, base_offset, |b| {
        if failure.is_none() {
            failure = on_batch(b).err();
        }
    })
    .map_err(|e| crate::error::StorageError::io("read", path, e))?;
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Scans segment bytes held in memory (used by the fuzzers and tools).
pub fn scan_bytes(bytes: &[u8], base_offset: u64) -> ScanSummary {
    match scan(bytes, bytes.len() as u64, base_offset, |_| {}) {
        Ok(s) => s,
        // Reading a slice within its length cannot fail.
        Err(e) => ScanSummary {
            valid_len: 0,
            batches: 0,
            last_offset: None,
            stop: Some(ScanStop {
                position: 0,
                reason: e.to_string(),
            }),
        },
    }
}
