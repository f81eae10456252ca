//! AlterUserScramCredentials (51, KIP-554): deletions and upsertions of
//! SCRAM credentials, with Kafka's rules (its `ScramControlManager`): a
//! user altered twice in one request gets DUPLICATE_RESOURCE, an empty name
//! UNACCEPTABLE_CREDENTIAL, an unknown mechanism UNSUPPORTED_SASL_MECHANISM,
//! fewer than 4096 or more than 16384 iterations UNACCEPTABLE_CREDENTIAL,
//! deleting a credential that does not exist RESOURCE_NOT_FOUND. An
//! upsertion carries the client-computed SaltedPassword: the broker derives
//! StoredKey and ServerKey from it and drops it. The accepted changes are
//! made durable together before any is answered as done. Without Alter on
//! the cluster (the authorizer's table) nothing changes and every user
//! named gets CLUSTER_AUTHORIZATION_FAILED, as Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, RequestHeader,
};
use pubsub_broker::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS};
use pubsub_broker::security::{ScramCredential, ScramMechanism, UserChange};

use pubsub_broker::security::acl::CLUSTER_NAME;

use super::{sb, Refusal};
use crate::authorize::{Access, ALTER_USER_SCRAM_CREDENTIALS};
use crate::context::{blocking, Ctx};

fn refuse(error: ResponseError, message: &str) -> Refusal {
    (error.code(), message.to_string())
}

fn mechanism_of(name: &str, code: i8) -> Result<ScramMechanism, Refusal> {
    if name.is_empty() {
        return Err(refuse(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    ScramMechanism::from_type_code(code).ok_or_else(|| {
        refuse(
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        )
    })
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: AlterUserScramCredentialsRequest,
    _v: i16,
) -> AlterUserScramCredentialsResponse {
    if !Access::of(ctx).allows(&ALTER_USER_SCRAM_CREDENTIALS, CLUSTER_NAME) {
        let named: std::collections::BTreeSet<&str> = req
            .deletions
            .iter()
            .map(|d| d.name.as_str())
            .chain(req.upsertions.iter().map(|u| u.name.as_str()))
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(
            named
                .into_iter()
                .map(|name| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(sb(name))
                        .with_error_code(ALTER_USER_SCRAM_CREDENTIALS.error)
                        .with_error_message(Some(sb("Cluster authorization failed.")))
                })
                .collect(),
        );
    }
    let users = ctx.broker.users();
    // In request order: user -> the change, or why it is refused.
    let mut order: Vec<String> = Vec::new();
    let mut outcome: BTreeMap<String, Result<UserChange, Refusal>> = BTreeMap::new();
    let duplicate = || {
        Err(refuse(
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request",
        ))
    };
    let mut note = |name: String, change: Result<UserChange, Refusal>| {
        match outcome.get_mut(&name) {
            // Refused already: stays refused for its first reason.
            Some(Err(_)) => {}
            Some(prior) => *prior = duplicate(),
            None => {
                order.push(name.clone());
                outcome.insert(name, change);
            }
        }
    };
    for d in &req.deletions {
        let name = d.name.to_string();
        let change = mechanism_of(&name, d.mechanism).and_then(|mechanism| {
            if users.credential(&name, mechanism).is_none() {
                return Err(refuse(
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist",
                ));
            }
            Ok(UserChange::Delete {
                user: name.clone(),
                mechanism,
            })
        });
        note(name, change);
    }
    for u in &req.upsertions {
        let name = u.name.to_string();
        let change = mechanism_of(&name, u.mechanism).and_then(|mechanism| {
            if u.iterations < MIN_ITERATIONS {
                return Err(refuse(
                    ResponseError::UnacceptableCredential,
                    "Too few iterations",
                ));
            }
            if u.iterations > MAX_ITERATIONS {
                return Err(refuse(
                    ResponseError::UnacceptableCredential,
                    "Too many iterations",
                ));
            }
            Ok(UserChange::Upsert {
                user: name.clone(),
                mechanism,
                credential: ScramCredential::from_salted_password(
                    mechanism,
                    &u.salt,
                    u.iterations,
                    &u.salted_password,
                ),
            })
        });
        note(name, change);
    }
    let changes: Vec<UserChange> = order
        .iter()
        .filter_map(|n| outcome.get(n).and_then(|r| r.as_ref().ok()).cloned())
        .collect();
    // Nothing is answered as done unless it is on disk.
    let stored = if changes.is_empty() {
        Ok(())
    } else {
        blocking(|| users.apply(&changes))
    };
    if let Err(e) = &stored {
        tracing::error!(error = %e, "storing SCRAM credentials failed");
    }
    let results = order
        .iter()
        .map(|name| {
            let result = AlterUserScramCredentialsResult::default().with_user(sb(name));
            match (outcome.get(name), &stored) {
                (Some(Ok(_)), Ok(())) => result,
                (Some(Ok(_)), Err(e)) => result
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(Some(sb(&format!("the credentials were not stored: {e}")))),
                (Some(Err((code, message))), _) => result
                    .with_error_code(*code)
                    .with_error_message(Some(sb(message))),
                (None, _) => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
