//! EndTxn (26): commits or aborts the producer's transaction. Answered once
//! the decision (PrepareCommit or PrepareAbort) is durable in
//! `__transaction_state`; the markers follow before the answer when they
//! can be written, else from the broker's clock.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, RequestHeader};
use pubsub_broker::wall_clock_ms;

use crate::authorize::{Access, END_TXN};
use crate::codes::txn_error_code;
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let answer = |code| {
        EndTxnResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let id = req.transactional_id.as_str();
    // Authorization first, as Kafka: a refused principal learns nothing
    // about the id, not even that it is malformed.
    if !Access::of(ctx).allows(&END_TXN, id) {
        return answer(END_TXN.error);
    }
    if id.is_empty() {
        return answer(ResponseError::InvalidRequest.code());
    }
    let broker = &ctx.broker;
    match blocking(|| {
        broker.transactions().end_txn(
            broker.txn_store(),
            id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            wall_clock_ms(),
        )
    }) {
        Ok(()) => answer(0),
        Err(e) => {
            tracing::debug!(error = %e, "EndTxn refused");
            answer(txn_error_code(&e, version >= FENCED_SINCE))
        }
    }
}
