//! IncrementalAlterConfigs (44): set, delete, append to or subtract from
//! topic settings. Broker settings are static (the config file).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use pubsub_broker::config::{topic_setting, ConfigType};
use pubsub_broker::BrokerError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::sb;
use crate::codes::error_code;
use crate::context::{blocking, Ctx};

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The changes to make, from the operations and the current values.
fn changes(
    ctx: &Ctx,
    r: &AlterConfigsResource,
) -> Result<BTreeMap<String, Option<String>>, super::Refusal> {
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
        if out.contains_key(&key) {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("{key} is altered more than once"),
            ));
        }
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
    // Validate against the topic's current overrides.
    let mut merged: BTreeMap<String, String> = current
        .configs
        .iter()
        .filter(|(_, _, set)| *set)
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &out {
        match v {
            Some(v) => merged.insert(k.clone(), v.clone()),
            None => merged.remove(k),
        };
    }
    ctx.broker
        .config()
        .topic_defaults
        .with_overrides(&merged)
        .map_err(|e: BrokerError| (error_code(&e), e.to_string()))?;
    Ok(out)
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: IncrementalAlterConfigsRequest,
    _v: i16,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let result = match r.resource_type {
                RESOURCE_TOPIC => changes(ctx, r).and_then(|c| {
                    if req.validate_only {
                        Ok(())
                    } else {
                        blocking(|| ctx.broker.alter_topic_config(&r.resource_name, &c))
                            .map_err(|e| (error_code(&e), e.to_string()))
                    }
                }),
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest.code(),
                    "broker settings are static: change the config file and restart".to_string(),
                )),
                other => Err((
                    ResponseError::InvalidRequest.code(),
                    format!("resource type {other} is not supported"),
                )),
            };
            // No message on success: null, as Kafka answers.
            let base = AlterConfigsResourceResponse::default()
                .with_error_message(None)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match result {
                Ok(()) => base,
                Err((error, message)) => base
                    .with_error_code(error)
                    .with_error_message(Some(sb(&message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
