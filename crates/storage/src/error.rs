//! The one error type of the storage crate.

use std::io;
use std::path::PathBuf;

use pubsub_records::RecordsError;

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file operation failed. The log is poisoned if it was a write or a
    /// sync, except a write that ran out of space
    /// ([`StorageError::is_out_of_space`]), which the log undoes.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An earlier write or fsync failed; the log refuses writes until reopened,
    /// because the kernel may have dropped the data it failed to write.
    #[error("log {dir} refuses writes after an earlier failure ({reason}); reopen it to recover")]
    Poisoned {
        /// Partition directory.
        dir: PathBuf,
        /// The failure that poisoned it.
        reason: String,
    },
    /// The log was closed.
    #[error("log {dir} is closed")]
    Closed {
        /// Partition directory.
        dir: PathBuf,
    },
    /// A read or lookup outside `[log start, log end]`.
    #[error("offset {offset} is out of range: the log holds [{start}, {end})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// Log start offset.
        start: u64,
        /// Log end offset (next offset to be written).
        end: u64,
    },
    /// A batch handed to `append` is not a valid RecordBatch v2.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] RecordsError),
    /// An append larger than a whole segment may hold.
    #[error("append of {size} bytes is larger than the segment size {max}")]
    BatchTooLarge {
        /// Bytes in the append.
        size: usize,
        /// `segment_bytes` of the log.
        max: u64,
    },
    /// Data that was durable (below the recovery point, or in a sealed
    /// segment) failed validation: reported, never deleted.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the bad batch.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint file exists but cannot be trusted.
    #[error("corrupt checkpoint {path}: {reason}")]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True for errors caused by the disk or the OS rather than by input
    /// (Kafka's KAFKA_STORAGE_ERROR): the partition refuses writes until
    /// reopened, or, if [`StorageError::is_out_of_space`], until space returns.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StorageError::Io { .. }
                | StorageError::Poisoned { .. }
                | StorageError::Corrupt { .. }
                | StorageError::CorruptCheckpoint { .. }
        )
    }

    /// True for an open or a map that failed for want of a descriptor or of
    /// memory ([`is_out_of_handles_io`]): nothing was written, so the log
    /// is not poisoned and the same operation may work on the next try (a
    /// KAFKA_STORAGE_ERROR answer, which clients retry).
    pub fn is_out_of_handles(&self) -> bool {
        match self {
            StorageError::Io { op, source, .. } => is_out_of_handles_io(op, source),
            _ => false,
        }
    }

    /// True for a failed operation that ran out of space and that the log
    /// undoes ([`is_out_of_space_io`]).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StorageError::Io { op, source, .. } => is_out_of_space_io(op, source),
            _ => false,
        }
    }

    /// True for a read that would have waited for the disk inside
    /// [`crate::fs::from_page_cache_only`]: nothing happened; run it again
    /// where it may block.
    pub fn is_would_block(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if source.kind() == io::ErrorKind::WouldBlock)
    }
}

/// The operations (the `op` of [`StorageError::Io`]) that may fail for want
/// of space and leave nothing behind the kernel had accepted: a write or a
/// file extension that allocates blocks (the caller cuts the partial part),
/// a file or directory creation (removed again), an open that creates a
/// missing file (an index; nothing is made), a rename (atomic: nothing
/// changed), an index trim (the file keeps its old length). Every other
/// operation failing so is not healable: above all a sync (`fsync`,
/// `fsync directory`, `msync`), whose failure means writeback of data the
/// kernel had accepted failed and it may be gone; also the `truncate` that
/// cuts a partial batch off, which leaves it there when it fails. A list of
/// the healable ones, not of the others, so that an operation added later
/// poisons until it is listed here.
pub const SPACE_OPS: [&str; 7] = [
    "write",
    "extend",
    "create",
    "create directory",
    "open",
    "rename",
    "trim",
];

/// True when `op` (one of [`SPACE_OPS`]) failed because the file system is
/// full (ENOSPC) or the quota used up (EDQUOT): the log undoes the partial
/// operation and takes writes again once there is space. The one rule for
/// the storage crate and the broker's own files.
pub fn is_out_of_space_io(op: &str, source: &io::Error) -> bool {
    matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) && SPACE_OPS.contains(&op)
}

/// The operations (the `op` of [`StorageError::Io`]) that may fail for want
/// of a descriptor (EMFILE, ENFILE) or of kernel memory (ENOMEM) and change
/// nothing: opening or creating a file (the descriptor is allocated before
/// the file is looked up or made; a segment or checkpoint file left empty
/// by a late ENOMEM is removed by the failing roll, or replaced by the next
/// checkpoint) and mapping an index. The descriptor budget
/// ([`crate::Handles`]) can be exceeded by handles in use, and other
/// processes share the system's limits, so reopening an evicted file may
/// meet them: the operation fails and the log stays writable. Any other
/// operation failing so (an fsync above all) still poisons.
pub const HANDLE_OPS: [&str; 3] = ["open", "create", "mmap"];

/// True when `op` (one of [`HANDLE_OPS`]) failed with EMFILE, ENFILE or
/// ENOMEM.
pub fn is_out_of_handles_io(op: &str, source: &io::Error) -> bool {
    matches!(
        source.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    ) && HANDLE_OPS.contains(&op)
}

/// Result alias used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
