//! The one error type of the broker crate. The Kafka server maps each
//! variant to a protocol error code in one place.

use std::path::PathBuf;

use pubsub_records::RecordsError;
use pubsub_storage::StorageError;

/// Everything the broker can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No such topic, or no such partition of it.
    #[error("unknown topic or partition: {topic}{}", partition.map(|p| format!("-{p}")).unwrap_or_default())]
    UnknownTopicOrPartition {
        /// Topic name.
        topic: String,
        /// Partition, when one was named.
        partition: Option<i32>,
    },
    /// A topic of that name exists (the message is Kafka's own).
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    /// The name is not a valid topic name.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A partition count that cannot be used.
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    /// A new partition count that does not grow the topic (the messages are
    /// Kafka's own, which CreatePartitions sends as error_message).
    #[error("{}", not_an_increase(.topic, *.current, *.requested))]
    PartitionsNotIncreased {
        /// Topic name.
        topic: String,
        /// Its partition count.
        current: u32,
        /// The count asked for.
        requested: u32,
    },
    /// A topic setting of a name Kafka does not know (the message is Kafka's
    /// own).
    #[error("Unknown topic config name: {0}")]
    UnknownTopicConfig(String),
    /// A topic or broker setting that cannot be used.
    #[error("invalid config {key}: {reason}")]
    InvalidConfig {
        /// The setting.
        key: String,
        /// Why.
        reason: String,
    },
    /// A batch larger than the topic's `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge {
        /// Batch size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Records that are valid bytes but not acceptable here (a keyless
    /// record on a compacted topic).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Bytes that are not a valid record batch (bad CRC, bad framing).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(#[from] RecordsError),
    /// An offset outside the partition's log.
    #[error(
        "offset {offset} out of range for {topic}-{partition}: the log holds [{start}, {end})"
    )]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset asked for.
        offset: u64,
        /// Log start offset.
        start: u64,
        /// Log end offset.
        end: u64,
    },
    /// The partition's storage failed (disk full, failed fsync, corruption).
    #[error("storage error on {topic}-{partition}: {source}")]
    Storage {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What the log said.
        #[source]
        source: StorageError,
    },
    /// An idempotent producer's batch is not the next in sequence.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// The sequence the broker expected.
        expected: i32,
        /// The sequence the batch carried.
        got: i32,
    },
    /// An idempotent producer's epoch is older than the latest seen.
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current}")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The newest epoch seen.
        current: i16,
    },
    /// A group id that cannot be used (empty).
    #[error("invalid group id {0:?}")]
    InvalidGroupId(String),
    /// The member id is not (or no longer) in the group.
    #[error("unknown member id {member_id:?} in group {group}")]
    UnknownMemberId {
        /// Group.
        group: String,
        /// Member id given.
        member_id: String,
    },
    /// The request carries an old generation.
    #[error("illegal generation {generation} in group {group} (current {current})")]
    IllegalGeneration {
        /// Group.
        group: String,
        /// Generation given.
        generation: i32,
        /// Current generation.
        current: i32,
    },
    /// The group is rebalancing: rejoin.
    #[error("group {0} is rebalancing")]
    RebalanceInProgress(String),
    /// The member's protocol type or assignors do not match the group's.
    #[error("inconsistent group protocol in group {0}")]
    InconsistentGroupProtocol(String),
    /// A session timeout outside the broker's bounds.
    #[error("session timeout {timeout_ms} ms outside [{min_ms}, {max_ms}]")]
    InvalidSessionTimeout {
        /// Requested.
        timeout_ms: i32,
        /// Lower bound.
        min_ms: i32,
        /// Upper bound.
        max_ms: i32,
    },
    /// A member joined with an empty id: it must rejoin with this one.
    #[error("member id required: rejoin with {0}")]
    MemberIdRequired(String),
    /// Another member uses this static instance id.
    #[error("instance id {0} is fenced by a newer member")]
    FencedInstanceId(String),
    /// The group has members and cannot be deleted.
    #[error("group {0} is not empty")]
    NonEmptyGroup(String),
    /// A request the topic's settings forbid (DeleteRecords on a topic that
    /// is only compacted); the message is Kafka's own.
    #[error("{0}")]
    PolicyViolation(String),
    /// The group still consumes a topic whose offsets were to be deleted.
    #[error("group {group} is subscribed to topic {topic}")]
    GroupSubscribedToTopic {
        /// Group.
        group: String,
        /// Topic.
        topic: String,
    },
    /// No such group.
    #[error("group {0} not found")]
    GroupIdNotFound(String),
    /// The transaction coordinator refused a request of a transactional id
    /// (the refusal names Kafka's error).
    #[error("transactional id {transactional_id:?}: {refusal}")]
    Transaction {
        /// The transactional id.
        transactional_id: String,
        /// Why.
        refusal: crate::txn::TxnRefusal,
    },
    /// The broker is closed.
    #[error("the broker is closed")]
    Closed,
    /// A broker file could not be used.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Broker metadata on disk is unreadable.
    #[error("corrupt broker metadata {path}: {reason}")]
    CorruptMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The data directory is in use by another broker process.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// A batched send failed (the error is shared by the batch's records).
    #[error("{0}")]
    Delivery(std::sync::Arc<BrokerError>),
}

impl BrokerError {
    /// The topic (or this partition of it) does not exist.
    pub(crate) fn unknown_topic(topic: &str, partition: Option<i32>) -> Self {
        BrokerError::UnknownTopicOrPartition {
            topic: topic.to_string(),
            partition,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BrokerError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when a write failed for want of space (ENOSPC, EDQUOT) in a way
    /// that heals once space returns: by the storage crate's one rule
    /// ([`pubsub_storage::is_out_of_space_io`]), for a partition's log and for
    /// the broker's own files alike (an fsync failing so is not this).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            BrokerError::Storage { source, .. } => source.is_out_of_space(),
            BrokerError::Io { op, source, .. } => pubsub_storage::is_out_of_space_io(op, source),
            BrokerError::Delivery(inner) => inner.is_out_of_space(),
            _ => false,
        }
    }

    /// True for a log read that would have waited for the disk inside
    /// [`pubsub_storage::fs::from_page_cache_only`] (nothing happened: run
    /// it again where it may block).
    pub fn is_would_block(&self) -> bool {
        matches!(self, BrokerError::Storage { source, .. } if source.is_would_block())
    }

    /// True when a partition's log ran out of space: the log has said so
    /// once already (and will say when it takes writes again), so callers
    /// need not log each such failure. A broker file (a producer snapshot,
    /// topic metadata) that runs out of space is not this.
    pub fn is_log_out_of_space(&self) -> bool {
        match self {
            BrokerError::Storage { source, .. } => source.is_out_of_space(),
            BrokerError::Delivery(inner) => inner.is_log_out_of_space(),
            _ => false,
        }
    }

    pub(crate) fn storage(topic: &str, partition: i32, source: StorageError) -> Self {
        match source {
            StorageError::InvalidBatch(e) => BrokerError::CorruptMessage(e),
            StorageError::OffsetOutOfRange { offset, start, end } => {
                BrokerError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    start,
                    end,
                }
            }
            StorageError::BatchTooLarge { size, max } => BrokerError::MessageTooLarge {
                size,
                max: max as usize,
            },
            source => BrokerError::Storage {
                topic: topic.to_string(),
                partition,
                source,
            },
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// Kafka's messages for a partition count that is not an increase.
fn not_an_increase(topic: &str, current: u32, requested: u32) -> String {
    if requested == current {
        format!("Topic already has {current} partition(s).")
    } else {
        format!("The topic {topic} currently has {current} partition(s); {requested} would not be an increase.")
    }
}
