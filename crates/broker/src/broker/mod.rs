//! [`Broker`]: topics and partitions on disk, producer ids, the group
//! coordinator, and a background clock that drives timers, flushing,
//! recovery points, retention and compaction.
//!
//! A `Broker` is a cheap handle (clone it freely); the data directory is
//! locked while one is open. [`Broker::close`] (or dropping the last handle)
//! shuts down cleanly so the next open skips recovery.
//!
//! By concern: [`open`] locks the directory and loads it, [`admin`] creates,
//! changes and deletes topics, [`delete_records`] moves log start offsets, [`traffic`] produces and fetches,
//! [`producer_ids`] hands out producer ids, [`scheduler`] is the background
//! clock, [`recovery`] recovers partitions a kill left unclean after the
//! start. Consumer groups are driven through [`Broker::coordinator`].

mod admin;
mod delete_records;
mod open;
mod producer_ids;
mod recovery;
mod scheduler;
#[cfg(test)]
mod seam;
mod traffic;
mod transactions;
mod txn_background;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_storage::RecoveryReport;
use tracing::{info, warn};

use crate::closed_partitions::{ClosedPartition, ClosedPartitions, ClosedTopic};
use crate::config::BrokerConfig;
use crate::error::{BrokerError, Result};
use crate::group::{GroupCoordinator, OffsetsStore};
use crate::notify::{Notifier, Wakeup};
use crate::partition::Partition;
use crate::partitioner::RoundRobin;
use crate::topic::{PartitionEntry, Topic};

pub use admin::{NewTopic, MAX_PARTITIONS};
pub use delete_records::HIGH_WATERMARK;
pub use traffic::{ListedOffset, OffsetSpec};

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    config: BrokerConfig,
    cluster_id: String,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation, deletion and changes.
    admin: Mutex<()>,
    coordinator: GroupCoordinator,
    /// The transaction coordinator (`__transaction_state`).
    transactions: crate::txn::TransactionCoordinator,
    /// Its fsync threads and completer, on this broker's files.
    txn_background: txn_background::TxnBackground,
    producer_ids: Mutex<producer_ids::ProducerIds>,
    /// This open's broker generation (see [`crate::metadata::BrokerMeta`]).
    generation: u64,
    started: Instant,
    tick: Notifier,
    spread: RoundRobin,
    closed: AtomicBool,
    stop: (Mutex<bool>, Condvar),
    background: Mutex<Option<JoinHandle<()>>>,
    /// The background recovery pass, while it runs.
    recovering: Mutex<Option<JoinHandle<()>>>,
    recovery: Mutex<Vec<(String, i32, RecoveryReport)>>,
    /// SCRAM credentials (`users.checkpoint`).
    users: crate::security::Users,
    /// The ACLs (`acls.checkpoint`), which the protocol server enforces.
    acls: crate::security::acl::AclStore,
    /// Holds the data directory's lock while open.
    lock: File,
    /// What first-use opens run through ([`Broker::run_opens_with`]).
    offload: std::sync::OnceLock<Offload>,
}

/// A function that runs work which may block for long (a partition's
/// first-use open: file opens, maps, recovery) so that it stalls nothing
/// else the calling thread serves; see [`Broker::run_opens_with`].
pub type Offload = fn(&mut dyn FnMut());

/// A broker, opened on a data directory.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// The topic, or the unknown-topic error.
    fn existing_topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topic(name)
            .ok_or_else(|| BrokerError::unknown_topic(name, None))
    }

    /// The partition, opened (on first use: see [`PartitionEntry`]).
    fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        let t = self.partition_entry(topic, partition)?;
        self.opened(&t.0, &t.1)
    }

    /// The topic and the entry of one of its partitions, opened or not.
    fn partition_entry(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Topic>, Arc<PartitionEntry>)> {
        let unknown = || BrokerError::unknown_topic(topic, Some(partition));
        let t = self.topic(topic).ok_or_else(unknown)?;
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        let entry = t.partitions.get(index).cloned().ok_or_else(unknown)?;
        Ok((t, entry))
    }

    /// Every partition opened so far (one never used since the broker
    /// opened has nothing to flush, checkpoint or close).
    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().filter_map(|e| e.get().cloned()))
            .collect()
    }

    /// Every partition of the topics `which` picks, opening those not
    /// opened yet (retention and compaction judge every log) unless the
    /// closed-partitions file says `idle` of them (the pass has nothing to
    /// do there); one that fails to open is logged and left out.
    fn all_partitions_opening(
        &self,
        which: impl Fn(&Topic) -> bool,
        idle: impl Fn(&Topic, &ClosedPartition) -> bool,
    ) -> Vec<Arc<Partition>> {
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        let mut all = Vec::new();
        for t in topics.iter().filter(|t| which(t)) {
            for e in &t.partitions {
                if e.get().is_none() && e.closed_state().is_some_and(|c| idle(t, &c)) {
                    continue;
                }
                match self.opened(t, e) {
                    Ok(p) => all.push(p),
                    Err(BrokerError::Closed) => return all,
                    Err(e) => warn!(topic = %t.meta.name, error = %e, "partition did not open"),
                }
            }
        }
        all
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_clock();
        self.stop_recovery();
        // The completer logs the completions still queued first.
        self.txn_background.stop();
        let _admin = self.admin.lock();
        let mut first_error = None;
        let all = self.all_partitions();
        let mut summary = true;
        // Two filesystem syncs for all partitions instead of fsyncs per
        // partition: first the data and producer state of every partition,
        // then (only once those are durable) the clean-shutdown markers.
        let mut durable = Vec::with_capacity(all.len());
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            // Its entries must not outlive the clean-shutdown markers they
            // go with: gone (with the first sync) before any marker is
            // written, written again once every marker is durable.
            let removed = ClosedPartitions::remove(&self.dir);
            if let Err(e) = removed {
                warn!(error = %e, "no partition is marked clean: the closed-partitions file stays");
                first_error.get_or_insert(e);
                summary = false;
            }
            for p in &all {
                match p.prepare_close() {
                    Ok(()) => durable.push(Arc::clone(p)),
                    Err(e) => {
                        warn!(topic = p.topic(), partition = p.index(), error = %e, "partition did not close cleanly");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if let Err(e) = self.sync_filesystem() {
            warn!(error = %e, "no partition is marked clean: the filesystem sync failed");
            first_error.get_or_insert(e);
            durable.clear();
        }
        if !summary && !durable.is_empty() {
            // The stale file stays, so no partition may be marked clean
            // (its entries would hold again): the partitions stay flushed,
            // with their producer state and recovery points, and the next
            // start recovers each from there.
            if let Err(e) = self.sync_then_record_recovery_points(&durable) {
                first_error.get_or_insert(e);
            }
            durable.clear();
        }
        let mut clean = std::collections::HashSet::with_capacity(durable.len());
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            for p in &durable {
                match p.close() {
                    // A log appended to after its flush above is closed
                    // unmarked: its next open recovers it.
                    Ok(()) if !p.log().is_marked_clean() => {}
                    Ok(()) => {
                        clean.insert(Arc::as_ptr(p));
                    }
                    Err(e) => {
                        warn!(topic = p.topic(), partition = p.index(), error = %e, "partition did not close cleanly");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match self.sync_filesystem() {
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(()) if summary => {
                if let Err(e) = self.closed_partitions(&clean).write(&self.dir) {
                    warn!(error = %e, "the closed-partitions file was not written: every partition opens at the next start");
                    first_error.get_or_insert(e);
                }
            }
            Ok(()) => {}
        }
        self.tick.notify();
        // Handles may outlive the broker; the directory is free now.
        let _ = self.lock.unlock();
        info!(dir = %self.dir.display(), "broker closed");
        first_error.map_or(Ok(()), Err)
    }
}

impl Inner {
    /// What the closed-partitions file says after a close: the partitions
    /// in `clean` (closed cleanly now), and those never opened since the
    /// broker opened, as the previous close recorded them.
    fn closed_partitions(
        &self,
        clean: &std::collections::HashSet<*const Partition>,
    ) -> ClosedPartitions {
        let mut file = ClosedPartitions {
            generation: self.generation,
            ..Default::default()
        };
        // The topics are cloned out of the map first: no read lock on it is
        // held while waiting for open locks.
        let topics: Vec<(String, Arc<Topic>)> = self
            .topics
            .read()
            .iter()
            .map(|(name, t)| (name.clone(), Arc::clone(t)))
            .collect();
        for (name, t) in &topics {
            let partitions = t
                .partitions
                .iter()
                .map(|e| {
                    e.with_opening(|_, opened| match opened {
                        Some(p) if clean.contains(&Arc::as_ptr(p)) => {
                            let log = p.log();
                            let oldest = log.oldest_segment().ok();
                            Some(ClosedPartition(
                                log.log_start_offset(),
                                log.log_end_offset(),
                                log.size_bytes(),
                                log.segment_count() as u64,
                                p.leader_epoch(),
                                self.generation,
                                oldest.map(|o| o.0),
                                oldest.map(|o| o.1),
                            ))
                        }
                        Some(_) => None,
                        None => e.closed_state(),
                    })
                })
                .collect();
            file.topics.insert(
                name.clone(),
                ClosedTopic {
                    id: t.meta.id,
                    partitions,
                },
            );
        }
        file
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            if let Err(e) = self.close() {
                warn!(error = %e, "closing the broker on drop failed");
            }
        }
    }
}

impl Broker {
    /// Closes cleanly: stops the clock, snapshots producer state and closes
    /// every partition so the next open needs no recovery.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Runs every first-use open of a partition (and the wait for one
    /// another caller runs) through `offload` from now on: a server on an
    /// async runtime passes a function that leaves the runtime's worker
    /// for the blocking pool, so one slow open (a large recovery, a slow
    /// disk) does not stall the connections served by that worker. The
    /// first call wins; without one, opens run on the calling thread.
    pub fn run_opens_with(&self, offload: Offload) {
        let _ = self.inner.offload.set(offload);
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// True once [`Broker::close`] ran (or started).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// The ACLs, durable in the data directory. The broker itself never
    /// consults them (the embedded API is trusted); the protocol server does.
    pub fn acls(&self) -> &crate::security::acl::AclStore {
        &self.inner.acls
    }

    /// The cluster id (persisted at first start).
    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Monotonic milliseconds since the broker opened (the coordinator's
    /// clock: pass it as `now` to [`GroupCoordinator`] calls).
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// What recovery did for each partition opened so far.
    pub fn recovery_reports(&self) -> Vec<(String, i32, RecoveryReport)> {
        self.inner.recovery.lock().clone()
    }

    /// Wakes `w` on every clock tick (embedded consumers use it to
    /// heartbeat while they wait).
    pub fn subscribe_ticks(&self, w: &Arc<Wakeup>) {
        self.inner.tick.subscribe(w);
    }

    /// The group coordinator: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
    /// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups and
    /// DeleteGroups, on the clock [`Broker::now_ms`] and the store
    /// [`Broker::offsets_store`].
    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.inner.coordinator
    }

    /// The transaction coordinator: InitProducerId with a transactional
    /// id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, on the wall clock
    /// ([`wall_clock_ms`]) and the store [`Broker::txn_store`].
    pub fn transactions(&self) -> &crate::txn::TransactionCoordinator {
        &self.inner.transactions
    }

    /// Where the transaction coordinator makes its state durable
    /// (`__transaction_state`, created at first use) and writes markers.
    pub fn txn_store(&self) -> &dyn crate::txn::TxnStore {
        self.inner.as_ref()
    }

    /// Where the coordinator makes group records durable: the group's
    /// `__consumer_offsets` partition.
    pub fn offsets_store(&self) -> &dyn OffsetsStore {
        self.inner.as_ref()
    }

    /// The users and their SCRAM credentials (the server authenticates
    /// against them; the embedded API never does).
    pub fn users(&self) -> &crate::security::Users {
        &self.inner.users
    }
}
