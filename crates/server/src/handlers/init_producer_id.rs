//! InitProducerId (22): a fresh idempotent producer id, or, with a
//! transactional id, the transaction coordinator's producer id and a bumped
//! epoch for it (fencing the previous producer of that id and aborting its
//! unfinished transaction).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};
use pubsub_broker::wall_clock_ms;

use crate::authorize::{
    Access, INIT_PRODUCER_ID_ANY_TOPIC, INIT_PRODUCER_ID_IDEMPOTENT, INIT_PRODUCER_ID_TXN,
};
use crate::codes::{kafka_error, txn_error_code};
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 4;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let failed = |error| {
        InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    // Authorization first, as Kafka: a refused principal learns nothing
    // about the request, not even that it is malformed.
    let access = Access::of(ctx);
    if let Some(id) = &req.transactional_id {
        if !access.allows(&INIT_PRODUCER_ID_TXN, id) {
            return failed(INIT_PRODUCER_ID_TXN.error);
        }
    } else if !access.filters(&INIT_PRODUCER_ID_IDEMPOTENT, "")
        && !access.allows_any(&INIT_PRODUCER_ID_ANY_TOPIC)
    {
        // Kafka (KIP-679): IdempotentWrite on the cluster, or Write on any topic.
        access.log_denial(&INIT_PRODUCER_ID_IDEMPOTENT, "");
        return failed(INIT_PRODUCER_ID_IDEMPOTENT.error);
    }
    // An empty transactional id is neither idempotent-only (null) nor a
    // transactional id: Kafka refuses it.
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        return failed(ResponseError::InvalidRequest.code());
    }
    // A producer id without an epoch (or the reverse) is malformed.
    if (req.producer_id.0 == -1) != (req.producer_epoch == -1) {
        return failed(ResponseError::InvalidRequest.code());
    }
    if let Some(id) = &req.transactional_id {
        let expected = (req.producer_id.0 != -1).then_some((req.producer_id.0, req.producer_epoch));
        let broker = &ctx.broker;
        return match blocking(|| {
            broker.transactions().init_producer_id(
                broker.txn_store(),
                id,
                req.transaction_timeout_ms,
                expected,
                wall_clock_ms(),
            )
        }) {
            Ok((id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(e) => {
                tracing::debug!(error = %e, "InitProducerId refused");
                failed(txn_error_code(&e, version >= FENCED_SINCE))
            }
        };
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
