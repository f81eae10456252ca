//! TxnOffsetCommit (28): a transactional producer commits a consumer
//! group's offsets inside its transaction (consume-transform-produce, as
//! `send_offsets_to_transaction` does). The offsets are written to the
//! group's `__consumer_offsets` partition as part of the transaction and
//! become the group's committed offsets only when it commits.
//!
//! Checks, in Kafka's order: Write on the transactional id, Read on the
//! group (every partition answers the refusal), then per partition Read on
//! its topic and the partition's existence; the rest go to the
//! coordinators: the producer id and epoch against the transaction, the
//! group's partition in it (AddOffsetsToTxn first; from version 5, the
//! transaction version 2 clients' version, the request adds it itself, as
//! Kafka's group coordinator has the transaction coordinator do), the
//! member and its generation (versions 3+, KIP-447).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use pubsub_broker::group::records::partition_for_group;
use pubsub_broker::group::{CommitEntry, TxnCommitRequest};
use pubsub_broker::names::CONSUMER_OFFSETS;
use pubsub_broker::{wall_clock_ms, BrokerError};

use crate::authorize::{
    Access, TXN_OFFSET_COMMIT_GROUP, TXN_OFFSET_COMMIT_TOPIC, TXN_OFFSET_COMMIT_TXN,
};
use crate::codes::{abortable, group_error_code, txn_error_code, NONE};
use crate::context::{blocking, Ctx};

/// The first version whose requests add the group's offsets partition to
/// the transaction (KIP-890 part 2).
const IMPLICIT_ADD_SINCE: i16 = 5;

/// The answer for every partition of the request, the code of each given
/// by its topic's place in the request and its index.
pub(crate) fn answer(
    req: &TxnOffsetCommitRequest,
    code: impl Fn(usize, i32) -> i16,
) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code(i, p.partition_index))
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The code of a refusal: the transaction's, or the group's. A group not
/// in the transaction is TRANSACTION_ABORTABLE from version 4 (the shared
/// rule, [`abortable`]). A stale epoch is INVALID_PRODUCER_EPOCH at every
/// version: Kafka 4.1.1 answers it from the offsets partition's producer
/// state (checked with the differential runner at version 5).
fn refusal_code(e: &BrokerError, version: i16) -> i16 {
    match e {
        BrokerError::Transaction { .. } => {
            abortable(txn_error_code(e, false), ApiKey::TxnOffsetCommit, version)
        }
        other => group_error_code(other),
    }
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let access = Access::of(ctx);
    let id = req.transactional_id.to_string();
    if !access.allows(&TXN_OFFSET_COMMIT_TXN, &id) {
        return answer(&req, |_, _| TXN_OFFSET_COMMIT_TXN.error);
    }
    if !access.allows(&TXN_OFFSET_COMMIT_GROUP, &req.group_id) {
        return answer(&req, |_, _| TXN_OFFSET_COMMIT_GROUP.error);
    }
    let broker = &ctx.broker;
    // Per topic: the refusal of an unauthorized or unknown one, and its
    // partition count.
    let mut checked: Vec<(Option<i16>, u32)> = Vec::with_capacity(req.topics.len());
    let mut entries = Vec::new();
    for t in &req.topics {
        let (refusal, count) = if !access.allows(&TXN_OFFSET_COMMIT_TOPIC, &t.name) {
            (Some(TXN_OFFSET_COMMIT_TOPIC.error), 0)
        } else {
            match broker.partition_count(&t.name) {
                Some(n) => (None, n),
                None => (Some(ResponseError::UnknownTopicOrPartition.code()), 0),
            }
        };
        checked.push((refusal, count));
        if refusal.is_some() {
            continue;
        }
        for p in &t.partitions {
            if p.partition_index >= 0 && (p.partition_index as u32) < count {
                entries.push(CommitEntry {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                });
            }
        }
    }
    let outcome = if req.group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else if entries.is_empty() {
        NONE
    } else {
        let commit = TxnCommitRequest {
            group_id: req.group_id.to_string(),
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            generation_id: req.generation_id,
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            entries,
        };
        let offsets_partition = (
            CONSUMER_OFFSETS.to_string(),
            partition_for_group(
                &req.group_id,
                broker.config().group.offsets_topic_partitions,
            ),
        );
        let implicit = (version >= IMPLICIT_ADD_SINCE).then(|| broker.txn_store());
        match blocking(|| {
            broker.transactions().verified_or_added(
                implicit,
                &id,
                commit.producer_id,
                commit.producer_epoch,
                (offsets_partition.0.as_str(), offsets_partition.1),
                wall_clock_ms(),
                || {
                    broker.coordinator().txn_commit(
                        broker.offsets_store(),
                        commit,
                        broker.now_ms(),
                        wall_clock_ms(),
                    )
                },
            )
        }) {
            Ok(()) => NONE,
            Err(e) => {
                tracing::debug!(error = %e, "TxnOffsetCommit refused");
                refusal_code(&e, version)
            }
        }
    };
    answer(&req, |topic, index| match checked.get(topic) {
        Some((Some(code), _)) => *code,
        Some((None, count)) if index >= 0 && (index as u32) < *count => outcome,
        _ => ResponseError::UnknownTopicOrPartition.code(),
    })
}
