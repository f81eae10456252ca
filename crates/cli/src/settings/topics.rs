//! The `[topics]` section of `pubsub serve`'s settings: the partition count
//! and auto-creation of new topics, then one key per topic setting that the
//! broker's table offers a settings file ([`TopicSetting::serve_key`]),
//! written with human units (`1GiB`, `7d`, `forever`) and kept as the
//! broker's typed [`TopicConfig`]. A topic setting added to the table is a
//! key here without further code.

use std::collections::BTreeMap;

use pubsub_broker::config::{TopicSetting, Unit, TOPIC_SETTINGS};
use pubsub_broker::{BrokerConfig, TopicConfig};
use serde::de::{self, Deserializer};
use serde::ser::{self, SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::human::{Limit, Size, Span};

/// `[topics]`
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    /// Partitions of a topic created without a count (`num.partitions`).
    pub default_partitions: u32,
    /// Create unknown topics on first use (`auto.create.topics.enable`).
    pub auto_create: bool,
    /// Defaults of every topic setting; those without a serve key keep the
    /// broker's defaults.
    pub defaults: TopicConfig,
}

impl Default for TopicSettings {
    fn default() -> Self {
        let broker = BrokerConfig::default();
        TopicSettings {
            default_partitions: broker.default_partitions,
            auto_create: broker.auto_create_topics,
            defaults: broker.topic_defaults,
        }
    }
}

/// The topic settings a settings file offers, with their keys.
fn served() -> impl Iterator<Item = (&'static str, &'static TopicSetting)> {
    TOPIC_SETTINGS
        .iter()
        .filter_map(|s| s.serve_key.map(|key| (key, s)))
}

/// A setting's value (Kafka's form) as a settings file writes it.
fn human(setting: &TopicSetting, kafka: &str) -> Result<toml::Value, String> {
    let number = || {
        kafka
            .parse::<u64>()
            .map_err(|_| format!("{kafka:?} is not a number"))
    };
    let text = match setting.unit {
        Unit::Bytes if setting.optional && kafka == "-1" => "unlimited".to_string(),
        Unit::Millis if setting.optional && kafka == "-1" => "forever".to_string(),
        Unit::Bytes => Size(number()?).to_string(),
        Unit::Millis => Span(std::time::Duration::from_millis(number()?)).to_string(),
        Unit::Text => kafka.to_string(),
    };
    Ok(toml::Value::String(text))
}

/// A value from a settings file in Kafka's form (`-1` for off).
fn kafka(setting: &TopicSetting, value: toml::Value) -> Result<String, String> {
    let off = |limit: Option<u64>| limit.map_or("-1".to_string(), |v| v.to_string());
    let text = match (setting.unit, setting.optional) {
        (Unit::Bytes, true) => off(Limit::<Size>::deserialize(value)
            .map_err(|e| e.to_string())?
            .get()
            .map(|s| s.0)),
        (Unit::Bytes, false) => Size::deserialize(value)
            .map_err(|e| e.to_string())?
            .0
            .to_string(),
        (Unit::Millis, true) => off(Limit::<Span>::deserialize(value)
            .map_err(|e| e.to_string())?
            .get()
            .map(|s| s.0.as_millis() as u64)),
        (Unit::Millis, false) => Span::deserialize(value)
            .map_err(|e| e.to_string())?
            .0
            .as_millis()
            .to_string(),
        (Unit::Text, _) => match value {
            toml::Value::String(s) => s,
            other => return Err(format!("expected a string, found {other}")),
        },
    };
    Ok(text)
}

impl Serialize for TopicSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("default_partitions", &self.default_partitions)?;
        map.serialize_entry("auto_create", &self.auto_create)?;
        for (key, setting) in served() {
            let value =
                human(setting, &(setting.get)(&self.defaults)).map_err(ser::Error::custom)?;
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TopicSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = BTreeMap::<String, toml::Value>::deserialize(d)?;
        let mut out = TopicSettings::default();
        for (key, value) in table {
            let bad = |reason: String| de::Error::custom(format!("topics.{key}: {reason}"));
            match key.as_str() {
                "default_partitions" => {
                    out.default_partitions =
                        u32::deserialize(value).map_err(|e| bad(e.to_string()))?
                }
                "auto_create" => {
                    out.auto_create = bool::deserialize(value).map_err(|e| bad(e.to_string()))?
                }
                _ => {
                    let Some((_, setting)) = served().find(|(k, _)| *k == key) else {
                        return Err(bad("unknown key".into()));
                    };
                    let value = kafka(setting, value).map_err(bad)?;
                    (setting.set)(&mut out.defaults, &value).map_err(bad)?;
                }
            }
        }
        Ok(out)
    }
}
