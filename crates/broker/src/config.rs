//! Broker and topic configuration: typed values with Kafka's names and
//! defaults, validated when set.

use std::collections::BTreeMap;
use std::time::Duration;

use pubsub_records::TimestampType;
use pubsub_storage::{CleanupPolicy, FlushPolicy, LogConfig};

use crate::error::{BrokerError, Result};

/// Settings of one topic, as Kafka names them. Defaults come from
/// [`BrokerConfig::topic_defaults`]; a topic stores only its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `cleanup.policy`: delete, compact, or compact,delete.
    pub cleanup_policy: CleanupPolicy,
    /// `retention.ms` (-1: keep forever). Default 7 days.
    pub retention_ms: Option<i64>,
    /// `retention.bytes` per partition (-1: unlimited). Default unlimited.
    pub retention_bytes: Option<u64>,
    /// `segment.bytes`. Default 1 GiB.
    pub segment_bytes: u64,
    /// `segment.ms`. Default 7 days.
    pub segment_ms: Option<i64>,
    /// `segment.index.bytes`. Default 10 MiB.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`. Default 4096.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: largest batch accepted. Default 1 MiB + 12.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`: CreateTime or LogAppendTime.
    pub timestamp_type: TimestampType,
    /// `delete.retention.ms`: how long compaction keeps tombstones. Default 1 day.
    pub delete_retention_ms: i64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        TopicConfig {
            cleanup_policy: CleanupPolicy::Delete,
            retention_ms: log.retention_ms,
            retention_bytes: log.retention_bytes,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            segment_index_bytes: log.max_index_bytes,
            index_interval_bytes: log.index_interval_bytes,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            delete_retention_ms: log.delete_retention_ms,
        }
    }
}

/// Kafka topic settings that are accepted (so existing tools keep working)
/// but have no effect on a single node.
const IGNORED_KEYS: &[&str] = &[
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "preallocate",
    "message.downconversion.enable",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| BrokerError::InvalidConfig {
            key: key.to_string(),
            reason: format!("{value:?} is not a valid number"),
        })
}

/// -1 means "none" for Kafka's optional limits.
fn optional(key: &str, value: &str) -> Result<Option<i64>> {
    let v: i64 = parse(key, value)?;
    match v {
        -1 => Ok(None),
        v if v < 0 => Err(BrokerError::InvalidConfig {
            key: key.to_string(),
            reason: "must be -1 or non-negative".into(),
        }),
        v => Ok(Some(v)),
    }
}

impl TopicConfig {
    /// These settings with `overrides` (Kafka names and string values) applied.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<TopicConfig> {
        let mut c = self.clone();
        for (key, value) in overrides {
            c.set(key, value)?;
        }
        c.log_config(FlushPolicy::Never)
            .validate()
            .map_err(|e| BrokerError::InvalidConfig {
                key: "topic".into(),
                reason: e.to_string(),
            })?;
        Ok(c)
    }

    /// Sets one setting by its Kafka name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let invalid = |reason: &str| BrokerError::InvalidConfig {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        match key {
            "cleanup.policy" => {
                let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
                parts.sort_unstable();
                self.cleanup_policy = match parts[..] {
                    ["delete"] => CleanupPolicy::Delete,
                    ["compact"] => CleanupPolicy::Compact,
                    ["compact", "delete"] => CleanupPolicy::CompactDelete,
                    _ => return Err(invalid("expected delete, compact or compact,delete")),
                }
            }
            "retention.ms" => self.retention_ms = optional(key, value)?,
            "retention.bytes" => self.retention_bytes = optional(key, value)?.map(|v| v as u64),
            "segment.bytes" => self.segment_bytes = parse(key, value)?,
            "segment.ms" => self.segment_ms = optional(key, value)?,
            "segment.index.bytes" => self.segment_index_bytes = parse(key, value)?,
            "index.interval.bytes" => self.index_interval_bytes = parse(key, value)?,
            "max.message.bytes" => self.max_message_bytes = parse(key, value)?,
            "delete.retention.ms" => self.delete_retention_ms = parse(key, value)?,
            "message.timestamp.type" => {
                self.timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid("expected CreateTime or LogAppendTime")),
                }
            }
            "compression.type" if value == "producer" => {}
            "compression.type" => {
                return Err(invalid(
                    "only \"producer\" is supported: batches are stored as the producer compressed them",
                ))
            }
            k if IGNORED_KEYS.contains(&k) => {}
            _ => return Err(invalid("unknown topic setting")),
        }
        Ok(())
    }

    /// Every setting by its Kafka name, for describing a topic.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
        vec![
            (
                "cleanup.policy",
                match self.cleanup_policy {
                    CleanupPolicy::Delete => "delete",
                    CleanupPolicy::Compact => "compact",
                    CleanupPolicy::CompactDelete => "compact,delete",
                }
                .to_string(),
            ),
            ("compression.type", "producer".to_string()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                match self.timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                }
                .to_string(),
            ),
            (
                "retention.bytes",
                opt(self.retention_bytes.map(|v| v as i64)),
            ),
            ("retention.ms", opt(self.retention_ms)),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.ms", opt(self.segment_ms)),
        ]
    }

    /// The storage configuration of one partition of the topic.
    pub fn log_config(&self, flush: FlushPolicy) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            index_interval_bytes: self.index_interval_bytes,
            max_index_bytes: self.segment_index_bytes,
            flush,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            cleanup_policy: self.cleanup_policy,
            delete_retention_ms: self.delete_retention_ms,
            ..LogConfig::default()
        }
    }
}

/// Group coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for (Kafka
    /// `group.min.session.timeout.ms`, 6 s).
    pub min_session_timeout: Duration,
    /// Largest (`group.max.session.timeout.ms`, 30 min).
    pub max_session_timeout: Duration,
    /// How long a new, empty group waits for more members before the first
    /// assignment (`group.initial.rebalance.delay.ms`, 3 s).
    pub initial_rebalance_delay: Duration,
    /// Partitions of `__consumer_offsets` (`offsets.topic.num.partitions`, 50).
    pub offsets_topic_partitions: u32,
    /// Segment size of `__consumer_offsets` (`offsets.topic.segment.bytes`, 100 MiB).
    pub offsets_topic_segment_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 100 << 20,
        }
    }
}

/// Settings of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Partitions of a topic created without a count (`num.partitions`, 1).
    pub default_partitions: u32,
    /// Create a topic when a producer or consumer names an unknown one
    /// (`auto.create.topics.enable`, true).
    pub auto_create_topics: bool,
    /// Defaults of every topic setting.
    pub topic_defaults: TopicConfig,
    /// When partitions fsync (see the durability table in the README).
    pub flush: FlushPolicy,
    /// Group coordinator settings.
    pub group: GroupConfig,
    /// How often recovery points are written (Kafka 60 s).
    pub checkpoint_interval: Duration,
    /// How often retention runs (`log.retention.check.interval.ms`, 5 min).
    pub retention_check_interval: Duration,
    /// How often compaction runs on compacted topics (15 s).
    pub compaction_interval: Duration,
    /// Granularity of timers (session expiry, flush intervals): 100 ms.
    pub tick_interval: Duration,
    /// Run the background thread that drives timers, flushing, retention and
    /// compaction. Tests that drive time themselves turn it off.
    pub background: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            default_partitions: 1,
            auto_create_topics: true,
            topic_defaults: TopicConfig::default(),
            flush: FlushPolicy::Never,
            group: GroupConfig::default(),
            checkpoint_interval: Duration::from_secs(60),
            retention_check_interval: Duration::from_secs(300),
            compaction_interval: Duration::from_secs(15),
            tick_interval: Duration::from_millis(100),
            background: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_validate() {
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "delete,compact".to_string());
        o.insert("retention.ms".to_string(), "-1".to_string());
        o.insert("max.message.bytes".to_string(), "2048".to_string());
        o.insert("min.insync.replicas".to_string(), "2".to_string());
        let c = TopicConfig::default().with_overrides(&o).expect("valid");
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.max_message_bytes, 2048);
        for (k, v) in [
            ("cleanup.policy", "shred"),
            ("retention.ms", "soon"),
            ("segment.bytes", "10"),
            ("no.such.key", "1"),
            ("compression.type", "gzip"),
        ] {
            let mut o = BTreeMap::new();
            o.insert(k.to_string(), v.to_string());
            assert!(
                TopicConfig::default().with_overrides(&o).is_err(),
                "{k}={v}"
            );
        }
    }
}
