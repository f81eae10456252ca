//! Small checkpoint files, written atomically and checksummed.
//!
//! Container (big-endian; docs/FORMAT.md has the payloads):
//!
//! ```text
//! offset len field
//!  0      4  magic "PSCK"
//!  4      2  format version = 1
//!  6      2  kind (1 recovery point, 2 clean shutdown; the broker adds its own)
//!  8      4  payload length N
//! 12      N  payload
//! 12+N    4  CRC-32 (IEEE, crc32fast) of bytes 0..12+N
//! ```
//!
//! Replacement is atomic: write `NAME.tmp`, fsync it, rename over `NAME`,
//! fsync the directory. A reader sees the old file or the new one, never a mix;
//! anything else (short, wrong magic, bad CRC) is reported as corrupt.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::fs::{FileSystem, OpenMode};

const MAGIC: [u8; 4] = *b"PSCK";
const VERSION: u16 = 1;
const HEADER: usize = 12;

/// Kind of the recovery-point checkpoint.
pub const KIND_RECOVERY_POINT: u16 = 1;
/// Kind of the clean-shutdown marker.
pub const KIND_CLEAN_SHUTDOWN: u16 = 2;
/// Kinds from here on are free for users of the container (the broker).
pub const FIRST_USER_KIND: u16 = 16;

/// Encodes a checkpoint container around `payload`.
pub fn encode(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a container of the expected `kind`; the error says what is wrong.
pub fn decode(kind: u16, bytes: &[u8]) -> std::result::Result<&[u8], String> {
    if bytes.len() < HEADER + 4 {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let found = u16::from_be_bytes([bytes[6], bytes[7]]);
    if found != kind {
        return Err(format!("kind {found}, expected {kind}"));
    }
    let len = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if bytes.len() != HEADER + len + 4 {
        return Err(format!(
            "payload length {len} does not match file size {}",
            bytes.len()
        ));
    }
    let (body, crc) = bytes.split_at(HEADER + len);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(&body[HEADER..])
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(crate::layout::TMP_SUFFIX);
    path.with_file_name(name)
}

/// Atomically replaces the checkpoint at `path` (temp file, fsync, rename,
/// directory fsync).
pub fn write(fs: &dyn FileSystem, path: &Path, kind: u16, payload: &[u8]) -> Result<()> {
    write_unsynced_dir(fs, path, kind, payload)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir)
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// [`write`] but for the directory fsync, which the caller owes before it
/// relies on the new file (a crash before it may leave the old one, or
/// the temp file, which an open removes).
pub fn write_unsynced_dir(
    fs: &dyn FileSystem,
    path: &Path,
    kind: u16,
    payload: &[u8],
) -> Result<()> {
    let bytes = encode(kind, payload);
    let tmp = tmp_path(path);
    let file = fs
        .open(&tmp, OpenMode::Truncate)
        .map_err(|e| StorageError::io("create", &tmp, e))?;
    if let Err(e) = file.write_all_at(&bytes, 0) {
        // On a full disk, give back what the partial temp file holds (open
        // removes leftovers anyway).
        drop(file);
        let _ = fs.remove_file(&tmp);
        return Err(StorageError::io("write", &tmp, e));
    }
    file.sync_data()
        .map_err(|e| StorageError::io("fsync", &tmp, e))?;
    drop(file);
    fs.rename(&tmp, path)
        .map_err(|e| StorageError::io("rename", path, e))
}

/// Reads the checkpoint at `path`: `None` if there is none.
pub fn read(path: &Path, kind: u16) -> Result<Option<Vec<u8>>> {
    let bytes = match read_small(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read", path, e)),
    };
    match decode(kind, &bytes) {
        Ok(payload) => Ok(Some(payload.to_vec())),
        Err(reason) => Err(StorageError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// Reads a (small) file whole without asking its size first: open, reads
/// until end of file, close. `std::fs::read` asks for the size (one more
/// system call); a partition's first open reads five checkpoints.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// A typed checkpoint with a fixed file name in the partition directory.
pub trait Checkpoint: Sized {
    /// Container kind.
    const KIND: u16;
    /// File name.
    const FILE: &'static str;
    /// Payload bytes.
    fn encode(&self) -> Vec<u8>;
    /// Parses payload bytes.
    fn decode(payload: &[u8]) -> std::result::Result<Self, String>;

    /// Reads it from `dir`: `None` if absent, `CorruptCheckpoint` if invalid.
    fn read_from(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(Self::FILE);
        match read(&path, Self::KIND)? {
            None => Ok(None),
            Some(payload) => Self::decode(&payload)
                .map(Some)
                .map_err(|reason| StorageError::CorruptCheckpoint { path, reason }),
        }
    }

    /// Atomically replaces it in `dir`.
    fn write_to(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        write(fs, &dir.join(Self::FILE), Self::KIND, &self.encode())
    }
}

/// The recovery point of a log: every offset below it was fsynced, and the
/// log start offset. Payload: `recovery_point u64 | log_start_offset u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryCheckpoint {
    /// All offsets below this are durable.
    pub recovery_point: u64,
    /// First offset of the log.
    pub log_start_offset: u64,
}

impl Checkpoint for RecoveryCheckpoint {
    const KIND: u16 = KIND_RECOVERY_POINT;
    const FILE: &'static str = crate::layout::RECOVERY_CHECKPOINT;

    fn encode(&self) -> Vec<u8> {
        u64_payload(&[self.recovery_point, self.log_start_offset])
    }

    fn decode(payload: &[u8]) -> std::result::Result<Self, String> {
        let [a, b] = u64_fields::<2>(payload)?;
        Ok(RecoveryCheckpoint {
            recovery_point: a,
            log_start_offset: b,
        })
    }
}

/// Written by a clean close, removed by the next open. Payload:
/// `log_end_offset u64 | active_segment_base u64 | active_segment_size u64`;
/// open trusts the marker only if the active segment still matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanShutdown {
    /// Next offset to be written.
    pub log_end_offset: u64,
    /// Base offset of the last segment.
    pub active_segment_base: u64,
    /// Its size in bytes.
    pub active_segment_size: u64,
}

impl Checkpoint for CleanShutdown {
    const KIND: u16 = KIND_CLEAN_SHUTDOWN;
    const FILE: &'static str = crate::layout::CLEAN_SHUTDOWN;

    fn encode(&self) -> Vec<u8> {
        u64_payload(&[
            self.log_end_offset,
            self.active_segment_base,
            self.active_segment_size,
        ])
    }

    fn decode(payload: &[u8]) -> std::result::Result<Self, String> {
        let [a, b, c] = u64_fields::<3>(payload)?;
        Ok(CleanShutdown {
            log_end_offset: a,
            active_segment_base: b,
            active_segment_size: c,
        })
    }
}

fn u64_payload(fields: &[u64]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_be_bytes()).collect()
}

fn u64_fields<const N: usize>(payload: &[u8]) -> std::result::Result<[u64; N], String> {
    if payload.len() != N * 8 {
        return Err(format!(
            "payload of {} bytes, expected {}",
            payload.len(),
            N * 8
        ));
    }
    let mut out = [0u64; N];
    for (i, chunk) in payload.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        out[i] = u64::from_be_bytes(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn checkpoints_larger_than_the_first_read_buffer_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.checkpoint");
        for size in [0, 1, 4095, 4096, 4097, 20_000] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            write(&RealFs, &path, 9, &payload).expect("write");
            assert_eq!(
                read(&path, 9).expect("read"),
                Some(payload),
                "a payload of {size} bytes"
            );
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.checkpoint");
        assert_eq!(read(&path, 1).expect("missing is fine"), None);
        let cp = RecoveryCheckpoint {
            recovery_point: 7,
            log_start_offset: 3,
        };
        write(&RealFs, &path, KIND_RECOVERY_POINT, &cp.encode()).expect("write");
        let payload = read(&path, KIND_RECOVERY_POINT)
            .expect("read")
            .expect("present");
        assert_eq!(RecoveryCheckpoint::decode(&payload), Ok(cp));
        cp.write_to(&RealFs, dir.path()).expect("typed write");
        assert_eq!(
            RecoveryCheckpoint::read_from(dir.path()).expect("typed read"),
            Some(cp)
        );
        assert_eq!(CleanShutdown::read_from(dir.path()).expect("absent"), None);
        assert!(!tmp_path(&path).exists());
        // Wrong kind, flipped bit, truncation: all refused.
        assert!(read(&path, KIND_CLEAN_SHUTDOWN).is_err());
        let mut bytes = std::fs::read(&path).expect("bytes");
        for i in 0..bytes.len() {
            bytes[i] ^= 0x10;
            assert!(decode(KIND_RECOVERY_POINT, &bytes).is_err(), "byte {i}");
            bytes[i] ^= 0x10;
        }
        assert!(decode(KIND_RECOVERY_POINT, &bytes[..bytes.len() - 1]).is_err());
    }
}
