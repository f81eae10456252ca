//! SyncGroup (14): the leader hands in the assignment; every member gets its
//! part once it is stored.

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};
use pubsub_broker::group::SyncRequest;
use pubsub_broker::BrokerError;

use super::sb;
use crate::authorize::{Access, SYNC_GROUP};
use crate::codes::group_error_code;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if !Access::of(ctx).allows(&SYNC_GROUP, &req.group_id) {
        return SyncGroupResponse::default().with_error_code(SYNC_GROUP.error);
    }
    let sync = SyncRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
            .collect(),
    };
    // The leader's SyncGroup stores the assignment (an fsync).
    let result = match blocking(|| {
        ctx.broker
            .coordinator()
            .sync(ctx.broker.offsets_store(), sync, ctx.broker.now_ms())
    }) {
        Ok(promise) => {
            let mut shutdown = ctx.shutdown.clone();
            tokio::select! {
                r = promise.wait_async() => r,
                _ = shutdown.changed() => Err(BrokerError::Closed),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(r) if version >= 5 => SyncGroupResponse::default()
            .with_protocol_type(r.protocol_type.as_deref().map(sb))
            .with_protocol_name(r.protocol_name.as_deref().map(sb))
            .with_assignment(r.assignment.into()),
        Ok(r) => SyncGroupResponse::default().with_assignment(r.assignment.into()),
        Err(e) => SyncGroupResponse::default().with_error_code(group_error_code(&e)),
    }
}
