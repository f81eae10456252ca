//! DescribeAcls (29): the bindings a filter matches, grouped by resource
//! pattern. Needs Describe on the cluster; SECURITY_DISABLED with the
//! authorizer off and INVALID_REQUEST for a filter with an unknown code, as
//! Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, RequestHeader};
use pubsub_broker::security::acl::CLUSTER_NAME;

use super::acls::{Wire, NO_AUTHORIZER};
use super::sb;
use crate::authorize::{Access, DESCRIBE_ACLS};
use crate::context::Ctx;

fn failed(code: i16, message: &str) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(code)
        .with_error_message(Some(sb(message)))
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeAclsRequest,
    _v: i16,
) -> DescribeAclsResponse {
    let access = Access::of(ctx);
    if !access.allows(&DESCRIBE_ACLS, CLUSTER_NAME) {
        return failed(DESCRIBE_ACLS.error, "Cluster authorization failed.");
    }
    if !access.enforced() {
        return failed(ResponseError::SecurityDisabled.code(), NO_AUTHORIZER);
    }
    let wire = Wire {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.as_ref(),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.as_ref(),
        host: req.host_filter.as_ref(),
        operation: req.operation,
        permission: req.permission_type,
    };
    let filter = match wire.filter() {
        Ok(f) => f,
        Err(why) => return failed(ResponseError::InvalidRequest.code(), &why),
    };
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for b in ctx.broker.acls().describe(&filter) {
        resources
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(sb(&b.principal))
                    .with_host(sb(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((rt, name, pattern), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(rt.code())
                    .with_resource_name(sb(&name))
                    .with_pattern_type(pattern.code())
                    .with_acls(acls)
            })
            .collect(),
    )
}
