//! FindCoordinator (10): this broker coordinates every group (key type 0)
//! and every transactional id (key type 1); other key types are invalid.

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
    // No coordinator: the error, node -1, no address.
    let refuse = |resp: FindCoordinatorResponse, code: i16| {
        resp.with_error_code(code)
            .with_node_id(BrokerId(-1))
            .with_host(sb(""))
            .with_port(-1)
    };
    let rule = match req.key_type {
        0 => FIND_COORDINATOR_GROUP,
        1 => FIND_COORDINATOR_TXN,
        _ => return refuse(resp, ResponseError::InvalidRequest.code()),
    };
    if !Access::of(ctx).allows(&rule, &req.key) {
        return refuse(resp, rule.error);
    }
    // Kafka's message for success is the name of error code 0.
    resp.with_error_message(Some(sb("NONE")))
}
