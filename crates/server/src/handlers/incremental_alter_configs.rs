//! IncrementalAlterConfigs (44): set, delete, append to or subtract from
//! topic settings. Broker settings are static (the config file). Checks
//! and changes go through `config_changes`, shared with AlterConfigs.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use pubsub_broker::config::{topic_setting, ConfigType};

use super::config_changes::{
    change_broker, change_topic, no_duplicate_keys, topic_overrides, unsupported_resource, Changes,
};
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::sb;
use crate::authorize::{Access, INCREMENTAL_ALTER_CONFIGS_BROKER, INCREMENTAL_ALTER_CONFIGS_TOPIC};
use crate::codes::error_code;
use crate::context::Ctx;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The changes to make, from the operations and the current values.
fn changes(ctx: &Ctx, r: &AlterConfigsResource) -> Result<Changes, super::Refusal> {
    no_duplicate_keys(r.configs.iter().map(|c| c.name.as_str()))?;
    let current = ctx
        .broker
        .describe_topic(&r.resource_name)
        .map_err(|e| (error_code(&e), e.to_string()))?;
    let value_of = |k: &str| {
        current
            .configs
            .iter()
            .find(|(n, _, _)| n == k)
            .map(|(_, v, _)| v.clone())
    };
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    for c in &r.configs {
        let key = c.name.to_string();
        let value = c.value.as_ref().map(|v| v.to_string());
        let change = match (c.config_operation, value) {
            (OP_SET, Some(v)) => Some(v),
            (OP_DELETE, _) => None,
            (OP_APPEND | OP_SUBTRACT, Some(v)) => {
                if topic_setting(&key).is_none_or(|s| s.config_type != ConfigType::List) {
                    return Err((
                        ResponseError::InvalidConfig.code(),
                        format!("{key} is not a list"),
                    ));
                }
                let mut items: Vec<String> = value_of(&key)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if c.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                Some(items.join(","))
            }
            (OP_SET | OP_APPEND | OP_SUBTRACT, None) => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("{key}: a null value"),
                ));
            }
            (op, _) => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("unknown operation {op}"),
                ))
            }
        };
        out.insert(key, change);
    }
    Ok(out)
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: IncrementalAlterConfigsRequest,
    _v: i16,
) -> IncrementalAlterConfigsResponse {
    let access = Access::of(ctx);
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let refusal = access.config_refusal(
                r.resource_type,
                &r.resource_name,
                &INCREMENTAL_ALTER_CONFIGS_TOPIC,
                &INCREMENTAL_ALTER_CONFIGS_BROKER,
            );
            let result = match r.resource_type {
                _ if refusal.is_some() => Err(refusal.unwrap_or_default()),
                RESOURCE_TOPIC => topic_overrides(ctx, &r.resource_name).and_then(|overrides| {
                    let c = changes(ctx, r)?;
                    change_topic(ctx, &r.resource_name, &overrides, &c, req.validate_only)
                }),
                RESOURCE_BROKER => no_duplicate_keys(r.configs.iter().map(|c| c.name.as_str()))
                    .and_then(|()| {
                        let c: Changes = r
                            .configs
                            .iter()
                            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                            .collect();
                        change_broker(&r.resource_name, &c)
                    }),
                other => Err(unsupported_resource(other)),
            };
            // No message on success: null, as Kafka answers.
            let base = AlterConfigsResourceResponse::default()
                .with_error_message(None)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match result {
                Ok(()) => base.with_error_message(None),
                Err((error, message)) => base
                    .with_error_code(error)
                    .with_error_message(Some(sb(&message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
