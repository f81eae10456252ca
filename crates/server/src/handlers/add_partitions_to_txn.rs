//! AddPartitionsToTxn (24): partitions join a producer's transaction before
//! it writes to them. Versions 0-3 carry one transaction (the client form);
//! 4 and up a batch of them (Kafka's broker-to-broker form, which needs
//! ClusterAction), each optionally `verify_only` (is the partition in?).
//! As Kafka answers: a transactional id the principal may not write fails
//! every partition; a topic it may not write, or a partition that does not
//! exist, fails those and leaves the others OPERATION_NOT_ATTEMPTED;
//! otherwise the coordinator's answer is every partition's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, RequestHeader,
};
use pubsub_broker::wall_clock_ms;

use super::topic_name;
use crate::authorize::{
    Access, ADD_PARTITIONS_TO_TXN_BATCHED, ADD_PARTITIONS_TO_TXN_TOPIC, ADD_PARTITIONS_TO_TXN_TXN,
};
use crate::codes::txn_error_code;
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

/// One transaction of the request.
struct Txn<'a> {
    id: &'a str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let access = Access::of(ctx);
    if version <= 3 {
        let txn = Txn {
            id: req.v3_and_below_transactional_id.as_str(),
            producer_id: req.v3_and_below_producer_id.0,
            epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: &req.v3_and_below_topics,
        };
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(answer(ctx, &access, &txn, version));
    }
    if !access.allows(&ADD_PARTITIONS_TO_TXN_BATCHED, "") {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ADD_PARTITIONS_TO_TXN_BATCHED.error);
    }
    let results = req
        .transactions
        .iter()
        .map(|t| {
            let txn = Txn {
                id: t.transactional_id.as_str(),
                producer_id: t.producer_id.0,
                epoch: t.producer_epoch,
                verify_only: t.verify_only,
                topics: &t.topics,
            };
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(answer(ctx, &access, &txn, version))
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// Every partition of one transaction, with its error code.
fn answer(
    ctx: &Ctx,
    access: &Access,
    txn: &Txn<'_>,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = txn
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    // Authorization first, as Kafka: a refused principal learns nothing
    // about the id, not even that it is malformed.
    let codes: Vec<i16> = if !access.allows(&ADD_PARTITIONS_TO_TXN_TXN, txn.id) {
        vec![ADD_PARTITIONS_TO_TXN_TXN.error; partitions.len()]
    } else if txn.id.is_empty() {
        vec![ResponseError::InvalidRequest.code(); partitions.len()]
    } else {
        let refused: Vec<Option<i16>> = partitions
            .iter()
            .map(|(topic, p)| {
                if !access.allows(&ADD_PARTITIONS_TO_TXN_TOPIC, topic) {
                    Some(ADD_PARTITIONS_TO_TXN_TOPIC.error)
                } else if ctx.broker.partition(topic, *p).is_err() {
                    Some(ResponseError::UnknownTopicOrPartition.code())
                } else {
                    None
                }
            })
            .collect();
        if refused.iter().any(Option::is_some) {
            refused
                .into_iter()
                .map(|r| r.unwrap_or(ResponseError::OperationNotAttempted.code()))
                .collect()
        } else {
            coordinator(ctx, txn, &partitions, version)
        }
    };
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, p), code) in partitions.into_iter().zip(codes) {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(code);
        match out.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.results_by_partition.push(result),
            None => out.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic_name(&topic))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    out
}

/// The coordinator's answer for every partition.
fn coordinator(ctx: &Ctx, txn: &Txn<'_>, partitions: &[(String, i32)], version: i16) -> Vec<i16> {
    let broker = &ctx.broker;
    let fenced_known = version >= FENCED_SINCE;
    if txn.verify_only {
        return match broker.transactions().verify_partitions(
            txn.id,
            txn.producer_id,
            txn.epoch,
            partitions,
        ) {
            Ok(inside) => inside
                .into_iter()
                .map(|i| {
                    if i {
                        0
                    } else {
                        ResponseError::InvalidTxnState.code()
                    }
                })
                .collect(),
            Err(e) => vec![txn_error_code(&e, fenced_known); partitions.len()],
        };
    }
    // Answered once appended: Produce waits for the fsync before the
    // transaction's first write (see `add_partitions_owed`).
    let code = match blocking(|| {
        broker.transactions().add_partitions_owed(
            broker.txn_store(),
            txn.id,
            txn.producer_id,
            txn.epoch,
            partitions,
            wall_clock_ms(),
        )
    }) {
        Ok(()) => 0,
        Err(e) => {
            tracing::debug!(error = %e, "AddPartitionsToTxn refused");
            txn_error_code(&e, fenced_known)
        }
    };
    vec![code; partitions.len()]
}
