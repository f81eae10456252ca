//! `pubsub bench consume` and the consumer side of `pubsub bench e2e`:
//! connections that each read a share of the partitions with one fetch in
//! flight, counting messages and value bytes as a client would (every
//! record is walked, none copied).
//!
//! Latency is per fetch (send to answer) in a consume run, and per message
//! (due time carried in the value to arrival) in an end-to-end run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::FetchRequest;
use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::fetch;
use pubsub_client::{ClientError, TopicInfo};
use tokio::sync::Barrier;

use super::report::Report;
use crate::error::CliError;

/// How long a fetch waits for data.
const MAX_WAIT_MS: i32 = 100;

/// Settings of a consume run.
#[derive(Debug, Clone)]
pub struct ConsumeRun {
    /// The broker and how to reach it.
    pub bootstrap: super::Endpoint,
    /// Topic.
    pub topic: String,
    /// Messages to read; `None`: what the topic holds at the start.
    pub messages: Option<u64>,
    /// Read for this long instead.
    pub duration: Option<Duration>,
    /// Connections.
    pub consumers: usize,
    /// Most bytes per fetch.
    pub fetch_max_bytes: i32,
    /// Most bytes per partition and fetch.
    pub partition_max_bytes: i32,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// When consumers stop, shared by all of them.
#[derive(Debug)]
pub(super) struct Goal {
    /// Messages read so far, over all consumers.
    pub read: AtomicU64,
    /// Stop when `read` reaches this (u64::MAX: not yet known).
    pub target: AtomicU64,
    /// Stop at this instant, if set.
    pub deadline: Option<Instant>,
    /// When the run started (the origin of the two below).
    pub epoch: Instant,
    /// Nanoseconds from `epoch` to the first fetch answer with messages.
    pub first_ns: AtomicU64,
    /// Nanoseconds from `epoch` to the last fetch answer with messages.
    pub last_ns: AtomicU64,
}

impl Goal {
    /// A goal of `target` messages (u64::MAX: set later) or a deadline.
    pub fn new(target: u64, deadline: Option<Instant>) -> Goal {
        Goal {
            read: AtomicU64::new(0),
            target: AtomicU64::new(target),
            deadline,
            epoch: Instant::now(),
            first_ns: AtomicU64::new(u64::MAX),
            last_ns: AtomicU64::new(0),
        }
    }

    /// A fetch answer with messages arrived at `at`.
    fn saw_messages(&self, at: Instant) {
        let ns = u64::try_from(at.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.first_ns.fetch_min(ns, Ordering::Relaxed);
        self.last_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Seconds from the first answer with messages to the last, as
    /// rdkafka_performance times a consumer; `None` if under a millisecond
    /// (one fetch brought everything).
    pub fn busy_seconds(&self) -> Option<f64> {
        let (first, last) = (
            self.first_ns.load(Ordering::Relaxed),
            self.last_ns.load(Ordering::Relaxed),
        );
        (last > first && last - first >= 1_000_000).then(|| (last - first) as f64 / 1e9)
    }

    fn reached(&self) -> bool {
        self.read.load(Ordering::Relaxed) >= self.target.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Reads the topic and measures it.
pub async fn consume(run: ConsumeRun) -> Result<Report, CliError> {
    if run.consumers == 0 {
        return Err(CliError::Usage("--consumers must be at least 1".into()));
    }
    let mut cluster = run.bootstrap.cluster().await?;
    let topic = cluster.topic(&run.topic).await?;
    let partitions = topic.indexes();
    let start_at =
        admin::list_offsets(&mut cluster, &topic, &partitions, OffsetQuery::Earliest).await?;
    // Without a count or a duration: what the topic holds now, i.e. every
    // partition read up to its current end (offsets, not a message count:
    // compaction and transaction markers leave gaps).
    let until = match (run.messages, run.duration) {
        (None, None) => {
            Some(admin::list_offsets(&mut cluster, &topic, &partitions, OffsetQuery::Latest).await?)
        }
        _ => None,
    };
    let span: u64 = until
        .iter()
        .flatten()
        .map(|(p, e)| u64::try_from(e - start_at.get(p).copied().unwrap_or(0)).unwrap_or(0))
        .sum();
    if until.is_some() && span == 0 {
        return Err(CliError::Usage(format!(
            "topic {} is empty: fill it first, e.g. pubsub bench produce --topic {}",
            run.topic, run.topic
        )));
    }
    let target = run.messages.unwrap_or(u64::MAX);
    let goal = Arc::new(Goal::new(target, run.duration.map(|d| Instant::now() + d)));
    let total = if until.is_some() {
        Some(span)
    } else {
        run.messages
    };
    let bar = super::progress_bar(run.progress, total);
    let start = Instant::now();
    let report = run_consumers(
        &run.bootstrap,
        &topic,
        run.consumers,
        Start::Earliest {
            from: start_at,
            until,
        },
        (run.fetch_max_bytes, run.partition_max_bytes),
        None,
        goal.clone(),
        None,
        bar.clone(),
    )
    .await?;
    bar.finish_and_clear();
    Ok(Report {
        seconds: goal
            .busy_seconds()
            .unwrap_or_else(|| start.elapsed().as_secs_f64()),
        ..report
    })
}

/// Where consumers start.
#[derive(Debug, Clone)]
pub(super) enum Start {
    /// These offsets, and stop once every partition reaches `until`.
    Earliest {
        /// Partition -> first offset.
        from: BTreeMap<i32, i64>,
        /// Partition -> offset to stop at, if any.
        until: Option<BTreeMap<i32, i64>>,
    },
    /// Each partition's end when the consumer starts.
    Latest,
}

/// Runs `consumers` connections over the topic's partitions until `goal`;
/// their merged report. With `stamp_epoch`, latency is end-to-end from the
/// stamp in each value; `ready` is waited on once every consumer has its
/// starting offsets.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_consumers(
    bootstrap: &super::Endpoint,
    topic: &TopicInfo,
    consumers: usize,
    start: Start,
    (fetch_max_bytes, partition_max_bytes): (i32, i32),
    stamp_epoch: Option<Instant>,
    goal: Arc<Goal>,
    ready: Option<Arc<Barrier>>,
    bar: indicatif::ProgressBar,
) -> Result<Report, CliError> {
    let (what, latency_of) = match stamp_epoch {
        Some(_) => ("delivered", "end-to-end latency"),
        None => ("consumed", "fetch latency"),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..consumers {
        let mine: Vec<i32> = topic
            .indexes()
            .into_iter()
            .filter(|p| (*p as usize) % consumers == index)
            .collect();
        let c = Consumer {
            bootstrap: bootstrap.clone(),
            topic: topic.clone(),
            partitions: mine,
            start: start.clone(),
            fetch_max_bytes,
            partition_max_bytes,
            stamp_epoch,
            goal: goal.clone(),
            ready: ready.clone(),
            bar: bar.clone(),
            report: Report::empty(what, latency_of),
        };
        tasks.spawn(c.run());
    }
    let mut report = Report::empty(what, latency_of);
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(part)) => report.merge(part),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(ClientError::Other(format!("consumer task: {e}")))),
        }
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}

/// One connection's share.
struct Consumer {
    bootstrap: super::Endpoint,
    topic: TopicInfo,
    partitions: Vec<i32>,
    start: Start,
    fetch_max_bytes: i32,
    partition_max_bytes: i32,
    stamp_epoch: Option<Instant>,
    goal: Arc<Goal>,
    ready: Option<Arc<Barrier>>,
    bar: indicatif::ProgressBar,
    report: Report,
}

impl Consumer {
    async fn run(mut self) -> Result<Report, ClientError> {
        let mut cluster = self.bootstrap.cluster().await?;
        let mut positions: BTreeMap<i32, i64> = match &self.start {
            Start::Earliest { from, .. } => self
                .partitions
                .iter()
                .map(|p| (*p, from.get(p).copied().unwrap_or(0)))
                .collect(),
            Start::Latest if self.partitions.is_empty() => BTreeMap::new(),
            Start::Latest => {
                admin::list_offsets(
                    &mut cluster,
                    &self.topic,
                    &self.partitions,
                    OffsetQuery::Latest,
                )
                .await?
            }
        };
        if let Some(ready) = self.ready.take() {
            ready.wait().await;
        }
        if positions.is_empty() {
            return Ok(self.report);
        }
        let conn = self.bootstrap.connection().await?;
        drop(cluster);
        let v = conn.versions().pick::<FetchRequest>(fetch::VERSIONS)?;
        let (mut tx, mut rx) = conn.into_split();
        let topic = self.topic.name.clone();
        let (max_bytes, partition_max) = (self.fetch_max_bytes, self.partition_max_bytes);
        let request = |at: &BTreeMap<i32, i64>| {
            fetch::request(&topic, at, MAX_WAIT_MS, max_bytes, partition_max)
        };
        // The next fetch leaves as soon as an answer's batch headers say
        // where it ends, before its records are walked: the broker reads
        // while this side counts, as librdkafka's prefetching does.
        let mut pending = Some((tx.send(v, &request(&positions)).await?, Instant::now()));
        while let Some((id, sent)) = pending.take() {
            let answers = fetch::raw_partitions(rx.receive::<FetchRequest>(id, v).await?, &topic)?;
            let arrived = Instant::now();
            let from = positions.clone();
            for a in &answers {
                pubsub_client::error::check(
                    a.error_code,
                    || format!("fetching {topic}-{}", a.partition),
                    None,
                )?;
                let at = from.get(&a.partition).copied().unwrap_or(0);
                positions.insert(a.partition, fetch::next_offset(at, &a.records));
            }
            if !self.goal.reached() && !self.caught_up(&positions) {
                pending = Some((tx.send(v, &request(&positions)).await?, Instant::now()));
            }
            if self.stamp_epoch.is_none() {
                let micros = arrived.duration_since(sent).as_micros().max(1);
                self.report
                    .latency
                    .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
            }
            for a in answers {
                let at = from.get(&a.partition).copied().unwrap_or(0);
                self.count(at, &a.records, arrived)?;
            }
        }
        Ok(self.report)
    }

    /// Every partition of this consumer reached where the run stops.
    fn caught_up(&self, positions: &BTreeMap<i32, i64>) -> bool {
        match &self.start {
            Start::Earliest {
                until: Some(until), ..
            } => positions
                .iter()
                .all(|(p, o)| *o >= until.get(p).copied().unwrap_or(0)),
            _ => false,
        }
    }

    /// Counts the records at or after `from`.
    fn count(&mut self, from: i64, records: &[u8], arrived: Instant) -> Result<(), ClientError> {
        let (mut messages, mut bytes) = (0u64, 0u64);
        let (epoch, latency) = (self.stamp_epoch, &mut self.report.latency);
        // CRCs are not checked, as librdkafka's `check.crcs` defaults to off.
        fetch::for_each_record(records, from, false, |r| {
            let value = r.value.unwrap_or_default();
            messages += 1;
            bytes += value.len() as u64;
            if let (Some(epoch), Some(stamp)) = (epoch, value.get(..8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(stamp);
                let due = epoch + Duration::from_nanos(u64::from_le_bytes(b));
                let micros = arrived.saturating_duration_since(due).as_micros().max(1);
                latency.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
            }
        })?;
        self.report.messages += messages;
        self.report.bytes += bytes;
        self.goal.read.fetch_add(messages, Ordering::Relaxed);
        self.bar.inc(messages);
        if messages > 0 {
            self.goal.saw_messages(arrived);
        }
        Ok(())
    }
}
