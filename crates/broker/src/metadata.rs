//! Broker metadata on disk, each file a checksummed, atomically replaced
//! checkpoint container (docs/FORMAT.md) with a JSON payload:
//!
//! ```text
//! <data>/broker.checkpoint                  kind 16: cluster id, next producer id block
//! <data>/topics/<name>.topic                kind 17: topic id, partition count, config overrides
//! <data>/<topic>-<n>/partition.checkpoint   kind 18: which topic id the directory belongs to
//! <data>/<topic>-<n>/producers.checkpoint   kind 19: idempotent producer state snapshot
//! <data>/<topic>-<n>/leader-epoch.checkpoint kind 20: where each leader epoch started
//! <data>/users.checkpoint                   kind 21: SCRAM credentials (security::users)
//! <data>/partitions.checkpoint              kind 23: partitions as the last clean close left them (closed_partitions)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pubsub_storage::checkpoint;
use pubsub_storage::fs::RealFs;
use pubsub_storage::StorageError;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{BrokerError, Result};
use crate::producer_state::ProducerStates;

pub(crate) const KIND_BROKER: u16 = checkpoint::FIRST_USER_KIND;
pub(crate) const KIND_TOPIC: u16 = checkpoint::FIRST_USER_KIND + 1;
pub(crate) const KIND_PARTITION: u16 = checkpoint::FIRST_USER_KIND + 2;
pub(crate) const KIND_PRODUCERS: u16 = checkpoint::FIRST_USER_KIND + 3;
pub(crate) const KIND_LEADER_EPOCHS: u16 = checkpoint::FIRST_USER_KIND + 4;
pub(crate) const KIND_USERS: u16 = checkpoint::FIRST_USER_KIND + 5;

/// `<data>/broker.checkpoint`.
pub const BROKER_FILE: &str = "broker.checkpoint";
/// `<data>/users.checkpoint`: SCRAM credentials.
pub const USERS_FILE: &str = "users.checkpoint";
/// `<data>/topics`: one file per topic.
pub const TOPICS_DIR: &str = "topics";
/// Suffix of a topic file in [`TOPICS_DIR`].
pub const TOPIC_SUFFIX: &str = ".topic";
/// `<data>/<topic>-<n>/partition.checkpoint`.
pub const PARTITION_FILE: &str = pubsub_storage::PARTITION_CHECKPOINT;
/// `<data>/<topic>-<n>/producers.checkpoint`.
pub const PRODUCERS_FILE: &str = pubsub_storage::PRODUCERS_CHECKPOINT;
/// `<data>/<topic>-<n>/leader-epoch.checkpoint`.
pub const LEADER_EPOCHS_FILE: &str = pubsub_storage::LEADER_EPOCHS_CHECKPOINT;
/// `<data>/.lock`: locked by the open broker.
pub const LOCK_FILE: &str = ".lock";
/// Suffix of a partition directory being deleted.
pub const DELETE_SUFFIX: &str = ".delete";

/// The broker file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrokerMeta {
    pub cluster_id: String,
    /// No producer id below this was ever handed out... and none at or above
    /// it has been: ids are handed out in blocks, each block persisted first.
    pub next_producer_id_block: i64,
    /// How many times the broker has been opened (absent before: 0). Raised
    /// and made durable at every open, before any partition opens: each
    /// partition's leader epoch is derived from it (see [`PartitionMeta`]).
    #[serde(default)]
    pub generation: u64,
}

/// One topic (`topics/<name>.topic`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Topic id (a topic re-created under the same name gets a new one).
    pub id: Uuid,
    /// Partition count.
    pub partitions: u32,
    /// Kafka settings set on the topic (the rest are broker defaults).
    pub configs: BTreeMap<String, String>,
    /// `__consumer_offsets` and the like.
    pub internal: bool,
}

/// The identity of a partition directory (`partition.checkpoint`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Topic name.
    pub topic: String,
    /// Id of the topic the directory was created for.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The partition's leader epoch when the broker last opened it (absent
    /// in files written before epochs: 0).
    #[serde(default)]
    pub leader_epoch: i32,
    /// The broker generation `leader_epoch` belongs to (absent in files
    /// written before generations: 0, and the epoch is then raised and this
    /// file rewritten once). At broker generation `g` the partition's epoch
    /// is `leader_epoch + 2 * (g - generation)`: +2 per broker open without
    /// writing this file at every open.
    #[serde(default)]
    pub generation: u64,
}

impl PartitionMeta {
    /// Names the same partition of the same topic (whatever the epoch).
    pub fn same_partition(&self, other: &PartitionMeta) -> bool {
        self.topic == other.topic
            && self.topic_id == other.topic_id
            && self.partition == other.partition
    }
}

/// The producer snapshot version written (docs/FORMAT.md 9.4): 2 added
/// open transactions and the aborted-transaction index summary; files
/// without a version are version 1.
pub(crate) const PRODUCER_SNAPSHOT_VERSION: u16 = 2;

fn snapshot_v1() -> u16 {
    1
}

/// Producer state valid for offsets below `offset`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProducerSnapshot {
    #[serde(default = "snapshot_v1")]
    pub version: u16,
    pub offset: u64,
    pub states: ProducerStates,
    /// (segment base offset, entries) of every segment whose
    /// aborted-transaction index holds any, when the snapshot was taken.
    #[serde(default)]
    pub txn_index: Vec<(u64, u64)>,
}

pub(crate) fn write<T: Serialize>(path: &Path, kind: u16, value: &T) -> Result<()> {
    write_with(path, kind, value, checkpoint::write)
}

/// [`write`] without the directory fsync, which the caller owes before it
/// relies on the file (see [`checkpoint::write_unsynced_dir`]).
pub(crate) fn write_unsynced_dir<T: Serialize>(path: &Path, kind: u16, value: &T) -> Result<()> {
    write_with(path, kind, value, checkpoint::write_unsynced_dir)
}

fn write_with<T: Serialize>(
    path: &Path,
    kind: u16,
    value: &T,
    write: fn(&dyn pubsub_storage::fs::FileSystem, &Path, u16, &[u8]) -> pubsub_storage::Result<()>,
) -> Result<()> {
    let payload = serde_json::to_vec(value).map_err(|e| BrokerError::CorruptMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write(&RealFs, path, kind, &payload).map_err(|e| match e {
        // A failed write (a full disk, say) is an I/O error, not corruption.
        StorageError::Io { op, path, source } => BrokerError::Io { op, path, source },
        other => BrokerError::CorruptMetadata {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// Why a metadata file cannot be trusted.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// The checkpoint container is damaged or cannot be read.
    Container(StorageError),
    /// The container is sound, its JSON does not fit.
    Json(serde_json::Error),
}

/// Reads a metadata file: `Ok(None)` if absent.
pub(crate) fn decode<T: DeserializeOwned>(
    path: &Path,
    kind: u16,
) -> std::result::Result<Option<T>, Unreadable> {
    match checkpoint::read(path, kind) {
        Ok(None) => Ok(None),
        Ok(Some(payload)) => serde_json::from_slice(&payload)
            .map(Some)
            .map_err(Unreadable::Json),
        Err(e) => Err(Unreadable::Container(e)),
    }
}

pub(crate) fn read<T: DeserializeOwned>(path: &Path, kind: u16) -> Result<Option<T>> {
    decode(path, kind).map_err(|e| match e {
        // Not read at all (a file in the way, EIO, no permission): a
        // storage failure, not a corrupt file.
        Unreadable::Container(pubsub_storage::StorageError::Io { op, path, source }) => {
            BrokerError::io(op, path, source)
        }
        Unreadable::Container(e) => BrokerError::CorruptMetadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        Unreadable::Json(e) => BrokerError::CorruptMetadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

/// `<data>/<topic>-<partition>`.
pub fn partition_dir(data: &Path, topic: &str, partition: i32) -> PathBuf {
    data.join(format!("{topic}-{partition}"))
}

/// `<data>/topics/<name>.topic`.
pub(crate) fn topic_file(data: &Path, topic: &str) -> PathBuf {
    data.join(TOPICS_DIR).join(format!("{topic}{TOPIC_SUFFIX}"))
}
