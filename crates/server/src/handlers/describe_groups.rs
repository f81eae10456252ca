//! DescribeGroups (15): state, protocol and members (with their opaque
//! subscription and assignment bytes) of each group. An unknown group is
//! reported as Dead with no members before v6 and as GROUP_ID_NOT_FOUND
//! from v6 (KIP-1043), as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};

use pubsub_broker::group::GroupState;
use pubsub_broker::security::acl::ResourceType;

use super::{opt, sb};
use crate::authorize::{Access, DESCRIBE_GROUPS};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let access = Access::of(ctx);
    let operations = |group: &str| {
        if req.include_authorized_operations {
            access.operations(ResourceType::Group, group)
        } else {
            i32::MIN
        }
    };
    let groups = req
        .groups
        .iter()
        .cloned()
        .map(|group_id| {
            if !access.allows(&DESCRIBE_GROUPS, &group_id) {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(DESCRIBE_GROUPS.error)
                    .with_authorized_operations(i32::MIN);
            }
            if group_id.is_empty() {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::InvalidGroupId.code())
                    .with_authorized_operations(i32::MIN);
            }
            let d = ctx.broker.coordinator().describe(&group_id);
            if version >= 6 && d.state == GroupState::Dead {
                let message = format!("Group {} not found.", &*group_id);
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_group_state(sb(GroupState::Dead.kafka_name()))
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(&message)))
                    .with_authorized_operations(i32::MIN);
            }
            // Kafka names the protocol and hands out members' metadata only
            // once the group is stable; assignments (the last ones) always.
            let stable = d.state.kafka_name() == "Stable";
            let operations = operations(&group_id);
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(sb(d.state.kafka_name()))
                .with_protocol_type(sb(&d.protocol_type))
                .with_protocol_data(sb(if stable { &d.protocol } else { "" }))
                .with_authorized_operations(operations)
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(sb(&m.member_id))
                                .with_group_instance_id(if version >= 4 {
                                    opt(m.group_instance_id.as_deref())
                                } else {
                                    None
                                })
                                .with_client_id(sb(&m.client_id))
                                .with_client_host(sb(&m.client_host))
                                .with_member_metadata(if stable {
                                    m.metadata.into()
                                } else {
                                    Default::default()
                                })
                                .with_member_assignment(m.assignment.into())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
