//! Settings of `pubsub serve`: typed, with documented defaults and human
//! units, layered as defaults -> config file (TOML) -> `PUBSUB_*`
//! environment variables -> command-line flags, and validated before the
//! broker opens.
//!
//! Every key has an environment variable: the key's path in upper case
//! joined by `_` after `PUBSUB_`, e.g. `flush` is `PUBSUB_FLUSH` and
//! `topics.default_partitions` is `PUBSUB_TOPICS_DEFAULT_PARTITIONS`.
//! The example file `docs/pubsub.example.toml` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pubsub_broker::{BrokerConfig, GroupConfig, TopicConfig, MAX_PARTITIONS};
use pubsub_server::ServerConfig;
use pubsub_storage::FlushPolicy;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::human::{parse_span, Size, Span};

mod env;
mod listeners;
mod topics;
use env::{env_keys, set, typed, IGNORED_ENV};
pub use listeners::{ListenerSettings, TlsSettings};
pub use topics::TopicSettings;

/// Most threads `server.io_threads` may ask for.
pub const MAX_IO_THREADS: u32 = 1024;

impl Settings {
    /// Threads serving connections: `server.io_threads`, or one per core.
    pub fn io_threads(&self) -> usize {
        match self.server.io_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}

/// Everything `pubsub serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the data lives.
    pub data_dir: PathBuf,
    /// Address of the PLAINTEXT listener (`127.0.0.1:0` picks a free port);
    /// empty: none (then `listeners` must name one).
    pub listen: String,
    /// Address clients of `listen` are told to connect to; empty: the
    /// listen address.
    pub advertised: String,
    /// More listeners: `[[listeners]]` with name, listen, advertised,
    /// protocol and sasl_mechanisms.
    pub listeners: Vec<ListenerSettings>,
    /// The certificate, key and client CA of TLS listeners.
    pub tls: TlsSettings,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `pubsub_server=debug`.
    pub log: String,
    /// When partitions fsync: `never` (the OS writes back; acks=all still
    /// waits for an fsync), `always` (every append) or `interval:<duration>`.
    pub flush: String,
    /// Address of the HTTP listener serving Prometheus metrics (`/metrics`)
    /// and `/health`; empty: off. Port 0 picks a free port.
    pub metrics: String,
    /// The network server.
    pub server: ServerSettings,
    /// Defaults of new topics.
    pub topics: TopicSettings,
    /// The group coordinator.
    pub groups: GroupSettings,
    /// The transaction coordinator.
    pub transactions: TransactionSettings,
    /// Background work on the logs.
    pub storage: StorageSettings,
    /// Users, authentication and authorization (ACLs).
    pub auth: AuthSettings,
}

/// `[auth]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `name:password` of a user created at start (both SCRAM mechanisms)
    /// unless it exists; empty: none. Also `PUBSUB_BOOTSTRAP_USER`.
    pub bootstrap_user: String,
    /// Enforce ACLs (Kafka's `authorizer.class.name`); off, every request
    /// is allowed.
    pub authorizer: bool,
    /// Principals allowed everything (`super.users`), e.g. `User:admin`.
    pub super_users: Vec<String>,
    /// Allow what no ACL covers (`allow.everyone.if.no.acl.found`).
    pub allow_if_no_acl: bool,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("AuthSettings")
            .field(
                "bootstrap_user",
                &self.bootstrap_user().map(|(name, _)| name),
            )
            .field("authorizer", &self.authorizer)
            .field("super_users", &self.super_users)
            .field("allow_if_no_acl", &self.allow_if_no_acl)
            .finish()
    }
}

impl AuthSettings {
    /// The bootstrap user's name and password, if set.
    pub fn bootstrap_user(&self) -> Option<(&str, &str)> {
        self.bootstrap_user
            .split_once(':')
            .filter(|(name, password)| !name.is_empty() && !password.is_empty())
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Largest request accepted (`socket.request.max.bytes`).
    pub max_request_size: Size,
    /// Connections served at once.
    pub max_connections: u32,
    /// Close connections idle this long (`connections.max.idle.ms`).
    pub idle_timeout: Span,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Span,
    /// Incremental fetch sessions kept (`max.incremental.fetch.session.cache.slots`);
    /// 0 declines sessions.
    pub fetch_session_slots: u32,
    /// How long a failed SASL authentication waits before its answer and
    /// the close (`connection.failed.authentication.delay.ms`).
    pub failed_authentication_delay: Span,
    /// Threads that serve connections (reads and fsyncs that wait for the
    /// disk run on a pool of their own); 0: one per core.
    pub io_threads: u32,
}

/// `[groups]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSettings {
    /// Smallest session timeout a consumer may ask for.
    pub min_session_timeout: Span,
    /// Largest session timeout a consumer may ask for.
    pub max_session_timeout: Span,
    /// How long a new group waits for more members before the first assignment.
    pub initial_rebalance_delay: Span,
    /// Partitions of `__consumer_offsets`; fixed once the topic exists.
    pub offsets_topic_partitions: u32,
}

/// `[transactions]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionSettings {
    /// Longest `transaction.timeout.ms` a producer may ask for
    /// (`transaction.max.timeout.ms`).
    pub max_timeout: Span,
    /// Partitions of `__transaction_state`; fixed once the topic exists.
    pub state_topic_partitions: u32,
    /// How long an idle transactional id is kept
    /// (`transactional.id.expiration.ms`).
    pub id_expiration: Span,
    /// The `transaction.version` feature finalized in ApiVersions: 2 lets
    /// clients use KIP-890's transaction version 2, 1 keeps them on
    /// version 1 (Kafka's `kafka-features downgrade`).
    pub version: u8,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// How often recovery points are written (bounds recovery work after a crash).
    pub checkpoint_interval: Span,
    /// How often retention runs.
    pub retention_check_interval: Span,
    /// How often compacted topics are cleaned.
    pub compaction_interval: Span,
}

fn span(d: Duration) -> Span {
    Span(d)
}

impl Default for Settings {
    fn default() -> Self {
        let server = ServerConfig::default();
        let broker = BrokerConfig::default();
        Settings {
            data_dir: PathBuf::from("./pubsub-data"),
            listen: "127.0.0.1:9092".into(),
            advertised: String::new(),
            listeners: Vec::new(),
            tls: TlsSettings::default(),
            log: "info".into(),
            flush: "never".into(),
            metrics: String::new(),
            server: ServerSettings {
                max_request_size: Size(server.max_request_bytes as u64),
                max_connections: server.max_connections as u32,
                idle_timeout: span(server.idle_timeout),
                shutdown_grace: span(server.shutdown_grace),
                fetch_session_slots: server.fetch_session_slots as u32,
                failed_authentication_delay: span(server.failed_authentication_delay),
                io_threads: 0,
            },
            topics: TopicSettings::default(),
            groups: GroupSettings {
                min_session_timeout: span(broker.group.min_session_timeout),
                max_session_timeout: span(broker.group.max_session_timeout),
                initial_rebalance_delay: span(broker.group.initial_rebalance_delay),
                offsets_topic_partitions: broker.group.offsets_topic_partitions,
            },
            transactions: TransactionSettings {
                max_timeout: span(broker.txn.max_timeout),
                state_topic_partitions: broker.txn.state_topic_partitions,
                id_expiration: span(broker.txn.id_expiration),
                version: server.transaction_version as u8,
            },
            storage: StorageSettings {
                checkpoint_interval: span(broker.checkpoint_interval),
                retention_check_interval: span(broker.retention_check_interval),
                compaction_interval: span(broker.compaction_interval),
            },
            auth: AuthSettings {
                bootstrap_user: String::new(),
                authorizer: server.authorizer.enabled,
                super_users: server.authorizer.super_users.clone(),
                allow_if_no_acl: server.authorizer.allow_if_no_acl,
            },
        }
    }
}

macro_rules! section_defaults {
    ($($t:ident => $field:ident),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                Settings::default().$field
            }
        }
    )*};
}
section_defaults!(
    ServerSettings => server,
    GroupSettings => groups,
    TransactionSettings => transactions,
    StorageSettings => storage,
    AuthSettings => auth
);

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<String>,
    /// `--advertised`
    pub advertised: Option<String>,
    /// `--metrics`
    pub metrics: Option<String>,
}

impl Settings {
    /// Defaults, then `file`, then the environment, then `flags`; validated.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Settings, CliError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| CliError::Config {
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Settings::parse(&text, &path.display().to_string())?;
                text.parse::<toml::Table>().map_err(|e| CliError::Config {
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let keys = env_keys();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("PUBSUB_"))
            .collect();
        env.sort();
        for (var, value) in env {
            // Redpanda's and the name for it.
            let var = if var == "PUBSUB_BOOTSTRAP_USER" {
                "PUBSUB_AUTH_BOOTSTRAP_USER".to_string()
            } else {
                var
            };
            let Some((path, kind)) = keys.get(&var) else {
                if !IGNORED_ENV.contains(&var.as_str()) {
                    // Logging is not set up yet: say it directly.
                    eprintln!("warning: ignoring {var}: it names no setting");
                }
                continue;
            };
            let value = typed(kind, &value).map_err(|reason| CliError::Config {
                source_name: var.clone(),
                reason,
            })?;
            set(&mut table, path, value);
            Settings::from_table(&table).map_err(|reason| CliError::Config {
                source_name: var.clone(),
                reason,
            })?;
        }
        for (path, value) in [
            (
                "data_dir",
                flags.data_dir.as_ref().map(|p| p.display().to_string()),
            ),
            ("listen", flags.listen.clone()),
            ("advertised", flags.advertised.clone()),
            ("metrics", flags.metrics.clone()),
        ] {
            if let Some(v) = value {
                set(&mut table, &[path.to_string()], toml::Value::String(v));
            }
        }
        let settings = Settings::from_table(&table).map_err(|reason| CliError::Config {
            source_name: "flags".into(),
            reason,
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses a TOML document (`name` says where it came from in errors).
    pub fn parse(text: &str, name: &str) -> Result<Settings, CliError> {
        toml::from_str(text).map_err(|e: toml::de::Error| CliError::Config {
            source_name: name.to_string(),
            reason: e.to_string(),
        })
    }

    fn from_table(table: &toml::Table) -> Result<Settings, String> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), CliError> {
        let bad = |key: &str, reason: String| {
            Err(CliError::Invalid {
                key: key.to_string(),
                reason,
            })
        };
        listeners::validate(&self.listen, &self.listeners, &self.tls)?;
        if !self.advertised.is_empty() {
            advertised_parts(&self.advertised).map_err(|reason| CliError::Invalid {
                key: "advertised".into(),
                reason,
            })?;
        }
        if !self.metrics.is_empty() {
            metrics_parts(&self.metrics).map_err(|reason| CliError::Invalid {
                key: "metrics".into(),
                reason,
            })?;
        }
        if !self.auth.bootstrap_user.is_empty() && self.auth.bootstrap_user().is_none() {
            // Not the value: it holds a password.
            return bad(
                "auth.bootstrap_user",
                "must be NAME:PASSWORD, both non-empty".into(),
            );
        }
        self.flush_policy()?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| CliError::Invalid {
            key: "log".into(),
            reason: e.to_string(),
        })?;
        let s = &self.server;
        if !(1024..=(i32::MAX as u64)).contains(&s.max_request_size.0) {
            return bad(
                "server.max_request_size",
                "must be between 1KiB and 2GiB".into(),
            );
        }
        if s.max_connections == 0 {
            return bad("server.max_connections", "must be at least 1".into());
        }
        if s.idle_timeout.0 < Duration::from_secs(1) {
            return bad("server.idle_timeout", "must be at least 1s".into());
        }
        if s.io_threads > MAX_IO_THREADS {
            return bad(
                "server.io_threads",
                format!("must be at most {MAX_IO_THREADS} (0: one per core)"),
            );
        }
        let t = &self.topics;
        if t.default_partitions == 0 || t.default_partitions > MAX_PARTITIONS {
            return bad(
                "topics.default_partitions",
                format!("must be within 1..={MAX_PARTITIONS}"),
            );
        }
        let g = &self.groups;
        if g.min_session_timeout > g.max_session_timeout {
            return bad(
                "groups.min_session_timeout",
                "must not be larger than groups.max_session_timeout".into(),
            );
        }
        if g.offsets_topic_partitions == 0 || g.offsets_topic_partitions > 1000 {
            return bad(
                "groups.offsets_topic_partitions",
                "must be within 1..=1000".into(),
            );
        }
        let tx = &self.transactions;
        if tx.max_timeout.0 < Duration::from_millis(1)
            || tx.max_timeout.0 > Duration::from_millis(i32::MAX as u64)
        {
            return bad(
                "transactions.max_timeout",
                "must be within 1ms..=24.8d (an int32 of milliseconds)".into(),
            );
        }
        if tx.id_expiration.0 < Duration::from_millis(1) {
            return bad("transactions.id_expiration", "must be at least 1ms".into());
        }
        if !(1..=2).contains(&tx.version) {
            return bad("transactions.version", "must be 1 or 2".into());
        }
        if tx.state_topic_partitions == 0 || tx.state_topic_partitions > 1000 {
            return bad(
                "transactions.state_topic_partitions",
                "must be within 1..=1000".into(),
            );
        }
        for (key, v) in [
            (
                "storage.checkpoint_interval",
                self.storage.checkpoint_interval,
            ),
            (
                "storage.retention_check_interval",
                self.storage.retention_check_interval,
            ),
            (
                "storage.compaction_interval",
                self.storage.compaction_interval,
            ),
        ] {
            if v.0 < Duration::from_millis(100) {
                return bad(key, "must be at least 100ms".into());
            }
        }
        self.topic_defaults()?;
        for user in &self.auth.super_users {
            if pubsub_broker::security::Principal::parse(user).is_none() {
                return bad(
                    "auth.super_users",
                    format!("{user:?} is not a principal (Type:name, e.g. User:admin)"),
                );
            }
        }
        Ok(())
    }

    /// The flush policy.
    pub fn flush_policy(&self) -> Result<FlushPolicy, CliError> {
        let f = self.flush.trim();
        match f {
            "never" => Ok(FlushPolicy::Never),
            "always" => Ok(FlushPolicy::Always),
            _ => match f.strip_prefix("interval:").map(parse_span) {
                Some(Ok(d)) if !d.is_zero() => Ok(FlushPolicy::Interval(d)),
                _ => Err(CliError::Invalid {
                    key: "flush".into(),
                    reason: format!(
                        "{f:?}: expected never, always or interval:<duration> (e.g. interval:1s)"
                    ),
                }),
            },
        }
    }

    /// The defaults of new topics, checked together.
    fn topic_defaults(&self) -> Result<TopicConfig, CliError> {
        self.topics
            .defaults
            .with_overrides(&BTreeMap::new())
            .map_err(|e| CliError::Invalid {
                key: "topics".into(),
                reason: e.to_string(),
            })
    }

    /// The broker's configuration.
    pub fn broker_config(&self) -> Result<BrokerConfig, CliError> {
        let defaults = BrokerConfig::default();
        Ok(BrokerConfig {
            default_partitions: self.topics.default_partitions,
            auto_create_topics: self.topics.auto_create,
            topic_defaults: self.topic_defaults()?,
            flush: self.flush_policy()?,
            group: GroupConfig {
                min_session_timeout: self.groups.min_session_timeout.0,
                max_session_timeout: self.groups.max_session_timeout.0,
                initial_rebalance_delay: self.groups.initial_rebalance_delay.0,
                offsets_topic_partitions: self.groups.offsets_topic_partitions,
                ..defaults.group
            },
            txn: pubsub_broker::txn::TxnConfig {
                max_timeout: self.transactions.max_timeout.0,
                state_topic_partitions: self.transactions.state_topic_partitions,
                id_expiration: self.transactions.id_expiration.0,
                ..defaults.txn
            },
            checkpoint_interval: self.storage.checkpoint_interval.0,
            retention_check_interval: self.storage.retention_check_interval.0,
            compaction_interval: self.storage.compaction_interval.0,
            ..defaults
        })
    }

    /// The protocol server's configuration.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            max_request_bytes: self.server.max_request_size.0 as usize,
            max_connections: self.server.max_connections as usize,
            idle_timeout: self.server.idle_timeout.0,
            shutdown_grace: self.server.shutdown_grace.0,
            fetch_session_slots: self.server.fetch_session_slots as usize,
            failed_authentication_delay: self.server.failed_authentication_delay.0,
            authorizer: pubsub_broker::security::acl::AuthorizerConfig {
                enabled: self.auth.authorizer,
                super_users: self.auth.super_users.clone(),
                allow_if_no_acl: self.auth.allow_if_no_acl,
            },
            transaction_version: i16::from(self.transactions.version),
            ..ServerConfig::default()
        }
    }
}

/// Splits `HOST:PORT` (IPv6 hosts in brackets).
pub fn advertised_parts(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: bad port"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("{s:?}: needs a host and a non-zero port"));
    }
    Ok((host.to_string(), port))
}

/// Checks a `metrics` address: `HOST:PORT`, port 0 allowed.
fn metrics_parts(s: &str) -> Result<(), String> {
    let bad = || format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:9644; empty turns metrics off)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .is_empty()
        || port.parse::<u16>().is_err()
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Dotted paths of the leaf keys of a TOML table.
    fn leaf_keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = format!("{prefix}{k}");
            match v {
                toml::Value::Table(t) => leaf_keys(&format!("{path}."), t, out),
                _ => out.push(path),
            }
        }
    }

    #[test]
    fn the_example_config_parses_and_sets_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pubsub.example.toml");
        let text = std::fs::read_to_string(&path).expect("example config");
        let example = Settings::parse(&text, "example").expect("the example parses");
        example.validate().expect("the example is valid");
        // The example lists every key (so it documents all of them) and
        // nothing else.
        let doc: toml::Table = text.parse().expect("toml");
        let mut listed = Vec::new();
        leaf_keys("", &doc, &mut listed);
        listed.sort();
        let mut keys: Vec<String> = env_keys().into_values().map(|(p, _)| p.join(".")).collect();
        keys.sort();
        assert_eq!(listed, keys, "the example's keys are the settings' keys");
        // Each key has a comment, and a topic setting's names its Kafka name.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            // The comment of its paragraph (keys may share one).
            let comment = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty())
                .filter(|l| l.starts_with('#'))
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(!comment.is_empty(), "{key} has no comment in the example");
            if let Some(s) = pubsub_broker::config::TOPIC_SETTINGS
                .iter()
                .find(|s| s.serve_key == Some(key))
            {
                assert!(
                    comment.contains(&format!("({})", s.name)),
                    "the comment of topics.{key} names {}",
                    s.name
                );
            }
        }
        // And its values are the defaults, so copying it changes nothing.
        assert_eq!(example, Settings::default());
    }

    #[test]
    fn the_readme_names_only_real_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).expect("README");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Configuration"))
            .expect("a Configuration section");
        let keys: Vec<String> = env_keys().into_values().map(|(p, _)| p.join(".")).collect();
        let mut named = 0;
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let cell = row.split('|').nth(1).unwrap_or_default();
            // `topics.retention` / `retention_bytes`: the second shares the section.
            let mut section = "";
            for key in cell.split('/').map(|k| k.trim().trim_matches('`')) {
                let key = match key.rsplit_once('.') {
                    Some((s, _)) => {
                        section = s;
                        key.to_string()
                    }
                    None if section.is_empty() => key.to_string(),
                    None => format!("{section}.{key}"),
                };
                assert!(keys.contains(&key), "the README names {key}, no setting");
                named += 1;
            }
        }
        assert!(named >= 10, "the README's table was found");
    }

    #[test]
    fn auth_settings_reach_the_server_config() {
        let s = Settings::load(
            None,
            env(&[
                ("PUBSUB_AUTH_AUTHORIZER", "true"),
                ("PUBSUB_AUTH_SUPER_USERS", "User:admin, User:ops"),
            ]),
            &Overrides::default(),
        )
        .expect("load");
        let a = s.server_config().authorizer;
        assert!(a.enabled && !a.allow_if_no_acl);
        assert_eq!(a.super_users, vec!["User:admin", "User:ops"]);
        let bad = Settings::load(
            None,
            env(&[("PUBSUB_AUTH_SUPER_USERS", "admin")]),
            &Overrides::default(),
        );
        assert!(
            matches!(&bad, Err(CliError::Invalid { key, .. }) if key == "auth.super_users"),
            "{bad:?}"
        );
        assert!(!Settings::default().server_config().authorizer.enabled);
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pubsub.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nflush = \"always\"\n[topics]\ndefault_partitions = 3\nsegment_bytes = \"64MiB\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), env(&[]), &Overrides::default()).expect("load");
        assert_eq!(s.listen, "127.0.0.1:1111");
        assert_eq!(s.topics.default_partitions, 3);
        assert_eq!(s.topics.defaults.segment_bytes, 64 << 20);
        assert_eq!(s.flush_policy().expect("flush"), FlushPolicy::Always);

        let s = Settings::load(
            Some(&file),
            env(&[
                ("PUBSUB_TOPICS_DEFAULT_PARTITIONS", "5"),
                ("PUBSUB_LISTEN", "127.0.0.1:2222"),
                ("PUBSUB_FLUSH", "interval:250ms"),
                ("PUBSUB_TOPICS_AUTO_CREATE", "false"),
                ("PUBSUB_SERVER_IDLE_TIMEOUT", "30s"),
                ("PUBSUB_TOPICS_RETENTION", "forever"),
                ("HOME", "/elsewhere"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:3333".into()),
                ..Overrides::default()
            },
        )
        .expect("load");
        assert_eq!(s.topics.default_partitions, 5);
        assert_eq!(s.listen, "127.0.0.1:3333", "flags beat the environment");
        assert_eq!(
            s.flush_policy().expect("flush"),
            FlushPolicy::Interval(Duration::from_millis(250))
        );
        assert!(!s.topics.auto_create);
        assert_eq!(s.server.idle_timeout, Span(Duration::from_secs(30)));
        assert_eq!(s.topics.defaults.retention_ms, None);
        let broker = s.broker_config().expect("broker config");
        assert_eq!(broker.topic_defaults.retention_ms, None);
        assert_eq!(broker.topic_defaults.segment_bytes, 64 << 20);
    }

    #[test]
    fn metrics_are_off_by_default_and_layered_like_every_key() {
        let s = Settings::load(None, env(&[]), &Overrides::default()).expect("load");
        assert_eq!(s.metrics, "", "off unless asked for");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pubsub.toml");
        std::fs::write(&file, "metrics = \"127.0.0.1:9644\"\n").expect("write");
        let s = Settings::load(Some(&file), env(&[]), &Overrides::default()).expect("load");
        assert_eq!(s.metrics, "127.0.0.1:9644");
        let s = Settings::load(
            Some(&file),
            env(&[("PUBSUB_METRICS", "0.0.0.0:9100")]),
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(s.metrics, "0.0.0.0:9100", "the environment beats the file");
        let s = Settings::load(
            Some(&file),
            env(&[("PUBSUB_METRICS", "0.0.0.0:9100")]),
            &Overrides {
                metrics: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            },
        )
        .expect("load");
        assert_eq!(s.metrics, "127.0.0.1:0", "flags beat the environment");
        let s = Settings::load(
            Some(&file),
            env(&[("PUBSUB_METRICS", "")]),
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(s.metrics, "", "an empty value turns it off");
        let e = Settings::load(
            None,
            env(&[("PUBSUB_METRICS", "nowhere")]),
            &Overrides::default(),
        )
        .expect_err("bad address");
        assert!(e.to_string().contains("metrics"), "{e}");
    }

    /// The client subcommands' TLS variables (`PUBSUB_CLIENT_TLS_*`) and
    /// login variables are not serve's: they leave its `[tls]` and every
    /// other setting as they were, while serve's own `PUBSUB_TLS_*` set it.
    #[test]
    fn client_variables_do_not_leak_into_serve() {
        let client = [
            ("PUBSUB_CLIENT_TLS_CA", "client-ca.pem"),
            ("PUBSUB_CLIENT_TLS_CERT", "client.pem"),
            ("PUBSUB_CLIENT_TLS_KEY", "client.key"),
            ("PUBSUB_SECURITY_PROTOCOL", "SSL"),
            ("PUBSUB_USER", "alice"),
            ("PUBSUB_PASSWORD", "alice-secret"),
            ("PUBSUB_BOOTSTRAP", "127.0.0.1:9093"),
        ];
        let s = Settings::load(None, env(&client), &Overrides::default()).expect("load");
        assert_eq!(s, Settings::default());
        assert!(s.tls.files().is_none());

        let mut both = client.to_vec();
        both.extend([
            ("PUBSUB_TLS_CERT", "server.pem"),
            ("PUBSUB_TLS_KEY", "server.key"),
        ]);
        let s = Settings::load(None, env(&both), &Overrides::default()).expect("load");
        let files = s.tls.files().expect("serve's [tls]");
        assert_eq!(files.cert, PathBuf::from("server.pem"));
        assert_eq!(files.key, PathBuf::from("server.key"));
        assert_eq!(files.client_ca, None);
    }

    /// Every environment variable the client commands declare (read from
    /// their clap arguments, not written out again) is one `serve` ignores
    /// and none names a setting: a client name that collided with serve's
    /// (as `PUBSUB_TLS_CERT` once did) fails here.
    #[test]
    fn the_client_commands_variables_are_ignored_by_serve_and_name_no_setting() {
        use clap::Args;
        let client = crate::remote::ConnArgs::augment_args(clap::Command::new("client"));
        let names: Vec<String> = client
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        assert!(names.len() >= 10, "{names:?}");
        let keys = env_keys();
        for name in &names {
            assert!(IGNORED_ENV.contains(&name.as_str()), "{name} not ignored");
            assert!(!keys.contains_key(name), "{name} names a setting");
        }
    }

    #[test]
    fn listeners_and_tls_layer_like_every_key_and_are_checked_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pubsub.toml");
        std::fs::write(
            &file,
            "listen = \"\"\n[[listeners]]\nname = \"ssl\"\nlisten = \"127.0.0.1:9093\"\nprotocol = \"SSL\"\n\
             [[listeners]]\nname = \"sasl\"\nlisten = \"127.0.0.1:9094\"\nadvertised = \"b.example:9094\"\n\
             protocol = \"sasl_ssl\"\nsasl_mechanisms = [\"SCRAM-SHA-512\", \"PLAIN\"]\n\
             [tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), env(&[]), &Overrides::default()).expect("load");
        assert_eq!(s.listeners.len(), 2);
        assert_eq!(s.listeners[0].advertised, "");
        assert_eq!(
            s.listeners[1].security_protocol(),
            pubsub_server::SecurityProtocol::SaslSsl
        );
        assert_eq!(s.listeners[1].sasl_mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
        let files = s.tls.files().expect("tls");
        assert_eq!(files.cert, PathBuf::from("server.pem"));
        assert_eq!(files.client_ca, None);

        // The environment replaces the list and sets [tls] keys; a flag
        // brings back the PLAINTEXT listener.
        let s = Settings::load(
            Some(&file),
            env(&[
                (
                    "PUBSUB_LISTENERS",
                    "[{ name = \"tls\", listen = \"127.0.0.1:0\", protocol = \"SSL\" }]",
                ),
                ("PUBSUB_TLS_CLIENT_CA", "ca.pem"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            },
        )
        .expect("load");
        assert_eq!(s.listen, "127.0.0.1:0");
        assert_eq!(s.listeners.len(), 1);
        assert_eq!(s.listeners[0].name, "tls");
        assert_eq!(
            s.tls.files().expect("tls").client_ca,
            Some(PathBuf::from("ca.pem"))
        );
        let e = Settings::load(
            None,
            env(&[("PUBSUB_LISTENERS", "ssl://127.0.0.1:9093")]),
            &Overrides::default(),
        )
        .expect_err("not TOML");
        assert!(e.to_string().contains("PUBSUB_LISTENERS"), "{e}");

        let err = |text: &str| {
            Settings::parse(text, "f.toml")
                .and_then(|s| s.validate())
                .expect_err(text)
                .to_string()
        };
        let one = |fields: &str| {
            format!("[[listeners]]\nname = \"x\"\nlisten = \"127.0.0.1:1\"\n{fields}")
        };
        assert!(err("listen = \"\"").contains("listen"));
        assert!(err(&one("protocol = \"TLS\"")).contains("protocol"));
        // Kafka's spellings only (SecurityProtocol.forName): any case, the
        // underscore as it is.
        assert!(err(&one("protocol = \"sasl-plaintext\"")).contains("protocol"));
        assert!(err(&one("protocol = \"SaslPlaintext\"")).contains("protocol"));
        assert!(err(&one("protocol = \"SSL\"")).contains("tls.cert"));
        assert!(err(&one(
            "protocol = \"SASL_PLAINTEXT\"\nsasl_mechanisms = [\"GSSAPI\"]"
        ))
        .contains("GSSAPI"));
        assert!(err(&one("sasl_mechanisms = [\"PLAIN\"]")).contains("sasl_mechanisms"));
        assert!(err(&one("advertised = \"nohost\"")).contains("advertised"));
        assert!(
            err("[[listeners]]\nname = \"PLAINTEXT\"\nlisten = \"127.0.0.1:1\"").contains("twice")
        );
        assert!(err("[tls]\nclient_ca = \"ca.pem\"").contains("client_ca"));
        assert!(
            err(&one("port = 1")).contains("port"),
            "unknown keys are refused"
        );
    }

    #[test]
    fn a_span_past_u64_milliseconds_is_refused_not_wrapped() {
        // 213503982336 days is 2^64 ms plus 120848384 ms: wrapped, a
        // retention of 33.6 hours.
        let e = Settings::parse("[topics]\nretention = \"213503982336d\"", "f.toml")
            .expect_err("too long");
        assert!(e.to_string().contains("too long"), "{e}");
    }

    #[test]
    fn bad_settings_name_their_source() {
        let err =
            |text: &str| Settings::parse(text, "f.toml").and_then(|s| s.validate().map(|()| s));
        assert!(err("no_such_key = 1").is_err());
        assert!(err("[topics]\nsegment_bytes = \"huge\"").is_err());
        assert!(err("flush = \"sometimes\"").is_err());
        assert!(
            err("[groups]\nmin_session_timeout = \"1h\"\nmax_session_timeout = \"1m\"").is_err()
        );
        assert!(err("[topics]\ncleanup_policy = \"shred\"").is_err());
        assert!(err("[topics]\ndefault_partitions = 0").is_err());
        assert!(err("advertised = \"nohost\"").is_err());
        assert!(err("metrics = \"9644\"").is_err());
        assert!(err("metrics = \"127.0.0.1:http\"").is_err());
        assert!(err("metrics = \":9644\"").is_err());
        let e = Settings::load(
            None,
            env(&[("PUBSUB_TOPICS_DEFAULT_PARTITIONS", "many")]),
            &Overrides::default(),
        )
        .expect_err("bad env");
        assert!(
            e.to_string().contains("PUBSUB_TOPICS_DEFAULT_PARTITIONS"),
            "{e}"
        );
        let e = Settings::load(
            None,
            env(&[("PUBSUB_SERVER_IDLE_TIMEOUT", "a while")]),
            &Overrides::default(),
        )
        .expect_err("bad env");
        assert!(e.to_string().contains("PUBSUB_SERVER_IDLE_TIMEOUT"), "{e}");
    }

    #[test]
    fn io_threads_default_to_one_per_core_and_are_bounded() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let s = Settings::load(None, env(&[]), &Overrides::default()).expect("load");
        assert_eq!(s.server.io_threads, 0);
        assert_eq!(s.io_threads(), cores);
        let s = Settings::load(
            None,
            env(&[("PUBSUB_SERVER_IO_THREADS", "1")]),
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(s.io_threads(), 1);
        let e = Settings::load(
            None,
            env(&[("PUBSUB_SERVER_IO_THREADS", "5000")]),
            &Overrides::default(),
        )
        .expect_err("too many");
        assert!(e.to_string().contains("server.io_threads"), "{e}");
    }
}
