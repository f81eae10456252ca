//! DeleteGroups (42): deletes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::authorize::{Access, DELETE_GROUPS};
use crate::codes::{group_error_code, NONE};
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DeleteGroupsRequest,
    _v: i16,
) -> DeleteGroupsResponse {
    let access = Access::of(ctx);
    let results = req
        .groups_names
        .into_iter()
        .map(|group| {
            let error = match blocking(|| {
                if !access.allows(&DELETE_GROUPS, &group) {
                    return Err(DELETE_GROUPS.error);
                }
                ctx.broker
                    .coordinator()
                    .delete(ctx.broker.offsets_store(), &group)
                    .map_err(|e| group_error_code(&e))
            }) {
                Ok(()) => NONE,
                Err(code) => code,
            };
            DeletableGroupResult::default()
                .with_group_id(group)
                .with_error_code(error)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
