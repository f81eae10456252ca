//! `pubsub bench produce|consume|e2e`: a load generator for any
//! single-node Kafka-protocol broker (every request goes to the bootstrap
//! broker). Each run prints throughput (msg/s, MB/s of values) and latency
//! percentiles from an HdrHistogram, as text or JSON, with a progress bar
//! on a terminal.

pub mod consume;
pub mod e2e;
pub mod partitions;
pub mod produce;
mod report;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use pubsub_client::{ClientError, Cluster, Connection, Security};

use crate::error::CliError;
use crate::human;
use crate::remote::{write_out, ConnArgs};

/// Bench commands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce messages as fast as allowed (or at --rate) and report
    /// throughput and latency percentiles.
    #[command(
        after_help = "Examples:\n  pubsub bench produce --messages 2000000 --size 1024 --batch 200 --acks 1\n  pubsub bench produce --rate 250000 --acks all --partitions 8 --json\n  pubsub bench produce --duration 30s --producers 4 --bootstrap 10.0.0.5:9092\n\nLatency is per message, from when its batch was due (with --rate) or sent, to the\nbroker's answer. Every bench sends all requests to the bootstrap broker (single-node\nclusters)."
    )]
    Produce(ProduceArgs),
    /// Read a topic from its start as fast as possible and report
    /// throughput and fetch latency percentiles.
    #[command(
        after_help = "Examples:\n  pubsub bench produce --messages 2000000 && pubsub bench consume\n  pubsub bench consume --topic bench --consumers 4 --json\n  pubsub bench consume --messages 500000 --partition-max-bytes 4MiB\n\nWithout --messages or --duration it reads what the topic held when it started.\nTime runs from the first answer with messages to the last, as rdkafka_performance\ntimes its consumer. Latency is per fetch request, from send to answer."
    )]
    Consume(ConsumeArgs),
    /// Produce and consume at once and report end-to-end latency: from
    /// when a message was due to when a consumer read it.
    #[command(
        after_help = "Examples:\n  pubsub bench e2e --rate 50000 --duration 30s\n  pubsub bench e2e --messages 1000000 --rate 200000 --acks all --partitions 4 --consumers 2 --json\n\nEach value carries the time its batch was due; consumers in the same process\nread from the end of the topic and measure the delay to their clock."
    )]
    E2e(E2eArgs),
    /// Start `pubsub serve` on a fresh directory, create many partitions,
    /// and report creation, Metadata, memory, descriptors, maps, the first
    /// read of every partition, and clean and SIGKILL restart times.
    #[command(
        after_help = "Examples:\n  benches/partitions.sh            (soft limit 1024, hard 65536 where the shell may raise it, 100,000 partitions)\n  pubsub bench partitions --topics 100 --partitions-per-topic 20\n\nThe broker is this binary, started with this process's limits. Prints a markdown table."
    )]
    Partitions(partitions::PartitionsArgs),
}

/// Where and what to produce.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Concurrent producer connections
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

/// The produce side of a run.
#[derive(Debug, Clone, clap::Args)]
struct LoadArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic (created if missing, with --partitions)
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Messages to produce
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Run for this long instead of --messages (e.g. 30s, 2m)
    #[arg(long, value_parser = human::parse_span)]
    duration: Option<Duration>,
    /// Message size in bytes
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Messages per batch (one batch per produce request)
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Partitions of the topic if it has to be created
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// 0, 1 or all (-1)
    #[arg(long, default_value = "1", value_parser = crate::parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// Target messages per second over all producers [default: unlimited]
    #[arg(long)]
    rate: Option<u64>,
    /// Produce requests in flight per connection
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
}

/// What to read.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic (must exist)
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Messages to read [default: what the topic holds at the start]
    #[arg(long)]
    messages: Option<u64>,
    /// Read for this long instead (e.g. 30s)
    #[arg(long, value_parser = human::parse_span)]
    duration: Option<Duration>,
    /// Concurrent consumer connections (partitions are split among them)
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Most bytes one fetch brings back
    #[arg(long, default_value = "50MiB", value_parser = human::parse_size)]
    fetch_max_bytes: u64,
    /// Most bytes one partition adds to a fetch
    #[arg(long, default_value = "1MiB", value_parser = human::parse_size)]
    partition_max_bytes: u64,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

/// An end-to-end run.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Concurrent producer connections
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Concurrent consumer connections
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

/// The client id of the bench's connections.
const CLIENT_ID: &str = "pubsub-bench";

/// The broker under load and how every connection to it is secured.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// HOST:PORT.
    pub addr: String,
    /// TLS and SASL, as the security flags say.
    pub security: Arc<Security>,
}

impl Endpoint {
    fn of(conn: &ConnArgs) -> Result<Endpoint, CliError> {
        Ok(Endpoint {
            addr: conn.bootstrap.clone(),
            security: conn.security()?,
        })
    }

    /// A cluster view from this endpoint.
    pub async fn cluster(&self) -> Result<Cluster, ClientError> {
        Cluster::connect_secure(&self.addr, CLIENT_ID, self.security.clone()).await
    }

    /// One connection to it.
    pub async fn connection(&self) -> Result<Connection, ClientError> {
        Connection::connect_secure(&self.addr, CLIENT_ID, &self.security).await
    }
}

impl LoadArgs {
    fn run(&self, producers: usize, progress: bool) -> Result<produce::ProduceRun, CliError> {
        Ok(produce::ProduceRun {
            bootstrap: Endpoint::of(&self.conn)?,
            topic: self.topic.clone(),
            messages: self.messages,
            duration: self.duration,
            size: self.size,
            batch: self.batch,
            partitions: self.partitions,
            producers,
            acks: self.acks,
            rate: self.rate,
            in_flight: self.in_flight,
            progress,
            stamp_epoch: None,
        })
    }
}

/// Runs a bench command and prints its report.
pub fn run(cmd: BenchCommand) -> Result<(), CliError> {
    let cmd = match cmd {
        BenchCommand::Partitions(a) => return partitions::run(a),
        other => other,
    };
    let terminal = std::io::stderr().is_terminal();
    let (report, json) = crate::remote::block_on(async move {
        Ok(match cmd {
            BenchCommand::Produce(a) => {
                let run = a.load.run(a.producers, !a.json && terminal)?;
                (produce::produce(run).await?, a.json)
            }
            BenchCommand::Consume(a) => {
                let run = consume::ConsumeRun {
                    bootstrap: Endpoint::of(&a.conn)?,
                    topic: a.topic,
                    messages: a.messages,
                    duration: a.duration,
                    consumers: a.consumers,
                    fetch_max_bytes: i32::try_from(a.fetch_max_bytes).unwrap_or(i32::MAX),
                    partition_max_bytes: i32::try_from(a.partition_max_bytes).unwrap_or(i32::MAX),
                    progress: !a.json && terminal,
                };
                (consume::consume(run).await?, a.json)
            }
            BenchCommand::E2e(a) => {
                let run = a.load.run(a.producers, !a.json && terminal)?;
                (e2e::e2e(run, a.consumers).await?, a.json)
            }
            BenchCommand::Partitions(_) => {
                return Err(CliError::Usage("partitions runs on its own".into()))
            }
        })
    })?;
    let text = if json {
        format!("{:#}\n", report.json())
    } else {
        format!("{}\n", report.text())
    };
    write_out(text.as_bytes())?;
    if report.errors > 0 {
        return Err(CliError::Usage(format!(
            "the broker refused {} messages",
            report.errors
        )));
    }
    Ok(())
}

/// A progress bar on stderr: of `total` messages, or a spinner.
fn progress_bar(show: bool, total: Option<u64>) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        None => indicatif::ProgressBar::new_spinner(),
        Some(n) => indicatif::ProgressBar::new(n),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let template = match total {
        None => "{spinner} {elapsed_precise} {pos} messages ({per_sec})",
        Some(_) => "{elapsed_precise} [{bar:30}] {pos}/{len} messages ({per_sec}, eta {eta})",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
