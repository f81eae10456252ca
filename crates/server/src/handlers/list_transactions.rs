//! ListTransactions (66): the transactional ids the coordinator knows, with
//! their producer id and state, filtered by state names (unknown names are
//! echoed back in `unknown_state_filters`), producer ids, how long the
//! transaction has been running (v1+: only those running longer than
//! `duration_filter` ms; negative: no filter) and a regular expression the
//! whole id must match (v2+; null or empty: no filter), as Kafka's
//! coordinator filters them. Dead ids (being expired) are never listed.
//! Only the ids the principal may describe are listed; nothing is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, RequestHeader, TransactionalId,
};
use pubsub_broker::txn::{TxnMetadata, TxnState};
use pubsub_broker::wall_clock_ms;

use super::sb;
use crate::authorize::{Access, LIST_TRANSACTIONS};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    // State names as Kafka spells them (exact match, as its lookup).
    let mut states = Vec::new();
    for name in &req.state_filters {
        match TxnState::ALL
            .into_iter()
            .find(|s| s.name() == name.as_str())
        {
            Some(state) => states.push(state),
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| version >= 2 && !p.is_empty())
        .map(|p| regex::Regex::new(&format!("^(?:{p})$")))
        .transpose()
    {
        Ok(pattern) => pattern,
        Err(e) => {
            tracing::debug!(error = %e, "ListTransactions: an invalid transactional id pattern");
            return response.with_error_code(ResponseError::InvalidRegularExpression.code());
        }
    };
    let duration = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now = wall_clock_ms();
    let wanted = |id: &str, m: &TxnMetadata| {
        m.state != TxnState::Dead
            && (req.producer_id_filters.is_empty()
                || req.producer_id_filters.contains(&ProducerId(m.producer_id)))
            && (states.is_empty() || states.contains(&m.state))
            && (duration < 0 || now.saturating_sub(m.start_ms) > duration)
            && pattern.as_ref().is_none_or(|p| p.is_match(id))
    };
    let access = Access::of(ctx);
    response.transaction_states = ctx
        .broker
        .transactions()
        .list()
        .into_iter()
        .filter(|(id, m)| wanted(id, m) && access.filters(&LIST_TRANSACTIONS, id))
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(sb(&id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(sb(m.state.name()))
        })
        .collect();
    response
}
