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

use pubsub_client::admin::{self, OffsetQuery};
use pubsub_client::fetch::fetch_raw;
use pubsub_client::{ClientError, Cluster, Connection, TopicInfo};
use pubsub_records::{Batches, RecordsError};
use tokio::sync::Barrier;

use super::report::Report;
use crate::error::CliError;

/// How long a fetch waits for data.
const MAX_WAIT_MS: i32 = 100;
/// Largest decompressed record section accepted.
const MAX_DECOMPRESSED: usize = 256 << 20;

/// Settings of a consume run.
#[derive(Debug, Clone)]
pub struct ConsumeRun {
    /// Broker address.
    pub bootstrap: String,
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
}

impl Goal {
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
    let mut cluster = Cluster::connect(&run.bootstrap, "pubsub-bench").await?;
    let topic = cluster.topic(&run.topic).await?;
    let partitions = topic.indexes();
    let start_at =
        admin::list_offsets(&mut cluster, &topic, &partitions, OffsetQuery::Earliest).await?;
    let target = match (run.messages, run.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => {
            let ends =
                admin::list_offsets(&mut cluster, &topic, &partitions, OffsetQuery::Latest).await?;
            ends.iter()
                .map(|(p, e)| u64::try_from(e - start_at.get(p).copied().unwrap_or(0)).unwrap_or(0))
                .sum()
        }
    };
    if target == 0 {
        return Err(CliError::Usage(format!(
            "topic {} is empty: fill it first, e.g. pubsub bench produce --topic {}",
            run.topic, run.topic
        )));
    }
    let goal = Arc::new(Goal {
        read: AtomicU64::new(0),
        target: AtomicU64::new(target),
        deadline: run.duration.map(|d| Instant::now() + d),
    });
    let bar = super::progress_bar(run.progress, (target != u64::MAX).then_some(target));
    let start = Instant::now();
    let report = run_consumers(
        &run.bootstrap,
        &topic,
        run.consumers,
        Start::Earliest(start_at),
        run.fetch_max_bytes,
        None,
        goal,
        None,
        bar.clone(),
    )
    .await?;
    bar.finish_and_clear();
    Ok(Report {
        seconds: start.elapsed().as_secs_f64(),
        ..report
    })
}

/// Where consumers start.
#[derive(Debug, Clone)]
pub(super) enum Start {
    /// These offsets.
    Earliest(BTreeMap<i32, i64>),
    /// Each partition's end when the consumer starts.
    Latest,
}

/// Runs `consumers` connections over the topic's partitions until `goal`;
/// their merged report. With `stamp_epoch`, latency is end-to-end from the
/// stamp in each value; `ready` is waited on once every consumer has its
/// starting offsets.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_consumers(
    bootstrap: &str,
    topic: &TopicInfo,
    consumers: usize,
    start: Start,
    fetch_max_bytes: i32,
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
            bootstrap: bootstrap.to_string(),
            topic: topic.clone(),
            partitions: mine,
            start: start.clone(),
            fetch_max_bytes,
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
    bootstrap: String,
    topic: TopicInfo,
    partitions: Vec<i32>,
    start: Start,
    fetch_max_bytes: i32,
    stamp_epoch: Option<Instant>,
    goal: Arc<Goal>,
    ready: Option<Arc<Barrier>>,
    bar: indicatif::ProgressBar,
    report: Report,
}

impl Consumer {
    async fn run(mut self) -> Result<Report, ClientError> {
        let mut cluster = Cluster::connect(&self.bootstrap, "pubsub-bench").await?;
        let mut positions: BTreeMap<i32, i64> = match &self.start {
            Start::Earliest(at) => self
                .partitions
                .iter()
                .map(|p| (*p, at.get(p).copied().unwrap_or(0)))
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
        let mut conn: Connection = Connection::connect(&self.bootstrap, "pubsub-bench").await?;
        drop(cluster);
        while !self.goal.reached() {
            let sent = Instant::now();
            let answers = fetch_raw(
                &mut conn,
                &self.topic.name,
                &positions,
                MAX_WAIT_MS,
                self.fetch_max_bytes,
            )
            .await?;
            let arrived = Instant::now();
            if self.stamp_epoch.is_none() {
                let micros = arrived.duration_since(sent).as_micros().max(1);
                self.report
                    .latency
                    .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
            }
            for a in answers {
                pubsub_client::error::check(
                    a.error_code,
                    || format!("fetching {}-{}", self.topic.name, a.partition),
                    None,
                )?;
                let from = positions.get(&a.partition).copied().unwrap_or(0);
                let next = self.count(from, &a.records, arrived)?;
                positions.insert(a.partition, next);
            }
        }
        Ok(self.report)
    }

    /// Counts the records at or after `from`; the offset to fetch next.
    fn count(&mut self, from: i64, records: &[u8], arrived: Instant) -> Result<i64, ClientError> {
        let bad = |e: RecordsError| ClientError::Protocol(format!("a fetched batch: {e}"));
        let mut next = from;
        let (mut messages, mut bytes) = (0u64, 0u64);
        for batch in Batches::new(records) {
            let batch = match batch {
                Ok(b) => b,
                Err(RecordsError::Truncated { .. }) => break,
                Err(e) => return Err(bad(e)),
            };
            next = next.max(batch.next_offset());
            if batch.is_control() {
                continue;
            }
            for r in batch.records(MAX_DECOMPRESSED).map_err(bad)?.iter() {
                let r = r.map_err(bad)?;
                if r.offset < from {
                    continue;
                }
                let value = r.value.unwrap_or_default();
                messages += 1;
                bytes += value.len() as u64;
                if let (Some(epoch), Some(stamp)) = (self.stamp_epoch, value.get(..8)) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(stamp);
                    let due = epoch + Duration::from_nanos(u64::from_le_bytes(b));
                    let micros = arrived.saturating_duration_since(due).as_micros().max(1);
                    self.report
                        .latency
                        .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                }
            }
        }
        self.report.messages += messages;
        self.report.bytes += bytes;
        self.goal.read.fetch_add(messages, Ordering::Relaxed);
        self.bar.inc(messages);
        Ok(next)
    }
}
