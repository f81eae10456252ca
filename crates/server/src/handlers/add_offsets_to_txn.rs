//! AddOffsetsToTxn (25): the group's `__consumer_offsets` partition joins
//! the producer's transaction, so the group's transactional offset commits
//! are committed or aborted with it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, RequestHeader};
use pubsub_broker::group::records::partition_for_group;
use pubsub_broker::names::CONSUMER_OFFSETS;
use pubsub_broker::wall_clock_ms;

use crate::authorize::{Access, ADD_OFFSETS_TO_TXN_GROUP, ADD_OFFSETS_TO_TXN_TXN};
use crate::codes::txn_error_code;
use crate::context::{blocking, Ctx};

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let answer = |code| AddOffsetsToTxnResponse::default().with_error_code(code);
    let id = req.transactional_id.as_str();
    // Authorization first, as Kafka: a refused principal learns nothing
    // about the id, not even that it is malformed.
    let access = Access::of(ctx);
    if !access.allows(&ADD_OFFSETS_TO_TXN_TXN, id) {
        return answer(ADD_OFFSETS_TO_TXN_TXN.error);
    }
    if !access.allows(&ADD_OFFSETS_TO_TXN_GROUP, &req.group_id) {
        return answer(ADD_OFFSETS_TO_TXN_GROUP.error);
    }
    if id.is_empty() {
        return answer(ResponseError::InvalidRequest.code());
    }
    let broker = &ctx.broker;
    let partition = partition_for_group(
        &req.group_id,
        broker.config().group.offsets_topic_partitions,
    );
    match blocking(|| {
        broker.transactions().add_partitions(
            broker.txn_store(),
            id,
            req.producer_id.0,
            req.producer_epoch,
            &[(CONSUMER_OFFSETS.to_string(), partition)],
            wall_clock_ms(),
        )
    }) {
        Ok(()) => answer(0),
        Err(e) => {
            tracing::debug!(error = %e, "AddOffsetsToTxn refused");
            answer(txn_error_code(&e, version >= FENCED_SINCE))
        }
    }
}
