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
//! clock. Consumer groups are driven through [`Broker::coordinator`].

mod admin;
mod delete_records;
mod open;
mod producer_ids;
mod scheduler;
mod traffic;
mod transactions;

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

use crate::config::BrokerConfig;
use crate::error::{BrokerError, Result};
use crate::group::{GroupCoordinator, OffsetsStore};
use crate::notify::{Notifier, Wakeup};
use crate::partition::Partition;
use crate::partitioner::RoundRobin;
use crate::topic::Topic;

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
    producer_ids: Mutex<producer_ids::ProducerIds>,
    /// This open's broker generation (see [`crate::metadata::BrokerMeta`]).
    generation: u64,
    started: Instant,
    tick: Notifier,
    spread: RoundRobin,
    closed: AtomicBool,
    stop: (Mutex<bool>, Condvar),
    background: Mutex<Option<JoinHandle<()>>>,
    recovery: Mutex<Vec<(String, i32, RecoveryReport)>>,
    /// SCRAM credentials (`users.checkpoint`).
    users: crate::security::Users,
    /// The ACLs (`acls.checkpoint`), which the protocol server enforces.
    acls: crate::security::acl::AclStore,
    /// Holds the data directory's lock while open.
    lock: File,
}

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

    fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        let unknown = || BrokerError::unknown_topic(topic, Some(partition));
        let t = self.topic(topic).ok_or_else(unknown)?;
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        t.partitions.get(index).cloned().ok_or_else(unknown)
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_clock();
        let _admin = self.admin.lock();
        let mut first_error = None;
        let all = self.all_partitions();
        // Two filesystem syncs for all partitions instead of fsyncs per
        // partition: first the data and producer state of every partition,
        // then (only once those are durable) the clean-shutdown markers.
        let mut durable = Vec::with_capacity(all.len());
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
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
        {
            let _deferred = pubsub_storage::fs::defer_syncs();
            for p in &durable {
                if let Err(e) = p.close() {
                    warn!(topic = p.topic(), partition = p.index(), error = %e, "partition did not close cleanly");
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Err(e) = self.sync_filesystem() {
            first_error.get_or_insert(e);
        }
        self.tick.notify();
        // Handles may outlive the broker; the directory is free now.
        let _ = self.lock.unlock();
        info!(dir = %self.dir.display(), "broker closed");
        first_error.map_or(Ok(()), Err)
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
