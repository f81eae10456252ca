//! Names of the files in a partition directory (see docs/FORMAT.md).
//!
//! ```text
//! 00000000000000000000.log         batches, as appended
//! 00000000000000000000.index       sparse offset index
//! 00000000000000000000.timeindex   sparse time index
//! 00000000000000000000.txnindex    aborted transactions (only where there are some)
//! recovery-point.checkpoint        recovery point and log start offset
//! clean-shutdown.checkpoint        present only between a clean close and the next open
//! *.cleaned                        compaction output not yet committed
//! *.log.deleted                    segment folded into a compacted one, not yet removed
//! *.tmp                            checkpoint being written
//! partition.checkpoint             the broker's: which topic the directory belongs to
//! producers.checkpoint             the broker's: idempotent producer state snapshot
//! leader-epoch.checkpoint          the broker's: leader epochs and where each starts
//! ```

use std::path::{Path, PathBuf};

/// Segment data.
pub const LOG_SUFFIX: &str = ".log";
/// Offset index.
pub const INDEX_SUFFIX: &str = ".index";
/// Time index.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Aborted-transaction index.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Suffix added to compaction output until it is committed.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix added to a segment replaced by compaction until it is removed.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Suffix of a checkpoint being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// Recovery-point checkpoint file name.
pub const RECOVERY_CHECKPOINT: &str = "recovery-point.checkpoint";
/// Clean-shutdown marker file name.
pub const CLEAN_SHUTDOWN: &str = "clean-shutdown.checkpoint";
/// The broker's record of which topic a partition directory belongs to
/// (docs/FORMAT.md 9.3).
pub const PARTITION_CHECKPOINT: &str = "partition.checkpoint";
/// The broker's idempotent producer state snapshot (docs/FORMAT.md 9.4).
pub const PRODUCERS_CHECKPOINT: &str = "producers.checkpoint";
/// The broker's leader-epoch cache (docs/FORMAT.md 9.5).
pub const LEADER_EPOCHS_CHECKPOINT: &str = "leader-epoch.checkpoint";
/// The checkpoints the broker keeps in a partition directory: not
/// storage's to read or remove, and not unknown either.
pub const BROKER_CHECKPOINTS: [&str; 3] = [
    PARTITION_CHECKPOINT,
    PRODUCERS_CHECKPOINT,
    LEADER_EPOCHS_CHECKPOINT,
];

/// The three files of one segment.
pub(crate) fn segment_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Path of a segment file in `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: u64, suffix: &str) -> PathBuf {
    dir.join(segment_name(base_offset, suffix))
}

/// What a file in a partition directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    Log(u64),
    Index(u64),
    TimeIndex(u64),
    TxnIndex(u64),
    /// Uncommitted compaction output: always removed at open.
    Cleaned,
    /// A replaced segment (`{base}.log.deleted`).
    DeletedLog(u64),
    /// Stray temporary file: removed at open.
    Temporary,
    RecoveryCheckpoint,
    CleanShutdown,
    /// One of [`BROKER_CHECKPOINTS`]: left alone.
    BrokerCheckpoint,
    Unknown,
}

fn base_of(stem: &str) -> Option<u64> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Classifies a file name.
pub(crate) fn classify(name: &str) -> FileKind {
    if name == RECOVERY_CHECKPOINT {
        return FileKind::RecoveryCheckpoint;
    }
    if name == CLEAN_SHUTDOWN {
        return FileKind::CleanShutdown;
    }
    if BROKER_CHECKPOINTS.contains(&name) {
        return FileKind::BrokerCheckpoint;
    }
    if name.ends_with(TMP_SUFFIX) {
        return FileKind::Temporary;
    }
    if name.ends_with(CLEANED_SUFFIX) {
        return FileKind::Cleaned;
    }
    if let Some(stem) = name.strip_suffix(DELETED_SUFFIX) {
        if let Some(base) = stem.strip_suffix(LOG_SUFFIX).and_then(base_of) {
            return FileKind::DeletedLog(base);
        }
        // An index renamed by an older layout: derived data, removable.
        return FileKind::Cleaned;
    }
    let parse = |suffix: &str| name.strip_suffix(suffix).and_then(base_of);
    if let Some(b) = parse(LOG_SUFFIX) {
        FileKind::Log(b)
    } else if let Some(b) = parse(INDEX_SUFFIX) {
        FileKind::Index(b)
    } else if let Some(b) = parse(TIME_INDEX_SUFFIX) {
        FileKind::TimeIndex(b)
    } else if let Some(b) = parse(TXN_INDEX_SUFFIX) {
        FileKind::TxnIndex(b)
    } else {
        FileKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(classify("00000000000000000042.log"), FileKind::Log(42));
        assert_eq!(classify("00000000000000000042.index"), FileKind::Index(42));
        assert_eq!(
            classify("00000000000000000042.timeindex"),
            FileKind::TimeIndex(42)
        );
        assert_eq!(
            classify("00000000000000000042.txnindex"),
            FileKind::TxnIndex(42)
        );
        assert_eq!(
            classify("00000000000000000042.log.deleted"),
            FileKind::DeletedLog(42)
        );
        assert_eq!(
            classify("00000000000000000042.log.cleaned"),
            FileKind::Cleaned
        );
        assert_eq!(
            classify("recovery-point.checkpoint.tmp"),
            FileKind::Temporary
        );
        assert_eq!(classify("42.log"), FileKind::Unknown);
        assert_eq!(classify("0000000000000000004x.log"), FileKind::Unknown);
        assert_eq!(classify(RECOVERY_CHECKPOINT), FileKind::RecoveryCheckpoint);
        for name in BROKER_CHECKPOINTS {
            assert_eq!(classify(name), FileKind::BrokerCheckpoint, "{name}");
        }
        assert_eq!(
            classify("leader-epoch.checkpoint"),
            FileKind::BrokerCheckpoint
        );
        assert_eq!(classify("producers.checkpoint.tmp"), FileKind::Temporary);
    }
}
