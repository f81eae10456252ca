//! DescribeConfigs (32): a topic's settings (with whether each was set on
//! the topic or is the default) and the broker's static settings.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use super::sb;
use crate::codes::{
    code, error_code, CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_STATIC_BROKER, CONFIG_SOURCE_TOPIC,
};
use crate::config::NODE_ID;
use crate::context::Ctx;

/// Kafka's resource types.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// Kafka's config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" | "log.cleanup.policy" => TYPE_LIST,
        "compression.type" | "message.timestamp.type" | "log.message.timestamp.type" => TYPE_STRING,
        "auto.create.topics.enable" => TYPE_BOOLEAN,
        "max.message.bytes"
        | "message.max.bytes"
        | "index.interval.bytes"
        | "log.index.interval.bytes"
        | "segment.bytes"
        | "log.segment.bytes"
        | "segment.index.bytes"
        | "log.segment.index.bytes"
        | "num.partitions"
        | "offsets.topic.num.partitions"
        | "socket.request.max.bytes"
        | "max.connections"
        | "group.min.session.timeout.ms"
        | "group.max.session.timeout.ms"
        | "group.initial.rebalance.delay.ms" => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// The broker's settings under Kafka's broker-level names.
fn broker_entries(ctx: &Ctx) -> Vec<(String, String)> {
    let b = ctx.broker.config();
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let mut out = vec![
        (
            "auto.create.topics.enable".to_string(),
            b.auto_create_topics.to_string(),
        ),
        (
            "connections.max.idle.ms".to_string(),
            ms(ctx.config.idle_timeout),
        ),
        (
            "group.initial.rebalance.delay.ms".to_string(),
            ms(b.group.initial_rebalance_delay),
        ),
        (
            "group.max.session.timeout.ms".to_string(),
            ms(b.group.max_session_timeout),
        ),
        (
            "group.min.session.timeout.ms".to_string(),
            ms(b.group.min_session_timeout),
        ),
        (
            "max.connections".to_string(),
            ctx.config.max_connections.to_string(),
        ),
        (
            "num.partitions".to_string(),
            b.default_partitions.to_string(),
        ),
        (
            "offsets.topic.num.partitions".to_string(),
            b.group.offsets_topic_partitions.to_string(),
        ),
        (
            "socket.request.max.bytes".to_string(),
            ctx.config.max_request_bytes.to_string(),
        ),
    ];
    // Topic defaults, under the broker names Kafka gives them.
    for (k, v) in b.topic_defaults.entries() {
        let name = match k {
            "max.message.bytes" => "message.max.bytes".to_string(),
            "compression.type" => k.to_string(),
            other => format!("log.{other}"),
        };
        out.push((name, v));
    }
    out.sort();
    out
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    read_only: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(sb(name))
        .with_value(Some(sb(value)))
        .with_config_source(source)
        .with_read_only(read_only)
        // Types are answered from v3.
        .with_config_type(if version >= 3 { config_type(name) } else { 0 })
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
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
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| entry(k, v, CONFIG_SOURCE_STATIC_BROKER, true, version))
                            .collect(),
                    )
                }
                RESOURCE_BROKER => base
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb(&format!(
                        "this is broker {NODE_ID}, the only one"
                    )))),
                other => base
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb(&format!(
                        "resource type {other} is not supported"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
