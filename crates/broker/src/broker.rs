//! [`Broker`]: topics and partitions on disk, producer ids, the group
//! coordinator, and a background clock that drives timers, flushing,
//! recovery points, retention and compaction.
//!
//! A `Broker` is a cheap handle (clone it freely); the data directory is
//! locked while one is open. [`Broker::close`] (or dropping the last handle)
//! shuts down cleanly so the next open skips recovery.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_records::{BatchBuilder, NewRecord};
use pubsub_storage::RecoveryReport;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{BrokerConfig, TopicConfig};
use crate::error::{BrokerError, Result};
use crate::group::records::{partition_for_group, CommittedOffset};
use crate::group::{
    CommitRequest, GroupCoordinator, GroupDescription, GroupListing, JoinRequest, JoinResponse,
    OffsetsRecord, OffsetsStore, SyncRequest, SyncResponse,
};
use crate::metadata::{
    self, partition_dir, topic_file, BrokerMeta, PartitionMeta, TopicMeta, BROKER_FILE,
    DELETE_SUFFIX, KIND_BROKER, KIND_PARTITION, KIND_TOPIC, LOCK_FILE, PARTITION_FILE, TOPICS_DIR,
    TOPIC_SUFFIX,
};
use crate::names::{validate_topic_name, CONSUMER_OFFSETS};
use crate::notify::{Notifier, Promise, Wakeup};
use crate::partition::{Acks, AppendResult, Partition, PendingSync};
use crate::partitioner::RoundRobin;
use crate::topic::{Topic, TopicDescription};

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// Producer ids handed out per persisted block.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (Kafka timestamp -2).
    Earliest,
    /// The log end offset (-1).
    Latest,
    /// The record with the largest timestamp (-3).
    MaxTimestamp,
    /// The first record at or after this time.
    Timestamp(i64),
}

#[derive(Debug)]
struct ProducerIds {
    next: i64,
    block_end: i64,
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
    producer_ids: Mutex<ProducerIds>,
    started: Instant,
    tick: Notifier,
    spread: RoundRobin,
    closed: AtomicBool,
    stop: (Mutex<bool>, Condvar),
    background: Mutex<Option<JoinHandle<()>>>,
    recovery: Mutex<Vec<(String, i32, RecoveryReport)>>,
    /// Holds the data directory's lock while open.
    lock: File,
}

/// A broker, opened on a data directory.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

impl OffsetsStore for Inner {
    fn persist(&self, group: &str, records: Vec<OffsetsRecord>) -> Result<()> {
        let n = self.config.group.offsets_topic_partitions;
        let partition = self.partition(CONSUMER_OFFSETS, partition_for_group(group, n))?;
        let now = wall_clock_ms();
        let mut b = BatchBuilder::new();
        for (key, value) in &records {
            b.push(&NewRecord {
                timestamp: now,
                key: Some(key),
                value: value.as_deref(),
                headers: &[],
            })?;
        }
        let mut bytes = b.build()?;
        partition.append(&mut bytes, Acks::All, now, true)?;
        Ok(())
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        let unknown = || BrokerError::UnknownTopicOrPartition {
            topic: topic.to_string(),
            partition: Some(partition),
        };
        let t = self.topic(topic).ok_or_else(unknown)?;
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        t.partitions.get(index).cloned().ok_or_else(unknown)
    }

    fn open_partition(
        &self,
        meta: &TopicMeta,
        config: &Arc<TopicConfig>,
        index: i32,
    ) -> Result<Arc<Partition>> {
        let dir = partition_dir(&self.dir, &meta.name, index);
        let pmeta = PartitionMeta {
            topic: meta.name.clone(),
            topic_id: meta.id,
            partition: index,
        };
        // A directory left by a deleted topic of the same name is set aside.
        if let Ok(Some(old)) =
            metadata::read::<PartitionMeta>(&dir.join(PARTITION_FILE), KIND_PARTITION)
        {
            if old.topic_id != meta.id {
                remove_partition_dir(&dir)?;
            }
        }
        let (p, report) = Partition::open(dir, pmeta, Arc::clone(config), self.config.flush)?;
        log_recovery(&meta.name, index, &report);
        self.recovery
            .lock()
            .push((meta.name.clone(), index, report));
        Ok(Arc::new(p))
    }

    fn open_topic(&self, meta: TopicMeta) -> Result<Arc<Topic>> {
        let config = Arc::new(self.config.topic_defaults.with_overrides(&meta.configs)?);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for i in 0..meta.partitions as i32 {
            partitions.push(self.open_partition(&meta, &config, i)?);
        }
        Ok(Arc::new(Topic {
            meta,
            config,
            partitions,
        }))
    }

    fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<Arc<Topic>> {
        let _admin = self.admin.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        // Validate everything before anything is written.
        let count = self.validate_new_topic(name, partitions, &configs)?;
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: count,
            configs,
            internal,
        };
        let path = topic_file(&self.dir, name);
        metadata::write(&path, KIND_TOPIC, &meta)?;
        match self.open_topic(meta) {
            Ok(topic) => {
                self.topics
                    .write()
                    .insert(name.to_string(), Arc::clone(&topic));
                info!(topic = name, partitions = count, "created topic");
                Ok(topic)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Checks that a topic could be created as asked; returns its partition
    /// count.
    fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<u32> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        let count = partitions.unwrap_or(self.config.default_partitions);
        if count == 0 || count > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(format!(
                "{count} partitions: must be within 1..={MAX_PARTITIONS}"
            )));
        }
        self.config.topic_defaults.with_overrides(configs)?;
        Ok(count)
    }

    /// The topic, created with defaults if it does not exist and
    /// auto-creation is on.
    fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if !self.config.auto_create_topics {
            return Err(BrokerError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: None,
            });
        }
        match self.create_topic(name, None, BTreeMap::new(), false) {
            Ok(t) => Ok(t),
            Err(BrokerError::TopicAlreadyExists(_)) => {
                self.topic(name)
                    .ok_or_else(|| BrokerError::UnknownTopicOrPartition {
                        topic: name.to_string(),
                        partition: None,
                    })
            }
            Err(e) => Err(e),
        }
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Background work due at this tick.
    fn background_tick(&self, last: &mut Schedule) {
        let now = Instant::now();
        self.coordinator.tick(self, self.now_ms());
        self.tick.notify();
        let partitions = self.all_partitions();
        for p in &partitions {
            if let Err(e) = p.log().flush_if_due() {
                warn!(topic = p.topic(), partition = p.index(), error = %e, "flush failed");
            }
        }
        if now.duration_since(last.checkpoint) >= self.config.checkpoint_interval {
            last.checkpoint = now;
            for p in &partitions {
                if let Err(e) = p.checkpoint() {
                    warn!(topic = p.topic(), partition = p.index(), error = %e, "checkpoint failed");
                }
            }
        }
        if now.duration_since(last.retention) >= self.config.retention_check_interval {
            last.retention = now;
            self.run_retention(wall_clock_ms());
        }
        if now.duration_since(last.compaction) >= self.config.compaction_interval {
            last.compaction = now;
            self.run_compaction(wall_clock_ms());
        }
    }

    fn run_retention(&self, now_ms: i64) -> u64 {
        let mut freed = 0;
        for p in self.all_partitions() {
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
        for p in self.all_partitions() {
            match p.log().compact(now_ms) {
                Ok(r) => removed += r.superseded_removed + r.tombstones_removed + r.keyless_removed,
                Err(e) => {
                    warn!(topic = p.topic(), partition = p.index(), error = %e, "compaction failed")
                }
            }
        }
        removed
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            *self.stop.0.lock() = true;
            self.stop.1.notify_all();
        }
        if let Some(handle) = self.background.lock().take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        let _admin = self.admin.lock();
        let mut first_error = None;
        for p in self.all_partitions() {
            if let Err(e) = p.close() {
                warn!(topic = p.topic(), partition = p.index(), error = %e, "partition did not close cleanly");
                first_error.get_or_insert(e);
            }
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

#[derive(Debug)]
struct Schedule {
    checkpoint: Instant,
    retention: Instant,
    compaction: Instant,
}

fn log_recovery(topic: &str, partition: i32, report: &RecoveryReport) {
    if report.is_clean() {
        tracing::debug!(topic, partition, %report, "opened partition");
    } else {
        warn!(topic, partition, %report, "recovered partition");
    }
}

/// Renames a partition directory aside, then removes it.
fn remove_partition_dir(dir: &Path) -> Result<()> {
    let mut doomed = dir.as_os_str().to_os_string();
    doomed.push(format!(".{}{DELETE_SUFFIX}", Uuid::new_v4().simple()));
    let doomed = PathBuf::from(doomed);
    std::fs::rename(dir, &doomed).map_err(|e| BrokerError::io("rename", dir, e))?;
    std::fs::remove_dir_all(&doomed).map_err(|e| BrokerError::io("delete", &doomed, e))
}

fn background_loop(inner: Weak<Inner>, interval: Duration) {
    let mut schedule = Schedule {
        checkpoint: Instant::now(),
        retention: Instant::now(),
        compaction: Instant::now(),
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
    /// Opens (creating if needed) the broker in `dir`: locks it, loads
    /// topics and recovers their partitions, loads consumer groups and
    /// committed offsets, and starts the background clock.
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
        let meta = match metadata::read::<BrokerMeta>(&meta_path, KIND_BROKER)? {
            Some(m) => m,
            None => {
                let m = BrokerMeta {
                    cluster_id: Uuid::new_v4().simple().to_string(),
                    next_producer_id_block: 0,
                };
                metadata::write(&meta_path, KIND_BROKER, &m)?;
                m
            }
        };
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            coordinator: GroupCoordinator::new(config.group.clone()),
            config,
            cluster_id: meta.cluster_id.clone(),
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            producer_ids: Mutex::new(ProducerIds {
                next: meta.next_producer_id_block,
                block_end: meta.next_producer_id_block,
            }),
            started: Instant::now(),
            tick: Notifier::default(),
            spread: RoundRobin::default(),
            closed: AtomicBool::new(false),
            stop: (Mutex::new(false), Condvar::new()),
            background: Mutex::new(None),
            recovery: Mutex::new(Vec::new()),
            lock: lock_file,
        });
        let broker = Broker { inner };
        broker.load_topics()?;
        broker.remove_stale_dirs()?;
        if broker.inner.topic(CONSUMER_OFFSETS).is_none() {
            let mut configs = BTreeMap::new();
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
            configs.insert(
                "segment.bytes".to_string(),
                broker
                    .inner
                    .config
                    .group
                    .offsets_topic_segment_bytes
                    .to_string(),
            );
            broker.inner.create_topic(
                CONSUMER_OFFSETS,
                Some(broker.inner.config.group.offsets_topic_partitions),
                configs,
                true,
            )?;
        }
        broker.load_groups()?;
        if broker.inner.config.background {
            let weak = Arc::downgrade(&broker.inner);
            let interval = broker.inner.config.tick_interval;
            let handle = std::thread::Builder::new()
                .name("pubsub-clock".into())
                .spawn(move || background_loop(weak, interval))
                .map_err(|e| BrokerError::io("spawn clock thread", &dir, e))?;
            *broker.inner.background.lock() = Some(handle);
        }
        info!(dir = %dir.display(), topics = broker.inner.topics.read().len(), "broker open");
        Ok(broker)
    }

    fn load_topics(&self) -> Result<()> {
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        let mut metas = Vec::new();
        for entry in
            std::fs::read_dir(&topics_dir).map_err(|e| BrokerError::io("list", &topics_dir, e))?
        {
            let entry = entry.map_err(|e| BrokerError::io("list", &topics_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(TOPIC_SUFFIX) {
                continue;
            }
            match metadata::read::<TopicMeta>(&entry.path(), KIND_TOPIC)? {
                Some(m) => metas.push(m),
                None => continue,
            }
        }
        for meta in metas {
            let name = meta.name.clone();
            let topic = self.inner.open_topic(meta)?;
            self.inner.topics.write().insert(name, topic);
        }
        Ok(())
    }

    /// Removes partition directories of deleted topics (and directories a
    /// deletion was interrupted in).
    fn remove_stale_dirs(&self) -> Result<()> {
        let dir = &self.inner.dir;
        for entry in std::fs::read_dir(dir).map_err(|e| BrokerError::io("list", dir, e))? {
            let entry = entry.map_err(|e| BrokerError::io("list", dir, e))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(DELETE_SUFFIX) {
                std::fs::remove_dir_all(&path).map_err(|e| BrokerError::io("delete", &path, e))?;
                continue;
            }
            let Ok(Some(pm)) =
                metadata::read::<PartitionMeta>(&path.join(PARTITION_FILE), KIND_PARTITION)
            else {
                continue;
            };
            let live = self.inner.topic(&pm.topic).is_some_and(|t| {
                t.meta.id == pm.topic_id
                    && (pm.partition as u32) < t.meta.partitions
                    && name == format!("{}-{}", pm.topic, pm.partition)
            });
            if !live {
                info!(dir = %path.display(), "removing the directory of a deleted topic");
                remove_partition_dir(&path)?;
            }
        }
        Ok(())
    }

    fn load_groups(&self) -> Result<()> {
        let topic = self.inner.topic(CONSUMER_OFFSETS).ok_or_else(|| {
            BrokerError::UnknownTopicOrPartition {
                topic: CONSUMER_OFFSETS.to_string(),
                partition: None,
            }
        })?;
        let mut records = Vec::new();
        let mut buf = Vec::new();
        for p in &topic.partitions {
            let mut next = p.log().log_start_offset();
            while next < p.log().log_end_offset() {
                // Through the log: loading is not consumer traffic.
                p.log()
                    .read_into(next, 1 << 20, &mut buf)
                    .map_err(|e| BrokerError::storage(CONSUMER_OFFSETS, p.index(), e))?;
                if buf.is_empty() {
                    break;
                }
                for batch in pubsub_records::Batches::new(&buf) {
                    let batch = batch?;
                    next = batch.last_offset() as u64 + 1;
                    if batch.is_control() {
                        continue;
                    }
                    for r in batch.records(64 << 20)?.iter() {
                        let r = r?;
                        if let Some(k) = r.key {
                            records.push((k.to_vec(), r.value.map(<[u8]>::to_vec)));
                        }
                    }
                }
            }
        }
        let n = records.len();
        self.inner.coordinator.load(records, self.inner.now_ms());
        info!(
            records = n,
            groups = self.inner.coordinator.list().len(),
            "loaded consumer groups"
        );
        Ok(())
    }

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

    /// The cluster id (persisted at first start).
    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Monotonic milliseconds since the broker opened (the coordinator's clock).
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// What recovery did for each partition opened so far.
    pub fn recovery_reports(&self) -> Vec<(String, i32, RecoveryReport)> {
        self.inner.recovery.lock().clone()
    }

    /// Creates a topic with `partitions` (the default if `None`) and Kafka
    /// settings `configs`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicDescription> {
        Ok(self
            .inner
            .create_topic(name, partitions, configs, false)?
            .describe())
    }

    /// Checks a topic creation without doing it (CreateTopics with
    /// `validate_only`): returns the settings the topic would have.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(u32, TopicConfig)> {
        let count = self.inner.validate_new_topic(name, partitions, configs)?;
        Ok((
            count,
            self.inner.config.topic_defaults.with_overrides(configs)?,
        ))
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topic(name)
            .ok_or_else(|| BrokerError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: None,
            })?;
        if topic.meta.internal {
            return Err(BrokerError::InvalidTopic {
                name: name.to_string(),
                reason: "internal topics cannot be deleted",
            });
        }
        self.inner.topics.write().remove(name);
        let path = topic_file(&self.inner.dir, name);
        std::fs::remove_file(&path).map_err(|e| BrokerError::io("delete", &path, e))?;
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        if let Ok(d) = File::open(&topics_dir) {
            d.sync_all()
                .map_err(|e| BrokerError::io("fsync directory", &topics_dir, e))?;
        }
        for p in &topic.partitions {
            p.notify_gone();
            remove_partition_dir(&partition_dir(&self.inner.dir, name, p.index()))?;
        }
        info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Topic names (internal ones only if asked).
    pub fn topics(&self, include_internal: bool) -> Vec<String> {
        self.inner
            .topics
            .read()
            .values()
            .filter(|t| include_internal || !t.meta.internal)
            .map(|t| t.meta.name.clone())
            .collect()
    }

    /// Partitions, offsets, sizes and settings of a topic.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.inner.topic(name).map(|t| t.describe()).ok_or_else(|| {
            BrokerError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: None,
            }
        })
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Option<u32> {
        self.inner.topic(name).map(|t| t.meta.partitions)
    }

    /// The topic's id.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.inner.topic(name).map(|t| t.meta.id)
    }

    /// Grows a topic to `total` partitions (never shrinks).
    pub fn add_partitions(&self, name: &str, total: u32) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topic(name)
            .ok_or_else(|| BrokerError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: None,
            })?;
        let old = topic.meta.partitions;
        if total <= old || total > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic {name} has {old} partitions; the new count {total} must be larger and at most {MAX_PARTITIONS}"
            )));
        }
        let mut meta = topic.meta.clone();
        meta.partitions = total;
        metadata::write(&topic_file(&self.inner.dir, name), KIND_TOPIC, &meta)?;
        let mut partitions = topic.partitions.clone();
        for i in old..total {
            partitions.push(self.inner.open_partition(&meta, &topic.config, i as i32)?);
        }
        self.inner.topics.write().insert(
            name.to_string(),
            Arc::new(Topic {
                meta,
                config: Arc::clone(&topic.config),
                partitions,
            }),
        );
        Ok(())
    }

    /// Changes topic settings: `Some(value)` sets, `None` returns a setting
    /// to the broker default. Takes effect on open partitions at once.
    pub fn alter_topic_config(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topic(name)
            .ok_or_else(|| BrokerError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: None,
            })?;
        let mut meta = topic.meta.clone();
        for (k, v) in changes {
            match v {
                Some(v) => meta.configs.insert(k.clone(), v.clone()),
                None => meta.configs.remove(k),
            };
        }
        let config = Arc::new(
            self.inner
                .config
                .topic_defaults
                .with_overrides(&meta.configs)?,
        );
        metadata::write(&topic_file(&self.inner.dir, name), KIND_TOPIC, &meta)?;
        for p in &topic.partitions {
            p.log()
                .set_config(config.log_config(self.inner.config.flush))
                .map_err(|e| BrokerError::storage(name, p.index(), e))?;
            p.set_config(Arc::clone(&config));
        }
        self.inner.topics.write().insert(
            name.to_string(),
            Arc::new(Topic {
                meta,
                config,
                partitions: topic.partitions.clone(),
            }),
        );
        Ok(())
    }

    /// Every partition of every topic (internal ones included), by topic
    /// name then index: for monitoring.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.inner.all_partitions()
    }

    /// One partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        self.inner.partition(topic, partition)
    }

    /// The topic's partition count, creating the topic if it is unknown and
    /// auto-creation is on.
    pub fn ensure_topic(&self, name: &str) -> Result<u32> {
        Ok(self.inner.topic_or_create(name)?.meta.partitions)
    }

    /// Appends batches a client sent (their CRC is checked) to a partition.
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.append_to(topic, partition, records, acks, false)
            .map(|(r, _)| r)
    }

    /// `acks=all` in two steps: appends client batches now (as acks=1) and
    /// returns the fsync still owed, so a server can go on appending
    /// pipelined requests (which then share that fsync) before answering.
    pub fn produce_then_sync(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
    ) -> Result<(AppendResult, PendingSync)> {
        let (r, p) = self.append_to(topic, partition, records, Acks::Leader, false)?;
        Ok((
            r,
            PendingSync {
                partition: p,
                offset: r.last_offset,
            },
        ))
    }

    /// Appends batches built in this process (no second CRC pass).
    pub(crate) fn produce_built(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.append_to(topic, partition, records, acks, true)
            .map(|(r, _)| r)
    }

    fn append_to(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
        trusted: bool,
    ) -> Result<(AppendResult, Arc<Partition>)> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let p = self.inner.partition(topic, partition)?;
        let r = p.append(records, acks, wall_clock_ms(), trusted)?;
        Ok((r, p))
    }

    /// Reads whole batches from `offset` into `out` (cleared first); returns
    /// (log start offset, high watermark).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: u64,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        self.inner
            .partition(topic, partition)?
            .read(offset, max_bytes, out)
    }

    /// ListOffsets: (offset, timestamp); `None` when no record matches a
    /// timestamp (Kafka answers -1).
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<Option<(i64, i64)>> {
        let p = self.inner.partition(topic, partition)?;
        let log = p.log();
        let err = |e| BrokerError::storage(topic, partition, e);
        Ok(match spec {
            OffsetSpec::Earliest => Some((log.log_start_offset() as i64, -1)),
            OffsetSpec::Latest => Some((log.log_end_offset() as i64, -1)),
            OffsetSpec::MaxTimestamp => log
                .max_timestamp()
                .map_err(err)?
                .map(|t| (t.offset as i64, t.timestamp)),
            OffsetSpec::Timestamp(ts) => log
                .offset_for_timestamp(ts)
                .map_err(err)?
                .map(|t| (t.offset as i64, t.timestamp)),
        })
    }

    /// A new idempotent producer id (never reused, even across restarts) and
    /// its epoch.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        let mut ids = self.inner.producer_ids.lock();
        if ids.next >= ids.block_end {
            let block_end = ids.next + PRODUCER_ID_BLOCK;
            metadata::write(
                &self.inner.dir.join(BROKER_FILE),
                KIND_BROKER,
                &BrokerMeta {
                    cluster_id: self.inner.cluster_id.clone(),
                    next_producer_id_block: block_end,
                },
            )?;
            ids.block_end = block_end;
        }
        let id = ids.next;
        ids.next += 1;
        Ok((id, 0))
    }

    /// Picks a partition for a keyless record (round-robin).
    pub(crate) fn spread(&self, partitions: u32) -> u32 {
        self.inner.spread.next(partitions)
    }

    /// Wakes `w` on every clock tick (embedded consumers use it to
    /// heartbeat while they wait).
    pub fn subscribe_ticks(&self, w: &Arc<Wakeup>) {
        self.inner.tick.subscribe(w);
    }

    /// The group coordinator (for inspection; use the methods below to drive it).
    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.inner.coordinator
    }

    /// JoinGroup; wait on the promise for the answer.
    pub fn join_group(&self, req: JoinRequest) -> Result<Arc<Promise<Result<JoinResponse>>>> {
        self.inner.coordinator.join(req, self.inner.now_ms())
    }

    /// SyncGroup; wait on the promise for the answer.
    pub fn sync_group(&self, req: SyncRequest) -> Result<Arc<Promise<Result<SyncResponse>>>> {
        self.inner
            .coordinator
            .sync(self.inner.as_ref(), req, self.inner.now_ms())
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<()> {
        self.inner.coordinator.heartbeat(
            group,
            member_id,
            instance_id,
            generation,
            self.inner.now_ms(),
        )
    }

    /// LeaveGroup.
    pub fn leave_group(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        self.inner
            .coordinator
            .leave(self.inner.as_ref(), group, members, self.inner.now_ms())
    }

    /// OffsetCommit: returns once the commit is durable.
    pub fn commit_offsets(&self, req: CommitRequest) -> Result<()> {
        self.inner.coordinator.commit(
            self.inner.as_ref(),
            req,
            self.inner.now_ms(),
            wall_clock_ms(),
        )
    }

    /// OffsetFetch.
    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        self.inner.coordinator.fetch_offsets(group, partitions)
    }

    /// DescribeGroups.
    pub fn describe_group(&self, group: &str) -> GroupDescription {
        self.inner.coordinator.describe(group)
    }

    /// ListGroups.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        self.inner.coordinator.list()
    }

    /// DeleteGroups (only empty groups).
    pub fn delete_group(&self, group: &str) -> Result<()> {
        self.inner.coordinator.delete(self.inner.as_ref(), group)
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

    /// Advances the coordinator's timers (when the background clock is off).
    pub fn tick(&self) {
        self.inner
            .coordinator
            .tick(self.inner.as_ref(), self.inner.now_ms());
        self.inner.tick.notify();
    }
}
