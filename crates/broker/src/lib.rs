//! The broker core of pubsub: topics and partitions over the storage
//! engine, idempotent producer state, the group coordinator with committed
//! offsets in `__consumer_offsets`, and the embedded producer and consumer.
//!
//! ```
//! use std::time::Duration;
//! use pubsub_broker::{Broker, BrokerConfig, ConsumerConfig, ProducerConfig, ProducerRecord};
//!
//! # let dir = tempfile::tempdir()?;
//! let broker = Broker::open(dir.path(), BrokerConfig::default())?;
//! broker.create_topic("prices", Some(3), Default::default())?;
//!
//! let producer = broker.producer(ProducerConfig::default())?;
//! let sent = producer.send(&ProducerRecord::new("prices", b"AAPL 187.30").key(b"AAPL"))?;
//! producer.flush();
//! let stored = sent.wait()?; // partition and offset, once fsynced (acks=all)
//!
//! let mut consumer = broker.consumer(ConsumerConfig::new("analyzers").name("analyzer-1"))?;
//! consumer.subscribe(&["prices"])?; // joins the group, gets partitions
//! let records = consumer.poll(Duration::from_secs(5))?;
//! assert_eq!(records[0].offset, stored.offset);
//! consumer.commit()?; // durable before it returns
//! consumer.close()?; // leaves the group
//! broker.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod broker;
pub mod check;
pub mod closed_partitions;
pub mod config;
mod crash_point;
pub mod embedded;
mod error;
pub mod group;
pub mod leader_epoch;
mod metadata;
pub mod names;
pub mod notify;
pub mod partition;
pub mod partitioner;
pub mod producer_state;
pub mod security;
mod topic;
pub mod txn;
mod wire;

pub use config::{BrokerConfig, GroupConfig, TopicConfig};
pub use error::{BrokerError, Result};

pub use broker::{
    wall_clock_ms, Broker, ListedOffset, NewTopic, Offload, OffsetSpec, HIGH_WATERMARK,
    MAX_PARTITIONS,
};
pub use embedded::{
    Consumer, ConsumerConfig, ConsumerGroupMetadata, ConsumerRecord, Delivery, Flow, Isolation,
    OffsetReset, Producer, ProducerConfig, ProducerRecord, RecordMetadata, StopHandle,
};
pub use group::assignor::Strategy;
pub use partition::{Acks, AppendResult, Partition, PartitionTraffic, PendingSync};
/// Monitoring counters of the storage engine (fsync latencies), re-exported
/// so servers can use the same histogram without depending on storage.
pub use pubsub_storage::stats;
pub use pubsub_storage::FileRange;
pub use pubsub_storage::{HandleLimits, HandleStats, Handles};
pub use topic::{PartitionDescription, TopicDescription};

/// The README's Rust examples, compiled and run as doc tests so they
/// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
