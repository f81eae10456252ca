//! Kafka error codes, and the one place broker errors become them.

use pubsub_broker::BrokerError;

/// Kafka protocol error codes used by pubsub.
pub mod code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const INVALID_RECORD: i16 = 87;
}

/// DescribeConfigs `config_source`: set on the topic.
pub const CONFIG_SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs `config_source`: a static broker setting.
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_source`: the default.
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// The Kafka error code for a broker error.
pub fn error_code(e: &BrokerError) -> i16 {
    use code::*;
    match e {
        BrokerError::UnknownTopicOrPartition { .. } => UNKNOWN_TOPIC_OR_PARTITION,
        BrokerError::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidTopic { .. } => INVALID_TOPIC_EXCEPTION,
        BrokerError::InvalidPartitions(_) => INVALID_PARTITIONS,
        BrokerError::InvalidConfig { .. } => INVALID_CONFIG,
        BrokerError::MessageTooLarge { .. } => MESSAGE_TOO_LARGE,
        BrokerError::InvalidRecord(_) => INVALID_RECORD,
        BrokerError::CorruptMessage(_) => CORRUPT_MESSAGE,
        BrokerError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        BrokerError::Storage { .. } => KAFKA_STORAGE_ERROR,
        BrokerError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        BrokerError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
        BrokerError::InvalidGroupId(_) => INVALID_GROUP_ID,
        BrokerError::UnknownMemberId { .. } => UNKNOWN_MEMBER_ID,
        BrokerError::IllegalGeneration { .. } => ILLEGAL_GENERATION,
        BrokerError::RebalanceInProgress(_) => REBALANCE_IN_PROGRESS,
        BrokerError::InconsistentGroupProtocol(_) => INCONSISTENT_GROUP_PROTOCOL,
        BrokerError::InvalidSessionTimeout { .. } => INVALID_SESSION_TIMEOUT,
        BrokerError::MemberIdRequired(_) => MEMBER_ID_REQUIRED,
        BrokerError::FencedInstanceId(_) => FENCED_INSTANCE_ID,
        BrokerError::NonEmptyGroup(_) => NON_EMPTY_GROUP,
        BrokerError::GroupIdNotFound(_) => GROUP_ID_NOT_FOUND,
        // Shutting down: clients refresh metadata and retry elsewhere (here, later).
        BrokerError::Closed => NOT_LEADER_OR_FOLLOWER,
        BrokerError::Timeout(_) => REQUEST_TIMED_OUT,
        BrokerError::Delivery(inner) => error_code(inner),
        BrokerError::Io { .. } | BrokerError::CorruptMetadata { .. } | BrokerError::Locked(_) => {
            UNKNOWN_SERVER_ERROR
        }
    }
}

/// The error code for a group API, where storage problems mean the
/// coordinator cannot serve (clients retry) rather than a partition error.
pub fn group_error_code(e: &BrokerError) -> i16 {
    match e {
        BrokerError::Storage { .. }
        | BrokerError::Io { .. }
        | BrokerError::Closed
        | BrokerError::Timeout(_)
        | BrokerError::CorruptMetadata { .. } => code::COORDINATOR_NOT_AVAILABLE,
        BrokerError::UnknownTopicOrPartition { topic, .. }
            if topic == pubsub_broker::names::CONSUMER_OFFSETS =>
        {
            code::COORDINATOR_NOT_AVAILABLE
        }
        other => error_code(other),
    }
}
