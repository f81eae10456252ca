//! ListGroups (16): every group, optionally filtered by state (v4) and by
//! type (v5: every group here is a "classic" one, Kafka's name for the
//! JoinGroup/SyncGroup protocol; the filter is case-insensitive, as Kafka's).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};

use super::sb;
use crate::authorize::{Access, LIST_GROUPS_CLUSTER, LIST_GROUPS_GROUP};
use crate::context::Ctx;

/// The type of every group here (Kafka's `GroupType.CLASSIC`).
const CLASSIC: &str = "classic";

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let access = Access::of(ctx);
    let every = access.filters(&LIST_GROUPS_CLUSTER, "");
    let groups = ctx
        .broker
        .coordinator()
        .list()
        .into_iter()
        .filter(|g| every || access.filters(&LIST_GROUPS_GROUP, &g.group_id))
        .filter(|g| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.trim().eq_ignore_ascii_case(g.state.kafka_name()))
        })
        .filter(|_| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(CLASSIC))
        })
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(&g.group_id)))
                .with_protocol_type(sb(&g.protocol_type))
                .with_group_state(if version >= 4 {
                    sb(g.state.kafka_name())
                } else {
                    sb("")
                })
                .with_group_type(if version >= 5 { sb(CLASSIC) } else { sb("") })
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
