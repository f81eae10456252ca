//! InitProducerId (22): a fresh idempotent producer id. Transactions are not
//! supported, so a transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};

use crate::authorize::{
    Access, INIT_PRODUCER_ID_ANY_TOPIC, INIT_PRODUCER_ID_IDEMPOTENT, INIT_PRODUCER_ID_TXN,
};
use crate::codes::kafka_error;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: InitProducerIdRequest,
    _v: i16,
) -> InitProducerIdResponse {
    let failed = |error| {
        InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    // An empty transactional id is neither idempotent-only (null) nor a
    // transactional id: Kafka refuses it.
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        return failed(ResponseError::InvalidRequest.code());
    }
    let access = Access::of(ctx);
    if req.transactional_id.is_some() {
        // Refused whether or not Write on it is allowed: no transactions.
        return failed(INIT_PRODUCER_ID_TXN.error);
    }
    // Kafka (KIP-679): IdempotentWrite on the cluster, or Write on any topic.
    if !access.filters(&INIT_PRODUCER_ID_IDEMPOTENT, "")
        && !access.allows_any(&INIT_PRODUCER_ID_ANY_TOPIC)
    {
        access.log_denial(&INIT_PRODUCER_ID_IDEMPOTENT, "");
        return failed(INIT_PRODUCER_ID_IDEMPOTENT.error);
    }
    // A producer that asks to bump its epoch (KIP-360) gets a new id: ids
    // are cheap and never reused, which fences the old one just as well.
    match blocking(|| ctx.broker.init_producer_id()) {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::warn!(error = %e, "InitProducerId failed");
            failed(match kafka_error(&e) {
                ResponseError::UnknownServerError | ResponseError::KafkaStorageError => {
                    ResponseError::CoordinatorNotAvailable.code()
                }
                other => other.code(),
            })
        }
    }
}
