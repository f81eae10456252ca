//! CreateAcls (30): adds bindings, durable before the answer. Needs Alter
//! on the cluster; each creation is validated as Kafka validates a new ACL
//! (INVALID_REQUEST with the reason); SECURITY_DISABLED with the authorizer
//! off.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, RequestHeader};
use pubsub_broker::security::acl::CLUSTER_NAME;

use super::acls::{Wire, NO_AUTHORIZER};
use super::sb;
use crate::authorize::{Access, CREATE_ACLS};
use crate::context::{blocking, Ctx};

fn result(code: i16, message: &str) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code)
        .with_error_message(Some(sb(message)))
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: CreateAclsRequest,
    _v: i16,
) -> CreateAclsResponse {
    let access = Access::of(ctx);
    let refuse_all = |code: i16, message: &str| {
        CreateAclsResponse::default().with_results(
            req.creations
                .iter()
                .map(|_| result(code, message))
                .collect(),
        )
    };
    if !access.allows(&CREATE_ACLS, CLUSTER_NAME) {
        return refuse_all(CREATE_ACLS.error, "Cluster authorization failed.");
    }
    if !access.enforced() {
        return refuse_all(ResponseError::SecurityDisabled.code(), NO_AUTHORIZER);
    }
    let parsed: Vec<Result<_, String>> = req
        .creations
        .iter()
        .map(|c| {
            Wire {
                resource_type: c.resource_type,
                resource_name: Some(&c.resource_name),
                pattern_type: c.resource_pattern_type,
                principal: Some(&c.principal),
                host: Some(&c.host),
                operation: c.operation,
                permission: c.permission_type,
            }
            .binding()
        })
        .collect();
    let valid: Vec<_> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        blocking(|| ctx.broker.acls().create(&valid))
    };
    if let Err(e) = &stored {
        tracing::warn!(error = %e, "CreateAcls: the ACLs could not be stored");
    }
    let results = parsed
        .iter()
        .map(|p| match (p, &stored) {
            (Err(why), _) => result(ResponseError::InvalidRequest.code(), why),
            (Ok(_), Ok(())) => AclCreationResult::default(),
            (Ok(_), Err(e)) => result(ResponseError::UnknownServerError.code(), &e.to_string()),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
