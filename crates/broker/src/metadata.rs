//! Broker metadata on disk, each file a checksummed, atomically replaced
//! checkpoint container (docs/FORMAT.md) with a JSON payload:
//!
//! ```text
//! <data>/broker.checkpoint                  kind 16: cluster id, next producer id block
//! <data>/topics/<name>.topic                kind 17: topic id, partition count, config overrides
//! <data>/<topic>-<n>/partition.checkpoint   kind 18: which topic id the directory belongs to
//! <data>/<topic>-<n>/producers.checkpoint   kind 19: idempotent producer state snapshot
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pubsub_storage::checkpoint;
use pubsub_storage::fs::RealFs;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{BrokerError, Result};
use crate::producer_state::ProducerStates;

pub(crate) const KIND_BROKER: u16 = checkpoint::FIRST_USER_KIND;
pub(crate) const KIND_TOPIC: u16 = checkpoint::FIRST_USER_KIND + 1;
pub(crate) const KIND_PARTITION: u16 = checkpoint::FIRST_USER_KIND + 2;
pub(crate) const KIND_PRODUCERS: u16 = checkpoint::FIRST_USER_KIND + 3;

pub(crate) const BROKER_FILE: &str = "broker.checkpoint";
pub(crate) const TOPICS_DIR: &str = "topics";
pub(crate) const TOPIC_SUFFIX: &str = ".topic";
pub(crate) const PARTITION_FILE: &str = "partition.checkpoint";
pub(crate) const PRODUCERS_FILE: &str = "producers.checkpoint";
pub(crate) const LOCK_FILE: &str = ".lock";
/// Suffix of a partition directory being deleted.
pub(crate) const DELETE_SUFFIX: &str = ".delete";

/// The broker file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrokerMeta {
    pub cluster_id: String,
    /// No producer id below this was ever handed out... and none at or above
    /// it has been: ids are handed out in blocks, each block persisted first.
    pub next_producer_id_block: i64,
}

/// One topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: u32,
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
}

/// The identity of a partition directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct PartitionMeta {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// Producer state valid for offsets below `offset`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProducerSnapshot {
    pub offset: u64,
    pub states: ProducerStates,
}

pub(crate) fn write<T: Serialize>(path: &Path, kind: u16, value: &T) -> Result<()> {
    let payload = serde_json::to_vec(value).map_err(|e| BrokerError::CorruptMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    checkpoint::write(&RealFs, path, kind, &payload).map_err(|e| BrokerError::CorruptMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

pub(crate) fn read<T: DeserializeOwned>(path: &Path, kind: u16) -> Result<Option<T>> {
    let corrupt = |reason: String| BrokerError::CorruptMetadata {
        path: path.to_path_buf(),
        reason,
    };
    match checkpoint::read(path, kind) {
        Ok(None) => Ok(None),
        Ok(Some(payload)) => serde_json::from_slice(&payload)
            .map(Some)
            .map_err(|e| corrupt(e.to_string())),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

/// `<data>/<topic>-<partition>`.
pub(crate) fn partition_dir(data: &Path, topic: &str, partition: i32) -> PathBuf {
    data.join(format!("{topic}-{partition}"))
}

/// `<data>/topics/<name>.topic`.
pub(crate) fn topic_file(data: &Path, topic: &str) -> PathBuf {
    data.join(TOPICS_DIR).join(format!("{topic}{TOPIC_SUFFIX}"))
}
