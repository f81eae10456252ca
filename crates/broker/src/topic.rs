//! A topic: its metadata and its partitions.

use std::sync::Arc;

use uuid::Uuid;

use crate::config::TopicConfig;
use crate::metadata::TopicMeta;
use crate::partition::Partition;

/// One topic as the broker holds it.
#[derive(Debug)]
pub(crate) struct Topic {
    pub meta: TopicMeta,
    pub config: Arc<TopicConfig>,
    pub partitions: Vec<Arc<Partition>>,
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
            partitions: self
                .partitions
                .iter()
                .map(|p| {
                    let log = p.log();
                    PartitionDescription {
                        partition: p.index(),
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: log.log_end_offset(),
                        size_bytes: log.size_bytes(),
                        segments: log.segments().len(),
                    }
                })
                .collect(),
            configs: self.config.described(&self.meta.configs),
        }
    }
}
