//! The background clock: a thread that wakes every `tick_interval` to
//! advance the coordinator's timers, wake waiters, flush logs that are due,
//! write recovery points, and run retention and compaction at their
//! intervals. With `background` off, tests drive the same work through
//! [`Broker::tick`], [`Broker::run_retention`] and [`Broker::run_compaction`].

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{wall_clock_ms, Broker, Inner};
use crate::closed_partitions::ClosedPartition;
use crate::error::{BrokerError, Result};
use crate::partition::Partition;
use crate::producer_state::{PRODUCER_EXPIRY_CHECK, PRODUCER_ID_EXPIRATION_MS};
use crate::topic::Topic;

/// From this many changed partitions, a checkpoint round defers fsyncs to
/// filesystem syncs.
const DEFERRED_CHECKPOINTS: usize = 64;

/// When each periodic job last ran.
#[derive(Debug)]
struct Schedule {
    checkpoint: Instant,
    retention: Instant,
    compaction: Instant,
    producer_expiry: Instant,
}

impl Inner {
    /// The group and transaction coordinators' timers, then the tick
    /// subscribers (what every tick does first).
    fn tick_coordinators(&self) {
        self.coordinator.tick(self, self.now_ms());
        self.transactions.tick(self, wall_clock_ms());
        self.tick.notify();
    }

    /// Background work due at this tick.
    fn background_tick(&self, last: &mut Schedule) {
        let now = Instant::now();
        self.tick_coordinators();
        let partitions = self.all_partitions();
        for p in &partitions {
            if let Err(e) = p.log().flush_if_due() {
                warn!(topic = p.topic(), partition = p.index(), error = %e, "flush failed");
            }
        }
        if now.duration_since(last.checkpoint) >= self.config.checkpoint_interval {
            last.checkpoint = now;
            self.checkpoint_all(&partitions);
        }
        if now.duration_since(last.retention) >= self.config.retention_check_interval {
            last.retention = now;
            self.run_retention(wall_clock_ms());
        }
        if now.duration_since(last.compaction) >= self.config.compaction_interval {
            last.compaction = now;
            self.run_compaction(wall_clock_ms());
        }
        if now.duration_since(last.producer_expiry) >= PRODUCER_EXPIRY_CHECK {
            last.producer_expiry = now;
            self.expire_producers(wall_clock_ms());
        }
    }

    /// Forgets, in every open partition, the producers idle longer than
    /// [`PRODUCER_ID_EXPIRATION_MS`] as of `now_ms` (a partition not open
    /// forgets them when it opens); returns how many.
    fn expire_producers(&self, now_ms: i64) -> usize {
        let cutoff = now_ms.saturating_sub(PRODUCER_ID_EXPIRATION_MS);
        let forgotten: usize = self
            .all_partitions()
            .iter()
            .map(|p| p.expire_producers(cutoff))
            .sum();
        if forgotten > 0 {
            debug!(producers = forgotten, "forgot idle producers");
        }
        forgotten
    }

    /// Records the recovery point and producer state of every partition
    /// that changed since its last checkpoint. With many of them, their
    /// flushes and snapshots are made durable by one filesystem sync, then
    /// their recovery points written and synced again (not several fsyncs
    /// per partition).
    fn checkpoint_all(&self, partitions: &[Arc<Partition>]) {
        let changed: Vec<Arc<Partition>> = partitions
            .iter()
            .filter(|p| p.needs_checkpoint())
            .cloned()
            .collect();
        let mut failures = CheckpointFailures::default();
        if changed.len() < DEFERRED_CHECKPOINTS {
            for p in &changed {
                if let Err(e) = p.checkpoint() {
                    failures.note(p, &e);
                }
            }
            failures.report();
            return;
        }
        let mut prepared = Vec::with_capacity(changed.len());
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            for p in changed {
                match p.prepare_close() {
                    Ok(()) => prepared.push(p),
                    Err(e) => failures.note(&p, &e),
                }
            }
        }
        failures.report();
        if let Err(e) = self.sync_then_record_recovery_points(&prepared) {
            warn!(error = %e, "checkpoint failed");
        }
    }

    fn run_retention(&self, now_ms: i64) -> u64 {
        let mut freed = 0;
        // Only topics with a limit to apply (`Log::apply_retention` does
        // nothing for the others): never-used partitions stay closed there.
        let limited = |t: &Topic| {
            t.config.cleanup_policy.deletes()
                && (t.config.retention_ms.is_some() || t.config.retention_bytes.is_some())
        };
        // Partitions closed since the start are opened only if their
        // oldest segment is past a limit.
        let idle = |t: &Topic, c: &ClosedPartition| {
            !c.retention_due(now_ms, t.config.retention_ms, t.config.retention_bytes)
        };
        for p in self.all_partitions_opening(limited, idle) {
            match p.log().apply_retention(now_ms) {
                Ok(r) => {
                    if !r.deleted_segments.is_empty() {
                        info!(
                            topic = p.topic(),
                            partition = p.index(),
                            segments = r.deleted_segments.len(),
                            bytes = r.deleted_bytes,
                            "retention deleted segments"
                        );
                    }
                    freed += r.deleted_bytes;
                }
                Err(e) => {
                    warn!(topic = p.topic(), partition = p.index(), error = %e, "retention failed")
                }
            }
        }
        freed
    }

    fn run_compaction(&self, now_ms: i64) -> u64 {
        let mut removed = 0;
        // Only compacted topics' logs are opened for it.
        // One empty segment: nothing to compact.
        let empty = |_: &Topic, c: &ClosedPartition| c.segments() <= 1 && c.size_bytes() == 0;
        for p in self.all_partitions_opening(|t| t.config.cleanup_policy.compacts(), empty) {
            // Never past the last stable offset (open transactions).
            match p.log().compact_below(now_ms, p.last_stable_offset()) {
                Ok(r) => {
                    removed += r.superseded_removed
                        + r.tombstones_removed
                        + r.keyless_removed
                        + r.aborted_removed
                }
                Err(e) => {
                    warn!(topic = p.topic(), partition = p.index(), error = %e, "compaction failed")
                }
            }
        }
        removed
    }

    /// Stops the clock thread and waits for it (unless called from it).
    pub(super) fn stop_clock(&self) {
        {
            *self.stop.0.lock() = true;
            self.stop.1.notify_all();
        }
        // The lock is released before the join (a temporary's guard would
        // live through the `if let`).
        let handle = self.background.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

fn background_loop(inner: Weak<Inner>, interval: Duration) {
    let mut schedule = Schedule {
        checkpoint: Instant::now(),
        retention: Instant::now(),
        compaction: Instant::now(),
        producer_expiry: Instant::now(),
    };
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        {
            let mut stopped = strong.stop.0.lock();
            if *stopped {
                return;
            }
            strong.stop.1.wait_for(&mut stopped, interval);
            if *stopped {
                return;
            }
        }
        strong.background_tick(&mut schedule);
    }
}

impl Broker {
    /// Starts the clock thread.
    pub(super) fn start_clock(&self) -> Result<()> {
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.config.tick_interval;
        let handle = std::thread::Builder::new()
            .name("pubsub-clock".into())
            .spawn(move || background_loop(weak, interval))
            .map_err(|e| BrokerError::io("spawn clock thread", &self.inner.dir, e))?;
        *self.inner.background.lock() = Some(handle);
        Ok(())
    }

    /// Runs retention on every partition as of `now_ms`; returns bytes freed.
    pub fn run_retention(&self, now_ms: i64) -> u64 {
        self.inner.run_retention(now_ms)
    }

    /// Runs compaction on every compacted partition as of `now_ms`; returns
    /// records removed.
    pub fn run_compaction(&self, now_ms: i64) -> u64 {
        self.inner.run_compaction(now_ms)
    }

    /// Forgets the producers idle longer than Kafka's
    /// `producer.id.expiration.ms` (1 day) as of `now_ms`, in every open
    /// partition (what the clock does every 10 minutes); returns how many.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        self.inner.expire_producers(now_ms)
    }

    /// Advances the coordinators' timers (when the background clock is
    /// off): group sessions, and transactions to complete or time out.
    pub fn tick(&self) {
        self.inner.tick_coordinators();
    }
}

/// The failures of one checkpoint round: a log out of space said so once
/// (and says when it takes writes again), so it is only a debug line; broker
/// files (producer snapshots) that find no space are one line a round, not
/// one per partition; anything else is a warning per partition.
#[derive(Default)]
struct CheckpointFailures {
    full: usize,
    first_full: Option<String>,
}

impl CheckpointFailures {
    fn note(&mut self, p: &Partition, e: &BrokerError) {
        if e.is_log_out_of_space() {
            debug!(topic = p.topic(), partition = p.index(), error = %e, "checkpoint: still out of space");
        } else if e.is_out_of_space() {
            self.full += 1;
            self.first_full
                .get_or_insert_with(|| format!("{}-{}: {e}", p.topic(), p.index()));
        } else {
            warn!(topic = p.topic(), partition = p.index(), error = %e, "checkpoint failed");
        }
    }

    fn report(self) {
        if let Some(first) = self.first_full {
            warn!(
                partitions = self.full,
                first = %first,
                "checkpoint: out of space writing partition state (producer snapshots); retried next round"
            );
        }
    }
}
