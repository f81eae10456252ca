//! Recovery after an unclean stop, off the start path: a broker killed
//! with SIGKILL opens without recovering the partitions it left unclean
//! (their entries are unrecovered, see [`PartitionEntry::needs_recovery`]).
//! Each is recovered on its first use (under its open lock, as any lazy
//! open) or by the background recovery pass that starts with the broker,
//! whichever comes first; nothing is read from, written to or answered for
//! a partition before its recovery, and the pass makes each chunk of
//! recovered partitions durable (one filesystem sync, then their recovery
//! points) before any of them is served.

use std::sync::{Arc, Weak};

use tracing::{info, warn};

use super::{Broker, Inner};
use crate::error::{BrokerError, Result};
use crate::metadata::partition_dir;
use crate::partition::epoch_without_recovery;
use crate::topic::{PartitionEntry, Topic};

/// Partitions one thread of the pass recovers between two filesystem
/// syncs.
const CHUNK: usize = 64;

/// A partition left unrecovered, with its topic.
type Pending = (Arc<Topic>, Arc<PartitionEntry>);

impl Inner {
    /// Every partition still unrecovered, by topic name then index.
    fn pending_recovery(&self) -> Vec<Pending> {
        self.topics
            .read()
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|e| e.needs_recovery())
                    .map(move |e| (Arc::clone(t), Arc::clone(e)))
            })
            .collect()
    }

    /// Opens (recovers) `entry` if it is still unrecovered, so that what is
    /// answered for it (epoch, offsets, size) is its recovered state.
    pub(super) fn settle(&self, topic: &Topic, entry: &PartitionEntry) -> Result<()> {
        if entry.needs_recovery() {
            self.opened(topic, entry)?;
        }
        Ok(())
    }

    /// The leader epoch to answer for `entry` (Metadata): an unrecovered
    /// partition's is read from its files, without recovering it, when
    /// they settle it ([`crate::partition::epoch_without_recovery`]: the
    /// epoch its recovery will give it); otherwise it is recovered first.
    pub(super) fn answered_epoch(&self, topic: &Topic, entry: &PartitionEntry) -> Result<i32> {
        if entry.needs_recovery() && entry.epoch_before_recovery().is_none() {
            let dir = partition_dir(&self.dir, &topic.meta.name, entry.index());
            match epoch_without_recovery(&dir, topic.meta.id, self.generation) {
                Some(epoch) => entry.set_epoch_before_recovery(epoch),
                None => self.settle(topic, entry)?,
            }
        }
        Ok(entry.leader_epoch())
    }

    /// Recovers every partition still unrecovered, now (rounds of
    /// [`Inner::recover_round`]); returns how many it recovered.
    pub(super) fn recover_all_pending(&self) -> usize {
        self.recover_pending_of(|_| true)
    }

    /// [`Inner::recover_all_pending`] for the topics `which` picks (the
    /// open recovers the internal topics it loads so, one filesystem sync
    /// per chunk instead of fsyncs per partition).
    pub(super) fn recover_pending_of(&self, which: impl Fn(&Topic) -> bool) -> usize {
        let mut pending = self.pending_recovery();
        pending.retain(|(t, _)| which(t));
        let mut recovered = 0;
        for round in pending.chunks(round_size()) {
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            recovered += self.recover_round(round);
        }
        recovered
    }

    /// Recovers `round` on up to [`super::open::open_threads`] threads,
    /// [`CHUNK`] partitions each; returns how many it recovered.
    fn recover_round(&self, round: &[Pending]) -> usize {
        let threads = super::open::open_threads(round.len()).max(1);
        let per_thread = round.len().div_ceil(threads).clamp(1, CHUNK);
        let recovered = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for chunk in round.chunks(per_thread) {
                let recovered = &recovered;
                s.spawn(move || {
                    let n = self.recover_chunk(chunk);
                    recovered.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                });
            }
        });
        recovered.into_inner()
    }

    /// Recovers the partitions of `chunk` still unrecovered, holding each
    /// one's open lock from before its open until it is durable: their
    /// opens defer fsyncs to one filesystem sync, then their recovery
    /// points are written (and synced), and only then are they served. A
    /// partition that fails to open, or a chunk whose sync fails, stays
    /// unrecovered (its first use tries again and answers the error).
    ///
    /// The pass takes no admin lock: the admin paths (DeleteTopics, topic
    /// settings) take the admin lock and then one open lock at a time, so
    /// the pass, which holds many open locks at once, must not wait for
    /// the admin lock while it holds any. As for a first-use open, the
    /// open lock is what orders it against a deletion: a deletion marks
    /// each entry deleted under its open lock before it removes any
    /// directory, and holds the admin lock until it has removed them all,
    /// so an entry found not deleted under that lock still has its own
    /// directory (its topic cannot have been re-created in its place),
    /// and keeps it until the lock is released; a deleted one is skipped.
    fn recover_chunk(&self, chunk: &[Pending]) -> usize {
        let mut held = Vec::with_capacity(chunk.len());
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            for (topic, entry) in chunk {
                if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                let guard = entry.lock_opening();
                if !entry.needs_recovery() || entry.is_deleted() {
                    continue;
                }
                match self.open_partition_reporting(&topic.meta, &guard, entry.index()) {
                    Ok((p, report)) => {
                        held.push((guard, topic, entry, p, report));
                        #[cfg(test)]
                        super::seam::reached(super::seam::Seam::RecoveryHolds, &self.dir);
                    }
                    Err(e) => warn!(
                        topic = %topic.meta.name,
                        partition = entry.index(),
                        error = %e,
                        "background recovery failed: the partition is recovered at its first use"
                    ),
                }
            }
        }
        let partitions: Vec<_> = held.iter().map(|h| Arc::clone(&h.3)).collect();
        if let Err(e) = self.sync_then_record_recovery_points(&partitions) {
            warn!(error = %e, partitions = held.len(), "background recovery could not sync: the partitions are recovered at their first use");
            return 0;
        }
        let n = held.len();
        for (guard, topic, entry, p, report) in held {
            super::open::warn_if_epoch_moved(
                &topic.meta.name,
                entry.index(),
                entry.epoch_before_recovery(),
                p.leader_epoch(),
            );
            entry.set_opened(p);
            drop(guard);
            self.record_recovery(&topic.meta.name, entry.index(), report);
        }
        n
    }

    /// Waits for the background recovery pass to stop (it stops at its next
    /// round once the broker is closing), unless called from it.
    pub(super) fn stop_recovery(&self) {
        // The lock is released before the join (a temporary's guard would
        // live through the `if let`).
        let handle = self.recovering.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// Partitions a round of the pass recovers (all threads together).
fn round_size() -> usize {
    CHUNK * super::open::open_threads(usize::MAX)
}

/// The background pass: recovers what was unrecovered at start, a round
/// at a time, holding the broker only during a round.
fn recovery_loop(inner: Weak<Inner>, pending: Vec<Pending>) {
    let started = std::time::Instant::now();
    let mut recovered = 0;
    for round in pending.chunks(round_size()) {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        recovered += strong.recover_round(round);
    }
    info!(
        partitions = recovered,
        ms = started.elapsed().as_millis() as u64,
        "background recovery done"
    );
}

impl Broker {
    /// Starts the background recovery pass if partitions were left
    /// unrecovered at start.
    pub(super) fn start_recovery(&self) -> Result<()> {
        let pending = self.inner.pending_recovery();
        if pending.is_empty() {
            return Ok(());
        }
        info!(
            partitions = pending.len(),
            "recovering partitions not closed cleanly in the background (each also at its first use)"
        );
        let weak = Arc::downgrade(&self.inner);
        let handle = std::thread::Builder::new()
            .name("pubsub-recovery".into())
            .spawn(move || recovery_loop(weak, pending))
            .map_err(|e| BrokerError::io("spawn recovery thread", &self.inner.dir, e))?;
        *self.inner.recovering.lock() = Some(handle);
        Ok(())
    }

    /// Recovers, now, every partition still unrecovered since the start
    /// (what the background pass does; with the background clock off,
    /// tests call it); returns how many it recovered.
    pub fn recover_pending(&self) -> usize {
        self.inner.recover_all_pending()
    }

    /// How many partitions are still unrecovered since the start.
    pub fn pending_recovery(&self) -> usize {
        self.inner.pending_recovery().len()
    }
}
