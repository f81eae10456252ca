//! The broker core of pubsub: topics and partitions over the storage
//! engine, idempotent producer state, the group coordinator with committed
//! offsets in `__consumer_offsets`, and the embedded producer and consumer.

mod broker;
pub mod config;
pub mod embedded;
mod error;
pub mod group;
mod metadata;
pub mod names;
pub mod notify;
pub mod partition;
pub mod partitioner;
pub mod producer_state;
mod topic;

pub use config::{BrokerConfig, GroupConfig, TopicConfig};
pub use error::{BrokerError, Result};

pub use broker::{wall_clock_ms, Broker, OffsetSpec, MAX_PARTITIONS};
pub use embedded::{
    Consumer, ConsumerConfig, ConsumerRecord, Delivery, Flow, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, RecordMetadata, StopHandle,
};
pub use group::assignor::Strategy;
pub use partition::{Acks, AppendResult, Partition};
pub use topic::{PartitionDescription, TopicDescription};
