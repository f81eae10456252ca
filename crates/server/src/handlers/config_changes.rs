//! The one rule for changing settings, shared by AlterConfigs (33), which
//! replaces a topic's whole set of overrides, and IncrementalAlterConfigs
//! (44), which edits it: which resources can be changed, how the request's
//! keys are checked, how the resulting overrides are validated (against
//! the broker defaults, as a topic creation would be), and how they are
//! applied (or not, for `validate_only`).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use pubsub_broker::BrokerError;

use super::Refusal;
use crate::codes::error_code;
use crate::config::NODE_ID;
use crate::context::{blocking, Ctx};

/// What a request does to one setting: `Some` sets it, `None` returns it
/// to the default.
pub(crate) type Changes = BTreeMap<String, Option<String>>;

/// Kafka's refusal of a request naming a key twice.
pub(crate) fn no_duplicate_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    let mut seen = BTreeSet::new();
    if keys.into_iter().all(|k| seen.insert(k)) {
        Ok(())
    } else {
        Err((
            ResponseError::InvalidRequest.code(),
            "Error due to duplicate config keys".to_string(),
        ))
    }
}

/// The topic's overrides now (the settings set on it).
pub(crate) fn topic_overrides(ctx: &Ctx, topic: &str) -> Result<BTreeMap<String, String>, Refusal> {
    if topic.is_empty() {
        return Err((
            ResponseError::InvalidRequest.code(),
            "Default topic resources are not allowed.".to_string(),
        ));
    }
    let current = ctx.broker.describe_topic(topic).map_err(|e| match e {
        BrokerError::UnknownTopicOrPartition { .. } => (
            ResponseError::UnknownTopicOrPartition.code(),
            format!("The topic '{topic}' does not exist."),
        ),
        e => (error_code(&e), e.to_string()),
    })?;
    Ok(current
        .configs
        .into_iter()
        .filter(|(_, _, set)| *set)
        .map(|(k, v, _)| (k, v))
        .collect())
}

/// Checks `changes` to `topic`'s `overrides` the way a topic creation
/// checks its settings, then applies them unless `validate_only`.
pub(crate) fn change_topic(
    ctx: &Ctx,
    topic: &str,
    overrides: &BTreeMap<String, String>,
    changes: &Changes,
    validate_only: bool,
) -> Result<(), Refusal> {
    let mut merged = overrides.clone();
    for (k, v) in changes {
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
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    blocking(|| ctx.broker.alter_topic_config(topic, changes))
        .map_err(|e| (error_code(&e), e.to_string()))
}

/// A broker resource: this node (`"0"`) or the cluster default (`""`),
/// as Kafka accepts them. pubsub's broker settings are static (the config
/// file), so a request that would change one is refused; one that changes
/// nothing succeeds.
pub(crate) fn change_broker(name: &str, changes: &Changes) -> Result<(), Refusal> {
    if !name.is_empty() && name != NODE_ID.to_string() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("Unexpected broker id, expected {NODE_ID}, but received {name}"),
        ));
    }
    if changes.is_empty() {
        return Ok(());
    }
    Err((
        ResponseError::InvalidRequest.code(),
        "broker settings are static: change the config file and restart".to_string(),
    ))
}

/// Resource types other than topics and brokers.
pub(crate) fn unsupported_resource(resource_type: i8) -> Refusal {
    (
        ResponseError::InvalidRequest.code(),
        format!("Unknown resource type {resource_type}"),
    )
}
