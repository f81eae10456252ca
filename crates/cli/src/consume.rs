//! `pubsub consume TOPIC`: prints messages, alone or as a member of a
//! consumer group (joining, committing what was printed, following
//! rebalances), from a chosen start, for a count or until Ctrl-C.

use std::collections::BTreeMap;
use std::fmt::Write;

use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::fetch::{self, Message, OFFSET_OUT_OF_RANGE};
use pubsub_client::member::Membership;
use pubsub_client::{Cluster, TopicInfo};
use tokio::signal::unix::{signal, SignalKind};

use crate::error::CliError;
use crate::remote::{block_on, write_out, ConnArgs, CLIENT_ID};

/// How long a fetch waits for new messages.
const MAX_WAIT_MS: i32 = 500;
/// Most bytes one fetch brings.
const MAX_BYTES: i32 = 8 << 20;

/// How messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Each value on its own line, nothing else.
    Text,
    /// One JSON object per message and line.
    Json,
}

/// The examples and notes under `--help`.
pub const AFTER_HELP: &str = "Examples:\n  pubsub consume orders --from-beginning --count 10\n  pubsub consume orders --group audit            # follow as a group member until Ctrl-C\n  pubsub consume orders --partition 0 --offset 42 --format json\n  pubsub consume orders --from-time 2026-11-25T09:00:00Z\n\nWithout a start flag a consumer starts at the end (new messages only). In a group,\ncommitted offsets come first; the start flags apply to partitions without one.\n--format json prints partition, offset, timestamp (ms), key, headers and value;\na key or value that is not UTF-8 is printed as {\"hex\": \"...\"}.";

/// `pubsub consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Topic (must exist)
    topic: String,
    /// Consume as a member of this consumer group, committing progress
    #[arg(long, short)]
    group: Option<String>,
    /// Only this partition (not with --group)
    #[arg(long, short, conflicts_with = "group")]
    partition: Option<i32>,
    /// Start at the earliest offset
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    from_beginning: bool,
    /// Start at this offset
    #[arg(long, short, conflicts_with = "from_time")]
    offset: Option<i64>,
    /// Start at the first message at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME", value_parser = crate::human::parse_rfc3339)]
    from_time: Option<i64>,
    /// Stop after this many messages [default: follow until Ctrl-C]
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// text or json
    #[arg(long, short, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    conn: ConnArgs,
}

/// Runs `pubsub consume`.
pub fn run(args: ConsumeArgs) -> Result<(), CliError> {
    if args.offset.is_some_and(|o| o < 0) {
        return Err(CliError::Usage("--offset must be 0 or more".into()));
    }
    block_on(consume(args))
}

/// Why the loop ended.
enum End {
    /// --count reached, or the reader of stdout went away.
    Done,
    /// SIGINT or SIGTERM.
    Signal,
}

async fn consume(args: ConsumeArgs) -> Result<(), CliError> {
    let signal_err = |source| CliError::Io {
        what: "installing a signal handler".into(),
        source,
    };
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_err)?;
    // Fetches run on `data`; group calls on `coord`, so a fetch cut short by
    // a signal never leaves an answer in the way of the final commit.
    let mut data = args.conn.connect().await?;
    let topic = data.topic(&args.topic).await?;
    crate::remote::check_partition(&topic, args.partition)?;
    let mut coord = match &args.group {
        Some(_) => Some(args.conn.connect().await?),
        None => None,
    };
    let mut member = match (&args.group, coord.as_mut()) {
        (Some(g), Some(c)) => Some(Membership::join(c, g, &args.topic, CLIENT_ID).await?),
        _ => None,
    };
    let mut positions =
        start_positions(&args, &mut data, coord.as_mut(), member.as_ref(), &topic).await?;
    // Nothing counts as committed yet: the first round commits every
    // starting position, so a partition that was empty (started at its end)
    // is not skipped by the group's next consumer.
    let mut committed = BTreeMap::new();
    let mut printed = 0u64;
    let end = loop {
        if let (Some(m), Some(c)) = (member.as_mut(), coord.as_mut()) {
            if m.needs_rejoin() {
                // Commit what was printed, then take the new assignment.
                if let Err(e) = m.commit(c, &positions).await {
                    eprintln!("warning: commit before rebalance failed: {e}");
                }
                m.rejoin(c).await?;
                positions = start_positions(&args, &mut data, Some(c), Some(m), &topic).await?;
                committed = BTreeMap::new();
            }
        }
        let round = tokio::select! {
            r = fetch_round(&mut data, &topic, &mut positions, &args, &mut printed) => r?,
            _ = interrupt.recv() => break End::Signal,
            _ = terminate.recv() => break End::Signal,
        };
        if let (Some(m), Some(c)) = (member.as_ref(), coord.as_mut()) {
            if positions != committed {
                match m.commit(c, &positions).await {
                    Ok(()) => committed = positions.clone(),
                    Err(e) => eprintln!("warning: commit failed (will retry): {e}"),
                }
            }
        }
        if round {
            break End::Done;
        }
    };
    if let (Some(m), Some(c)) = (member, coord.as_mut()) {
        if positions != committed {
            m.commit(c, &positions).await?;
        }
        m.leave(c).await?;
    }
    if let End::Signal = end {
        eprintln!("stopped after {printed} messages");
    }
    Ok(())
}

/// Where each partition starts: the group's committed offset if any, else
/// the start flags, else the end.
async fn start_positions(
    args: &ConsumeArgs,
    data: &mut Cluster,
    coord: Option<&mut Cluster>,
    member: Option<&Membership>,
    topic: &TopicInfo,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let partitions: Vec<i32> = match (member, args.partition) {
        (Some(m), _) => m.assignment().to_vec(),
        (None, Some(p)) => vec![p],
        (None, None) => topic.indexes(),
    };
    let mut committed = BTreeMap::new();
    if let (Some(c), Some(g)) = (coord, &args.group) {
        let conn = c.coordinator(g).await?;
        let mut all = pubsub_client::groups::committed_offsets(conn, g).await?;
        committed = all.remove(&args.topic).unwrap_or_default();
    }
    let rest: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !committed.contains_key(p))
        .collect();
    let mut out: BTreeMap<i32, i64> = partitions
        .iter()
        .filter_map(|p| Some((*p, *committed.get(p)?)))
        .collect();
    if rest.is_empty() {
        return Ok(out);
    }
    let earliest = admin::list_offsets(data, topic, &rest, OffsetQuery::Earliest).await?;
    let latest = admin::list_offsets(data, topic, &rest, OffsetQuery::Latest).await?;
    let chosen = match (args.from_beginning, args.offset, args.from_time) {
        (true, _, _) => earliest.clone(),
        (_, Some(o), _) => rest.iter().map(|&p| (p, o)).collect(),
        (_, _, Some(ts)) => admin::list_offsets(data, topic, &rest, OffsetQuery::Time(ts)).await?,
        _ => latest.clone(),
    };
    for (p, o) in chosen {
        let (lo, hi) = (
            earliest.get(&p).copied().unwrap_or(0),
            latest.get(&p).copied().unwrap_or(0),
        );
        let clamped = o.clamp(lo, hi.max(lo));
        if clamped != o {
            eprintln!("warning: partition {p} holds offsets {lo}..{hi}; starting at {clamped} instead of {o}");
        }
        out.insert(p, clamped);
    }
    Ok(out)
}

/// One fetch per leader; prints what came. `Ok(true)` when done.
async fn fetch_round(
    data: &mut Cluster,
    topic: &TopicInfo,
    positions: &mut BTreeMap<i32, i64>,
    args: &ConsumeArgs,
    printed: &mut u64,
) -> Result<bool, CliError> {
    if positions.is_empty() {
        // Nothing assigned (more members than partitions): wait a while.
        tokio::time::sleep(std::time::Duration::from_millis(MAX_WAIT_MS as u64)).await;
        return Ok(false);
    }
    let mut by_leader: BTreeMap<i32, BTreeMap<i32, i64>> = BTreeMap::new();
    for (&p, &o) in positions.iter() {
        let leader = topic.leader(p).unwrap_or(-1);
        by_leader.entry(leader).or_default().insert(p, o);
    }
    for (leader, wanted) in by_leader {
        let conn = data.node(leader).await?;
        let answers = fetch::fetch(conn, &topic.name, &wanted, MAX_WAIT_MS, MAX_BYTES).await?;
        for a in answers {
            match a.error_code {
                0 => {}
                OFFSET_OUT_OF_RANGE => {
                    let to = if args.from_beginning {
                        OffsetQuery::Earliest
                    } else {
                        OffsetQuery::Latest
                    };
                    let reset = admin::list_offsets(data, topic, &[a.partition], to).await?;
                    if let Some(&o) = reset.get(&a.partition) {
                        eprintln!(
                            "warning: offset {} of partition {} is gone; moving to {o}",
                            wanted.get(&a.partition).copied().unwrap_or(-1),
                            a.partition
                        );
                        positions.insert(a.partition, o);
                    }
                    continue;
                }
                code => {
                    return Err(CliError::Usage(format!(
                        "fetching {}-{}: {} (error code {code})",
                        topic.name,
                        a.partition,
                        pubsub_client::error::code_name(code)
                    )))
                }
            }
            let mut out = Vec::new();
            let mut last = None;
            for m in &a.messages {
                if args.count.is_some_and(|c| *printed >= c) {
                    break;
                }
                render(&mut out, m, args.format);
                *printed += 1;
                last = Some(m.offset);
            }
            match last {
                Some(o) if args.count.is_some_and(|c| *printed >= c) => {
                    positions.insert(a.partition, o + 1);
                }
                _ => {
                    positions.insert(a.partition, a.next_offset.max(last.map_or(0, |o| o + 1)));
                }
            }
            if !out.is_empty() && !write_out(&out)? {
                return Ok(true);
            }
            if args.count.is_some_and(|c| *printed >= c) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn render(out: &mut Vec<u8>, m: &Message, format: Format) {
    match format {
        Format::Text => {
            out.extend_from_slice(m.value.as_deref().unwrap_or_default());
            out.push(b'\n');
        }
        Format::Json => {
            let headers: Vec<serde_json::Value> = m
                .headers
                .iter()
                .map(
                    |(k, v)| serde_json::json!({ "key": k, "value": v.as_deref().map(bytes_json) }),
                )
                .collect();
            let line = serde_json::json!({
                "partition": m.partition,
                "offset": m.offset,
                "timestamp": m.timestamp,
                "key": m.key.as_deref().map(bytes_json),
                "headers": headers,
                "value": m.value.as_deref().map(bytes_json),
            });
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &line);
            out.push(b'\n');
        }
    }
}

/// A UTF-8 string as itself, other bytes as `{"hex": "..."}`.
fn bytes_json(b: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::Value::String(s.to_string()),
        Err(_) => {
            let mut hex = String::with_capacity(b.len() * 2);
            for byte in b {
                // Writing into a String cannot fail.
                let _ = write!(hex, "{byte:02x}");
            }
            serde_json::json!({ "hex": hex })
        }
    }
}
