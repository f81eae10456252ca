//! FindCoordinator (10): this broker coordinates every group.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};

use super::sb;
use crate::authorize::{Access, FIND_COORDINATOR_GROUP, FIND_COORDINATOR_TXN};
use crate::config::NODE_ID;
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: FindCoordinatorRequest,
    _v: i16,
) -> FindCoordinatorResponse {
    let resp = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(sb(&ctx.listener.advertised_host))
        .with_port(i32::from(ctx.listener.advertised_port));
    let rule = if req.key_type == 0 {
        FIND_COORDINATOR_GROUP
    } else {
        FIND_COORDINATOR_TXN
    };
    if !Access::of(ctx).allows(&rule, &req.key) {
        return resp
            .with_error_code(rule.error)
            .with_node_id(BrokerId(-1))
            .with_host(sb(""))
            .with_port(-1);
    }
    if req.key_type != 0 {
        // Transaction coordinators: transactions are not supported.
        return resp
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(sb("transactions are not supported")))
            .with_node_id(BrokerId(-1))
            .with_host(sb(""))
            .with_port(-1);
    }
    // Kafka's message for success is the name of error code 0.
    resp.with_error_message(Some(sb("NONE")))
}
