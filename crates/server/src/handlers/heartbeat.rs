//! Heartbeat (12): keeps a member alive; tells it to rejoin during a rebalance.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use crate::authorize::{Access, HEARTBEAT};
use crate::codes::group_error_code;
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: HeartbeatRequest,
    _v: i16,
) -> HeartbeatResponse {
    if !Access::of(ctx).allows(&HEARTBEAT, &req.group_id) {
        return HeartbeatResponse::default().with_error_code(HEARTBEAT.error);
    }
    let result = ctx.broker.coordinator().heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
        ctx.broker.now_ms(),
    );
    match result {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => HeartbeatResponse::default().with_error_code(group_error_code(&e)),
    }
}
