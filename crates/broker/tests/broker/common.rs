//! Helpers shared by the broker tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use pubsub_broker::{Broker, BrokerConfig, GroupConfig};

/// A broker config for tests: few offsets partitions, fast timers.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        group: GroupConfig {
            min_session_timeout: Duration::from_millis(100),
            initial_rebalance_delay: Duration::from_millis(0),
            offsets_topic_partitions: 4,
            ..GroupConfig::default()
        },
        tick_interval: Duration::from_millis(20),
        ..BrokerConfig::default()
    }
}

pub fn open(dir: &Path) -> Broker {
    Broker::open(dir, test_config()).expect("open broker")
}

pub fn no_configs() -> BTreeMap<String, String> {
    BTreeMap::new()
}

pub fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
