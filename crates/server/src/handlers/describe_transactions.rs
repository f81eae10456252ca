//! DescribeTransactions (65): the state of each named transactional id's
//! transaction (state, producer id and epoch, timeout, start time and its
//! partitions), as `kafka-transactions describe` shows it. Each id needs
//! Describe on it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing
//! else about it); an unknown or expiring (Dead) id is
//! TRANSACTIONAL_ID_NOT_FOUND; partitions of topics the principal may not
//! describe are left out, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, RequestHeader,
};
use pubsub_broker::txn::TxnState;

use super::{sb, topic_name};
use crate::authorize::{Access, DESCRIBE_TRANSACTIONS, DESCRIBE_TRANSACTIONS_TOPIC};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeTransactionsRequest,
    _version: i16,
) -> DescribeTransactionsResponse {
    let access = Access::of(ctx);
    let coordinator = ctx.broker.transactions();
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let base = TransactionState::default();
            if !access.allows(&DESCRIBE_TRANSACTIONS, &id) {
                return base
                    .with_transactional_id(id)
                    .with_error_code(DESCRIBE_TRANSACTIONS.error);
            }
            let Some(m) = coordinator
                .describe(&id)
                .filter(|m| m.state != TxnState::Dead)
            else {
                return base
                    .with_transactional_id(id)
                    .with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &m.partitions {
                topics.entry(topic).or_default().push(*partition);
            }
            let topics = topics
                .into_iter()
                .filter(|(topic, _)| access.filters(&DESCRIBE_TRANSACTIONS_TOPIC, topic))
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect();
            base.with_transactional_id(id)
                .with_error_code(0)
                .with_transaction_state(sb(m.state.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
