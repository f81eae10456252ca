//! Kafka error codes, and the one place broker errors become them. The codes
//! themselves (numbers, names, retriability) come from
//! [`kafka_protocol::error::ResponseError`]; handlers write
//! `ResponseError::InvalidRequest.code()`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use pubsub_broker::BrokerError;

/// The code of a successful answer (the one code `ResponseError` has no
/// variant for).
pub const NONE: i16 = 0;

/// DescribeConfigs `config_source`: set on the topic.
pub const CONFIG_SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs `config_source`: a static broker setting.
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_source`: the default.
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// The Kafka error for a broker error.
pub fn kafka_error(e: &BrokerError) -> ResponseError {
    use ResponseError as K;
    match e {
        BrokerError::UnknownTopicOrPartition { .. } => K::UnknownTopicOrPartition,
        BrokerError::TopicAlreadyExists(_) => K::TopicAlreadyExists,
        BrokerError::InvalidTopic { .. } => K::InvalidTopicException,
        BrokerError::InvalidPartitions(_) | BrokerError::PartitionsNotIncreased { .. } => {
            K::InvalidPartitions
        }
        BrokerError::InvalidConfig { .. } | BrokerError::UnknownTopicConfig(_) => K::InvalidConfig,
        BrokerError::MessageTooLarge { .. } => K::MessageTooLarge,
        BrokerError::InvalidRecord(_) => K::InvalidRecord,
        BrokerError::CorruptMessage(_) => K::CorruptMessage,
        BrokerError::OffsetOutOfRange { .. } => K::OffsetOutOfRange,
        BrokerError::Storage { .. } => K::KafkaStorageError,
        // A broker file (topic metadata, a producer snapshot, the epoch
        // cache, users, ACLs) that cannot be written: no space, EIO, a
        // read-only file system. Kafka turns any I/O failure on a log
        // directory, creating a partition's files included, into
        // KafkaStorageException, which every client takes as retriable (a
        // full disk then heals once space returns). The group and
        // InitProducerId handlers map it on to their coordinator codes.
        BrokerError::Io { .. } => K::KafkaStorageError,
        BrokerError::OutOfOrderSequence { .. } => K::OutOfOrderSequenceNumber,
        BrokerError::InvalidProducerEpoch { .. } => K::InvalidProducerEpoch,
        BrokerError::InvalidGroupId(_) => K::InvalidGroupId,
        BrokerError::UnknownMemberId { .. } => K::UnknownMemberId,
        BrokerError::IllegalGeneration { .. } => K::IllegalGeneration,
        BrokerError::RebalanceInProgress(_) => K::RebalanceInProgress,
        BrokerError::InconsistentGroupProtocol(_) => K::InconsistentGroupProtocol,
        BrokerError::InvalidSessionTimeout { .. } => K::InvalidSessionTimeout,
        BrokerError::MemberIdRequired(_) => K::MemberIdRequired,
        BrokerError::FencedInstanceId(_) => K::FencedInstanceId,
        BrokerError::NonEmptyGroup(_) => K::NonEmptyGroup,
        BrokerError::GroupIdNotFound(_) => K::GroupIdNotFound,
        BrokerError::PolicyViolation(_) => K::PolicyViolation,
        BrokerError::GroupSubscribedToTopic { .. } => K::GroupSubscribedToTopic,
        BrokerError::Transaction { refusal, .. } => txn_error(*refusal),
        // Shutting down: clients refresh metadata and retry elsewhere (here, later).
        BrokerError::Closed => K::NotLeaderOrFollower,
        BrokerError::Timeout(_) => K::RequestTimedOut,
        BrokerError::Delivery(inner) => kafka_error(inner),
        BrokerError::CorruptMetadata { .. } | BrokerError::Locked(_) => K::UnknownServerError,
    }
}

/// The Kafka error of a transaction coordinator's refusal.
pub fn txn_error(refusal: pubsub_broker::txn::TxnRefusal) -> ResponseError {
    use pubsub_broker::txn::TxnRefusal as R;
    use ResponseError as K;
    match refusal {
        R::InvalidRequest => K::InvalidRequest,
        R::InvalidTransactionTimeout => K::InvalidTransactionTimeout,
        R::ConcurrentTransactions => K::ConcurrentTransactions,
        R::ProducerFenced => K::ProducerFenced,
        R::InvalidProducerIdMapping => K::InvalidProducerIdMapping,
        R::InvalidTxnState => K::InvalidTxnState,
    }
}

/// KIP-890's abortable error: from the first version of each API listed
/// here, a transactional write or offset commit the coordinator refuses
/// for the transaction's state (a partition or group not in the ongoing
/// transaction, or none ongoing) is TRANSACTION_ABORTABLE, which the client
/// answers by aborting; older versions get INVALID_TXN_STATE. Kafka 4.1.1
/// answers so (`AddPartitionsToTxnManager`'s "generic error supported"
/// versions: Produce 11, TxnOffsetCommit 4; checked by the differential
/// scenarios "transactional offsets" and "transactional produce versions").
const ABORTABLE_SINCE: &[(ApiKey, i16)] = &[(ApiKey::Produce, 11), (ApiKey::TxnOffsetCommit, 4)];

/// `code` as answered to `api` at `version`: INVALID_TXN_STATE becomes
/// TRANSACTION_ABORTABLE from the API's first abortable version
/// ([`ABORTABLE_SINCE`]).
pub fn abortable(code: i16, api: ApiKey, version: i16) -> i16 {
    let abortable = ABORTABLE_SINCE
        .iter()
        .any(|(k, since)| *k == api && version >= *since);
    if abortable && code == ResponseError::InvalidTxnState.code() {
        ResponseError::TransactionAbortable.code()
    } else {
        code
    }
}

/// The error code for a transaction API (InitProducerId with a
/// transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn): a
/// `__transaction_state` write that fails is the coordinator's
/// unavailability (as [`group_error_code`]); PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH for request versions that predate it
/// (`fenced_known` false), as Kafka answers them.
pub fn txn_error_code(e: &BrokerError, fenced_known: bool) -> i16 {
    let code = match e {
        BrokerError::UnknownTopicOrPartition { topic, .. }
            if topic == pubsub_broker::txn::TRANSACTION_STATE =>
        {
            ResponseError::CoordinatorNotAvailable.code()
        }
        BrokerError::Io { .. } | BrokerError::CorruptMetadata { .. } => {
            ResponseError::CoordinatorNotAvailable.code()
        }
        other => group_error_code(other),
    };
    if !fenced_known && code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

/// The error a partition answers when a client names a leader epoch
/// (`current_leader_epoch`, -1 for none) other than the partition's
/// `current` one: FENCED_LEADER_EPOCH when the client's is older,
/// UNKNOWN_LEADER_EPOCH when newer; `None` when it may go on.
pub fn epoch_error(current: i32, client: i32) -> Option<i16> {
    use pubsub_broker::leader_epoch::{check_current, EpochCheck};
    match check_current(current, client) {
        EpochCheck::Current => None,
        EpochCheck::Fenced => Some(ResponseError::FencedLeaderEpoch.code()),
        EpochCheck::Unknown => Some(ResponseError::UnknownLeaderEpoch.code()),
    }
}

/// The Kafka error code for a broker error.
pub fn error_code(e: &BrokerError) -> i16 {
    kafka_error(e).code()
}

/// The error code for a group API, where storage problems mean the
/// coordinator cannot serve (clients find the coordinator again and retry)
/// rather than a partition error. As Kafka's group coordinator answers: a
/// `__consumer_offsets` write failing with KAFKA_STORAGE_ERROR (a full disk,
/// say) is NOT_COORDINATOR; the rest COORDINATOR_NOT_AVAILABLE.
pub fn group_error_code(e: &BrokerError) -> i16 {
    match e {
        BrokerError::Storage { .. } => ResponseError::NotCoordinator.code(),
        BrokerError::Io { .. } if e.is_out_of_space() => ResponseError::NotCoordinator.code(),
        BrokerError::Io { .. }
        | BrokerError::Closed
        | BrokerError::Timeout(_)
        | BrokerError::CorruptMetadata { .. } => ResponseError::CoordinatorNotAvailable.code(),
        BrokerError::UnknownTopicOrPartition { topic, .. }
            if topic == pubsub_broker::names::CONSUMER_OFFSETS =>
        {
            ResponseError::CoordinatorNotAvailable.code()
        }
        other => error_code(other),
    }
}
