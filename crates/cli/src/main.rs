//! `pubsub`: a durable, log-structured message broker that speaks the Kafka
//! protocol.
//!
//! `pubsub serve` runs the broker on a data directory; `topic`, `produce`,
//! `consume`, `group`, `user` and `acl` talk to a running broker (or any
//! Kafka-protocol broker, over TLS and SASL if asked); `bench` loads one;
//! `log` inspects a stopped broker's files; see `pubsub --help`.

mod acl;
mod bench;
mod consume;
mod error;
mod group;
mod human;
mod log;
mod produce;
mod remote;
mod security;
mod serve;
mod settings;
mod table;
mod topic;
mod user;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::settings::{Overrides, Settings};

/// Oversized allocations requested by hostile input become lazy mappings
/// instead of aborting the process (see `pubsub_server::alloc`).
#[global_allocator]
static ALLOCATOR: pubsub_server::alloc::GuardedAllocator = pubsub_server::alloc::GuardedAllocator;

#[derive(Debug, Parser)]
#[command(
    name = "pubsub",
    version,
    about = "A durable message broker that speaks the Kafka protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker: serve Kafka clients from a data directory.
    #[command(
        after_help = "Examples:\n  pubsub serve\n  pubsub serve --data-dir /var/lib/pubsub --listen 0.0.0.0:9092 --advertised broker.example.com:9092\n  pubsub serve --listen 127.0.0.1:0          # a free port, printed on stdout\n  pubsub serve --metrics 127.0.0.1:9644      # Prometheus: GET /metrics, GET /health\n  PUBSUB_FLUSH=always pubsub serve --config pubsub.toml\n\nSettings are read from --config (TOML; see docs/pubsub.example.toml), then PUBSUB_* \nenvironment variables, then these flags. SIGINT or SIGTERM shuts down cleanly."
    )]
    Serve(ServeArgs),
    /// Create, list, describe, delete and configure topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Send messages: one per line of stdin or of a file.
    #[command(after_help = produce::AFTER_HELP)]
    Produce(produce::ProduceArgs),
    /// Print messages, alone or as a member of a consumer group.
    #[command(after_help = consume::AFTER_HELP)]
    Consume(consume::ConsumeArgs),
    /// Consumer groups: list, describe (with lag), reset offsets, delete.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// SCRAM users: create (or change a password), list, delete.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Access control lists: create, list, delete.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Load generator for any Kafka-protocol broker: throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Offline tools on a stopped broker's data directory: dump segments,
    /// check every log and index.
    #[command(subcommand)]
    Log(log::LogCommand),
}

/// Parses `--acks`: 0, 1 or all (-1).
fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("{s:?}: acks is 0, 1 or all")),
    }
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Data directory [default: ./pubsub-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to [default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Serve Prometheus metrics (/metrics) and /health over HTTP on this
    /// address; port 0 picks a free one, printed on stdout [default: off]
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
    /// Config file (TOML)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn init_logging(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        listen: args.listen,
        advertised: args.advertised,
        metrics: args.metrics,
    };
    let settings = Settings::load(args.config.as_deref(), std::env::vars(), &overrides)?;
    init_logging(&settings.log);
    serve::run(settings)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Topic(command) => topic::run(command),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Group(command) => group::run(command),
        Command::User(command) => user::run(command),
        Command::Acl(command) => acl::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Log(command) => log::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
