//! DescribeUserScramCredentials (50, KIP-554): which SCRAM mechanisms each
//! user has, with their iterations (never salts or keys). No users named:
//! every user. A user named twice: DUPLICATE_RESOURCE; an unknown one:
//! RESOURCE_NOT_FOUND, as Kafka's metadata cache answers. Without Describe
//! on the cluster (the authorizer's table): CLUSTER_AUTHORIZATION_FAILED for
//! the whole request, as Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
};

use pubsub_broker::security::acl::CLUSTER_NAME;

use super::sb;
use crate::authorize::{Access, DESCRIBE_USER_SCRAM_CREDENTIALS};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeUserScramCredentialsRequest,
    _v: i16,
) -> DescribeUserScramCredentialsResponse {
    if !Access::of(ctx).allows(&DESCRIBE_USER_SCRAM_CREDENTIALS, CLUSTER_NAME) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(DESCRIBE_USER_SCRAM_CREDENTIALS.error)
            .with_error_message(Some(sb("Cluster authorization failed.")));
    }
    let users = ctx.broker.users().describe();
    // Name -> asked for more than once.
    let mut asked: BTreeMap<String, bool> = BTreeMap::new();
    match req.users.as_deref() {
        None | Some([]) => {
            for name in users.keys() {
                asked.insert(name.clone(), false);
            }
        }
        Some(named) => {
            for u in named {
                asked
                    .entry(u.name.to_string())
                    .and_modify(|twice| *twice = true)
                    .or_insert(false);
            }
        }
    }
    let results = asked
        .into_iter()
        .map(|(name, duplicate)| {
            let result = DescribeUserScramCredentialsResult::default().with_user(sb(&name));
            if duplicate {
                return result
                    .with_error_code(ResponseError::DuplicateResource.code())
                    .with_error_message(Some(sb(
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    )));
            }
            match users.get(&name) {
                Some(infos) if !infos.is_empty() => result.with_credential_infos(
                    infos
                        .iter()
                        .map(|(m, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(m.type_code())
                                .with_iterations(*iterations)
                        })
                        .collect(),
                ),
                _ => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(sb(&format!(
                        "Attempt to describe a user credential that does not exist: {name}"
                    )))),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
