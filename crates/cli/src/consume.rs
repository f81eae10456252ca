//! `pubsub consume TOPIC`: prints messages, alone or as a member of a
//! consumer group (joining, committing what was printed, following
//! rebalances), from a chosen start, for a count or until Ctrl-C.

use std::collections::BTreeMap;
use std::fmt::Write;

use kafka_protocol::error::ResponseError;
use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::fetch;
use pubsub_client::member::Membership;
use pubsub_client::{Cluster, ConsumerRecord, TopicInfo};
use tokio::signal::unix::{signal, Signal, SignalKind};

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
    if args.count == Some(0) {
        return Err(CliError::Usage("--count must be at least 1".into()));
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
    let positions =
        start_positions(&args, &mut data, coord.as_mut(), member.as_ref(), &topic).await?;
    let mut state = Progress {
        topic,
        positions,
        // Nothing counts as committed yet: the first round commits every
        // starting position, so a partition that was empty (started at its
        // end) is not skipped by the group's next consumer.
        committed: BTreeMap::new(),
        printed: 0,
    };
    let signals = (&mut interrupt, &mut terminate);
    let outcome = follow(
        &args,
        &mut data,
        coord.as_mut(),
        member.as_mut(),
        &mut state,
        signals,
    )
    .await;
    // Whatever ended the loop, a member commits what it printed and leaves,
    // so the others take its partitions at once; a second signal stops
    // waiting for the coordinator.
    if let (Some(m), Some(c)) = (member, coord.as_mut()) {
        let finish = async {
            if state.positions != state.committed {
                m.commit(c, &state.positions).await?;
            }
            m.leave(c).await
        };
        let finished = tokio::select! {
            r = finish => r.map_err(CliError::from),
            _ = interrupt.recv() => Err(CliError::Usage("interrupted again: stopped without the final commit".into())),
            _ = terminate.recv() => Err(CliError::Usage("terminated again: stopped without the final commit".into())),
        };
        match (&outcome, finished) {
            (Ok(_), Err(e)) => return Err(e),
            (Err(_), Err(e)) => eprintln!("warning: {e}"),
            _ => {}
        }
    }
    if let End::Signal = outcome? {
        eprintln!("stopped after {} messages", state.printed);
    }
    Ok(())
}

/// Where a consumer is.
struct Progress {
    /// The topic as last seen (refreshed after each rebalance).
    topic: TopicInfo,
    /// Partition -> next offset to print.
    positions: BTreeMap<i32, i64>,
    /// Partition -> offset last committed.
    committed: BTreeMap<i32, i64>,
    /// Messages printed.
    printed: u64,
}

/// Fetches and prints until done or signalled, following rebalances and
/// committing after every round with progress.
async fn follow(
    args: &ConsumeArgs,
    data: &mut Cluster,
    mut coord: Option<&mut Cluster>,
    mut member: Option<&mut Membership>,
    state: &mut Progress,
    (interrupt, terminate): (&mut Signal, &mut Signal),
) -> Result<End, CliError> {
    loop {
        if let (Some(m), Some(c)) = (member.as_deref_mut(), coord.as_deref_mut()) {
            if m.needs_rejoin() {
                // Commit what was printed, then take the new assignment (of
                // a topic that may have grown).
                if let Err(e) = m.commit(c, &state.positions).await {
                    eprintln!("warning: commit before rebalance failed: {e}");
                }
                m.rejoin(c).await?;
                state.topic = data.topic(&args.topic).await?;
                state.positions =
                    start_positions(args, data, Some(c), Some(m), &state.topic).await?;
                state.committed = BTreeMap::new();
            }
        }
        let round = tokio::select! {
            r = fetch_round(data, &state.topic, &mut state.positions, args, &mut state.printed) => r?,
            _ = interrupt.recv() => return Ok(End::Signal),
            _ = terminate.recv() => return Ok(End::Signal),
        };
        if let (Some(m), Some(c)) = (member.as_deref(), coord.as_deref_mut()) {
            if state.positions != state.committed {
                match m.commit(c, &state.positions).await {
                    Ok(()) => state.committed = state.positions.clone(),
                    Err(e) => eprintln!("warning: commit failed (will retry): {e}"),
                }
            }
        }
        if round {
            return Ok(End::Done);
        }
    }
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
    let query = match (args.from_beginning, args.from_time) {
        (true, _) => OffsetQuery::Earliest,
        (_, Some(ts)) => OffsetQuery::Time(ts),
        _ => OffsetQuery::Latest,
    };
    for (p, (wanted, start)) in admin::start_offsets(data, topic, &rest, query, args.offset).await?
    {
        if start != wanted {
            eprintln!("warning: partition {p} has no offset {wanted}; starting at {start}");
        }
        out.insert(p, start);
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
            match ResponseError::try_from_code(a.error_code) {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
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
                Some(_) => pubsub_client::error::check(
                    a.error_code,
                    || format!("fetching {}-{}", topic.name, a.partition),
                    None,
                )?,
            }
            let mut out = Vec::new();
            let mut last = None;
            let mut taken = 0u64;
            for m in &a.messages {
                if args.count.is_some_and(|c| *printed + taken >= c) {
                    break;
                }
                render(&mut out, m, args.format);
                taken += 1;
                last = Some(m.offset);
            }
            // Only what reached stdout counts as consumed (and is committed).
            if !out.is_empty() && !write_out(&out)? {
                return Ok(true);
            }
            *printed += taken;
            let done = args.count.is_some_and(|c| *printed >= c);
            let next = match last {
                Some(o) if done => o + 1,
                _ => a.next_offset.max(last.map_or(0, |o| o + 1)),
            };
            positions.insert(a.partition, next);
            if done {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn render(out: &mut Vec<u8>, m: &ConsumerRecord, format: Format) {
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
