//! `pubsub group list|describe|reset-offsets|delete`: consumer groups of a
//! running broker: members, assignments, committed offsets and lag.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::groups;
use pubsub_client::{ClientError, Cluster};

use crate::error::CliError;
use crate::remote::{block_on, write_out, ConnArgs};
use crate::table::Table;

/// Group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups and their states.
    #[command(after_help = "Examples:\n  pubsub group list")]
    List {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show a group's members and, per partition, the committed offset,
    /// the log end offset and the LAG between them.
    #[command(after_help = "Examples:\n  pubsub group describe audit")]
    Describe {
        /// Group id
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Move a group's committed offsets (the group must have no members).
    /// Prints the plan; changes nothing without --execute.
    #[command(
        after_help = "Examples:\n  pubsub group reset-offsets audit --topic orders --to-earliest             # dry run\n  pubsub group reset-offsets audit --topic orders --to-earliest --execute\n  pubsub group reset-offsets audit --topic orders --partition 0 --to-offset 42 --execute\n  pubsub group reset-offsets audit --topic orders --to-time 2026-11-25T09:00:00Z --execute"
    )]
    ResetOffsets {
        /// Group id
        name: String,
        /// Topic whose offsets move
        #[arg(long, short)]
        topic: String,
        /// Only these partitions [default: all]
        #[arg(long, short)]
        partition: Vec<i32>,
        /// To each partition's earliest offset
        #[arg(long, group = "target")]
        to_earliest: bool,
        /// To each partition's end (skip everything)
        #[arg(long, group = "target")]
        to_latest: bool,
        /// To this offset (kept within each partition's range)
        #[arg(long, group = "target", value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// To the first message at or after this time (RFC 3339)
        #[arg(long, group = "target", value_name = "TIME", value_parser = crate::human::parse_rfc3339)]
        to_time: Option<i64>,
        /// Commit the new offsets (without it: a dry run)
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a group with no members, and its committed offsets.
    #[command(after_help = "Examples:\n  pubsub group delete audit")]
    Delete {
        /// Group id
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Runs a group command.
pub fn run(cmd: GroupCommand) -> Result<(), CliError> {
    block_on(async move {
        match cmd {
            GroupCommand::List { conn } => {
                let mut cluster = conn.connect().await?;
                let mut table = Table::new(&["GROUP", "STATE", "TYPE"]);
                for g in groups::list_groups(&mut cluster).await? {
                    let state = if g.state.is_empty() {
                        "-".into()
                    } else {
                        g.state
                    };
                    table.row(vec![g.id, state, g.protocol_type]);
                }
                write_out(table.render().as_bytes()).map(drop)
            }
            GroupCommand::Describe { name, conn } => describe(&name, &conn).await,
            GroupCommand::ResetOffsets {
                name,
                topic,
                partition,
                to_earliest,
                to_latest,
                to_offset,
                to_time,
                execute,
                conn,
            } => {
                let target = match (to_earliest, to_latest, to_offset, to_time) {
                    (true, ..) => Target::Query(OffsetQuery::Earliest),
                    (_, true, ..) => Target::Query(OffsetQuery::Latest),
                    (_, _, Some(o), _) => Target::Offset(o),
                    (_, _, _, Some(t)) => Target::Query(OffsetQuery::Time(t)),
                    _ => return Err(CliError::Usage(
                        "say where to: --to-earliest, --to-latest, --to-offset N or --to-time TIME"
                            .into(),
                    )),
                };
                reset(&name, &topic, &partition, target, execute, &conn).await
            }
            GroupCommand::Delete { name, conn } => {
                let mut cluster = conn.connect().await?;
                groups::delete_group(cluster.coordinator(&name).await?, &name).await?;
                eprintln!("deleted group {name}");
                Ok(())
            }
        }
    })
}

/// Where reset-offsets moves to.
enum Target {
    Query(OffsetQuery),
    Offset(i64),
}

async fn describe(name: &str, conn: &ConnArgs) -> Result<(), CliError> {
    let mut cluster = conn.connect().await?;
    let coordinator = cluster.coordinator(name).await?;
    let group = groups::describe_group(coordinator, name).await?;
    let committed = groups::committed_offsets(coordinator, name).await?;
    if group.state == "Dead" && committed.is_empty() {
        return Err(CliError::Usage(format!("group {name:?} does not exist")));
    }
    // Every partition with a commit or an owner.
    let mut owner: BTreeMap<(String, i32), &groups::Member> = BTreeMap::new();
    for m in &group.members {
        for (t, ps) in &m.assignment {
            for &p in ps {
                owner.insert((t.clone(), p), m);
            }
        }
    }
    let mut rows: BTreeSet<(String, i32)> = owner.keys().cloned().collect();
    for (t, ps) in &committed {
        rows.extend(ps.keys().map(|&p| (t.clone(), p)));
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let topics: BTreeSet<&String> = rows.iter().map(|(t, _)| t).collect();
    for t in topics {
        let info = match cluster.topic(t).await {
            Ok(i) => i,
            // A committed offset can outlive its topic.
            Err(ClientError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let ps: Vec<i32> = rows
            .iter()
            .filter(|(rt, _)| rt == t)
            .map(|&(_, p)| p)
            .filter(|p| info.leader(*p).is_some())
            .collect();
        for (p, o) in admin::list_offsets(&mut cluster, &info, &ps, OffsetQuery::Latest).await? {
            ends.insert((t.clone(), p), o);
        }
    }
    let mut out = format!(
        "GROUP {name}  STATE {}  PROTOCOL {}  MEMBERS {}\n\n",
        group.state,
        if group.protocol.is_empty() {
            "-"
        } else {
            &group.protocol
        },
        group.members.len()
    );
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER",
        "CLIENT-ID",
        "HOST",
    ]);
    for key in &rows {
        let current = committed.get(&key.0).and_then(|ps| ps.get(&key.1)).copied();
        let end = ends.get(key).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => "-".into(),
        };
        let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let m = owner.get(key);
        table.row(vec![
            key.0.clone(),
            key.1.to_string(),
            show(current),
            show(end),
            lag,
            m.map_or("-".into(), |m| m.id.clone()),
            m.map_or("-".into(), |m| m.client_id.clone()),
            m.map_or("-".into(), |m| m.host.clone()),
        ]);
    }
    out.push_str(&table.render());
    write_out(out.as_bytes()).map(drop)
}

async fn reset(
    name: &str,
    topic: &str,
    only: &[i32],
    target: Target,
    execute: bool,
    conn: &ConnArgs,
) -> Result<(), CliError> {
    let mut cluster: Cluster = conn.connect().await?;
    let coordinator = cluster.coordinator(name).await?;
    let group = groups::describe_group(coordinator, name).await?;
    if !group.members.is_empty() {
        return Err(CliError::Usage(format!(
            "group {name:?} has {} active member(s); stop its consumers before resetting offsets",
            group.members.len()
        )));
    }
    let current = groups::committed_offsets(coordinator, name)
        .await?
        .remove(topic)
        .unwrap_or_default();
    let info = cluster.topic(topic).await?;
    let partitions: Vec<i32> = if only.is_empty() {
        info.indexes()
    } else {
        if let Some(p) = only.iter().find(|p| info.leader(**p).is_none()) {
            return Err(CliError::Usage(format!(
                "topic {topic} has no partition {p}"
            )));
        }
        only.to_vec()
    };
    let (query, offset) = match target {
        Target::Query(q) => (q, None),
        Target::Offset(o) => (OffsetQuery::Latest, Some(o)),
    };
    let new: BTreeMap<i32, i64> =
        admin::start_offsets(&mut cluster, &info, &partitions, query, offset)
            .await?
            .into_iter()
            .map(|(p, (_, start))| (p, start))
            .collect();
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
    for (&p, &o) in &new {
        table.row(vec![
            topic.to_string(),
            p.to_string(),
            current.get(&p).map_or("-".into(), i64::to_string),
            o.to_string(),
        ]);
    }
    write_out(table.render().as_bytes())?;
    if execute {
        let coordinator = cluster.coordinator(name).await?;
        groups::commit_offsets(coordinator, name, -1, "", topic, &new).await?;
        eprintln!("committed the new offsets of group {name}");
    } else {
        eprintln!("dry run: nothing changed; add --execute to commit these offsets");
    }
    Ok(())
}
