//! Broker and topic configuration: typed values with Kafka's names and
//! defaults, validated when set. The topic settings are one table,
//! [`TOPIC_SETTINGS`]: each setting's Kafka and broker-level names, its key
//! in `pubsub serve`'s settings, unit, Kafka config type and documentation,
//! written with its [`TopicConfig`] field and default in one
//! `topic_settings!` entry. DescribeConfigs, CreateTopics,
//! IncrementalAlterConfigs and the CLI's settings read it.

use std::collections::BTreeMap;
use std::time::Duration;

use pubsub_records::TimestampType;
use pubsub_storage::{CleanupPolicy, FlushPolicy, LogConfig};

use crate::error::{BrokerError, Result};

/// What a topic setting's number measures, so a settings file can write it
/// with a human unit (`1GiB`, `7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of bytes.
    Bytes,
    /// A number of milliseconds.
    Millis,
    /// Not a number: written as Kafka writes it (`compact,delete`).
    Text,
}

/// Kafka's config types, as DescribeConfigs (v3+) answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean = 1,
    /// A string.
    String = 2,
    /// A 32-bit number.
    Int = 3,
    /// A 64-bit number.
    Long = 5,
    /// A comma-separated list.
    List = 7,
}

/// One topic setting: its names, type, documentation and how it is read
/// from and written to [`TopicConfig`]. [`TOPIC_SETTINGS`] has them all.
#[derive(Debug, Clone, Copy)]
pub struct TopicSetting {
    /// Kafka's topic-level name, e.g. `retention.ms`.
    pub name: &'static str,
    /// The broker-level name of its default in DescribeConfigs, e.g.
    /// `log.retention.ms`.
    pub broker_name: &'static str,
    /// Its key under `[topics]` in `pubsub serve`'s settings (`retention`),
    /// or `None` when the file does not offer it.
    pub serve_key: Option<&'static str>,
    /// What its number measures.
    pub unit: Unit,
    /// Whether `-1` turns it off (`forever`, `unlimited` in a settings file).
    pub optional: bool,
    /// Its type in DescribeConfigs.
    pub config_type: ConfigType,
    /// One line saying what it does.
    pub doc: &'static str,
    /// Its value in `c`, as Kafka writes it.
    pub get: fn(c: &TopicConfig) -> String,
    /// Sets it in `c` from Kafka's form, or says why the value is refused.
    pub set: fn(c: &mut TopicConfig, value: &str) -> std::result::Result<(), String>,
}

/// A setting's value type: parsed from and written as Kafka's strings.
trait Value: Sized {
    /// `-1` means none.
    const OPTIONAL: bool = false;
    fn parse(value: &str) -> std::result::Result<Self, String>;
    fn kafka(&self) -> String;
}

fn number<T: std::str::FromStr>(value: &str) -> std::result::Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a valid number"))
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn parse(value: &str) -> std::result::Result<Self, String> {
                number(value)
            }
            fn kafka(&self) -> String {
                self.to_string()
            }
        }
        /// -1 means "none" for Kafka's optional limits.
        impl Value for Option<$t> {
            const OPTIONAL: bool = true;
            fn parse(value: &str) -> std::result::Result<Self, String> {
                match number::<i64>(value)? {
                    -1 => Ok(None),
                    v if v < 0 => Err("must be -1 or non-negative".into()),
                    v => number(&v.to_string()).map(Some),
                }
            }
            fn kafka(&self) -> String {
                self.as_ref().map_or("-1".to_string(), |v| v.to_string())
            }
        }
    )*};
}
numbers!(i64, u64, usize);

impl Value for CleanupPolicy {
    fn parse(value: &str) -> std::result::Result<Self, String> {
        let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
        parts.sort_unstable();
        match parts[..] {
            ["delete"] => Ok(CleanupPolicy::Delete),
            ["compact"] => Ok(CleanupPolicy::Compact),
            ["compact", "delete"] => Ok(CleanupPolicy::CompactDelete),
            _ => Err("expected delete, compact or compact,delete".into()),
        }
    }
    fn kafka(&self) -> String {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
        .into()
    }
}

impl Value for TimestampType {
    fn parse(value: &str) -> std::result::Result<Self, String> {
        match value {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            _ => Err("expected CreateTime or LogAppendTime".into()),
        }
    }
    fn kafka(&self) -> String {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
        .into()
    }
}

/// `compression.type`: batches are stored as the producer compressed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Kafka's `producer`, the only one offered.
    #[default]
    Producer,
}

impl Value for Compression {
    fn parse(value: &str) -> std::result::Result<Self, String> {
        match value {
            "producer" => Ok(Compression::Producer),
            _ => Err(
                "only \"producer\" is supported: batches are stored as the producer compressed them"
                    .into(),
            ),
        }
    }
    fn kafka(&self) -> String {
        "producer".into()
    }
}

/// Writes [`TopicConfig`] (one field per setting, with its default) and
/// [`TOPIC_SETTINGS`] (one entry per setting) from one list, so a setting
/// is added in one place.
macro_rules! topic_settings {
    ($(
        $field:ident: $ty:ty = $default:expr, {
            name: $name:literal,
            broker_name: $broker:literal,
            serve_key: $serve:expr,
            unit: $unit:ident,
            config_type: $config_type:ident,
            doc: $doc:literal $(,)?
        }
    ),* $(,)?) => {
        /// Settings of one topic, as Kafka names them. Defaults come from
        /// [`BrokerConfig::topic_defaults`]; a topic stores only its overrides.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct TopicConfig {
            $(
                #[doc = concat!("`", $name, "`: ", $doc)]
                pub $field: $ty,
            )*
        }

        impl Default for TopicConfig {
            fn default() -> Self {
                TopicConfig { $($field: $default,)* }
            }
        }

        /// Every topic setting, sorted by Kafka name.
        pub const TOPIC_SETTINGS: &[TopicSetting] = &[$(
            TopicSetting {
                name: $name,
                broker_name: $broker,
                serve_key: $serve,
                unit: Unit::$unit,
                optional: <$ty as Value>::OPTIONAL,
                config_type: ConfigType::$config_type,
                doc: $doc,
                get: |c| c.$field.kafka(),
                set: |c, value| {
                    c.$field = Value::parse(value)?;
                    Ok(())
                },
            },
        )*];
    };
}

topic_settings! {
    cleanup_policy: CleanupPolicy = CleanupPolicy::Delete, {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        serve_key: Some("cleanup_policy"),
        unit: Text,
        config_type: List,
        doc: "What happens to old segments: `delete`, `compact` or `compact,delete`.",
    },
    compression_type: Compression = Compression::Producer, {
        name: "compression.type",
        broker_name: "compression.type",
        serve_key: None,
        unit: Text,
        config_type: String,
        doc: "How batches are stored: only `producer` (as the producer compressed them).",
    },
    delete_retention_ms: i64 = LogConfig::default().delete_retention_ms, {
        name: "delete.retention.ms",
        broker_name: "log.delete.retention.ms",
        serve_key: Some("delete_retention"),
        unit: Millis,
        config_type: Long,
        doc: "How long compaction keeps tombstones (1 day).",
    },
    index_interval_bytes: u64 = LogConfig::default().index_interval_bytes, {
        name: "index.interval.bytes",
        broker_name: "log.index.interval.bytes",
        serve_key: None,
        unit: Bytes,
        config_type: Int,
        doc: "Bytes between two offset index entries (4096).",
    },
    max_message_bytes: usize = 1_048_588, {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        serve_key: Some("max_message_bytes"),
        unit: Bytes,
        config_type: Int,
        doc: "Largest record batch accepted (1 MiB + 12).",
    },
    timestamp_type: TimestampType = TimestampType::CreateTime, {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        serve_key: Some("timestamp_type"),
        unit: Text,
        config_type: String,
        doc: "Whose clock stamps records: `CreateTime` (the producer's) or `LogAppendTime` (the broker's).",
    },
    retention_bytes: Option<u64> = LogConfig::default().retention_bytes, {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        serve_key: Some("retention_bytes"),
        unit: Bytes,
        config_type: Long,
        doc: "Delete the oldest segments while a partition is larger (-1: unlimited, the default).",
    },
    retention_ms: Option<i64> = LogConfig::default().retention_ms, {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        serve_key: Some("retention"),
        unit: Millis,
        config_type: Long,
        doc: "Delete segments whose newest record is older (-1: keep forever; 7 days).",
    },
    segment_bytes: u64 = LogConfig::default().segment_bytes, {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        serve_key: Some("segment_bytes"),
        unit: Bytes,
        config_type: Int,
        doc: "Start a new segment at this size (1 GiB).",
    },
    segment_index_bytes: u64 = LogConfig::default().max_index_bytes, {
        name: "segment.index.bytes",
        broker_name: "log.segment.index.bytes",
        serve_key: None,
        unit: Bytes,
        config_type: Int,
        doc: "Largest offset index of a segment (10 MiB).",
    },
    segment_ms: Option<i64> = LogConfig::default().segment_ms, {
        name: "segment.ms",
        broker_name: "log.segment.ms",
        serve_key: Some("segment_age"),
        unit: Millis,
        config_type: Long,
        doc: "Start a new segment when the active one is this old (-1: never; 7 days).",
    },
}

/// The setting called `name` (Kafka's topic-level name).
pub fn topic_setting(name: &str) -> Option<&'static TopicSetting> {
    TOPIC_SETTINGS.iter().find(|s| s.name == name)
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
        let reason = match topic_setting(key) {
            Some(setting) => match (setting.set)(self, value) {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            },
            None if IGNORED_KEYS.contains(&key) => return Ok(()),
            None => return Err(BrokerError::UnknownTopicConfig(key.to_string())),
        };
        Err(BrokerError::InvalidConfig {
            key: key.to_string(),
            reason,
        })
    }

    /// Every setting by its Kafka name, for describing a topic.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        TOPIC_SETTINGS
            .iter()
            .map(|s| (s.name, (s.get)(self)))
            .collect()
    }

    /// Every setting by its Kafka name with whether `overrides` (the
    /// topic's own settings) set it.
    pub fn described(&self, overrides: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
        self.entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v, overrides.contains_key(k)))
            .collect()
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
    /// Transaction coordinator settings.
    pub txn: crate::txn::TxnConfig,
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
            txn: crate::txn::TxnConfig::default(),
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

    #[test]
    fn the_table_is_sorted_and_each_value_reads_back() {
        let names: Vec<&str> = TOPIC_SETTINGS.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted by Kafka name, each once");
        let defaults = TopicConfig::default();
        for s in TOPIC_SETTINGS {
            let mut c = defaults.clone();
            (s.set)(&mut c, &(s.get)(&defaults)).expect(s.name);
            assert_eq!(c, defaults, "{}", s.name);
            assert_eq!(s.optional, (s.get)(&defaults) == "-1" || s.optional);
        }
    }
}
