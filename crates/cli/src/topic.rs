//! `pubsub topic create|list|describe|delete|alter-config`: topics of a
//! running broker, over the Kafka protocol.

use clap::Subcommand;
use kafka_protocol::error::ResponseError;
use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::ClientError;

use crate::error::CliError;
use crate::remote::{block_on, parse_key_value, write_out, ConnArgs};
use crate::table::Table;

/// Topic commands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(
        after_help = "Examples:\n  pubsub topic create orders --partitions 3\n  pubsub topic create prices --partitions 6 --config retention.ms=86400000\n  pubsub topic create portfolio --config cleanup.policy=compact"
    )]
    Create {
        /// Topic name
        name: String,
        /// Partitions [default: the broker's default]
        #[arg(long, short)]
        partitions: Option<i32>,
        /// A topic config, repeatable (e.g. retention.ms=3600000)
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List topics and their partition counts.
    #[command(
        after_help = "Examples:\n  pubsub topic list\n  pubsub topic list --internal --bootstrap 10.0.0.5:9092"
    )]
    List {
        /// Include internal topics (__consumer_offsets)
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show a topic's partitions (earliest and latest offsets, size on
    /// disk) and configs.
    #[command(after_help = "Examples:\n  pubsub topic describe orders")]
    Describe {
        /// Topic name
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete topics and all their messages.
    #[command(
        after_help = "Examples:\n  pubsub topic delete orders\n  pubsub topic delete old-a old-b"
    )]
    Delete {
        /// Topic names
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Change a topic's configs: --set sets a key, --delete returns it to
    /// the broker default.
    #[command(
        after_help = "Examples:\n  pubsub topic alter-config orders --set retention.ms=86400000\n  pubsub topic alter-config orders --delete retention.ms --set segment.bytes=67108864"
    )]
    AlterConfig {
        /// Topic name
        name: String,
        /// KEY=VALUE to set, repeatable
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// KEY to return to its default, repeatable
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Runs a topic command.
pub fn run(cmd: TopicCommand) -> Result<(), CliError> {
    block_on(async move {
        match cmd {
            TopicCommand::Create {
                name,
                partitions,
                configs,
                conn,
            } => {
                let mut cluster = conn.connect().await?;
                admin::create_topic(
                    cluster.bootstrap()?,
                    &name,
                    partitions.unwrap_or(-1),
                    &configs,
                )
                .await?;
                match cluster.created_topic(&name).await {
                    Ok(info) => eprintln!(
                        "created topic {name} with {} partitions",
                        info.partitions.len()
                    ),
                    // Allowed to create it but not to describe it (an ACL
                    // with Create and no Describe): created all the same.
                    Err(ClientError::Kafka {
                        error: ResponseError::TopicAuthorizationFailed,
                        ..
                    }) => eprintln!("created topic {name} (not allowed to describe it)"),
                    Err(e) => return Err(e.into()),
                }
                Ok(())
            }
            TopicCommand::List { internal, conn } => {
                let mut cluster = conn.connect().await?;
                let m = cluster.metadata(None).await?;
                let mut topics: Vec<(String, usize)> = m
                    .topics
                    .iter()
                    .filter(|t| internal || !t.is_internal)
                    .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.partitions.len())))
                    .collect();
                topics.sort();
                let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
                for (name, n) in topics {
                    table.row(vec![name, n.to_string()]);
                }
                write_out(table.render().as_bytes()).map(drop)
            }
            TopicCommand::Describe { name, conn } => describe(&name, &conn).await,
            TopicCommand::Delete { names, conn } => {
                let mut cluster = conn.connect().await?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                admin::delete_topics(cluster.bootstrap()?, &names).await?;
                eprintln!("deleted {}", names.join(", "));
                Ok(())
            }
            TopicCommand::AlterConfig {
                name,
                set,
                delete,
                conn,
            } => {
                if set.is_empty() && delete.is_empty() {
                    return Err(CliError::Usage(
                        "nothing to change: give --set KEY=VALUE or --delete KEY".into(),
                    ));
                }
                let mut cluster = conn.connect().await?;
                admin::alter_topic_configs(cluster.bootstrap()?, &name, &set, &delete).await?;
                eprintln!("altered the configs of topic {name}");
                Ok(())
            }
        }
    })
}

async fn describe(name: &str, conn: &ConnArgs) -> Result<(), CliError> {
    let mut cluster = conn.connect().await?;
    let info = cluster.topic(name).await?;
    let partitions = info.indexes();
    let earliest =
        admin::list_offsets(&mut cluster, &info, &partitions, OffsetQuery::Earliest).await?;
    let latest = admin::list_offsets(&mut cluster, &info, &partitions, OffsetQuery::Latest).await?;
    let sizes = admin::partition_sizes(&mut cluster, &info).await?;
    let configs = admin::describe_topic_configs(cluster.bootstrap()?, name).await?;
    let cell = |v: Option<&i64>| v.map_or("-".to_string(), i64::to_string);
    let mut out = format!("TOPIC {name}  PARTITIONS {}\n\n", partitions.len());
    let mut table = Table::new(&["PARTITION", "LEADER", "EARLIEST", "LATEST", "SIZE"]);
    for &(p, leader) in &info.partitions {
        table.row(vec![
            p.to_string(),
            leader.to_string(),
            cell(earliest.get(&p)),
            cell(latest.get(&p)),
            cell(sizes.get(&p)),
        ]);
    }
    out.push_str(&table.render());
    out.push('\n');
    let mut table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
    for c in configs {
        table.row(vec![
            c.name,
            c.value.unwrap_or_else(|| "-".into()),
            c.source.to_string(),
        ]);
    }
    out.push_str(&table.render());
    write_out(out.as_bytes()).map(drop)
}
