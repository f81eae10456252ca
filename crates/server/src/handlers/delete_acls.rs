//! DeleteAcls (31): removes every binding a filter matches, durable before
//! the answer, and answers per filter what it matched. Needs Alter on the
//! cluster; INVALID_REQUEST for a filter with an unknown code;
//! SECURITY_DISABLED with the authorizer off.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, RequestHeader};
use pubsub_broker::security::acl::CLUSTER_NAME;

use super::acls::{Wire, NO_AUTHORIZER};
use super::sb;
use crate::authorize::{Access, DELETE_ACLS};
use crate::context::{blocking, Ctx};

fn failed(code: i16, message: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(code)
        .with_error_message(Some(sb(message)))
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DeleteAclsRequest,
    _v: i16,
) -> DeleteAclsResponse {
    let access = Access::of(ctx);
    let refuse_all = |code: i16, message: &str| {
        DeleteAclsResponse::default()
            .with_filter_results(req.filters.iter().map(|_| failed(code, message)).collect())
    };
    if !access.allows(&DELETE_ACLS, CLUSTER_NAME) {
        return refuse_all(DELETE_ACLS.error, "Cluster authorization failed.");
    }
    if !access.enforced() {
        return refuse_all(ResponseError::SecurityDisabled.code(), NO_AUTHORIZER);
    }
    let parsed: Vec<Result<_, String>> = req
        .filters
        .iter()
        .map(|f| {
            Wire {
                resource_type: f.resource_type_filter,
                resource_name: f.resource_name_filter.as_ref(),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.as_ref(),
                host: f.host_filter.as_ref(),
                operation: f.operation,
                permission: f.permission_type,
            }
            .filter()
        })
        .collect();
    let valid: Vec<_> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let deleted = blocking(|| ctx.broker.acls().delete(&valid));
    let mut deleted = match deleted {
        Ok(d) => d.into_iter(),
        Err(e) => {
            tracing::warn!(error = %e, "DeleteAcls: the change could not be stored");
            return refuse_all(ResponseError::UnknownServerError.code(), &e.to_string());
        }
    };
    let results = parsed
        .iter()
        .map(|p| match p {
            Err(why) => failed(ResponseError::InvalidRequest.code(), why),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(sb(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(sb(&b.principal))
                            .with_host(sb(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
