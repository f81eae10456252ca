//! `pubsub produce TOPIC`: one message per line of stdin (or of a file),
//! optionally `KEY<sep>VALUE`, sent in batches as lines arrive: a pipe is
//! sent in large batches, a terminal line by line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use pubsub_client::{produce, Cluster, TopicInfo};
use pubsub_records::partitioner::partition_for_key;
use pubsub_records::record::Header;
use pubsub_records::{BatchBuilder, Compression, NewRecord};
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::remote::{block_on, parse_key_value, write_out, ConnArgs};

/// Most lines in one batch.
const BATCH_LINES: usize = 1000;
/// Most value and key bytes in one batch (below the default 1 MiB limit).
const BATCH_BYTES: usize = 512 << 10;

/// The examples and notes under `--help`.
pub const AFTER_HELP: &str = "Examples:\n  echo hello | pubsub produce orders\n  pubsub produce orders --key-separator : <<< 'AAPL:buy 100'\n  pubsub produce orders --file orders.txt --acks all --compression zstd --verbose\n  pubsub produce prices --partition 2 --header source=feed-1\n\nEach line is one message (without its newline). With --key-separator the text\nbefore the first separator is the key; keyed messages go to the partition\nKafka's default partitioner picks, so equal keys share a partition. Keyless\nmessages go round the partitions batch by batch.";

/// `pubsub produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Topic (must exist)
    topic: String,
    /// Read messages from this file instead of stdin
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Split each line into key and value at the first SEP
    #[arg(long, short = 'K', value_name = "SEP")]
    key_separator: Option<String>,
    /// Send every message to this partition
    #[arg(long, short)]
    partition: Option<i32>,
    /// 0, 1 or all
    #[arg(long, default_value = "all", value_parser = crate::parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// A header KEY=VALUE on every message, repeatable
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// none, gzip, snappy, lz4 or zstd
    #[arg(long, short = 'z', default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Print the partition and offset of every message
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    Compression::ALL
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| format!("{s:?}: compression is none, gzip, snappy, lz4 or zstd"))
}

/// One input line, split.
struct Line {
    number: u64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// Runs `pubsub produce`.
pub fn run(args: ProduceArgs) -> Result<(), CliError> {
    block_on(produce_all(args))
}

async fn produce_all(args: ProduceArgs) -> Result<(), CliError> {
    let mut cluster = args.conn.connect().await?;
    let topic = cluster.topic(&args.topic).await?;
    crate::remote::check_partition(&topic, args.partition)?;
    if topic.partitions.is_empty() {
        return Err(CliError::Usage(format!(
            "topic {} has no partitions yet",
            args.topic
        )));
    }
    let mut lines = read_lines(&args)?;
    let mut sent = 0u64;
    let mut next_partition = 0usize;
    while let Some(first) = lines.recv().await {
        let first = first
            .map_err(|e| CliError::Usage(format!("{e} ({sent} messages acknowledged before it)")));
        // Whatever else has arrived joins the batch; nothing waits.
        // A bad line ends the input: the lines before it are still sent.
        let mut batch = vec![first?];
        let mut bytes = batch[0].value.len();
        let mut bad_line = None;
        while batch.len() < BATCH_LINES && bytes < BATCH_BYTES {
            match lines.try_recv() {
                Ok(Ok(line)) => {
                    bytes += line.value.len() + line.key.as_ref().map_or(0, Vec::len);
                    batch.push(line);
                }
                Ok(Err(e)) => {
                    bad_line = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        let keyless = topic.partitions[next_partition % topic.partitions.len().max(1)].0;
        next_partition += 1;
        // Partition of each line, in input order.
        let placed: Vec<i32> = batch
            .iter()
            .map(|line| match (args.partition, &line.key) {
                (Some(p), _) => p,
                (None, Some(key)) => {
                    let n = u32::try_from(topic.partitions.len()).unwrap_or(1);
                    topic.partitions[partition_for_key(key, n) as usize].0
                }
                (None, None) => keyless,
            })
            .collect();
        let mut by_partition: BTreeMap<i32, Vec<&Line>> = BTreeMap::new();
        for (line, &p) in batch.iter().zip(&placed) {
            by_partition.entry(p).or_default().push(line);
        }
        // Offset of the next line of each partition, once acknowledged.
        let mut next_offset: BTreeMap<i32, Option<i64>> = BTreeMap::new();
        for (p, lines) in by_partition {
            let result = send(&mut cluster, &topic, p, &args, &lines).await;
            let base = result.map_err(|e| {
                CliError::Usage(format!(
                    "{e} ({sent} messages acknowledged before this batch)"
                ))
            })?;
            sent += lines.len() as u64;
            next_offset.insert(p, base);
        }
        if args.verbose {
            let mut out = String::new();
            for p in placed {
                match next_offset.get_mut(&p) {
                    Some(Some(o)) => {
                        out.push_str(&format!("partition {p} offset {o}\n"));
                        *o += 1;
                    }
                    _ => out.push_str(&format!("partition {p} offset unknown (acks=0)\n")),
                }
            }
            write_out(out.as_bytes())?;
        }
        if let Some(e) = bad_line {
            return Err(CliError::Usage(format!(
                "{e} ({sent} messages acknowledged before it)"
            )));
        }
    }
    eprintln!(
        "produced {sent} messages to {}{}",
        args.topic,
        if args.acks == 0 {
            " (acks=0: not confirmed)"
        } else {
            ""
        }
    );
    Ok(())
}

async fn send(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partition: i32,
    args: &ProduceArgs,
    lines: &[&Line],
) -> Result<Option<i64>, CliError> {
    let headers: Vec<Header<'_>> = args
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k.as_bytes(),
            value: Some(v.as_bytes()),
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut b = BatchBuilder::new().compression(args.compression);
    for line in lines {
        b.push(&NewRecord {
            timestamp: now,
            key: line.key.as_deref(),
            value: Some(&line.value),
            headers: &headers,
        })
        .map_err(|e| CliError::Usage(format!("line {}: {e}", line.number)))?;
    }
    let records = b
        .build()
        .map_err(|e| CliError::Usage(format!("building a batch: {e}")))?;
    Ok(produce::to_leader(cluster, topic, partition, args.acks, records.into()).await?)
}

/// Reads the input on a thread of its own, one `Line` per line.
fn read_lines(args: &ProduceArgs) -> Result<mpsc::Receiver<Result<Line, CliError>>, CliError> {
    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |source| CliError::Io {
                what: format!("opening {}", path.display()),
                source,
            },
        )?)),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let separator = args.key_separator.clone().map(String::into_bytes);
    let (tx, rx) = mpsc::channel(4 * BATCH_LINES);
    std::thread::spawn(move || {
        let mut input = input;
        let mut number = 0u64;
        loop {
            let mut buf = Vec::new();
            let line = match input.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    number += 1;
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                        if buf.last() == Some(&b'\r') {
                            buf.pop();
                        }
                    }
                    split(number, buf, separator.as_deref())
                }
                Err(source) => Err(CliError::Io {
                    what: "reading the input".into(),
                    source,
                }),
            };
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                return;
            }
        }
    });
    Ok(rx)
}

fn split(number: u64, line: Vec<u8>, separator: Option<&[u8]>) -> Result<Line, CliError> {
    let Some(sep) = separator.filter(|s| !s.is_empty()) else {
        return Ok(Line {
            number,
            key: None,
            value: line,
        });
    };
    let at = line
        .windows(sep.len())
        .position(|w| w == sep)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "line {number} has no key separator {:?}",
                String::from_utf8_lossy(sep)
            ))
        })?;
    Ok(Line {
        number,
        key: Some(line[..at].to_vec()),
        value: line[at + sep.len()..].to_vec(),
    })
}
