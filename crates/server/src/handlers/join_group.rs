//! JoinGroup (11): join (or rejoin) a consumer group; answered when the
//! group's join phase completes.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use pubsub_broker::group::JoinRequest;
use pubsub_broker::BrokerError;

use super::{opt, sb};
use crate::authorize::{Access, JOIN_GROUP};
use crate::codes::group_error_code;
use crate::context::Ctx;

/// A refused join. The protocol name is null where the version allows it
/// (v7+), as Kafka answers.
fn failed(error: i16, member_id: &str, version: i16) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error)
        .with_generation_id(-1)
        .with_protocol_name((version < 7).then(|| sb("")))
        .with_leader(sb(""))
        .with_member_id(sb(member_id))
}

pub async fn handle(
    ctx: &Ctx,
    h: &RequestHeader,
    req: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    if !Access::of(ctx).allows(&JOIN_GROUP, &req.group_id) {
        return failed(JOIN_GROUP.error, &req.member_id, version);
    }
    let join = JoinRequest {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            -1
        },
        client_id: h
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        require_known_member_id: version >= 4,
        skip_assignment_supported: version >= 9,
    };
    let promise = match ctx.broker.coordinator().join(join, ctx.broker.now_ms()) {
        Ok(p) => p,
        Err(BrokerError::MemberIdRequired(id)) => {
            return failed(ResponseError::MemberIdRequired.code(), &id, version)
        }
        Err(e) => return failed(group_error_code(&e), &req.member_id, version),
    };
    let mut shutdown = ctx.shutdown.clone();
    let result = tokio::select! {
        r = promise.wait_async() => r,
        _ = shutdown.changed() => Err(BrokerError::Closed),
    };
    match result {
        Ok(r) => JoinGroupResponse::default()
            .with_generation_id(r.generation_id)
            .with_protocol_type(if version >= 7 {
                r.protocol_type.as_deref().map(sb)
            } else {
                None
            })
            .with_protocol_name(Some(sb(r.protocol_name.as_deref().unwrap_or_default())))
            .with_leader(sb(&r.leader))
            .with_member_id(sb(&r.member_id))
            .with_skip_assignment(version >= 9 && r.skip_assignment)
            .with_members(
                r.members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(sb(&m.member_id))
                            .with_group_instance_id(if version >= 5 {
                                opt(m.group_instance_id.as_deref())
                            } else {
                                None
                            })
                            .with_metadata(m.metadata.into())
                    })
                    .collect(),
            ),
        Err(e) => failed(group_error_code(&e), &req.member_id, version),
    }
}
