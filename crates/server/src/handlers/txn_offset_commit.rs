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
//! group's partition in it (AddOffsetsToTxn first), the member and its
//! generation (versions 3+, KIP-447).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use pubsub_broker::group::records::partition_for_group;
use pubsub_broker::group::{CommitEntry, TxnCommitRequest};
use pubsub_broker::names::CONSUMER_OFFSETS;
use pubsub_broker::{wall_clock_ms, BrokerError};

use crate::authorize::{
    Access, TXN_OFFSET_COMMIT_GROUP, TXN_OFFSET_COMMIT_TOPIC, TXN_OFFSET_COMMIT_TXN,
};
use crate::codes::{group_error_code, txn_error_code, NONE};
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 3;

/// The answer for every partition of the request.
fn all(req: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The code of a refusal: the transaction's, or the group's.
fn refusal_code(e: &BrokerError, version: i16) -> i16 {
    match e {
        BrokerError::Transaction { .. } => txn_error_code(e, version >= FENCED_SINCE),
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
        return all(&req, TXN_OFFSET_COMMIT_TXN.error);
    }
    if !access.allows(&TXN_OFFSET_COMMIT_GROUP, &req.group_id) {
        return all(&req, TXN_OFFSET_COMMIT_GROUP.error);
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
        match blocking(|| {
            broker.transactions().while_holding(
                &id,
                commit.producer_id,
                commit.producer_epoch,
                &offsets_partition,
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
    let topics = req
        .topics
        .iter()
        .zip(&checked)
        .map(|(t, (refusal, count))| {
            let code = |index: i32| match refusal {
                Some(code) => *code,
                None if index < 0 || index as u32 >= *count => {
                    ResponseError::UnknownTopicOrPartition.code()
                }
                None => outcome,
            };
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code(p.partition_index))
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
