//! DeleteGroups (42): deletes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::codes::{group_error_code, NONE};
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DeleteGroupsRequest,
    _v: i16,
) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|group| {
            let error = match blocking(|| ctx.broker.delete_group(&group)) {
                Ok(()) => NONE,
                Err(e) => group_error_code(&e),
            };
            DeletableGroupResult::default()
                .with_group_id(group)
                .with_error_code(error)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
