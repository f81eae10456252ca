//! `pubsub bench partitions`: what many partitions cost one broker. Starts
//! `pubsub serve` (this same binary) on a fresh data directory, creates
//! topics in CreateTopics requests of many topics each, asks Metadata for
//! all of them, writes one record to every partition and reads every
//! partition back, then stops the broker cleanly and kills it with SIGKILL,
//! timing each start; after each phase it reads the broker's RSS, open
//! descriptors and memory maps from /proc. Prints a markdown table.
//!
//! The broker inherits this process's limits: run it under the limits you
//! want measured (`benches/partitions.sh` sets soft 1024 and raises the hard
//! limit to 65536 where it may; a container without CAP_SYS_RESOURCE keeps
//! its own, and the table's first line says which limits held). The broker
//! raises its soft limit to whatever hard limit it finds and sizes its
//! descriptor budget from that, never from a number assumed here.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use pubsub_client::connection::{decode_answer, Connection};
use pubsub_records::{BatchBuilder, Batches};

use crate::error::CliError;

/// What to measure.
#[derive(Debug, clap::Args)]
pub struct PartitionsArgs {
    /// Topics to create
    #[arg(long, default_value_t = 5_000)]
    pub topics: u32,
    /// Partitions of each topic
    #[arg(long, default_value_t = 20)]
    pub partitions_per_topic: i32,
    /// Topics per CreateTopics request
    #[arg(long, default_value_t = 1_000)]
    pub topics_per_request: u32,
    /// Topics per Produce and per Fetch request
    #[arg(long, default_value_t = 100)]
    pub topics_per_write: u32,
    /// Data directory (must not exist; default: a new one under the
    /// temporary directory, removed afterwards)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the data directory afterwards
    #[arg(long)]
    pub keep: bool,
}

type Res<T> = Result<T, CliError>;

fn fail(what: impl Into<String>) -> CliError {
    CliError::Usage(what.into())
}

/// The running broker under test.
struct Serve {
    child: Child,
    addr: String,
    /// From spawn to its `listening on` line (the broker listens once every
    /// partition is open).
    listening: Duration,
    /// The log its stderr goes to, and where this start's lines begin.
    log: PathBuf,
    log_from: u64,
}

impl Serve {
    fn start(data: &Path, log: &Path) -> Res<Serve> {
        let exe = std::env::current_exe().map_err(|e| fail(format!("own path: {e}")))?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| fail(format!("{}: {e}", log.display())))?;
        let log_from = stderr.metadata().map_or(0, |m| m.len());
        let began = Instant::now();
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("PUBSUB_LOG", "info")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| fail(format!("spawning pubsub serve: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("no stdout of pubsub serve"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(600)).map_err(|_| {
            let fate = match child.try_wait() {
                Ok(Some(status)) => exit_story(status),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    "killed after 600 s without listening".to_string()
                }
            };
            fail(format!(
                "pubsub serve did not start ({fate}); the end of its log {}:\n{}",
                log.display(),
                log_tail(log, log_from)
            ))
        })?;
        let listening = began.elapsed();
        let addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| fail(format!("unexpected first line of pubsub serve: {line}")))?
            .to_string();
        Ok(Serve {
            child,
            addr,
            listening,
            log: log.to_path_buf(),
            log_from,
        })
    }

    /// `e`, the failure of a step against the broker, with the broker's
    /// fate if it is gone: its exit status or the signal that ended it, and
    /// the end of what it wrote to stderr since it started. (A broker that
    /// vanished under load once left only a reset connection behind.)
    fn explain(&mut self, e: CliError) -> CliError {
        // A broker that just died may not be reapable yet.
        let mut status = None;
        for _ in 0..50 {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
        match status {
            None => e,
            Some(status) => fail(format!(
                "{e}\npubsub serve (pid {}) is gone: {}; the end of its log {}:\n{}",
                self.child.id(),
                exit_story(status),
                self.log.display(),
                log_tail(&self.log, self.log_from)
            )),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits: how long the clean stop took.
    fn stop(mut self) -> Res<Duration> {
        let began = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .map_err(|e| fail(format!("kill: {e}")))?;
        if !status.success() {
            return Err(fail("kill -TERM failed"));
        }
        let exit = self
            .child
            .wait()
            .map_err(|e| fail(format!("waiting for pubsub serve: {e}")))?;
        if !exit.success() {
            return Err(fail(format!(
                "pubsub serve stopped with {}; the end of its log {}:\n{}",
                exit_story(exit),
                self.log.display(),
                log_tail(&self.log, self.log_from)
            )));
        }
        Ok(began.elapsed())
    }

    fn kill9(mut self) -> Res<()> {
        self.child
            .kill()
            .map_err(|e| fail(format!("SIGKILL: {e}")))?;
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a process ended, in words: its exit code, or the signal that killed
/// it (by name for the usual suspects) and whether it dumped core.
fn exit_story(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    // Linux's numbers (x86-64 and arm64 agree on these).
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "signal",
    };
    let core = if status.core_dumped() {
        ", core dumped"
    } else {
        ""
    };
    format!("killed by {name} ({signal}{core})")
}

/// The last lines (at most 20, from the last 16 KiB) that `log` holds past
/// byte `from`, or why they could not be read.
fn log_tail(log: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const LINES: usize = 20;
    const BYTES: u64 = 16 << 10;
    let read = || -> std::io::Result<String> {
        let mut f = std::fs::File::open(log)?;
        let end = f.metadata()?.len();
        let at = from.max(end.saturating_sub(BYTES)).min(end);
        f.seek(SeekFrom::Start(at))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let keep = &lines[lines.len().saturating_sub(LINES)..];
        Ok(if keep.is_empty() {
            "(nothing)".to_string()
        } else {
            keep.join("\n")
        })
    };
    read().unwrap_or_else(|e| format!("(unreadable: {e})"))
}

/// RSS, descriptors and maps of a process, from /proc.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
    maps: usize,
}

fn usage(pid: u32) -> Res<Usage> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc.join("status"))
        .map_err(|e| fail(format!("/proc/{pid}/status: {e}")))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(proc.join("fd"))
        .map_err(|e| fail(format!("/proc/{pid}/fd: {e}")))?
        .count();
    let maps = std::fs::read_to_string(proc.join("maps"))
        .map_err(|e| fail(format!("/proc/{pid}/maps: {e}")))?
        .lines()
        .count();
    Ok(Usage { rss_kib, fds, maps })
}

fn limits() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    format!(
                        "soft {} / hard {}",
                        f.get(3).unwrap_or(&"?"),
                        f.get(4).unwrap_or(&"?")
                    )
                })
        })
        .unwrap_or_else(|| "unknown".into())
}

fn max_map_count() -> String {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn topic_name(i: u32) -> String {
    format!("p{i:05}")
}

fn tname(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Metadata for every topic: time, answer bytes, topics and partitions seen.
async fn metadata_all(addr: &str) -> Res<(Duration, usize, usize, usize)> {
    let conn = Connection::connect(addr, "bench-partitions").await?;
    let v = conn.versions().pick::<MetadataRequest>(1..=12)?;
    let mut req = MetadataRequest::default().with_topics(None);
    if v >= 4 {
        req = req.with_allow_auto_topic_creation(false);
    }
    let (mut tx, mut rx) = conn.into_split();
    let began = Instant::now();
    let id = tx.send(v, &req).await?;
    let mut frame = rx.read_frame().await?;
    let took = began.elapsed();
    let size = frame.len() + 4;
    let resp: MetadataResponse = decode_answer::<MetadataRequest>(&mut frame, id, v)?;
    let partitions = resp.topics.iter().map(|t| t.partitions.len()).sum();
    Ok((took, size, resp.topics.len(), partitions))
}

/// Creates `topics` topics in requests of `per_request`: total time and the
/// slowest request.
async fn create_all(addr: &str, args: &PartitionsArgs) -> Res<(Duration, Duration)> {
    let mut conn = Connection::connect(addr, "bench-partitions").await?;
    let v = conn.versions().pick::<CreateTopicsRequest>(2..=7)?;
    let began = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut next = 0;
    while next < args.topics {
        let end = (next + args.topics_per_request.max(1)).min(args.topics);
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(600_000)
            .with_topics(
                (next..end)
                    .map(|i| {
                        CreatableTopic::default()
                            .with_name(tname(&topic_name(i)))
                            .with_num_partitions(args.partitions_per_topic)
                            .with_replication_factor(-1)
                    })
                    .collect(),
            );
        let t = Instant::now();
        let resp = conn.call(v, &req).await?;
        slowest = slowest.max(t.elapsed());
        for topic in &resp.topics {
            if topic.error_code != 0 {
                return Err(fail(format!(
                    "creating {}: error {} {}",
                    topic.name.0.as_str(),
                    topic.error_code,
                    topic
                        .error_message
                        .as_ref()
                        .map_or(String::new(), |m| m.to_string())
                )));
            }
        }
        next = end;
    }
    Ok((began.elapsed(), slowest))
}

/// Produces one record (acks=1) to every partition, `per_write` topics a
/// request.
async fn write_all(addr: &str, args: &PartitionsArgs, round: u32) -> Res<Duration> {
    let mut conn = Connection::connect(addr, "bench-partitions").await?;
    let v = conn
        .versions()
        .pick::<ProduceRequest>(pubsub_client::produce::VERSIONS)?;
    let value = format!("record {round}");
    // Stamped now: a record of time 0 is older than any retention, so a
    // write round longer than the retention check's period saw its first
    // records deleted before the read round.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut b = BatchBuilder::new();
    b.push(&pubsub_records::NewRecord {
        timestamp: now_ms,
        key: None,
        value: Some(value.as_bytes()),
        headers: &[],
    })
    .map_err(|e| fail(format!("building a batch: {e}")))?;
    let batch = Bytes::from(
        b.build()
            .map_err(|e| fail(format!("building a batch: {e}")))?,
    );
    let began = Instant::now();
    let mut next = 0;
    while next < args.topics {
        let end = (next + args.topics_per_write.max(1)).min(args.topics);
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(
                (next..end)
                    .map(|i| {
                        TopicProduceData::default()
                            .with_name(tname(&topic_name(i)))
                            .with_partition_data(
                                (0..args.partitions_per_topic)
                                    .map(|p| {
                                        PartitionProduceData::default()
                                            .with_index(p)
                                            .with_records(Some(batch.clone()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = conn.call(v, &req).await?;
        for t in &resp.responses {
            for p in &t.partition_responses {
                if p.error_code != 0 {
                    return Err(fail(format!(
                        "producing to {}-{}: error {}",
                        t.name.0.as_str(),
                        p.index,
                        p.error_code
                    )));
                }
            }
        }
        next = end;
    }
    Ok(began.elapsed())
}

/// Reads every partition from offset 0, `per_write` topics a request;
/// checks each holds `expect` records. The time of the whole read, and of
/// the first answer.
async fn read_all(addr: &str, args: &PartitionsArgs, expect: i64) -> Res<(Duration, Duration)> {
    let mut conn = Connection::connect(addr, "bench-partitions").await?;
    let v = conn
        .versions()
        .pick::<FetchRequest>(pubsub_client::fetch::VERSIONS)?;
    let began = Instant::now();
    let mut first = None;
    let mut next = 0;
    while next < args.topics {
        let end = (next + args.topics_per_write.max(1)).min(args.topics);
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(64 << 20)
            .with_isolation_level(0)
            .with_session_epoch(-1)
            .with_topics(
                (next..end)
                    .map(|i| {
                        FetchTopic::default()
                            .with_topic(tname(&topic_name(i)))
                            .with_partitions(
                                (0..args.partitions_per_topic)
                                    .map(|p| {
                                        FetchPartition::default()
                                            .with_partition(p)
                                            .with_current_leader_epoch(-1)
                                            .with_fetch_offset(0)
                                            .with_log_start_offset(-1)
                                            .with_partition_max_bytes(64 << 10)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = conn.call(v, &req).await?;
        first.get_or_insert_with(|| began.elapsed());
        let mut seen = BTreeMap::new();
        for t in &resp.responses {
            for p in &t.partitions {
                let name = t.topic.0.as_str().to_string();
                if p.error_code != 0 {
                    return Err(fail(format!(
                        "reading {name}-{}: error {}",
                        p.partition_index, p.error_code
                    )));
                }
                let records = p.records.clone().unwrap_or_default();
                let n: i64 = Batches::new(&records)
                    .map_while(|b| b.ok())
                    .map(|b| i64::from(b.record_count()))
                    .sum();
                if n != expect {
                    return Err(fail(format!(
                        "{name}-{} holds {n} records, expected {expect}",
                        p.partition_index
                    )));
                }
                *seen.entry(name).or_insert(0) += 1;
            }
        }
        let want = (end - next) as usize;
        if seen.len() != want || seen.values().any(|&n: &i32| n != args.partitions_per_topic) {
            return Err(fail(format!(
                "a fetch of {want} topics answered for {} topics",
                seen.len()
            )));
        }
        next = end;
    }
    Ok((began.elapsed(), first.unwrap_or_default()))
}

/// Time until a Metadata request for one topic is answered, from `since`.
async fn first_metadata(addr: &str, since: Instant) -> Res<Duration> {
    let mut conn = Connection::connect(addr, "bench-partitions").await?;
    let v = conn.versions().pick::<MetadataRequest>(1..=12)?;
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(tname(&topic_name(0))))
    ]));
    let resp = conn.call(v, &req).await?;
    if resp.topics.first().is_none_or(|t| t.error_code != 0) {
        return Err(fail("metadata of the first topic failed"));
    }
    Ok(since.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Runs the whole measurement and prints the table.
pub fn run(args: PartitionsArgs) -> Res<()> {
    let (data, remove) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("pubsub-partitions-{}", std::process::id())),
            !args.keep,
        ),
    };
    if data.exists() {
        return Err(fail(format!(
            "{} exists: give a new directory",
            data.display()
        )));
    }
    let log = data.with_extension("log");
    let result = measure(&args, &data, &log);
    if remove {
        let _ = std::fs::remove_dir_all(&data);
        if result.is_ok() {
            let _ = std::fs::remove_file(&log);
        }
    }
    let rows = result?;
    let mut out = String::new();
    out.push_str(&format!(
        "pubsub bench partitions: {} topics x {} partitions = {} partitions (open files {}, vm.max_map_count {})\n\n",
        args.topics,
        args.partitions_per_topic,
        u64::from(args.topics) * args.partitions_per_topic.max(0) as u64,
        limits(),
        max_map_count()
    ));
    out.push_str("| measure | value |\n|---|---|\n");
    for (k, v) in rows {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    crate::remote::write_out(out.as_bytes())?;
    Ok(())
}

fn measure(args: &PartitionsArgs, data: &Path, log: &Path) -> Res<Vec<(String, String)>> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| {
        eprintln!("{k}: {v}");
        rows.push((k.to_string(), v));
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime".into(),
            source,
        })?;
    let partitions = u64::from(args.topics) * args.partitions_per_topic.max(0) as u64;
    let mut serve = Serve::start(data, log)?;
    row("start, empty directory", ms(serve.listening));
    let (created, slowest) = rt
        .block_on(create_all(&serve.addr, args))
        .map_err(|e| serve.explain(e))?;
    row(
        &format!(
            "create {} topics ({} per request)",
            args.topics, args.topics_per_request
        ),
        format!(
            "{} ({:.0} partitions/s; slowest request {})",
            ms(created),
            partitions as f64 / created.as_secs_f64().max(1e-9),
            ms(slowest)
        ),
    );
    let (took, bytes, topics, parts) = rt
        .block_on(metadata_all(&serve.addr))
        .map_err(|e| serve.explain(e))?;
    row(
        "Metadata of all topics",
        format!(
            "{} , {:.1} MiB, {topics} topics, {parts} partitions",
            ms(took),
            bytes as f64 / (1 << 20) as f64
        ),
    );
    let u = usage(serve.pid()).map_err(|e| serve.explain(e))?;
    row("RSS after creation", mib(u.rss_kib));
    row(
        "descriptors / maps after creation",
        format!("{} / {}", u.fds, u.maps),
    );
    let wrote = rt
        .block_on(write_all(&serve.addr, args, 1))
        .map_err(|e| serve.explain(e))?;
    row(
        &format!(
            "write 1 record to every partition (acks=1, {} topics a request)",
            args.topics_per_write
        ),
        ms(wrote),
    );
    let (read, _) = rt
        .block_on(read_all(&serve.addr, args, 1))
        .map_err(|e| serve.explain(e))?;
    row("read every partition back (first read of each)", ms(read));
    let u = usage(serve.pid()).map_err(|e| serve.explain(e))?;
    row("RSS after writing and reading all", mib(u.rss_kib));
    row(
        "descriptors / maps after writing and reading all",
        format!("{} / {}", u.fds, u.maps),
    );
    let stopped = serve.stop()?;
    row("clean stop (SIGTERM to exit)", ms(stopped));

    let began = Instant::now();
    let mut serve = Serve::start(data, log)?;
    row("clean start: listening", ms(serve.listening));
    row(
        "clean start: first Metadata answered",
        ms(rt
            .block_on(first_metadata(&serve.addr, began))
            .map_err(|e| serve.explain(e))?),
    );
    let u = usage(serve.pid()).map_err(|e| serve.explain(e))?;
    row("RSS after clean start (idle)", mib(u.rss_kib));
    row(
        "descriptors / maps after clean start",
        format!("{} / {}", u.fds, u.maps),
    );
    let (read, first) = rt
        .block_on(read_all(&serve.addr, args, 1))
        .map_err(|e| serve.explain(e))?;
    row(
        "read every partition after clean start",
        format!("{} (first answer {})", ms(read), ms(first)),
    );
    let wrote = rt
        .block_on(write_all(&serve.addr, args, 2))
        .map_err(|e| serve.explain(e))?;
    row("write 1 more record to every partition", ms(wrote));
    serve.kill9()?;

    let began = Instant::now();
    let mut serve = Serve::start(data, log)?;
    row("start after SIGKILL: listening", ms(serve.listening));
    row(
        "start after SIGKILL: first Metadata answered",
        ms(rt
            .block_on(first_metadata(&serve.addr, began))
            .map_err(|e| serve.explain(e))?),
    );
    // Every partition was written since the clean start: all are left to
    // recover (at first use or in the background), and Metadata must not
    // wait for that.
    let (took, bytes, topics, parts) = rt
        .block_on(metadata_all(&serve.addr))
        .map_err(|e| serve.explain(e))?;
    row(
        "start after SIGKILL: Metadata of all topics",
        format!(
            "{} , {:.1} MiB, {topics} topics, {parts} partitions, {} after start",
            ms(took),
            bytes as f64 / (1 << 20) as f64,
            ms(began.elapsed())
        ),
    );
    let u = usage(serve.pid()).map_err(|e| serve.explain(e))?;
    row("RSS after SIGKILL start, before reading", mib(u.rss_kib));
    row(
        "descriptors / maps after SIGKILL start, before reading",
        format!("{} / {}", u.fds, u.maps),
    );
    let (read, first) = rt
        .block_on(read_all(&serve.addr, args, 2))
        .map_err(|e| serve.explain(e))?;
    row(
        "read every partition after SIGKILL (2 records each)",
        format!(
            "{} (first answer {}, {} after start)",
            ms(read),
            ms(first),
            ms(began.elapsed())
        ),
    );
    let u = usage(serve.pid()).map_err(|e| serve.explain(e))?;
    row("RSS after SIGKILL start and reading all", mib(u.rss_kib));
    row("descriptors / maps then", format!("{} / {}", u.fds, u.maps));
    serve.stop()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended_by(script: &str) -> std::process::ExitStatus {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .status()
            .expect("running sh")
    }

    #[test]
    fn a_vanished_broker_is_described_by_its_exit_code_or_signal() {
        assert_eq!(exit_story(ended_by("exit 3")), "exited with code 3");
        assert_eq!(
            exit_story(ended_by("kill -KILL $$")),
            "killed by SIGKILL (9)"
        );
        assert_eq!(
            exit_story(ended_by("kill -BUS $$")).split(" (").next(),
            Some("killed by SIGBUS")
        );
        assert_eq!(
            exit_story(ended_by("kill -USR1 $$")),
            "killed by signal (10)"
        );
    }

    #[test]
    fn the_log_tail_holds_only_this_starts_last_lines() {
        let dir = std::env::temp_dir().join(format!("pubsub-log-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let log = dir.join("serve.log");
        let earlier = "an earlier start\n";
        let mut text = earlier.to_string();
        for i in 0..30 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&log, &text).expect("writing the log");
        let tail = log_tail(&log, earlier.len() as u64);
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines.first(), Some(&"line 10"));
        assert_eq!(lines.last(), Some(&"line 29"));
        assert_eq!(log_tail(&log, text.len() as u64), "(nothing)");
        assert!(log_tail(&dir.join("missing"), 0).starts_with("(unreadable: "));
        std::fs::remove_dir_all(&dir).expect("removing the directory");
    }
}
