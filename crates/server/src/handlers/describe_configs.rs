//! DescribeConfigs (32): a topic's settings (with whether each was set on
//! the topic or is the default) and the broker's static settings.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use pubsub_broker::config::{topic_setting, ConfigType, TOPIC_SETTINGS};

use super::sb;
use crate::authorize::{Access, DESCRIBE_CONFIGS_BROKER, DESCRIBE_CONFIGS_TOPIC};
use crate::codes::{
    error_code, CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_STATIC_BROKER, CONFIG_SOURCE_TOPIC,
};
use crate::config::NODE_ID;
use crate::context::Ctx;

/// Kafka's resource types.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// The broker's settings under Kafka's broker-level names, with their
/// types: its own, then every topic setting's default.
fn broker_entries(ctx: &Ctx) -> Vec<(String, String, ConfigType)> {
    let b = ctx.broker.config();
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let mut out: Vec<(String, String, ConfigType)> = [
        (
            "auto.create.topics.enable",
            b.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        (
            "connections.max.idle.ms",
            ms(ctx.config.idle_timeout),
            ConfigType::Long,
        ),
        (
            "group.initial.rebalance.delay.ms",
            ms(b.group.initial_rebalance_delay),
            ConfigType::Int,
        ),
        (
            "group.max.session.timeout.ms",
            ms(b.group.max_session_timeout),
            ConfigType::Int,
        ),
        (
            "group.min.session.timeout.ms",
            ms(b.group.min_session_timeout),
            ConfigType::Int,
        ),
        (
            "max.connections",
            ctx.config.max_connections.to_string(),
            ConfigType::Int,
        ),
        (
            "num.partitions",
            b.default_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "offsets.topic.num.partitions",
            b.group.offsets_topic_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes",
            ctx.config.max_request_bytes.to_string(),
            ConfigType::Int,
        ),
    ]
    .into_iter()
    .map(|(k, v, t)| (k.to_string(), v, t))
    .collect();
    out.extend(TOPIC_SETTINGS.iter().map(|s| {
        (
            s.broker_name.to_string(),
            (s.get)(&b.topic_defaults),
            s.config_type,
        )
    }));
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    read_only: bool,
    config_type: ConfigType,
    version: i16,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(sb(name))
        .with_value(Some(sb(value)))
        .with_config_source(source)
        .with_read_only(read_only)
        // Documentation is not offered: null, as Kafka answers when the
        // request does not ask for it.
        .with_documentation(None)
        // Types are answered from v3.
        .with_config_type(if version >= 3 { config_type as i8 } else { 0 })
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let access = Access::of(ctx);
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let wanted = |k: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|w| **w == *k))
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let refusal = access.config_refusal(
                r.resource_type,
                &r.resource_name,
                &DESCRIBE_CONFIGS_TOPIC,
                &DESCRIBE_CONFIGS_BROKER,
            );
            if let Some((code, message)) = refusal {
                return base
                    .with_error_code(code)
                    .with_error_message(Some(sb(&message)));
            }
            match r.resource_type {
                RESOURCE_TOPIC => match ctx.broker.describe_topic(&r.resource_name) {
                    Ok(d) => base.with_configs(
                        d.configs
                            .iter()
                            .filter(|(k, _, _)| wanted(k))
                            .map(|(k, v, set)| {
                                entry(
                                    k,
                                    v,
                                    if *set {
                                        CONFIG_SOURCE_TOPIC
                                    } else {
                                        CONFIG_SOURCE_DEFAULT
                                    },
                                    false,
                                    topic_setting(k).map_or(ConfigType::Long, |s| s.config_type),
                                    version,
                                )
                            })
                            .collect(),
                    ),
                    Err(e) => base
                        .with_error_code(error_code(&e))
                        .with_error_message(Some(sb(&e.to_string()))),
                },
                RESOURCE_BROKER
                    if r.resource_name.is_empty() || *r.resource_name == *NODE_ID.to_string() =>
                {
                    base.with_configs(
                        broker_entries(ctx)
                            .iter()
                            .filter(|(k, _, _)| wanted(k))
                            .map(|(k, v, t)| {
                                entry(k, v, CONFIG_SOURCE_STATIC_BROKER, true, *t, version)
                            })
                            .collect(),
                    )
                }
                RESOURCE_BROKER => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(sb(&format!(
                        "this is broker {NODE_ID}, the only one"
                    )))),
                other => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(sb(&format!(
                        "resource type {other} is not supported"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
