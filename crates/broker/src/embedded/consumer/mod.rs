//! The embedded consumer: joins a consumer group, gets partitions, reads
//! them from their committed positions, and commits as it goes.
//!
//! Liveness is Kafka's: the consumer heartbeats while it polls, so one that
//! stops polling for longer than its session timeout loses its partitions to
//! the rest of the group. A consumer with a `name` is a static member: after
//! a restart of the process or the broker it gets its partitions back.
//!
//! This module holds the settings, the records and the application's side
//! (subscribe, poll, run, commit, seek, close); [`membership`] the group
//! member's side (heartbeats, joining, installing an assignment).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pubsub_records::Batches;
use tracing::{debug, warn};

mod membership;

use super::block_on;
use crate::broker::{wall_clock_ms, Broker, OffsetSpec};
use crate::error::{BrokerError, Result};
use crate::group::assignor::Strategy;
use crate::group::{CommitEntry, CommitRequest};
use crate::notify::Wakeup;

/// Where a consumer starts on a partition with no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The oldest record still kept (default: nothing published while no
    /// consumer listened is missed).
    #[default]
    Earliest,
    /// Only records published from now on.
    Latest,
}

/// Which records a consumer sees of transactions (Kafka's
/// `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Every record, committed, aborted or still open (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional
    /// ones), up to the last stable offset: records of open transactions
    /// wait until their transaction ends, aborted ones are skipped.
    ReadCommitted,
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer group.
    pub group_id: String,
    /// A stable name makes the consumer a static member (Kafka's
    /// `group.instance.id`): it keeps its partitions across restarts.
    pub name: Option<String>,
    /// Assignment strategy (range by default).
    pub strategy: Strategy,
    /// A consumer that does not poll for this long is removed from the group
    /// (default 10 s; at least the broker's minimum).
    pub session_timeout: Duration,
    /// How long a rebalance waits for members to rejoin (default 30 s).
    pub rebalance_timeout: Duration,
    /// Commit positions automatically (default true).
    pub auto_commit: bool,
    /// How often automatic commits happen (default 5 s; also before every
    /// rebalance and on close).
    pub auto_commit_interval: Duration,
    /// Where to start without a committed offset.
    pub offset_reset: OffsetReset,
    /// Most records one poll returns (500).
    pub max_poll_records: usize,
    /// Bytes read from a partition at a time (1 MiB).
    pub fetch_bytes: usize,
    /// Which records of transactions are seen (read_uncommitted).
    pub isolation: Isolation,
}

impl ConsumerConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: &str) -> Self {
        ConsumerConfig {
            group_id: group_id.to_string(),
            name: None,
            strategy: Strategy::Range,
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            offset_reset: OffsetReset::Earliest,
            max_poll_records: 500,
            fetch_bytes: 1 << 20,
            isolation: Isolation::ReadUncommitted,
        }
    }

    /// With a static name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// With a strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// A record as a consumer receives it: the one owned record type, shared
/// with the wire client.
pub use pubsub_records::ConsumerRecord;

/// What a [`Consumer::run`] handler wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop the loop (the record just handled counts as consumed).
    Stop,
}

/// Stops a [`Consumer::run`] loop from another thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wakeup: Arc<Wakeup>,
}

impl StopHandle {
    /// Makes `run` (and `poll`) return as soon as possible.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        self.wakeup.wake();
    }
}

type TopicPartition = (String, i32);

/// A consumer's place in its group, as a transactional producer sends it
/// with the group's offsets ([`crate::Producer::send_offsets_to_transaction`],
/// Kafka's `ConsumerGroupMetadata`): the group coordinator refuses the
/// offsets of a member that left or of an older generation (KIP-447).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The group.
    pub group_id: String,
    /// The generation of the member's assignment (-1: outside membership).
    pub generation_id: i32,
    /// The member id ("" outside membership).
    pub member_id: String,
    /// The static member's name.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group's metadata outside its membership (no member or generation
    /// checks), as Kafka's `new ConsumerGroupMetadata(groupId)`.
    pub fn new(group_id: &str) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.to_string(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// An assigned partition and where the consumer is in it.
#[derive(Debug)]
struct Assigned {
    topic: Arc<str>,
    partition: i32,
    /// Next offset to hand to the application.
    position: u64,
    /// Next offset to read from the log (records in between are buffered).
    fetch_position: u64,
}

impl Assigned {
    fn is(&self, topic: &str, partition: i32) -> bool {
        self.partition == partition && &*self.topic == topic
    }

    fn tp(&self) -> TopicPartition {
        (self.topic.to_string(), self.partition)
    }
}

/// A member of a consumer group on an in-process broker.
#[derive(Debug)]
pub struct Consumer {
    broker: Broker,
    config: ConsumerConfig,
    topics: Vec<String>,
    member_id: String,
    generation: i32,
    needs_join: bool,
    /// Assigned partitions, sorted, with their positions.
    assigned: Vec<Assigned>,
    /// Partition counts the assignment was computed from (leader only).
    assigned_counts: BTreeMap<String, u32>,
    buffer: VecDeque<ConsumerRecord>,
    next_partition: usize,
    wakeup: Arc<Wakeup>,
    stop: Arc<AtomicBool>,
    last_heartbeat: Instant,
    last_commit: Instant,
    read_buf: Vec<u8>,
    closed: bool,
}

impl Broker {
    /// A consumer for this broker (it joins its group on `subscribe`).
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        crate::names::validate_group_id(&config.group_id)?;
        let wakeup = Wakeup::new();
        self.subscribe_ticks(&wakeup);
        Ok(Consumer {
            broker: self.clone(),
            config,
            topics: Vec::new(),
            member_id: String::new(),
            generation: -1,
            needs_join: false,
            assigned: Vec::new(),
            assigned_counts: BTreeMap::new(),
            buffer: VecDeque::new(),
            next_partition: 0,
            wakeup,
            stop: Arc::new(AtomicBool::new(false)),
            last_heartbeat: Instant::now(),
            last_commit: Instant::now(),
            read_buf: Vec::new(),
            closed: false,
        })
    }
}

/// How finely the blocking API re-checks deadlines.
const STEP: Duration = Duration::from_millis(10);

impl Consumer {
    /// Subscribes to `topics` (creating unknown ones if the broker allows)
    /// and joins the group, returning once partitions are assigned.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        block_on(self.subscribe_async(topics), STEP)
    }

    /// [`Consumer::subscribe`], async.
    pub async fn subscribe_async(&mut self, topics: &[&str]) -> Result<()> {
        self.check_open()?;
        for t in topics {
            self.broker.ensure_topic(t)?;
        }
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        self.topics = topics;
        self.needs_join = true;
        let deadline = Instant::now() + self.config.rebalance_timeout + self.config.session_timeout;
        self.ensure_active(deadline).await?;
        if self.needs_join {
            return Err(BrokerError::Timeout("joining the group"));
        }
        Ok(())
    }

    /// Partitions currently assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().map(Assigned::tp).collect()
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.assigned.iter().position(|a| a.is(topic, partition))
    }

    /// The member id the coordinator gave this consumer.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The group generation of the current assignment.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// This member's group, member id, generation and static name, for
    /// [`crate::Producer::send_offsets_to_transaction`] (Kafka's
    /// `groupMetadata()`).
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.name.clone(),
        }
    }

    /// Next offset this consumer will return for a partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<u64> {
        self.find(topic, partition)
            .map(|i| self.assigned[i].position)
    }

    /// The group's committed offset for a partition.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.broker
            .coordinator()
            .fetch_offsets(
                &self.config.group_id,
                Some(&[(topic.to_string(), partition)]),
            )
            .into_iter()
            .next()
            .and_then(|(_, c)| c.map(|c| c.offset))
    }

    /// A handle that stops `run`/`poll` from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: Arc::clone(&self.stop),
            wakeup: Arc::clone(&self.wakeup),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(BrokerError::Closed);
        }
        Ok(())
    }

    /// Waits up to `timeout` for records; returns those available (possibly
    /// none). Heartbeats, rebalances and automatic commits happen here.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        block_on(self.poll_async(timeout), STEP)
    }

    /// [`Consumer::poll`], async. Deadlines are checked at the broker's
    /// clock tick (100 ms) when awaited on an async runtime.
    pub async fn poll_async(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.fill(Instant::now() + timeout).await?;
        Ok(self.take_records(self.config.max_poll_records))
    }

    /// Works (rebalances, heartbeats, commits, fetches) until records are
    /// buffered, the deadline passes, or the consumer is stopped.
    async fn fill(&mut self, deadline: Instant) -> Result<()> {
        self.check_open()?;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            self.ensure_active(deadline).await?;
            self.heartbeat_if_due();
            self.auto_commit_if_due();
            if self.buffer.is_empty() {
                self.fetch()?;
            }
            if !self.buffer.is_empty() || Instant::now() >= deadline {
                return Ok(());
            }
            self.wakeup.wait_async().await;
        }
    }

    /// Calls `handler` on every record until it returns [`Flow::Stop`] or a
    /// [`StopHandle`] stops the consumer. Positions advance record by record,
    /// so a stop leaves nothing skipped.
    pub fn run(&mut self, mut handler: impl FnMut(&ConsumerRecord) -> Flow) -> Result<()> {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if self.buffer.is_empty() {
                block_on(self.fill(Instant::now() + Duration::from_millis(200)), STEP)?;
                continue;
            }
            for record in self.take_records(1) {
                if handler(&record) == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }

    fn take_records(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let n = max.min(self.buffer.len());
        let out: Vec<ConsumerRecord> = self.buffer.drain(..n).collect();
        // Advance each partition once, to after its last record handed out
        // (records of one partition come in runs: look up only on a change).
        let mut current: Option<usize> = None;
        for r in out.iter().rev() {
            if current.is_some_and(|i| self.assigned[i].is(&r.topic, r.partition)) {
                continue;
            }
            current = self.find(&r.topic, r.partition);
            if let Some(i) = current {
                let a = &mut self.assigned[i];
                a.position = a.position.max(r.offset as u64 + 1);
            }
        }
        out
    }

    /// Reads the next batch of records from one assigned partition (in turn).
    fn fetch(&mut self) -> Result<()> {
        let n = self.assigned.len();
        for step in 0..n {
            let i = (self.next_partition + step) % n;
            let (topic, partition, pos) = {
                let a = &self.assigned[i];
                (Arc::clone(&a.topic), a.partition, a.fetch_position)
            };
            let mut buf = std::mem::take(&mut self.read_buf);
            let mut aborted = Vec::new();
            let result = match self.config.isolation {
                Isolation::ReadUncommitted => {
                    self.broker
                        .fetch(&topic, partition, pos, self.config.fetch_bytes, &mut buf)
                }
                Isolation::ReadCommitted => {
                    self.broker.partition(&topic, partition).and_then(|p| {
                        let lso = p.last_stable_offset();
                        let read = p.read_below(pos, self.config.fetch_bytes, lso, &mut buf)?;
                        aborted = p.aborted_transactions(pos, lso)?;
                        Ok(read)
                    })
                }
            };
            match result {
                Ok(_) => {}
                Err(BrokerError::OffsetOutOfRange { start, end, .. }) => {
                    let reset = match self.config.offset_reset {
                        OffsetReset::Earliest => start,
                        OffsetReset::Latest => end,
                    };
                    warn!(topic = %topic, partition, position = pos, reset, "position out of range; resetting");
                    let a = &mut self.assigned[i];
                    a.fetch_position = reset;
                    a.position = reset;
                    self.read_buf = buf;
                    continue;
                }
                Err(BrokerError::UnknownTopicOrPartition { .. }) => {
                    self.needs_join = true;
                    self.read_buf = buf;
                    continue;
                }
                Err(e) => {
                    self.read_buf = buf;
                    return Err(e);
                }
            }
            let mut next = pos;
            for batch in Batches::new(&buf) {
                let batch = batch?;
                next = batch.last_offset() as u64 + 1;
                if batch.is_control() {
                    continue;
                }
                if pubsub_storage::AbortedTxn::covers_batch(&aborted, &batch) {
                    continue;
                }
                for r in batch.records(64 << 20)?.iter() {
                    let r = r?;
                    if (r.offset as u64) < pos {
                        continue;
                    }
                    self.buffer
                        .push_back(ConsumerRecord::copied_from(&topic, partition, &r));
                }
            }
            self.read_buf = buf;
            let a = &mut self.assigned[i];
            a.fetch_position = next;
            if self.buffer.is_empty() {
                // Only markers or aborted records were read: the position
                // moves past them, as a Kafka consumer's does.
                a.position = a.position.max(next);
            } else {
                self.next_partition = (i + 1) % n;
                return Ok(());
            }
        }
        Ok(())
    }

    fn auto_commit_if_due(&mut self) {
        if self.config.auto_commit && self.last_commit.elapsed() >= self.config.auto_commit_interval
        {
            if let Err(e) = self.commit() {
                debug!(group = %self.config.group_id, error = %e, "automatic commit failed");
            }
        }
    }

    /// Commits the current positions of all assigned partitions; returns
    /// once the commit is durable.
    pub fn commit(&mut self) -> Result<()> {
        self.last_commit = Instant::now();
        let entries: Vec<CommitEntry> = self
            .assigned
            .iter()
            .map(|a| CommitEntry {
                topic: a.topic.to_string(),
                partition: a.partition,
                offset: a.position as i64,
                leader_epoch: -1,
                metadata: String::new(),
            })
            .collect();
        self.commit_entries(entries)
    }

    /// Commits explicit offsets (the next offset to consume per partition).
    pub fn commit_offsets(&mut self, offsets: &[(&str, i32, i64)]) -> Result<()> {
        let entries = offsets
            .iter()
            .map(|(t, p, o)| CommitEntry {
                topic: t.to_string(),
                partition: *p,
                offset: *o,
                leader_epoch: -1,
                metadata: String::new(),
            })
            .collect();
        self.commit_entries(entries)
    }

    fn commit_entries(&mut self, entries: Vec<CommitEntry>) -> Result<()> {
        if entries.is_empty() || self.member_id.is_empty() {
            return Ok(());
        }
        self.broker.coordinator().commit(
            self.broker.offsets_store(),
            CommitRequest {
                group_id: self.config.group_id.clone(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: self.config.name.clone(),
                entries,
            },
            self.broker.now_ms(),
            wall_clock_ms(),
        )
    }

    fn set_position(&mut self, i: usize, offset: u64) {
        let a = &mut self.assigned[i];
        a.position = offset;
        a.fetch_position = offset;
        let (topic, partition) = (Arc::clone(&a.topic), a.partition);
        self.buffer
            .retain(|r| !(r.partition == partition && r.topic == topic));
    }

    /// Continues an assigned partition from `offset` (replay or skip).
    pub fn seek(&mut self, topic: &str, partition: i32, offset: u64) -> Result<()> {
        let i = self
            .find(topic, partition)
            .ok_or_else(|| BrokerError::unknown_topic(topic, Some(partition)))?;
        self.set_position(i, offset);
        Ok(())
    }

    fn seek_all(&mut self, spec: OffsetSpec) -> Result<()> {
        for i in 0..self.assigned.len() {
            let (topic, partition) = (
                Arc::clone(&self.assigned[i].topic),
                self.assigned[i].partition,
            );
            let offset = match self.broker.list_offset(&topic, partition, spec)? {
                Some(found) => found.offset as u64,
                None => self
                    .broker
                    .partition(&topic, partition)?
                    .log()
                    .log_end_offset(),
            };
            self.set_position(i, offset);
        }
        Ok(())
    }

    /// Replays every assigned partition from its first record.
    pub fn seek_to_beginning(&mut self) -> Result<()> {
        self.seek_all(OffsetSpec::Earliest)
    }

    /// Skips to the end of every assigned partition.
    pub fn seek_to_end(&mut self) -> Result<()> {
        self.seek_all(OffsetSpec::Latest)
    }

    /// Replays every assigned partition from the first record at or after
    /// `timestamp` (ms since the epoch).
    pub fn seek_to_timestamp(&mut self, timestamp: i64) -> Result<()> {
        self.seek_all(OffsetSpec::Timestamp(timestamp))
    }

    /// Commits (if automatic), leaves the group and stops the consumer.
    pub fn unsubscribe(&mut self) -> Result<()> {
        if self.config.auto_commit {
            if let Err(e) = self.commit() {
                debug!(error = %e, "final commit failed");
            }
        }
        if !self.member_id.is_empty() {
            let _ = self.broker.coordinator().leave(
                self.broker.offsets_store(),
                &self.config.group_id,
                &[(self.member_id.clone(), self.config.name.clone())],
                self.broker.now_ms(),
            );
        }
        for a in std::mem::take(&mut self.assigned) {
            if let Ok(p) = self.broker.partition(&a.topic, a.partition) {
                p.unsubscribe(&self.wakeup);
            }
        }
        self.member_id.clear();
        self.buffer.clear();
        self.topics.clear();
        self.needs_join = false;
        Ok(())
    }

    /// [`Consumer::unsubscribe`], then closes.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.unsubscribe();
        self.closed = true;
        r
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
