//! What the client subcommands (`topic`, `produce`, `consume`, `group`,
//! `user`, `acl`, `bench`) share: the broker address and security flags,
//! the runtime they run on, `key=value` arguments, and writing to stdout.

use std::future::Future;
use std::sync::Arc;

use pubsub_client::{Cluster, Security, TopicInfo};

use crate::error::CliError;
use crate::security::SecurityArgs;

/// The `client.id` the subcommands use.
pub const CLIENT_ID: &str = "pubsub-cli";

/// Where the broker is.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Broker address (any Kafka-protocol broker)
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        env = "PUBSUB_BOOTSTRAP"
    )]
    pub bootstrap: String,
    #[command(flatten)]
    pub security: SecurityArgs,
}

impl ConnArgs {
    /// Connects to the bootstrap broker, secured as the flags say.
    pub async fn connect(&self) -> Result<Cluster, CliError> {
        let security = self.security()?;
        Ok(Cluster::connect_secure(&self.bootstrap, CLIENT_ID, security).await?)
    }

    /// How connections are secured (files read, TLS configuration made).
    pub fn security(&self) -> Result<Arc<Security>, CliError> {
        self.security.build().map(Arc::new)
    }
}

/// `Err` naming the partition if `topic` has no partition `partition`.
pub fn check_partition(topic: &TopicInfo, partition: Option<i32>) -> Result<(), CliError> {
    match partition {
        Some(p) if topic.leader(p).is_none() => Err(CliError::Usage(format!(
            "topic {} has no partition {p} (it has {})",
            topic.name,
            topic.partitions.len()
        ))),
        _ => Ok(()),
    }
}

/// Runs a command's future on a fresh runtime.
pub fn block_on<T, F: Future<Output = Result<T, CliError>>>(f: F) -> Result<T, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime".into(),
            source,
        })?
        .block_on(f)
}

/// Parses `key=value`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// Writes to stdout; `Ok(false)` if the reader went away (`| head`).
pub fn write_out(bytes: &[u8]) -> Result<bool, CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::Io {
            what: "writing to stdout".into(),
            source: e,
        }),
    }
}
