//! The closed-partitions record (`<data>/partitions.checkpoint`): what a
//! clean close knew about every partition (offsets, size, segments, leader
//! epoch), written once for the whole broker, so the next open can answer
//! Metadata, DescribeLogDirs and the metrics for a partition without opening
//! its log. A partition is opened on first use instead (see
//! [`crate::topic::PartitionEntry`]).
//!
//! An entry may be trusted only while its partition is unchanged since the
//! close that wrote it. Every change to a log first removes its
//! clean-shutdown marker, and a close removes this file before it writes any
//! marker, so: when the file's generation is the broker generation just
//! before this open, the previous open closed cleanly and every entry holds;
//! otherwise (the broker was killed since) an entry holds exactly when its
//! partition's clean-shutdown marker is still on disk. docs/FORMAT.md 9.8.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::leader_epoch::epoch_after_opens;
use crate::metadata;

/// `<data>/partitions.checkpoint`.
pub const CLOSED_PARTITIONS_FILE: &str = "partitions.checkpoint";
/// Its checkpoint kind.
pub(crate) const KIND_CLOSED_PARTITIONS: u16 = pubsub_storage::checkpoint::FIRST_USER_KIND + 7;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClosedPartitions {
    /// The broker generation whose clean close wrote the file.
    pub generation: u64,
    /// By topic name.
    pub topics: BTreeMap<String, ClosedTopic>,
}

/// One topic's partitions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClosedTopic {
    /// The topic id the entries belong to (a topic re-created under the
    /// same name has another).
    pub id: Uuid,
    /// By partition index; `None` for a partition that did not close
    /// cleanly.
    pub partitions: Vec<Option<ClosedPartition>>,
}

/// One partition as it was closed: a JSON array
/// `[log_start_offset, log_end_offset, size_bytes, segments, leader_epoch,
/// generation]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClosedPartition(
    /// First offset.
    pub u64,
    /// Next offset (the high watermark).
    pub u64,
    /// Bytes of its segment files.
    pub u64,
    /// Segments.
    pub u64,
    /// Its leader epoch at broker generation `.5`.
    pub i32,
    /// The broker generation `.4` belongs to.
    pub u64,
);

impl ClosedPartition {
    /// First offset.
    pub fn log_start_offset(&self) -> u64 {
        self.0
    }

    /// Next offset.
    pub fn log_end_offset(&self) -> u64 {
        self.1
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.2
    }

    /// Segments.
    pub fn segments(&self) -> u64 {
        self.3
    }

    /// The leader epoch the partition has when opened at broker generation
    /// `generation`: the partition file's rule (docs/FORMAT.md 9.3), +2 per
    /// broker open since, as `Partition::open` derives it.
    pub fn leader_epoch_at(&self, generation: u64) -> i32 {
        epoch_after_opens(self.4, generation.saturating_sub(self.5))
    }
}

impl ClosedPartitions {
    /// The file in `data`, if present and readable (an unreadable one is
    /// ignored: every partition is then opened at start, as before it
    /// existed).
    pub fn read(data: &Path) -> Option<ClosedPartitions> {
        match metadata::read(&data.join(CLOSED_PARTITIONS_FILE), KIND_CLOSED_PARTITIONS) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the closed-partitions file: every partition opens at start");
                None
            }
        }
    }

    /// Writes the file (fsynced, atomically replaced).
    pub fn write(&self, data: &Path) -> Result<()> {
        metadata::write(
            &data.join(CLOSED_PARTITIONS_FILE),
            KIND_CLOSED_PARTITIONS,
            self,
        )
    }

    /// Removes the file (its entries stop holding once a partition
    /// changes); durable with the caller's next directory or filesystem
    /// sync.
    pub fn remove(data: &Path) -> Result<()> {
        let path = data.join(CLOSED_PARTITIONS_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::error::BrokerError::io("delete", &path, e)),
        }
    }

    /// The entry of `topic`'s partition `index`, if the file has one for
    /// that topic id.
    pub fn entry(&self, topic: &str, id: Uuid, index: u32) -> Option<ClosedPartition> {
        let t = self.topics.get(topic).filter(|t| t.id == id)?;
        t.partitions.get(index as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_rise_by_two_per_open_since_the_close() {
        let p = ClosedPartition(0, 10, 100, 1, 4, 7);
        assert_eq!(p.leader_epoch_at(7), 4);
        assert_eq!(p.leader_epoch_at(8), 6);
        assert_eq!(p.leader_epoch_at(10), 10);
    }

    #[test]
    fn round_trips_and_matches_topic_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        let mut file = ClosedPartitions {
            generation: 3,
            ..Default::default()
        };
        file.topics.insert(
            "t".into(),
            ClosedTopic {
                id,
                partitions: vec![Some(ClosedPartition(1, 2, 3, 1, 0, 3)), None],
            },
        );
        file.write(dir.path()).expect("write");
        let read = ClosedPartitions::read(dir.path()).expect("read");
        assert_eq!(read, file);
        assert_eq!(
            read.entry("t", id, 0),
            Some(ClosedPartition(1, 2, 3, 1, 0, 3))
        );
        assert_eq!(read.entry("t", id, 1), None);
        assert_eq!(read.entry("t", id, 2), None);
        assert_eq!(read.entry("t", Uuid::new_v4(), 0), None);
        ClosedPartitions::remove(dir.path()).expect("remove");
        assert!(ClosedPartitions::read(dir.path()).is_none());
        ClosedPartitions::remove(dir.path()).expect("removing twice is fine");
    }
}
