//! LeaveGroup (13): one member (v0-2) or several (v3+) leave.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use crate::authorize::{Access, LEAVE_GROUP};
use crate::codes::{group_error_code, NONE};
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    if !Access::of(ctx).allows(&LEAVE_GROUP, &req.group_id) {
        return LeaveGroupResponse::default().with_error_code(LEAVE_GROUP.error);
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    match blocking(|| {
        ctx.broker.coordinator().leave(
            ctx.broker.offsets_store(),
            &req.group_id,
            &members,
            ctx.broker.now_ms(),
        )
    }) {
        Err(e) => LeaveGroupResponse::default().with_error_code(group_error_code(&e)),
        Ok(results) => {
            let codes: Vec<i16> = results
                .iter()
                .map(|r| r.as_ref().err().map_or(NONE, group_error_code))
                .collect();
            let top = if version >= 3 {
                0
            } else {
                codes.first().copied().unwrap_or(0)
            };
            LeaveGroupResponse::default()
                .with_error_code(top)
                .with_members(if version >= 3 {
                    members
                        .iter()
                        .zip(codes)
                        .map(|((id, iid), c)| {
                            MemberResponse::default()
                                .with_member_id(super::sb(id))
                                .with_group_instance_id(super::opt(iid.as_deref()))
                                .with_error_code(c)
                        })
                        .collect()
                } else {
                    Vec::new()
                })
        }
    }
}
