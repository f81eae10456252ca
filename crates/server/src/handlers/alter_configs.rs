//! AlterConfigs (33), the legacy non-incremental one: a topic's overrides
//! become exactly the listed settings (those not listed return to their
//! defaults), checked and applied by the rule shared with
//! IncrementalAlterConfigs (`config_changes`). Null values and repeated
//! keys are refused as Kafka refuses them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, RequestHeader};

use super::config_changes::{
    change_broker, change_topic, no_duplicate_keys, topic_overrides, unsupported_resource, Changes,
};
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{sb, Refusal};
use crate::authorize::{Access, ALTER_CONFIGS_BROKER, ALTER_CONFIGS_TOPIC};
use crate::context::Ctx;

/// The listed settings, once the request's own checks pass.
fn listed(r: &AlterConfigsResource) -> Result<Vec<(String, String)>, Refusal> {
    no_duplicate_keys(r.configs.iter().map(|c| c.name.as_str()))?;
    let nulls: Vec<&str> = r
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(r.configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), value)
        })
        .collect())
}

fn alter(ctx: &Ctx, r: &AlterConfigsResource, validate_only: bool) -> Result<(), Refusal> {
    match r.resource_type {
        RESOURCE_TOPIC => {
            let wanted = listed(r)?;
            let overrides = topic_overrides(ctx, &r.resource_name)?;
            // Every listed setting that differs, and every override not
            // listed back to its default.
            let mut changes: Changes = overrides
                .keys()
                .filter(|k| !wanted.iter().any(|(w, _)| w == *k))
                .map(|k| (k.clone(), None))
                .collect();
            for (k, v) in wanted {
                if overrides.get(&k) != Some(&v) {
                    changes.insert(k, Some(v));
                }
            }
            change_topic(ctx, &r.resource_name, &overrides, &changes, validate_only)
        }
        RESOURCE_BROKER => {
            let changes: Changes = listed(r)?.into_iter().map(|(k, v)| (k, Some(v))).collect();
            change_broker(&r.resource_name, &changes)
        }
        other => Err(unsupported_resource(other)),
    }
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: AlterConfigsRequest,
    _v: i16,
) -> AlterConfigsResponse {
    let access = Access::of(ctx);
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let refusal = access.config_refusal(
                r.resource_type,
                &r.resource_name,
                &ALTER_CONFIGS_TOPIC,
                &ALTER_CONFIGS_BROKER,
            );
            match refusal.map_or_else(|| alter(ctx, r, req.validate_only), Err) {
                Ok(()) => base.with_error_message(None),
                Err((error, message)) => base
                    .with_error_code(error)
                    .with_error_message(Some(sb(&message))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}
