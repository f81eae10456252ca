//! Opening a broker: lock the data directory, read or create the broker
//! file, load every topic (no partition is opened: one the
//! closed-partitions file vouches for stays closed until its first use; the
//! others are recovered at their first use or by the background recovery
//! pass, see [`super::recovery`]), remove directories of deleted topics,
//! create `__consumer_offsets` if missing, load consumer groups and
//! transactions, start the clock and the recovery pass.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_storage::RecoveryReport;
use tracing::{info, warn};
use uuid::Uuid;

use super::producer_ids::ProducerIds;
use super::{Broker, Inner};
use crate::check;
use crate::closed_partitions::{ClosedPartition, ClosedPartitions};
use crate::config::{BrokerConfig, TopicConfig};
use crate::error::{BrokerError, Result};
use crate::group::{GroupCoordinator, OffsetsLogEntry};
use crate::metadata::{
    self, partition_dir, BrokerMeta, PartitionMeta, TopicMeta, BROKER_FILE, DELETE_SUFFIX,
    KIND_BROKER, KIND_PARTITION, KIND_TOPIC, LOCK_FILE, PARTITION_FILE, TOPICS_DIR,
};
use crate::names::CONSUMER_OFFSETS;
use crate::notify::Notifier;
use crate::partition::Partition;
use crate::partitioner::RoundRobin;
use crate::topic::{PartitionEntry, Topic};
use crate::txn::TRANSACTION_STATE;

impl Broker {
    /// Opens (creating if needed) the broker in `dir`: locks it, loads
    /// topics (recovering the partitions not left closed by a clean close),
    /// loads consumer groups, committed offsets and transactions, and starts
    /// the background clock.
    pub fn open(dir: impl Into<PathBuf>, config: BrokerConfig) -> Result<Broker> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join(TOPICS_DIR))
            .map_err(|e| BrokerError::io("create directory", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file =
            File::create(&lock_path).map_err(|e| BrokerError::io("create", &lock_path, e))?;
        if lock_file.try_lock().is_err() {
            return Err(BrokerError::Locked(dir));
        }
        let meta_path = dir.join(BROKER_FILE);
        let mut meta =
            metadata::read::<BrokerMeta>(&meta_path, KIND_BROKER)?.unwrap_or_else(|| BrokerMeta {
                cluster_id: Uuid::new_v4().simple().to_string(),
                next_producer_id_block: 0,
                generation: 0,
            });
        // The closed-partitions file vouches for every entry when the
        // previous open wrote it at its clean close (same generation);
        // otherwise each entry only with its partition's marker.
        let closed = ClosedPartitions::read(&dir);
        let closed = LazyOpen {
            trusted: closed
                .as_ref()
                .is_some_and(|f| f.generation == meta.generation),
            file: closed,
        };
        // A new generation, durable before any partition takes an epoch
        // from it: one fsync however many partitions there are.
        meta.generation += 1;
        metadata::write(&meta_path, KIND_BROKER, &meta)?;
        let users = crate::security::Users::open(&dir)?;
        let acls = crate::security::acl::AclStore::open(&dir)?;
        let inner = Arc::new_cyclic(|me| Inner {
            dir: dir.clone(),
            coordinator: GroupCoordinator::new(config.group.clone()),
            transactions: crate::txn::TransactionCoordinator::new(config.txn.clone()),
            txn_background: super::txn_background::TxnBackground::new(me.clone()),
            config,
            cluster_id: meta.cluster_id.clone(),
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            producer_ids: Mutex::new(ProducerIds::from_block(meta.next_producer_id_block)),
            generation: meta.generation,
            started: Instant::now(),
            tick: Notifier::default(),
            spread: RoundRobin::default(),
            closed: AtomicBool::new(false),
            stop: (Mutex::new(false), Condvar::new()),
            background: Mutex::new(None),
            recovering: Mutex::new(None),
            recovery: Mutex::new(Vec::new()),
            offload: std::sync::OnceLock::new(),
            users,
            acls,
            lock: lock_file,
        });
        let broker = Broker { inner };
        {
            // Opening writes a little to every partition (the clean-shutdown
            // marker goes, new epochs are recorded): one filesystem sync for
            // all of them instead of fsyncs per partition. Nothing is served
            // before it.
            let _deferred = pubsub_storage::fs::defer_syncs();
            broker.load_topics(&closed)?;
            broker.remove_stale_dirs()?;
            if broker.inner.topic(CONSUMER_OFFSETS).is_none() {
                broker.inner.create_offsets_topic()?;
            }
        }
        let all = broker.inner.all_partitions();
        broker.inner.sync_then_record_recovery_points(&all)?;
        // The internal topics are read now: recovered together first.
        broker.inner.recover_pending_of(|t| {
            t.meta.name == CONSUMER_OFFSETS || t.meta.name == TRANSACTION_STATE
        });
        broker.load_groups()?;
        broker.load_transactions()?;
        if broker.inner.config.background {
            broker.start_clock()?;
            broker.start_recovery()?;
        }
        info!(dir = %dir.display(), topics = broker.inner.topics.read().len(), "broker open");
        Ok(broker)
    }

    fn load_topics(&self, closed: &LazyOpen) -> Result<()> {
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        let mut metas = Vec::new();
        for path in check::topic_file_paths(&self.inner.dir)
            .map_err(|e| BrokerError::io("list", &topics_dir, e))?
        {
            if let Some(m) = metadata::read::<TopicMeta>(&path, KIND_TOPIC)? {
                metas.push(m);
            }
        }
        let mut topics = Vec::with_capacity(metas.len());
        for meta in metas {
            let config = self
                .inner
                .config
                .topic_defaults
                .with_overrides(&meta.configs)?;
            topics.push((meta, config));
        }
        for topic in self.inner.open_topics(topics, Some(closed)) {
            let topic = topic?;
            self.inner
                .topics
                .write()
                .insert(topic.meta.name.clone(), topic);
        }
        Ok(())
    }

    /// Removes partition directories of deleted topics (and directories a
    /// deletion was interrupted in): the rule is [`check::stale_reason`].
    fn remove_stale_dirs(&self) -> Result<()> {
        let dir = &self.inner.dir;
        let listing = check::list_data_dir(dir).map_err(|e| BrokerError::io("list", dir, e))?;
        for (_, path) in &listing.deleting {
            std::fs::remove_dir_all(path).map_err(|e| BrokerError::io("delete", path, e))?;
        }
        let topics = self.inner.topics.read().clone();
        for (name, path) in &listing.dirs {
            // The directory of a partition of a live topic is live (opened
            // now, or left closed and vouched for): no need to read its
            // partition file again.
            if check::split_dir_name(name).is_some_and(|(t, n)| {
                *name == format!("{t}-{n}")
                    && topics
                        .get(t)
                        .is_some_and(|t| u32::try_from(n).is_ok_and(|n| n < t.meta.partitions))
            }) {
                continue;
            }
            let Ok(Some(pm)) = check::partition_meta(path) else {
                continue;
            };
            let topic = self.inner.topic(&pm.topic);
            if check::stale_reason(name, &pm, topic.as_ref().map(|t| &t.meta)).is_some() {
                info!(dir = %path.display(), "removing the directory of a deleted topic");
                remove_partition_dir(path)?;
            }
        }
        Ok(())
    }

    fn load_groups(&self) -> Result<()> {
        let mut entries = Vec::new();
        self.scan_internal(CONSUMER_OFFSETS, |partition, batch| {
            if batch.is_control() {
                if let Some(commit) = marker_is_commit(batch) {
                    entries.push(OffsetsLogEntry::Marker {
                        partition,
                        producer_id: batch.producer_id(),
                        commit,
                    });
                }
                return Ok(());
            }
            let producer_id = batch.is_transactional().then(|| batch.producer_id());
            for r in batch.records(64 << 20)?.iter() {
                let r = r?;
                if let Some(k) = r.key {
                    entries.push(OffsetsLogEntry::Record {
                        key: k.to_vec(),
                        value: r.value.map(<[u8]>::to_vec),
                        producer_id,
                    });
                }
            }
            Ok(())
        })?;
        let n = entries.len();
        self.inner.coordinator.load(entries, self.inner.now_ms());
        info!(
            records = n,
            groups = self.inner.coordinator.list().len(),
            "loaded consumer groups"
        );
        Ok(())
    }

    /// Loads transactions from `__transaction_state` (when it exists) and
    /// completes those decided before a crash (their markers rewritten).
    fn load_transactions(&self) -> Result<()> {
        if self.inner.topic(TRANSACTION_STATE).is_none() {
            return Ok(());
        }
        let records = self.read_keyed_records(TRANSACTION_STATE)?;
        let n = records.len();
        self.inner.transactions.load(records);
        let completed = self
            .inner
            .transactions
            .tick(self.inner.as_ref(), super::wall_clock_ms());
        info!(
            records = n,
            transactional_ids = self.inner.transactions.len(),
            completed,
            "loaded transactions"
        );
        Ok(())
    }

    /// Every keyed record of an internal topic's data batches, partition
    /// by partition, in log order.
    fn read_keyed_records(&self, name: &str) -> Result<Vec<KeyedRecord>> {
        let mut records = Vec::new();
        self.scan_internal(name, |_, batch| {
            if batch.is_control() {
                return Ok(());
            }
            for r in batch.records(64 << 20)?.iter() {
                let r = r?;
                if let Some(k) = r.key {
                    records.push((k.to_vec(), r.value.map(<[u8]>::to_vec)));
                }
            }
            Ok(())
        })?;
        Ok(records)
    }

    /// Every batch of an internal topic with its partition index,
    /// partition by partition, in log order.
    fn scan_internal(
        &self,
        name: &str,
        mut each: impl FnMut(i32, &pubsub_records::Batch<'_>) -> Result<()>,
    ) -> Result<()> {
        let topic = self.inner.existing_topic(name)?;
        let mut buf = Vec::new();
        for e in &topic.partitions {
            let p = self.inner.opened(&topic, e)?;
            let mut next = p.log().log_start_offset();
            while next < p.log().log_end_offset() {
                // Through the log: loading is not consumer traffic.
                p.log()
                    .read_into(next, 1 << 20, &mut buf)
                    .map_err(|e| BrokerError::storage(name, p.index(), e))?;
                if buf.is_empty() {
                    break;
                }
                for batch in pubsub_records::Batches::new(&buf) {
                    let batch = batch?;
                    next = batch.last_offset() as u64 + 1;
                    each(p.index(), &batch)?;
                }
            }
        }
        Ok(())
    }
}

/// Whether a control batch is a COMMIT marker (`Some(false)`: ABORT;
/// `None`: unreadable, or another kind of control record).
fn marker_is_commit(batch: &pubsub_records::Batch<'_>) -> Option<bool> {
    let records = batch.records(1 << 20).ok()?;
    let r = records.iter().next()?.ok()?;
    let marker = pubsub_records::ControlRecord::parse(r.key, r.value).ok()?;
    match marker.kind {
        pubsub_records::ControlType::Commit => Some(true),
        pubsub_records::ControlType::Abort => Some(false),
    }
}

impl Inner {
    /// Opens (recovering) one partition directory of a topic, and records
    /// what recovery did.
    pub(super) fn open_partition(
        &self,
        meta: &TopicMeta,
        config: &Arc<TopicConfig>,
        index: i32,
    ) -> Result<Arc<Partition>> {
        let (p, report) = self.open_partition_reporting(meta, config, index)?;
        self.record_recovery(&meta.name, index, report);
        Ok(p)
    }

    /// Opens (recovering) one partition directory of a topic; the caller
    /// records the report ([`Inner::record_recovery`]).
    pub(super) fn open_partition_reporting(
        &self,
        meta: &TopicMeta,
        config: &Arc<TopicConfig>,
        index: i32,
    ) -> Result<(Arc<Partition>, RecoveryReport)> {
        let dir = partition_dir(&self.dir, &meta.name, index);
        let pmeta = PartitionMeta {
            topic: meta.name.clone(),
            topic_id: meta.id,
            partition: index,
            leader_epoch: 0,
            generation: self.generation,
        };
        // The partition file, read once: a directory left by a deleted topic
        // of the same name is set aside, else the open derives its epoch
        // from it.
        let mut previous =
            metadata::read::<PartitionMeta>(&dir.join(PARTITION_FILE), KIND_PARTITION);
        if let Ok(Some(old)) = &previous {
            if old.topic_id != meta.id {
                remove_partition_dir(&dir)?;
                previous = Ok(None);
            }
        }
        let (p, report) =
            Partition::open(dir, pmeta, previous?, Arc::clone(config), self.config.flush)?;
        log_recovery(&meta.name, index, &report);
        Ok((Arc::new(p), report))
    }

    pub(super) fn record_recovery(&self, topic: &str, index: i32, report: RecoveryReport) {
        self.recovery
            .lock()
            .push((topic.to_string(), index, report));
    }

    /// Opens every partition of a topic with its settings.
    pub(super) fn open_topic(&self, meta: TopicMeta, config: TopicConfig) -> Result<Arc<Topic>> {
        self.open_topics(vec![(meta, config)], None)
            .pop()
            .unwrap_or(Err(BrokerError::Closed))
    }

    /// Opens every partition of several topics, on up to
    /// [`open_threads`] threads (opening is mostly system calls and waits
    /// for the disk, one partition independent of the next); one result per
    /// topic, in order. A topic any of whose partitions failed to open is
    /// an error (the first failure); its other partitions are dropped
    /// (closed). Threads inherit the caller's deferred syncs. With `lazy`
    /// (at broker open), no partition is opened: one the closed-partitions
    /// file vouches for is left closed, any other unrecovered, both until
    /// first use ([`Inner::opened`]) or, for the unrecovered, the
    /// background recovery pass ([`Inner::recover_pending`]).
    pub(super) fn open_topics(
        &self,
        topics: Vec<(TopicMeta, TopicConfig)>,
        lazy: Option<&LazyOpen>,
    ) -> Vec<Result<Arc<Topic>>> {
        let topics: Vec<(TopicMeta, Arc<TopicConfig>, u32)> = topics
            .into_iter()
            .map(|(m, c)| (m, Arc::new(c), 0))
            .collect();
        let opened = self.open_partitions(&topics, lazy);
        topics
            .into_iter()
            .zip(opened)
            .map(|((meta, config, _), partitions)| {
                Ok(Arc::new(Topic {
                    meta,
                    config,
                    partitions: partitions?,
                }))
            })
            .collect()
    }

    /// Opens partitions `first..` of each topic (as its meta counts them)
    /// on up to [`open_threads`] threads, as [`Inner::open_topics`] says;
    /// one result per topic, in order: its entries from `first` on, or the
    /// first failure (the others are then dropped, and the directories this
    /// call made for the topic removed).
    pub(super) fn open_partitions(
        &self,
        topics: &[(TopicMeta, Arc<TopicConfig>, u32)],
        lazy: Option<&LazyOpen>,
    ) -> Vec<Result<Vec<Arc<PartitionEntry>>>> {
        let jobs: Vec<(usize, i32)> = topics
            .iter()
            .enumerate()
            .flat_map(|(t, (m, _, first))| {
                (*first as i32..m.partitions as i32).map(move |i| (t, i))
            })
            .collect();
        // The partitions whose directories this call makes (undone for a
        // topic that fails).
        let made = Mutex::new(Vec::new());
        let open = |&(t, i): &(usize, i32)| -> Opened {
            let (meta, config, _) = &topics[t];
            if let Some(lazy) = lazy {
                let entry = match lazy.closed_entry(&self.dir, meta, i) {
                    Some(closed) => {
                        PartitionEntry::closed(i, closed, self.generation, Arc::clone(config))
                    }
                    None => PartitionEntry::unrecovered(i, Arc::clone(config)),
                };
                return Ok((entry, None));
            }
            if std::fs::symlink_metadata(partition_dir(&self.dir, &meta.name, i)).is_err() {
                made.lock().push((t, i));
            }
            let (p, report) = self.open_partition_reporting(meta, config, i)?;
            Ok((PartitionEntry::open(p, Arc::clone(config)), Some(report)))
        };
        let mut opened: Vec<Option<Opened>> = jobs.iter().map(|_| None).collect();
        let threads = open_threads(jobs.len());
        if threads <= 1 {
            for (slot, job) in opened.iter_mut().zip(&jobs) {
                *slot = Some(open(job));
            }
        } else {
            let deferred = pubsub_storage::fs::syncs_deferred();
            let next = AtomicUsize::new(0);
            let results = Mutex::new(&mut opened);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        let _deferred = deferred.then(pubsub_storage::fs::defer_syncs);
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(n) else { break };
                            let r = open(job);
                            results.lock()[n] = Some(r);
                        }
                    });
                }
            });
        }
        let mut opened = opened.into_iter();
        let made = made.into_inner();
        topics
            .iter()
            .enumerate()
            .map(|(t, (meta, _, first))| {
                let mut partitions = Vec::with_capacity(meta.partitions as usize);
                let mut failed = None;
                for i in *first as i32..meta.partitions as i32 {
                    match opened.next().flatten() {
                        Some(Ok((p, report))) => {
                            if let Some(report) = report {
                                self.record_recovery(&meta.name, i, report);
                            }
                            partitions.push(p);
                        }
                        Some(Err(e)) => {
                            failed.get_or_insert(e);
                        }
                        None => {
                            failed.get_or_insert(BrokerError::Closed);
                        }
                    }
                }
                match failed {
                    Some(e) => {
                        // Disk as memory: the partitions opened are closed,
                        // and the directories made for them go.
                        drop(partitions);
                        for &(_, i) in made.iter().filter(|m| m.0 == t) {
                            let _ = remove_partition_dir(&partition_dir(&self.dir, &meta.name, i));
                        }
                        Err(e)
                    }
                    None => Ok(partitions),
                }
            })
            .collect()
    }

    /// The partition of `entry`, opening it (once, whoever else asks
    /// meanwhile) if it is not open yet: a partition left closed at start
    /// opens here on first use. Refused once the broker is closing.
    pub(super) fn opened(&self, topic: &Topic, entry: &PartitionEntry) -> Result<Arc<Partition>> {
        if let Some(p) = entry.get() {
            return Ok(Arc::clone(p));
        }
        #[cfg(test)]
        super::seam::reached(super::seam::Seam::BeforeOpen, &self.dir);
        self.off_worker(|| self.open_entry(topic, entry))
    }

    /// Runs `open` through the offload function, if one was set.
    fn off_worker(&self, open: impl FnOnce() -> Result<Arc<Partition>>) -> Result<Arc<Partition>> {
        let Some(offload) = self.offload.get() else {
            return open();
        };
        let mut open = Some(open);
        let mut out = None;
        offload(&mut || {
            if let Some(open) = open.take() {
                out = Some(open());
            }
        });
        match (out, open.take()) {
            (Some(out), _) => out,
            // An offload that did not run it: run it here.
            (None, Some(open)) => open(),
            (None, None) => Err(BrokerError::Closed),
        }
    }

    /// [`Inner::opened`] past its quick check: under the open lock.
    fn open_entry(&self, topic: &Topic, entry: &PartitionEntry) -> Result<Arc<Partition>> {
        entry.with_opening(|config, opened| {
            if let Some(p) = opened {
                return Ok(Arc::clone(p));
            }
            if entry.is_deleted() {
                return Err(BrokerError::unknown_topic(
                    &topic.meta.name,
                    Some(entry.index()),
                ));
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(BrokerError::Closed);
            }
            // An unrecovered partition's epoch was announced only if its
            // files told it before recovery.
            let expected = match entry.needs_recovery() {
                true => entry.epoch_before_recovery(),
                false => Some(entry.leader_epoch()),
            };
            let p = {
                // Only the new log's files are written: its first flush
                // syncs their directory (and the partition file is durable
                // since CreateTopics), so no fsync is owed here.
                let _deferred = entry
                    .is_created_closed()
                    .then(pubsub_storage::fs::defer_syncs);
                self.open_partition(&topic.meta, config, entry.index())?
            };
            warn_if_epoch_moved(&topic.meta.name, entry.index(), expected, p.leader_epoch());
            entry.set_opened(Arc::clone(&p));
            Ok(p)
        })
    }

    /// Makes everything written under deferred syncs durable (one
    /// filesystem sync), then writes the recovery points of `partitions`
    /// their open left unwritten, and syncs again: the recovery point never
    /// reaches the disk before the data it vouches for.
    ///
    /// When the first sync fails, what the partitions' flushes under
    /// deferred syncs did is forgotten ([`pubsub_storage::Log::forget_deferred`]):
    /// their next flush fsyncs for itself.
    pub(super) fn sync_then_record_recovery_points(
        &self,
        partitions: &[Arc<Partition>],
    ) -> Result<()> {
        if let Err(e) = self.sync_filesystem() {
            for p in partitions {
                p.log().forget_deferred();
            }
            return Err(e);
        }
        self.write_recovery_points(partitions)?;
        self.sync_filesystem()
    }

    /// Writes the recovery points of `partitions` their open left
    /// unwritten, under deferred syncs (the caller syncs the filesystem
    /// after, and did before).
    pub(super) fn write_recovery_points(&self, partitions: &[Arc<Partition>]) -> Result<()> {
        let _deferred = pubsub_storage::fs::defer_syncs();
        for p in partitions {
            p.log()
                .record_recovery_point()
                .map_err(|e| BrokerError::storage(p.topic(), p.index(), e))?;
        }
        Ok(())
    }

    /// One `syncfs` of the data directory's filesystem.
    pub(super) fn sync_filesystem(&self) -> Result<()> {
        pubsub_storage::fs::sync_filesystem(&self.dir)
            .map_err(|e| BrokerError::io("sync the filesystem of", &self.dir, e))
    }

    /// `__transaction_state`: compacted, with the transaction settings'
    /// partition count and segment size. Created at the first
    /// transactional InitProducerId, as Kafka does.
    pub(super) fn create_transaction_state_topic(&self) -> Result<()> {
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert(
            "segment.bytes".to_string(),
            self.config.txn.state_topic_segment_bytes.to_string(),
        );
        match self.create_topic(
            TRANSACTION_STATE,
            Some(self.config.txn.state_topic_partitions),
            configs,
            true,
        ) {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `__consumer_offsets`: compacted, with the group settings' partition
    /// count and segment size.
    fn create_offsets_topic(&self) -> Result<()> {
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert(
            "segment.bytes".to_string(),
            self.config.group.offsets_topic_segment_bytes.to_string(),
        );
        self.create_topic(
            CONSUMER_OFFSETS,
            Some(self.config.group.offsets_topic_partitions),
            configs,
            true,
        )?;
        Ok(())
    }
}

/// How many threads open `partitions` partitions: one for a few, else
/// twice the cores (the opens wait on the disk as much as they compute),
/// at most [`MAX_OPEN_THREADS`].
pub(super) fn open_threads(partitions: usize) -> usize {
    if partitions < 16 {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).clamp(2, MAX_OPEN_THREADS).min(partitions)
}

/// A record of an internal topic: key, and value (`None`: a tombstone).
type KeyedRecord = (Vec<u8>, Option<Vec<u8>>);

/// A partition opened, with what its recovery did, or left closed.
type Opened = Result<(Arc<PartitionEntry>, Option<RecoveryReport>)>;

/// The closed-partitions file read at start (if any), and whether it
/// vouches for all its entries (see [`crate::closed_partitions`]).
#[derive(Debug)]
pub(super) struct LazyOpen {
    file: Option<ClosedPartitions>,
    trusted: bool,
}

impl LazyOpen {
    /// The closed state of partition `index` of `meta`, if it may stand for
    /// the partition until first use: the file has it, for this topic id,
    /// and either the file vouches for everything or the partition's
    /// clean-shutdown marker is still there (one `stat`).
    fn closed_entry(&self, data: &Path, meta: &TopicMeta, index: i32) -> Option<ClosedPartition> {
        let closed = self
            .file
            .as_ref()?
            .entry(&meta.name, meta.id, u32::try_from(index).ok()?)?;
        if self.trusted {
            return Some(closed);
        }
        let marker = partition_dir(data, &meta.name, index).join(pubsub_storage::CLEAN_SHUTDOWN);
        marker.exists().then_some(closed)
    }
}

/// Warns when a partition opened at another leader epoch than the one
/// answered for it before (`expected`: from its closed state, or read
/// before its recovery); clients that cached that epoch are fenced once and
/// refresh.
pub(super) fn warn_if_epoch_moved(topic: &str, partition: i32, expected: Option<i32>, epoch: i32) {
    if let Some(expected) = expected.filter(|&e| e != epoch) {
        warn!(
            topic,
            partition,
            expected,
            epoch,
            "partition opened at another leader epoch than the one answered before"
        );
    }
}

/// Most threads opening partitions at once.
const MAX_OPEN_THREADS: usize = 16;

fn log_recovery(topic: &str, partition: i32, report: &RecoveryReport) {
    if report.is_clean() {
        tracing::debug!(topic, partition, %report, "opened partition");
    } else {
        warn!(topic, partition, %report, "recovered partition");
    }
}

/// Renames a partition directory aside, then removes it.
pub(super) fn remove_partition_dir(dir: &Path) -> Result<()> {
    let mut doomed = dir.as_os_str().to_os_string();
    doomed.push(format!(".{}{DELETE_SUFFIX}", Uuid::new_v4().simple()));
    let doomed = PathBuf::from(doomed);
    std::fs::rename(dir, &doomed).map_err(|e| BrokerError::io("rename", dir, e))?;
    std::fs::remove_dir_all(&doomed).map_err(|e| BrokerError::io("delete", &doomed, e))
}
