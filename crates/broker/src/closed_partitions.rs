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
//!
//! Version 2 adds each partition's oldest segment (its largest timestamp and
//! its bytes), so retention can tell without opening a partition whether it
//! has anything to delete; version 1 files (entries of six) still load, and
//! their partitions are opened by retention as before.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::leader_epoch::epoch_after_opens;
use crate::metadata;

/// `<data>/partitions.checkpoint`.
pub const CLOSED_PARTITIONS_FILE: &str = "partitions.checkpoint";
/// Its checkpoint kind.
pub(crate) const KIND_CLOSED_PARTITIONS: u16 = pubsub_storage::checkpoint::FIRST_USER_KIND + 7;

/// The file version written (docs/FORMAT.md 9.8); a file without one is
/// version 1.
pub(crate) const CLOSED_PARTITIONS_VERSION: u16 = 2;

fn version_1() -> u16 {
    1
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClosedPartitions {
    /// [`CLOSED_PARTITIONS_VERSION`] when written.
    #[serde(default = "version_1")]
    pub version: u16,
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

impl Default for ClosedPartitions {
    fn default() -> Self {
        ClosedPartitions {
            version: CLOSED_PARTITIONS_VERSION,
            generation: 0,
            topics: BTreeMap::new(),
        }
    }
}

/// One partition as it was closed: a JSON array
/// `[log_start_offset, log_end_offset, size_bytes, segments, leader_epoch,
/// generation, oldest_max_timestamp, oldest_bytes]` (version 1: the first
/// six; the last two are then unknown).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
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
    /// The oldest segment's largest timestamp (-1: none), if known.
    pub Option<i64>,
    /// The oldest segment's bytes, if known.
    pub Option<u64>,
);

impl<'de> Deserialize<'de> for ClosedPartition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = ClosedPartition;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of 6 (version 1) or 8 closed-partition fields")
            }

            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let missing = |n| serde::de::Error::invalid_length(n, &self);
                let start = seq.next_element()?.ok_or_else(|| missing(0))?;
                let end = seq.next_element()?.ok_or_else(|| missing(1))?;
                let size = seq.next_element()?.ok_or_else(|| missing(2))?;
                let segments = seq.next_element()?.ok_or_else(|| missing(3))?;
                let epoch = seq.next_element()?.ok_or_else(|| missing(4))?;
                let generation = seq.next_element()?.ok_or_else(|| missing(5))?;
                let oldest_ts = seq.next_element::<Option<i64>>()?.flatten();
                let oldest_bytes = seq.next_element::<Option<u64>>()?.flatten();
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(9, &self));
                }
                Ok(ClosedPartition(
                    start,
                    end,
                    size,
                    segments,
                    epoch,
                    generation,
                    oldest_ts,
                    oldest_bytes,
                ))
            }
        }
        d.deserialize_seq(Entry)
    }
}

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

    /// Whether retention with these limits (`cleanup.policy=delete`), as
    /// of `now_ms`, would delete anything from the partition as it was
    /// closed: [`pubsub_storage::Log::apply_retention`]'s rules applied to
    /// the oldest segment. True when the entry cannot tell (version 1).
    pub fn retention_due(
        &self,
        now_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
    ) -> bool {
        if let Some(ms) = retention_ms {
            match self.6 {
                None => return true,
                // A sealed oldest segment past the cutoff goes; a lone
                // active one too (after a roll) if it holds anything.
                Some(ts) if ts < now_ms.saturating_sub(ms) && (self.3 > 1 || self.2 > 0) => {
                    return true
                }
                Some(_) => {}
            }
        }
        if let Some(limit) = retention_bytes {
            // The oldest segment goes (never the active one) while what
            // stays is at least the limit.
            match self.7 {
                None => return self.2 > limit,
                Some(oldest) if self.3 > 1 && self.2.saturating_sub(oldest) >= limit => {
                    return true
                }
                Some(_) => {}
            }
        }
        false
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
        let p = ClosedPartition(0, 10, 100, 1, 4, 7, Some(5), Some(100));
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
                partitions: vec![
                    Some(ClosedPartition(1, 2, 3, 1, 0, 3, Some(9), Some(3))),
                    None,
                ],
            },
        );
        file.write(dir.path()).expect("write");
        let read = ClosedPartitions::read(dir.path()).expect("read");
        assert_eq!(read, file);
        assert_eq!(
            read.entry("t", id, 0),
            Some(ClosedPartition(1, 2, 3, 1, 0, 3, Some(9), Some(3)))
        );
        assert_eq!(read.entry("t", id, 1), None);
        assert_eq!(read.entry("t", id, 2), None);
        assert_eq!(read.entry("t", Uuid::new_v4(), 0), None);
        ClosedPartitions::remove(dir.path()).expect("remove");
        assert!(ClosedPartitions::read(dir.path()).is_none());
        ClosedPartitions::remove(dir.path()).expect("removing twice is fine");
    }

    #[test]
    fn version_1_entries_load_and_leave_retention_to_the_log() {
        let v1 = r#"{"generation": 4, "topics": {"t": {"id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "partitions": [[0, 1200, 98304, 3, 12, 4], null]}}}"#;
        let file: ClosedPartitions = serde_json::from_str(v1).expect("version 1");
        assert_eq!(file.version, 1);
        let t = &file.topics["t"];
        let p = t.partitions[0].expect("entry");
        assert_eq!(p, ClosedPartition(0, 1200, 98304, 3, 12, 4, None, None));
        assert!(p.retention_due(0, Some(1), None), "unknown: open and judge");
        assert!(!p.retention_due(0, None, Some(1 << 20)), "under the limit");
        assert!(p.retention_due(0, None, Some(1000)));
        let bad = r#"[0, 1, 2, 3, 4]"#;
        assert!(serde_json::from_str::<ClosedPartition>(bad).is_err());
        let long = r#"[0, 1, 2, 3, 4, 5, 6, 7, 8]"#;
        assert!(serde_json::from_str::<ClosedPartition>(long).is_err());
    }

    #[test]
    fn retention_is_due_exactly_when_the_log_would_delete() {
        // Three segments, 300 bytes, the oldest 100 bytes with records up
        // to t=1000.
        let p = ClosedPartition(0, 30, 300, 3, 0, 1, Some(1000), Some(100));
        assert!(!p.retention_due(1500, Some(1000), None), "not expired yet");
        assert!(p.retention_due(2001, Some(1000), None), "expired");
        assert!(!p.retention_due(0, None, Some(201)), "200 would stay");
        assert!(p.retention_due(0, None, Some(200)));
        assert!(!p.retention_due(0, None, None), "no limit");
        // One empty segment: nothing to delete, however old.
        let empty = ClosedPartition(0, 0, 0, 1, 0, 1, Some(-1), Some(0));
        assert!(!empty.retention_due(i64::MAX, Some(1), Some(0)));
        // One segment with records: expires whole (after a roll), but is
        // never deleted for size (it is the active one).
        let one = ClosedPartition(0, 5, 50, 1, 0, 1, Some(10), Some(50));
        assert!(one.retention_due(100, Some(10), None));
        assert!(!one.retention_due(0, None, Some(0)));
    }
}
