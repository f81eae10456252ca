//! The partition log of pubsub: an append-only sequence of Kafka
//! RecordBatch v2 batches, split into segments, each a `.log` file with a
//! memory-mapped sparse offset index and time index.
//!
//! - [`Log::append`] assigns offsets, writes, indexes and rolls segments by
//!   size, age and index capacity.
//! - [`Log::read`] returns whole batches from the one holding an offset;
//!   [`Log::offset_for_timestamp`] finds the first record at or after a time.
//! - Durability follows [`FlushPolicy`]; concurrent waiters share fsyncs
//!   (group commit); a failed write or fsync poisons the log until reopened.
//! - [`Log::open`] recovers after an unclean stop from the recovery-point
//!   checkpoint and returns a [`RecoveryReport`].
//! - [`Log::apply_retention`] deletes old segments; [`Log::compact`] keeps
//!   the latest record per key.
//!
//! Synchronous by design (no async runtime): the broker calls it from its
//! own threads. Every byte written is specified in docs/FORMAT.md.
//!
//! ```
//! use pubsub_records::{BatchBuilder, NewRecord};
//! use pubsub_storage::{Log, LogConfig};
//!
//! # let dir = tempfile::tempdir()?;
//! let (log, report) = Log::open(dir.path().join("demo-0"), LogConfig::default())?;
//! println!("{report}");
//! let mut batch = BatchBuilder::new();
//! batch.push(&NewRecord { timestamp: 1_700_000_000_000, key: Some(b"k"), value: Some(b"v"), headers: &[] })?;
//! let mut bytes = batch.build()?;
//! let info = log.append(&mut bytes)?;              // offsets assigned
//! log.wait_durable(info.last_offset)?;             // fsynced (group commit)
//! let read = log.read(info.base_offset, 1 << 20)?; // whole batches, as stored
//! assert_eq!(read.records, bytes);
//! log.close()?;                                    // clean: the next open skips recovery
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
pub mod checkpoint;
mod compaction;
mod config;
mod error;
pub mod fault;
pub mod fs;
pub mod handles;
mod index;
mod layout;
mod log;
mod log_start;
mod plan;
mod recovery;
mod retention;
pub mod scan;
mod segment;
pub mod stats;
pub mod txn_index;
mod writeback;

pub use check::{check, CheckReport, SegmentCheck};
pub use compaction::CompactionReport;
pub use config::{CleanupPolicy, FlushPolicy, LogConfig};
pub use error::{
    is_out_of_handles_io, is_out_of_space_io, Result, StorageError, HANDLE_OPS, SPACE_OPS,
};
pub use handles::{HandleLimits, HandleStats, Handles};
pub use layout::{
    CLEAN_SHUTDOWN, INDEX_SUFFIX, LEADER_EPOCHS_CHECKPOINT, LOG_SUFFIX, PARTITION_CHECKPOINT,
    PRODUCERS_CHECKPOINT, RECOVERY_CHECKPOINT, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
pub use log::{AppendInfo, FileRange, Log, ReadResult, SegmentInfo, TimestampOffset};
pub use log_start::StartOffsetReport;
pub use plan::{Cut, CutReason, Outcome, RecoveryPlan, TidyStep};
pub use recovery::{DroppedSegment, RecoveryReport, Truncation};
pub use retention::RetentionReport;
pub use txn_index::AbortedTxn;
