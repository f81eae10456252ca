//! EndTxn (26): commits or aborts the producer's transaction. Answered once
//! the decision (PrepareCommit or PrepareAbort) is durable in
//! `__transaction_state`; the markers follow before the answer when they
//! can be written, else from the broker's clock. Version 5 is transaction
//! version 2 (KIP-890): the decision bumps the producer's epoch (a new
//! producer id once it is exhausted), and the answer carries the producer
//! id and epoch the producer goes on with.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, RequestHeader};
use pubsub_broker::wall_clock_ms;

use crate::authorize::{Access, END_TXN};
use crate::codes::txn_error_code;
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;
/// The first version of transaction version 2 clients.
const TXN_V2_SINCE: i16 = 5;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let answer = |code| with_producer(code, -1, -1);
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
        broker.transactions().end_transaction(
            broker.txn_store(),
            id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            version >= TXN_V2_SINCE,
            wall_clock_ms(),
        )
    }) {
        Ok((producer_id, epoch)) => with_producer(0, producer_id, epoch),
        Err(e) => {
            tracing::debug!(error = %e, "EndTxn refused");
            answer(txn_error_code(&e, version >= FENCED_SINCE))
        }
    }
}

fn with_producer(code: i16, producer_id: i64, epoch: i16) -> EndTxnResponse {
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}
