//! InitProducerId (22): a fresh idempotent producer id. Transactions are not
//! supported, so a transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
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
    if req.transactional_id.is_some() {
        return failed(ResponseError::TransactionalIdAuthorizationFailed.code());
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
