//! Per-log configuration: segment rolling, indexing, flushing, retention and
//! compaction. Defaults follow Kafka's topic defaults where Kafka has one.

use std::time::Duration;

use crate::error::{Result, StorageError};

/// When the log fsyncs on its own.
///
/// Whatever the policy, a caller can make data durable with
/// [`Log::flush`](crate::Log::flush) or wait for it with
/// [`Log::wait_durable`](crate::Log::wait_durable) (what a broker does for
/// `acks=all`), and a rolled segment is always fsynced before the recovery
/// point moves past it. Concurrent waiters share fsyncs (group commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Every append returns only once it is on disk.
    Always,
    /// Appends are fsynced at least this often (checked on append and by
    /// [`Log::flush_if_due`](crate::Log::flush_if_due)).
    Interval(Duration),
    /// The log never fsyncs unless asked: the OS writes pages back. Appended
    /// data survives a process crash (it is in the page cache), not power loss.
    #[default]
    Never,
}

/// What happens to old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// Delete whole old segments by age and size.
    #[default]
    Delete,
    /// Keep the latest record per key.
    Compact,
    /// Both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Retention by age/size applies.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
    /// Compaction applies.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

/// Configuration of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this (Kafka
    /// `segment.bytes`, default 1 GiB, at most 2 GiB - 1).
    pub segment_bytes: u64,
    /// Roll once the newest timestamp is this much later than the segment's
    /// first (Kafka `segment.ms`, default 7 days).
    pub segment_ms: Option<i64>,
    /// Bytes between two entries of the sparse indexes (Kafka
    /// `index.interval.bytes`, default 4096).
    pub index_interval_bytes: u64,
    /// Largest size of each index file (Kafka `segment.index.bytes`, default
    /// 10 MiB). Index files grow in steps up to it; a full index rolls the
    /// segment.
    pub max_index_bytes: u64,
    /// When to fsync.
    pub flush: FlushPolicy,
    /// Delete segments whose newest record is older than this (Kafka
    /// `retention.ms`, default 7 days; `None` keeps forever).
    pub retention_ms: Option<i64>,
    /// Delete oldest segments while the log is larger than this (Kafka
    /// `retention.bytes`, default unlimited).
    pub retention_bytes: Option<u64>,
    /// Delete, compact, or both.
    pub cleanup_policy: CleanupPolicy,
    /// How long a tombstone is kept by compaction (Kafka
    /// `delete.retention.ms`, default 1 day).
    pub delete_retention_ms: i64,
    /// Largest decompressed size of one batch that compaction and timestamp
    /// lookups will inflate.
    pub max_decompressed_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * DAY_MS),
            index_interval_bytes: 4096,
            max_index_bytes: 10 << 20,
            flush: FlushPolicy::Never,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DAY_MS,
            max_decompressed_bytes: 256 << 20,
        }
    }
}

impl LogConfig {
    /// Checks ranges; called by `Log::open`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(StorageError::Config(m));
        if self.segment_bytes < 64 || self.segment_bytes > i32::MAX as u64 {
            return bad(format!(
                "segment_bytes {} must be within [64, {}]",
                self.segment_bytes,
                i32::MAX
            ));
        }
        if self.max_index_bytes < 24 || self.max_index_bytes > i32::MAX as u64 {
            return bad(format!(
                "max_index_bytes {} must be within [24, {}]",
                self.max_index_bytes,
                i32::MAX
            ));
        }
        if self.segment_ms.is_some_and(|ms| ms <= 0) {
            return bad("segment_ms must be positive".into());
        }
        if self.retention_ms.is_some_and(|ms| ms < 0) {
            return bad("retention_ms must not be negative".into());
        }
        if self.delete_retention_ms < 0 {
            return bad("delete_retention_ms must not be negative".into());
        }
        if let FlushPolicy::Interval(d) = self.flush {
            if d.is_zero() {
                return bad("flush interval must be positive (use FlushPolicy::Always)".into());
            }
        }
        if self.max_decompressed_bytes < 1024 {
            return bad("max_decompressed_bytes must be at least 1024".into());
        }
        Ok(())
    }
}
