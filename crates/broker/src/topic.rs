//! A topic: its metadata and its partitions, each opened on first use (a
//! partition not closed cleanly is recovered then, or by the background
//! recovery pass after start, whichever comes first).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use uuid::Uuid;

use crate::closed_partitions::ClosedPartition;
use crate::config::TopicConfig;
use crate::metadata::TopicMeta;
use crate::partition::Partition;

/// One topic as the broker holds it.
#[derive(Debug)]
pub(crate) struct Topic {
    pub meta: TopicMeta,
    pub config: Arc<TopicConfig>,
    pub partitions: Vec<Arc<PartitionEntry>>,
}

/// A partition as its topic holds it: opened (its log, epochs and producer
/// state loaded), or not yet, known by what its last clean close recorded
/// ([`ClosedPartition`]), which answers Metadata, DescribeLogDirs and the
/// metrics without a file of it being opened. It is opened once, on first
/// use ([`crate::broker`]'s `Inner::opened`), however many callers race.
///
/// A partition that did not close cleanly (killed broker) is left
/// unrecovered at start: nothing about it is known until it opens, so
/// every path that answers for it opens (recovers) it first
/// ([`PartitionEntry::needs_recovery`]).
#[derive(Debug)]
pub(crate) struct PartitionEntry {
    index: i32,
    /// Left unrecovered at start: `closed` is `None` and nothing may be
    /// answered for it before it opens.
    unrecovered: bool,
    /// What the last clean close recorded, while that still holds.
    closed: Option<ClosedPartition>,
    /// The leader epoch the partition gets when opened in this broker
    /// generation (from `closed`).
    closed_epoch: i32,
    /// An unrecovered partition's epoch as its files tell it before
    /// recovery (see [`PartitionEntry::set_epoch_before_recovery`]).
    epoch_before_recovery: OnceLock<i32>,
    /// Created closed by CreateTopics in this run (no log files yet).
    created_closed: bool,
    opened: OnceLock<Arc<Partition>>,
    /// Held while opening (so it happens once); holds the settings to open
    /// with, which topic changes update.
    opening: Mutex<Arc<TopicConfig>>,
    /// Its topic was deleted (set under the open lock): it never opens.
    deleted: AtomicBool,
}

impl PartitionEntry {
    /// An entry for a partition already open.
    pub fn open(p: Arc<Partition>, config: Arc<TopicConfig>) -> Arc<PartitionEntry> {
        let entry = PartitionEntry {
            index: p.index(),
            unrecovered: false,
            closed: None,
            closed_epoch: p.leader_epoch(),
            epoch_before_recovery: OnceLock::new(),
            created_closed: false,
            opened: OnceLock::new(),
            opening: Mutex::new(config),
            deleted: AtomicBool::new(false),
        };
        let _ = entry.opened.set(p);
        Arc::new(entry)
    }

    /// An entry for a partition CreateTopics just created closed: its
    /// directory holds only its partition file (made durable by the
    /// request), and its first open creates the log ([`PartitionEntry::is_created_closed`]).
    pub fn created_closed(
        index: i32,
        generation: u64,
        config: Arc<TopicConfig>,
    ) -> Arc<PartitionEntry> {
        let empty = ClosedPartition(0, 0, 0, 1, 0, generation, Some(-1), Some(0));
        Arc::new(PartitionEntry {
            index,
            unrecovered: false,
            closed: Some(empty),
            closed_epoch: empty.leader_epoch_at(generation),
            epoch_before_recovery: OnceLock::new(),
            created_closed: true,
            opened: OnceLock::new(),
            opening: Mutex::new(config),
            deleted: AtomicBool::new(false),
        })
    }

    /// True for a partition CreateTopics created closed in this run and
    /// not opened since: its first open writes nothing an answer relies on
    /// but the new log's files, whose directory the log's first flush
    /// syncs anyway, so it may defer its fsyncs.
    pub fn is_created_closed(&self) -> bool {
        self.created_closed && self.opened.get().is_none()
    }

    /// An entry for a partition left closed until first used.
    pub fn closed(
        index: i32,
        closed: ClosedPartition,
        generation: u64,
        config: Arc<TopicConfig>,
    ) -> Arc<PartitionEntry> {
        Arc::new(PartitionEntry {
            index,
            unrecovered: false,
            closed: Some(closed),
            closed_epoch: closed.leader_epoch_at(generation),
            epoch_before_recovery: OnceLock::new(),
            created_closed: false,
            opened: OnceLock::new(),
            opening: Mutex::new(config),
            deleted: AtomicBool::new(false),
        })
    }

    /// An entry for a partition that did not close cleanly, recovered on
    /// first use or by the background recovery pass.
    pub fn unrecovered(index: i32, config: Arc<TopicConfig>) -> Arc<PartitionEntry> {
        Arc::new(PartitionEntry {
            index,
            unrecovered: true,
            closed: None,
            closed_epoch: 0,
            epoch_before_recovery: OnceLock::new(),
            created_closed: false,
            opened: OnceLock::new(),
            opening: Mutex::new(config),
            deleted: AtomicBool::new(false),
        })
    }

    /// True while the partition is unrecovered: its epoch, offsets and size
    /// are unknown until it opens.
    pub fn needs_recovery(&self) -> bool {
        self.unrecovered && self.opened.get().is_none()
    }

    /// Partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The partition, if opened.
    pub fn get(&self) -> Option<&Arc<Partition>> {
        self.opened.get()
    }

    /// What the last clean close recorded, if the partition is not opened.
    pub fn closed_state(&self) -> Option<ClosedPartition> {
        match self.opened.get() {
            Some(_) => None,
            None => self.closed,
        }
    }

    /// The current leader epoch, opened or not (an unrecovered partition:
    /// the epoch told before its recovery, if one was, else 0).
    pub fn leader_epoch(&self) -> i32 {
        match (self.opened.get(), self.epoch_before_recovery.get()) {
            (Some(p), _) => p.leader_epoch(),
            (None, Some(&e)) if self.unrecovered => e,
            (None, _) => self.closed_epoch,
        }
    }

    /// The epoch its open will give an unrecovered partition, as read from
    /// its files before recovery (`crate::partition::epoch_without_recovery`),
    /// if it was read; what Metadata answered for it until it opens.
    pub fn epoch_before_recovery(&self) -> Option<i32> {
        self.epoch_before_recovery.get().copied()
    }

    /// Records the epoch an unrecovered partition's files tell before its
    /// recovery (the first reading stays).
    pub fn set_epoch_before_recovery(&self, epoch: i32) {
        let _ = self.epoch_before_recovery.set(epoch);
    }

    /// Offsets, size and segments, opened or not.
    pub fn describe(&self) -> PartitionDescription {
        match (self.opened.get(), self.closed) {
            (Some(p), _) => {
                let log = p.log();
                PartitionDescription {
                    partition: self.index,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    size_bytes: log.size_bytes(),
                    segments: log.segment_count(),
                }
            }
            (None, closed) => {
                let c = closed.unwrap_or(ClosedPartition(0, 0, 0, 0, 0, 0, None, None));
                PartitionDescription {
                    partition: self.index,
                    log_start_offset: c.log_start_offset(),
                    log_end_offset: c.log_end_offset(),
                    size_bytes: c.size_bytes(),
                    segments: usize::try_from(c.segments()).unwrap_or(usize::MAX),
                }
            }
        }
    }

    /// Runs `f` holding the open lock: with the settings to open with and
    /// the partition if it is open (no open starts or finishes meanwhile).
    pub fn with_opening<R>(
        &self,
        f: impl FnOnce(&mut Arc<TopicConfig>, Option<&Arc<Partition>>) -> R,
    ) -> R {
        let mut config = self.opening.lock();
        f(&mut config, self.opened.get())
    }

    /// The open lock itself, for a caller that opens several partitions
    /// together and holds all their locks until they are durable (the
    /// background recovery pass); no open starts or finishes while held.
    pub fn lock_opening(&self) -> parking_lot::MutexGuard<'_, Arc<TopicConfig>> {
        self.opening.lock()
    }

    /// Marks the partition deleted with its topic (the caller holds the
    /// open lock, and removes its files before releasing it): an open that
    /// raced the deletion and comes after finds it gone.
    pub fn set_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Whether its topic was deleted ([`PartitionEntry::set_deleted`]).
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Marks the entry opened (the caller holds the open lock, through
    /// [`PartitionEntry::with_opening`] or [`PartitionEntry::lock_opening`]).
    pub fn set_opened(&self, p: Arc<Partition>) {
        let _ = self.opened.set(p);
    }
}

/// What `describe_topic` reports about a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// First offset.
    pub log_start_offset: u64,
    /// Next offset (the high watermark).
    pub log_end_offset: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Segments.
    pub segments: usize,
}

/// What `describe_topic` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Topic id (persisted; Kafka's topic UUID).
    pub id: Uuid,
    /// Internal topics (`__consumer_offsets`) are hidden from plain listings.
    pub internal: bool,
    /// Per partition.
    pub partitions: Vec<PartitionDescription>,
    /// Every setting, by Kafka name, with whether it was set on the topic.
    pub configs: Vec<(String, String, bool)>,
}

impl Topic {
    pub fn describe(&self) -> TopicDescription {
        TopicDescription {
            name: self.meta.name.clone(),
            id: self.meta.id,
            internal: self.meta.internal,
            partitions: self.partitions.iter().map(|p| p.describe()).collect(),
            configs: self.config.described(&self.meta.configs),
        }
    }
}
