//! `pubsub log`: offline tools on a stopped broker's data directory.
//!
//! - `pubsub log dump PATH` prints the batches (and with `--records` the
//!   records) of a segment file, or of every segment of a partition
//!   directory, as text or as one JSON object per line. Validation is the
//!   storage engine's own scan ([`pubsub_storage::scan`]): at the first
//!   invalid batch the dump of that segment stops with a line saying where
//!   and why.
//! - `pubsub log check DIR` runs [`pubsub_storage::check`] on every
//!   partition of a data directory (or on one partition directory), adds
//!   what the broker itself would change at open (directories of deleted
//!   topics, missing partition directories, unreadable metadata), prints a
//!   verdict per partition and exits 1 if opening the broker would change
//!   anything. Nothing on disk is written: files are only opened for reading.
//!
//! The data directory layout is docs/FORMAT.md section 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use pubsub_broker::TopicConfig;
use pubsub_records::{Batch, BatchHeader, Record, TimestampType, HEADER_LEN};
use pubsub_storage::fs::{FileHandle, RealFile};
use pubsub_storage::scan::{scan, ScanStop};
use pubsub_storage::{checkpoint, CheckReport, FlushPolicy, LogConfig, Outcome, SegmentCheck};
use serde_json::{json, Value};

use crate::error::CliError;

/// Offline tools on a stopped broker's files.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the batches (and records) of a segment file or of every segment
    /// of a partition directory.
    #[command(
        after_help = "Examples:\n  pubsub log dump pubsub-data/orders-0/00000000000000000000.log\n  pubsub log dump pubsub-data/orders-0 --records\n  pubsub log dump pubsub-data/orders-0 --records --json | jq -c 'select(.type == \"record\")'\n\nRun it on a stopped broker's files. Keys, header values and values are shown as text when\nthey are valid UTF-8, else as hex (in JSON: a string, or {\"hex\": \"...\"}), cut to\n--max-value-bytes; JSON records carry key_size and value_size. Compressed batches are\ndecompressed for --records. JSON lines have a \"type\": segment, batch, record,\nrecord_error, invalid, end. At the first invalid batch (a torn write, a bad CRC) the dump\nof that segment stops with a line saying at which byte and why. The exit status is 0\nwhenever the files could be read, invalid data or not: `pubsub log check` tests health."
    )]
    Dump(DumpArgs),
    /// Validate every segment and index of a data directory or partition
    /// directory and report what recovery would do. Changes nothing.
    #[command(
        after_help = "Examples:\n  pubsub log check pubsub-data\n  pubsub log check pubsub-data/orders-0 --verbose\n  pubsub log check pubsub-data --json | jq '.partitions[] | select(.healthy | not)'\n\nEvery batch's CRC and offsets are validated and every index is compared with the one the\nlog would build; broker metadata (topic files, partition checkpoints) is read too. Nothing\non disk is written. Run it on a stopped broker: it warns when a broker holds the directory.\nExit status: 0 when opening the broker would change nothing, 1 when it would change or\nrefuse something (or a file could not be read)."
    )]
    Check(CheckArgs),
}

/// Arguments of `pubsub log dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// A segment file (`<base offset>.log`) or a partition directory (`<data>/<topic>-<n>`)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Print every record too: offset, timestamp, key, headers, value
    #[arg(long)]
    records: bool,
    /// Show at most this many bytes of each key, header value and value
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    max_value_bytes: usize,
    /// One JSON object per line (NDJSON)
    #[arg(long)]
    json: bool,
}

/// Arguments of `pubsub log check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A data directory (`--data-dir` of `pubsub serve`) or one partition directory
    #[arg(value_name = "DIR")]
    path: PathBuf,
    /// Print the result as one JSON document
    #[arg(long)]
    json: bool,
    /// List every segment of every partition, not only of those with problems
    #[arg(long, short)]
    verbose: bool,
    /// index.interval.bytes the logs were written with [default: each topic's setting, else 4096]
    #[arg(long, value_name = "BYTES")]
    index_interval_bytes: Option<u64>,
}

/// Runs one `pubsub log` command.
pub fn run(cmd: LogCommand) -> Result<(), CliError> {
    match cmd {
        LogCommand::Dump(args) => dump(&args),
        LogCommand::Check(args) => check(&args),
    }
}

/// Largest decompressed batch `dump --records` inflates (the storage default).
fn max_decompressed() -> usize {
    LogConfig::default().max_decompressed_bytes
}

fn io_error(what: String, source: io::Error) -> CliError {
    CliError::Io { what, source }
}

/// Stdout, buffered; a reader that went away (`| head`) ends the output
/// quietly, any other write error is returned at the end.
struct Out {
    out: io::BufWriter<io::Stdout>,
    closed: bool,
    error: Option<io::Error>,
}

impl Out {
    fn new() -> Self {
        Out {
            out: io::BufWriter::new(io::stdout()),
            closed: false,
            error: None,
        }
    }

    fn line(&mut self, text: &str) {
        if self.closed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}") {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> Result<(), CliError> {
        if !self.closed {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
        match self.error.take() {
            Some(e) => Err(io_error("writing to stdout".into(), e)),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------- dump

/// The base offset a segment file name carries (`00000000000000000042.log`).
fn base_from_name(path: &Path) -> Option<u64> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".log")?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// The segment files of a partition directory, oldest first.
fn segments_in(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let list_error = |e| io_error(format!("cannot list {}", dir.display()), e);
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        if let Some(base) = base_from_name(&path) {
            segments.push((base, path));
        }
    }
    if segments.is_empty() {
        let hint = if dir.join("topics").is_dir() {
            format!(
                " (it looks like a data directory: give one of its partition directories, such as {})",
                dir.join("<topic>-0").display()
            )
        } else {
            String::new()
        };
        return Err(CliError::Usage(format!(
            "{} holds no segment files (<20-digit base offset>.log){hint}",
            dir.display()
        )));
    }
    segments.sort();
    Ok(segments.into_iter().map(|(_, p)| p).collect())
}

fn dump(args: &DumpArgs) -> Result<(), CliError> {
    let meta = std::fs::metadata(&args.path)
        .map_err(|e| io_error(format!("cannot read {}", args.path.display()), e))?;
    let segments = if meta.is_dir() {
        segments_in(&args.path)?
    } else {
        let name = args.path.to_string_lossy();
        if name.ends_with(".index") || name.ends_with(".timeindex") {
            return Err(CliError::Usage(format!(
                "{} is an index file: dump takes a segment (.log) file or a partition directory",
                args.path.display()
            )));
        }
        vec![args.path.clone()]
    };
    let mut out = Out::new();
    for segment in &segments {
        dump_segment(segment, args, &mut out)?;
        if out.closed {
            break;
        }
    }
    out.finish()
}

/// What a dump of one segment met.
#[derive(Default)]
struct DumpStats {
    records: u64,
    record_errors: u64,
}

fn dump_segment(path: &Path, args: &DumpArgs, out: &mut Out) -> Result<(), CliError> {
    let read_error = |e| io_error(format!("cannot read {}", path.display()), e);
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let file = RealFile::new(file);
    // A segment copied under another name: take its first batch's offset.
    let base = base_from_name(path).unwrap_or_else(|| {
        let mut first = [0u8; 8];
        file.read_exact_at(&mut first, 0)
            .ok()
            .and_then(|()| u64::try_from(i64::from_be_bytes(first)).ok())
            .unwrap_or(0)
    });
    let shown = path.display().to_string();
    if args.json {
        out.line(
            &json!({"type": "segment", "path": shown, "base_offset": base, "size": size})
                .to_string(),
        );
    } else {
        out.line(&format!(
            "segment {shown}: base offset {base}, {size} bytes"
        ));
    }
    let mut stats = DumpStats::default();
    let summary = scan(&file, size, base, |scanned| {
        if !out.closed {
            dump_batch(scanned.position, &scanned.batch, args, out, &mut stats);
        }
    })
    .map_err(read_error)?;
    if let Some(stop) = &summary.stop {
        dump_invalid(&file, size, stop, &shown, args.json, out);
    }
    let batches = summary.batches;
    if args.json {
        out.line(
            &json!({
                "type": "end",
                "path": shown,
                "batches": batches,
                "records": stats.records,
                "record_errors": stats.record_errors,
                "last_offset": summary.last_offset,
                "valid_bytes": summary.valid_len,
                "size": size,
                "valid": summary.stop.is_none() && stats.record_errors == 0,
            })
            .to_string(),
        );
    } else {
        let offsets = match summary.last_offset {
            Some(last) => format!("offsets up to {last}"),
            None => "no offsets".into(),
        };
        let errors = match stats.record_errors {
            0 => String::new(),
            n => format!(", {n} batch(es) with unreadable records"),
        };
        out.line(&format!(
            "end of {shown}: {batches} batch(es), {} record(s), {offsets}, {} of {size} bytes valid{errors}",
            stats.records, summary.valid_len
        ));
    }
    Ok(())
}

fn dump_invalid(
    file: &RealFile,
    size: u64,
    stop: &ScanStop,
    shown: &str,
    json: bool,
    out: &mut Out,
) {
    let left = size.saturating_sub(stop.position);
    // What the bytes there claim to be, when they still parse as a header.
    let mut header = [0u8; HEADER_LEN];
    let claimed = (left >= HEADER_LEN as u64)
        .then(|| file.read_exact_at(&mut header, stop.position).ok())
        .flatten()
        .and_then(|()| BatchHeader::parse(&header).ok());
    if json {
        let claimed = claimed.map(|h| {
            json!({"base_offset": h.base_offset, "last_offset": h.last_offset(), "size": h.len})
        });
        out.line(
            &json!({
                "type": "invalid",
                "path": shown,
                "position": stop.position,
                "bytes_to_end": left,
                "reason": stop.reason,
                "claimed": claimed,
            })
            .to_string(),
        );
    } else {
        let claimed = claimed.map_or(String::new(), |h| {
            format!(
                " (the header there claims offsets {}..={}, {} bytes)",
                h.base_offset,
                h.last_offset(),
                h.len
            )
        });
        out.line(&format!(
            "INVALID data at byte {} of {shown} ({left} bytes to the end of the file): {}{claimed}; the dump of this segment stops here",
            stop.position, stop.reason
        ));
    }
}

fn timestamp_type(batch: &Batch<'_>) -> &'static str {
    match batch.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

fn dump_batch(
    position: u64,
    batch: &Batch<'_>,
    args: &DumpArgs,
    out: &mut Out,
    stats: &mut DumpStats,
) {
    // The scan validated the batch: its codec is known and its CRC matches.
    let compression = batch.compression().map_or("unknown", |c| c.name());
    let crc_ok = batch.validate_crc().is_ok();
    if args.json {
        out.line(
            &json!({
                "type": "batch",
                "base_offset": batch.base_offset(),
                "last_offset": batch.last_offset(),
                "record_count": batch.record_count(),
                "position": position,
                "size": batch.len(),
                "crc": batch.crc(),
                "crc_ok": crc_ok,
                "compression": compression,
                "timestamp_type": timestamp_type(batch),
                "base_timestamp": batch.base_timestamp(),
                "max_timestamp": batch.max_timestamp(),
                "producer_id": batch.producer_id(),
                "producer_epoch": batch.producer_epoch(),
                "base_sequence": batch.base_sequence(),
                "partition_leader_epoch": batch.partition_leader_epoch(),
                "transactional": batch.is_transactional(),
                "control": batch.is_control(),
            })
            .to_string(),
        );
    } else {
        out.line(&format!(
            "baseOffset: {} lastOffset: {} count: {} position: {position} size: {} crc: {:#010x} ({}) compression: {compression} timestampType: {} baseTimestamp: {} maxTimestamp: {} producerId: {} producerEpoch: {} baseSequence: {} partitionLeaderEpoch: {} transactional: {} control: {}",
            batch.base_offset(),
            batch.last_offset(),
            batch.record_count(),
            batch.len(),
            batch.crc(),
            if crc_ok { "ok" } else { "BAD" },
            timestamp_type(batch),
            batch.base_timestamp(),
            batch.max_timestamp(),
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.partition_leader_epoch(),
            batch.is_transactional(),
            batch.is_control(),
        ));
    }
    stats.records += u64::try_from(batch.record_count()).unwrap_or(0);
    if !args.records {
        return;
    }
    let failure = match batch.records(max_decompressed()) {
        Err(e) => Some(e),
        Ok(set) => {
            let mut failure = None;
            for record in set.iter() {
                match record {
                    Ok(r) => dump_record(&r, args, out),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            failure
        }
    };
    if let Some(e) = failure {
        stats.record_errors += 1;
        if args.json {
            out.line(
                &json!({"type": "record_error", "batch_base_offset": batch.base_offset(), "reason": e.to_string()})
                    .to_string(),
            );
        } else {
            out.line(&format!(
                "| ERROR reading the records of the batch at offset {}: {e}",
                batch.base_offset()
            ));
        }
    }
}

fn dump_record(r: &Record<'_>, args: &DumpArgs, out: &mut Out) {
    let max = args.max_value_bytes;
    if args.json {
        let headers: Vec<Value> = r
            .headers()
            .map(|h| {
                json!({
                    "key": json_bytes(Some(h.key), max),
                    "value": json_bytes(h.value, max),
                    "value_size": h.value.map(<[u8]>::len),
                })
            })
            .collect();
        out.line(
            &json!({
                "type": "record",
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": json_bytes(r.key, max),
                "key_size": r.key.map(<[u8]>::len),
                "headers": headers,
                "value": json_bytes(r.value, max),
                "value_size": r.value.map(<[u8]>::len),
            })
            .to_string(),
        );
    } else {
        let headers: Vec<String> = r
            .headers()
            .map(|h| {
                format!(
                    "{}: {}",
                    human_bytes(Some(h.key), max),
                    human_bytes(h.value, max)
                )
            })
            .collect();
        out.line(&format!(
            "| offset: {} timestamp: {} key: {} headers: [{}] value: {}",
            r.offset,
            r.timestamp,
            human_bytes(r.key, max),
            headers.join(", "),
            human_bytes(r.value, max)
        ));
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn utf8_prefix(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes for people: `null`, a quoted, escaped string if they are UTF-8,
/// else `0x` and hex; cut to `max` bytes with the full size noted.
fn human_bytes(bytes: Option<&[u8]>, max: usize) -> String {
    let Some(bytes) = bytes else {
        return "null".into();
    };
    let (mut text, shown) = match std::str::from_utf8(bytes) {
        Ok(s) => {
            let prefix = utf8_prefix(s, max);
            (format!("{prefix:?}"), prefix.len())
        }
        Err(_) => {
            let prefix = &bytes[..max.min(bytes.len())];
            (format!("0x{}", hex(prefix)), prefix.len())
        }
    };
    if shown < bytes.len() {
        let _ = write!(text, "... (first {shown} of {} bytes)", bytes.len());
    }
    text
}

/// Bytes for JSON: `null`, a string if they are UTF-8, else `{"hex": ...}`;
/// cut to `max` bytes (the record's `*_size` fields give the full size).
fn json_bytes(bytes: Option<&[u8]>, max: usize) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(utf8_prefix(s, max).to_string()),
            Err(_) => json!({"hex": hex(&b[..max.min(b.len())])}),
        },
    }
}

// ---------------------------------------------------------------- check

const TOPICS_DIR: &str = "topics";
const TOPIC_SUFFIX: &str = ".topic";
const BROKER_FILE: &str = "broker.checkpoint";
const PARTITION_FILE: &str = "partition.checkpoint";
const PRODUCERS_FILE: &str = "producers.checkpoint";
const LOCK_FILE: &str = ".lock";
const DELETE_SUFFIX: &str = ".delete";
// Checkpoint kinds of the broker's files (docs/FORMAT.md section 9).
const KIND_BROKER: u16 = checkpoint::FIRST_USER_KIND;
const KIND_TOPIC: u16 = checkpoint::FIRST_USER_KIND + 1;
const KIND_PARTITION: u16 = checkpoint::FIRST_USER_KIND + 2;
const KIND_PRODUCERS: u16 = checkpoint::FIRST_USER_KIND + 3;

/// A topic file (`topics/<name>.topic`), the fields that matter here.
#[derive(Debug, serde::Deserialize)]
struct TopicFile {
    name: String,
    id: String,
    partitions: u32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// A partition directory's `partition.checkpoint`.
#[derive(Debug, serde::Deserialize)]
struct PartitionFile {
    topic: String,
    topic_id: String,
    partition: i32,
}

/// Reads a broker metadata file: `Ok(None)` if absent, `Err(why)` if it
/// cannot be trusted (bad container or bad JSON, as the broker decides).
fn read_meta<T: serde::de::DeserializeOwned>(path: &Path, kind: u16) -> Result<Option<T>, String> {
    match checkpoint::read(path, kind) {
        Ok(None) => Ok(None),
        Ok(Some(payload)) => serde_json::from_slice(&payload)
            .map(Some)
            .map_err(|e| format!("corrupt {}: {e}", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// Holds files a partition directory may contain.
fn is_partition_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let path = e.path();
        base_from_name(&path).is_some()
            || e.file_name() == PARTITION_FILE
            || e.file_name() == pubsub_storage::RECOVERY_CHECKPOINT
    })
}

/// `<topic>-<n>` split at its last dash.
fn split_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, n) = name.rsplit_once('-')?;
    Some((topic, n.parse().ok()?))
}

/// True if a broker holds the directory's lock right now.
fn broker_running(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// The findings for one partition directory.
#[derive(Debug)]
struct PartitionCheck {
    name: String,
    topic: Option<String>,
    partition: Option<i32>,
    index_interval_bytes: u64,
    report: CheckReport,
    /// What the broker would change or refuse, besides the log itself.
    problems: Vec<String>,
    /// The log ends below its recovery point (recovery refuses to open it).
    ends_below_recovery_point: bool,
}

impl PartitionCheck {
    fn healthy(&self) -> bool {
        self.report.is_healthy()
            && self.report.leftover_files.is_empty()
            && !self.report.segments.is_empty()
            && !self.ends_below_recovery_point
            && self.problems.is_empty()
    }
}

/// What the broker's own open would make of the data directory's topics.
#[derive(Debug, Default)]
struct Topics {
    /// By topic name.
    by_name: BTreeMap<String, TopicFile>,
    /// Unreadable topic files: the broker refuses to open.
    unreadable: bool,
}

fn read_topics(data_dir: &Path, problems: &mut Vec<String>) -> Result<Topics, CliError> {
    let mut topics = Topics::default();
    let dir = data_dir.join(TOPICS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(topics),
        Err(e) => return Err(io_error(format!("cannot list {}", dir.display()), e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("cannot list {}", dir.display()), e))?;
        if entry.file_name().to_string_lossy().ends_with(TOPIC_SUFFIX) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        match read_meta::<TopicFile>(&path, KIND_TOPIC) {
            Ok(Some(t)) => {
                topics.by_name.insert(t.name.clone(), t);
            }
            Ok(None) => {}
            Err(why) => {
                topics.unreadable = true;
                problems.push(format!("{why}: open would fail"));
            }
        }
    }
    Ok(topics)
}

fn check_partition(
    dir: &Path,
    broker_dir: bool,
    topics: &Topics,
    index_interval: Option<u64>,
) -> Result<PartitionCheck, CliError> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut problems = Vec::new();
    let meta = read_meta::<PartitionFile>(&dir.join(PARTITION_FILE), KIND_PARTITION)
        .unwrap_or_else(|why| {
            problems.push(format!("{why}: open would fail"));
            None
        });
    let (topic, partition) = match &meta {
        Some(m) => (Some(m.topic.clone()), Some(m.partition)),
        None => match split_dir_name(&name) {
            Some((t, n)) => (Some(t.to_string()), Some(n)),
            None => (None, None),
        },
    };
    let topic_file = topic.as_ref().and_then(|t| topics.by_name.get(t));
    // The broker removes a directory whose partition.checkpoint names a
    // topic (id) it does not have, or a partition beyond the count.
    if let (true, false, Some(m)) = (broker_dir, topics.unreadable, &meta) {
        let stale = match topic_file {
            None => Some(format!("topic {:?} does not exist", m.topic)),
            Some(t) if t.id != m.topic_id => Some(format!(
                "topic {:?} now has id {} (this directory is left from a deleted topic of the same name)",
                m.topic, t.id
            )),
            Some(t) if !u32::try_from(m.partition).is_ok_and(|p| p < t.partitions) => Some(
                format!("topic {:?} has only {} partition(s)", m.topic, t.partitions),
            ),
            Some(_) if name != format!("{}-{}", m.topic, m.partition) => Some(format!(
                "the directory of that partition is {}-{}",
                m.topic, m.partition
            )),
            Some(_) => None,
        };
        if let Some(why) = stale {
            problems.push(format!(
                "{PARTITION_FILE} names topic {:?} (id {}) partition {}, but {why}: open would delete this directory",
                m.topic, m.topic_id, m.partition
            ));
        }
    }
    // The log configuration the broker opens the partition with.
    let mut config = LogConfig::default();
    if let Some(t) = topic_file {
        match TopicConfig::default().with_overrides(&t.configs) {
            Ok(c) => config = c.log_config(FlushPolicy::Never),
            Err(e) => problems.push(format!("topic {:?}: {e}: open would fail", t.name)),
        }
    }
    if let Some(bytes) = index_interval {
        config.index_interval_bytes = bytes;
    }
    if let Err(why) = read_meta::<Value>(&dir.join(PRODUCERS_FILE), KIND_PRODUCERS) {
        problems.push(format!(
            "{why}: open would ignore it and rebuild the producer state from the log"
        ));
    }
    let report = pubsub_storage::check(dir, &config)?;
    Ok(PartitionCheck {
        name,
        topic,
        partition,
        index_interval_bytes: config.index_interval_bytes,
        ends_below_recovery_point: report.ends_below_recovery_point(),
        report,
        problems,
    })
}

/// The partition directories of a data directory, by topic then partition;
/// `<topic>-<n>.<uuid>.delete` directories go to `deleting`.
fn partition_dirs(data_dir: &Path, deleting: &mut Vec<String>) -> Result<Vec<PathBuf>, CliError> {
    let list_error = |e| io_error(format!("cannot list {}", data_dir.display()), e);
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(data_dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(DELETE_SUFFIX) {
            deleting.push(name);
        } else if name != TOPICS_DIR && is_partition_dir(&path) {
            let key = match split_dir_name(&name) {
                Some((t, n)) => (t.to_string(), n),
                None => (name.clone(), -1),
            };
            dirs.push((key, path));
        }
    }
    dirs.sort();
    deleting.sort();
    Ok(dirs.into_iter().map(|(_, p)| p).collect())
}

fn check(args: &CheckArgs) -> Result<(), CliError> {
    let path = &args.path;
    let meta = std::fs::metadata(path)
        .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
    if !meta.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a directory: check takes a data directory or a partition directory",
            path.display()
        )));
    }
    let single = is_partition_dir(path);
    let data_dir = if single {
        path.parent()
            .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
    } else {
        path.clone()
    };
    let broker_dir = data_dir.join(TOPICS_DIR).is_dir() || data_dir.join(BROKER_FILE).exists();
    let running = broker_running(&data_dir);
    if running {
        eprintln!(
            "warning: a running broker holds {} (its {LOCK_FILE} is locked): active segments may change while they are checked",
            data_dir.display()
        );
    }
    let mut problems = Vec::new();
    let topics = if broker_dir {
        read_topics(&data_dir, &mut problems)?
    } else {
        Topics::default()
    };
    let dirs = if single {
        vec![path.clone()]
    } else {
        let mut deleting = Vec::new();
        let dirs = partition_dirs(path, &mut deleting)?;
        for d in deleting {
            problems.push(format!(
                "{d}: a partition directory being deleted: open would remove it"
            ));
        }
        if dirs.is_empty() && !broker_dir {
            return Err(CliError::Usage(format!(
                "{} is neither a pubsub data directory nor a partition directory",
                path.display()
            )));
        }
        if broker_dir {
            if let Err(why) = read_meta::<Value>(&data_dir.join(BROKER_FILE), KIND_BROKER) {
                problems.push(format!("{why}: open would fail"));
            }
            for t in topics.by_name.values() {
                for p in 0..t.partitions {
                    if !data_dir.join(format!("{}-{p}", t.name)).is_dir() {
                        problems.push(format!(
                            "topic {:?} partition {p} has no directory: open would create an empty log",
                            t.name
                        ));
                    }
                }
            }
        }
        dirs
    };
    let mut partitions = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        partitions.push(check_partition(
            dir,
            broker_dir,
            &topics,
            args.index_interval_bytes,
        )?);
    }
    let unhealthy = partitions.iter().filter(|p| !p.healthy()).count();
    let healthy = unhealthy == 0 && problems.is_empty();
    let text = if args.json {
        let doc = json!({
            "path": path.display().to_string(),
            "broker_data_dir": broker_dir,
            "broker_running": running,
            "healthy": healthy,
            "problems": problems,
            "partitions": partitions.iter().map(partition_json).collect::<Vec<_>>(),
        });
        format!("{doc}\n")
    } else {
        let mut text = String::new();
        for p in &partitions {
            human_partition(&mut text, p, args.verbose);
        }
        for problem in &problems {
            let _ = writeln!(text, "PROBLEM: {problem}");
        }
        let _ = writeln!(
            text,
            "{} partition(s) checked: {} healthy, {unhealthy} not healthy{}",
            partitions.len(),
            partitions.len() - unhealthy,
            match problems.len() {
                0 => String::new(),
                n => format!("; {n} data directory problem(s)"),
            }
        );
        text
    };
    let mut out = Out::new();
    out.line(text.trim_end_matches('\n'));
    out.finish()?;
    if healthy {
        Ok(())
    } else {
        Err(CliError::Unhealthy(format!(
            "log check: {unhealthy} of {} partition(s) not healthy{}",
            partitions.len(),
            match problems.len() {
                0 => String::new(),
                n => format!(", {n} data directory problem(s)"),
            }
        )))
    }
}

fn segment_line(s: &SegmentCheck) -> String {
    let mut line = format!(
        "segment {:020}: {} bytes, {} batch(es)",
        s.base_offset, s.size, s.batches
    );
    if let Some(l) = s.last_offset {
        let _ = write!(line, ", offsets {}..={l}", s.base_offset);
    }
    if let Some(p) = &s.invalid {
        let _ = write!(
            line,
            "; INVALID at byte {} ({} bytes to the end): {}",
            p.position,
            s.size.saturating_sub(p.position),
            p.reason
        );
    }
    if let Some(g) = &s.gap {
        let _ = write!(line, "; GAP: {g}");
    }
    if let Some(p) = &s.index_problem {
        let _ = write!(line, "; offset index: {p}");
    }
    if let Some(p) = &s.time_index_problem {
        let _ = write!(line, "; time index: {p}");
    }
    line
}

fn segment_has_problem(s: &SegmentCheck) -> bool {
    s.invalid.is_some()
        || s.gap.is_some()
        || s.index_problem.is_some()
        || s.time_index_problem.is_some()
}

fn human_partition(text: &mut String, p: &PartitionCheck, verbose: bool) {
    let r = &p.report;
    let offsets = match (
        r.segments.first(),
        r.segments.iter().rev().find_map(|s| s.last_offset),
    ) {
        (Some(first), Some(last)) => format!("offsets {}..={last}", first.base_offset),
        (Some(first), None) => format!("empty, next offset {}", first.base_offset),
        (None, _) => "no segments".into(),
    };
    let stop = if r.clean_shutdown {
        "stopped cleanly".to_string()
    } else {
        format!("not stopped cleanly: {}", r.recovery_action())
    };
    if p.healthy() {
        let _ = writeln!(
            text,
            "{}: ok ({} segment(s), {offsets}, {stop})",
            p.name,
            r.segments.len()
        );
    } else {
        let log_intact = r.is_healthy() && !r.segments.is_empty() && !p.ends_below_recovery_point;
        let mut action = if log_intact && !r.leftover_files.is_empty() {
            "open would remove or settle leftover files".to_string()
        } else if log_intact {
            "the log itself is intact, but:".to_string()
        } else {
            r.recovery_action()
        };
        if r.segments.iter().any(|s| s.invalid.is_some()) && r.plan.outcome == Outcome::KeepAll {
            action.push_str(
                "; the invalid data lies below the recovery point, which open does not read: it stays, and consumers reading it get a CRC error",
            );
        }
        let _ = writeln!(
            text,
            "{}: NOT HEALTHY ({} segment(s), {offsets}): {action}",
            p.name,
            r.segments.len()
        );
    }
    for s in &r.segments {
        if verbose || segment_has_problem(s) {
            let _ = writeln!(text, "  {}", segment_line(s));
        }
    }
    for c in &r.checkpoint_problems {
        let _ = writeln!(text, "  checkpoint: {c}");
    }
    for l in &r.leftover_files {
        let _ = writeln!(
            text,
            "  leftover file: {l} (open would remove or settle it)"
        );
    }
    for problem in &p.problems {
        let _ = writeln!(text, "  {problem}");
    }
    let differs = |p: &Option<String>| p.as_ref().is_some_and(|p| p.contains("differ"));
    if r.segments
        .iter()
        .any(|s| differs(&s.index_problem) || differs(&s.time_index_problem))
    {
        let _ = writeln!(
            text,
            "  (indexes were compared with those built at index.interval.bytes = {}; a log written with another interval shows every index as different: see --index-interval-bytes)",
            p.index_interval_bytes
        );
    }
    if verbose {
        let rp = r
            .recovery_point
            .map_or("none".to_string(), |rp| rp.to_string());
        let _ = writeln!(
            text,
            "  recovery point {rp}, index interval {} bytes: {}",
            p.index_interval_bytes,
            r.recovery_action()
        );
    }
}

fn partition_json(p: &PartitionCheck) -> Value {
    let r = &p.report;
    let segments: Vec<Value> = r
        .segments
        .iter()
        .map(|s| {
            json!({
                "base_offset": s.base_offset,
                "size": s.size,
                "valid_bytes": s.valid_bytes,
                "batches": s.batches,
                "last_offset": s.last_offset,
                "invalid": s.invalid.as_ref().map(|i| json!({"position": i.position, "reason": i.reason})),
                "gap": s.gap,
                "index_problem": s.index_problem,
                "time_index_problem": s.time_index_problem,
            })
        })
        .collect();
    json!({
        "dir": r.dir.display().to_string(),
        "name": p.name,
        "topic": p.topic,
        "partition": p.partition,
        "healthy": p.healthy(),
        "recovery_action": r.recovery_action(),
        "clean_shutdown": r.clean_shutdown,
        "recovery_point": r.recovery_point,
        "index_interval_bytes": p.index_interval_bytes,
        "ends_below_recovery_point": p.ends_below_recovery_point,
        "segments": segments,
        "leftover_files": r.leftover_files,
        "checkpoint_problems": r.checkpoint_problems,
        "problems": p.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_as_text_or_hex_and_cut_on_characters() {
        assert_eq!(human_bytes(None, 10), "null");
        assert_eq!(human_bytes(Some(b"hi \"x\"\n"), 10), r#""hi \"x\"\n""#);
        assert_eq!(human_bytes(Some(&[0xff, 0x00]), 10), "0xff00");
        assert_eq!(
            human_bytes(Some(b"abcdef"), 3),
            "\"abc\"... (first 3 of 6 bytes)"
        );
        // "é" is two bytes: a cut inside it falls back to the character before.
        assert_eq!(
            human_bytes(Some("aé".as_bytes()), 2),
            "\"a\"... (first 1 of 3 bytes)"
        );
        assert_eq!(json_bytes(Some(&[0xff, 1, 2]), 2), json!({"hex": "ff01"}));
        assert_eq!(json_bytes(Some(b"abc"), 2), json!("ab"));
        assert_eq!(json_bytes(None, 2), Value::Null);
    }

    #[test]
    fn segment_names_carry_base_offsets() {
        assert_eq!(
            base_from_name(Path::new("/d/t-0/00000000000000000042.log")),
            Some(42)
        );
        assert_eq!(base_from_name(Path::new("42.log")), None);
        assert_eq!(
            base_from_name(Path::new("00000000000000000042.log.deleted")),
            None
        );
        assert_eq!(split_dir_name("my-topic-12"), Some(("my-topic", 12)));
        assert_eq!(split_dir_name("topics"), None);
    }
}
