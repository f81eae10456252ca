//! Topic administration: create (or validate), grow, reconfigure, delete and
//! describe topics. Changes are serialised by the broker's admin lock and
//! written to the topic file before they take effect.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;
use uuid::Uuid;

use super::open::remove_partition_dir;
use super::{Broker, Inner};
use crate::config::TopicConfig;
use crate::error::{BrokerError, Result};
use crate::metadata::{
    self, partition_dir, topic_file, PartitionMeta, TopicMeta, KIND_PARTITION, KIND_TOPIC,
    PARTITION_FILE, TOPICS_DIR,
};
use crate::names::validate_topic_name;
use crate::partition::Partition;
use crate::topic::{PartitionEntry, Topic, TopicDescription};
use pubsub_storage::fs::{FileSystem, RealFs};

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// From this many partitions in one [`Broker::create_topics`] call, their
/// files are made durable by filesystem syncs rather than one fsync each.
const DEFERRED_SYNC_PARTITIONS: u64 = 64;

/// One topic to create with [`Broker::create_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count (`None`: the broker's default).
    pub partitions: Option<u32>,
    /// Kafka settings for the topic.
    pub configs: BTreeMap<String, String>,
}

impl Inner {
    pub(super) fn create_topic(
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
        let (count, config) = self.validate_new_topic(name, partitions, &configs)?;
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: count,
            configs,
            internal,
        };
        let path = topic_file(&self.dir, name);
        metadata::write(&path, KIND_TOPIC, &meta)?;
        match self.open_topic(meta, config) {
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

    /// Creates several topics under one admin lock. With many partitions
    /// in all, every file is written under deferred syncs and made durable
    /// by two filesystem syncs (see [`Inner::sync_then_record_recovery_points`])
    /// instead of several fsyncs per partition; topics become visible only
    /// once durable. A topic that cannot be created fails alone.
    fn create_topics(&self, new: Vec<NewTopic>) -> Vec<Result<Arc<Topic>>> {
        let _admin = self.admin.lock();
        if self.closed.load(Ordering::Acquire) {
            return new.iter().map(|_| Err(BrokerError::Closed)).collect();
        }
        let mut names = std::collections::HashSet::new();
        let validated: Vec<Result<(TopicMeta, TopicConfig)>> = new
            .into_iter()
            .map(|t| {
                let (count, config) = self.validate_new_topic(&t.name, t.partitions, &t.configs)?;
                if !names.insert(t.name.clone()) {
                    return Err(BrokerError::TopicAlreadyExists(t.name));
                }
                Ok((
                    TopicMeta {
                        name: t.name,
                        id: Uuid::new_v4(),
                        partitions: count,
                        configs: t.configs,
                        internal: false,
                    },
                    config,
                ))
            })
            .collect();
        let total: u64 = validated
            .iter()
            .flatten()
            .map(|(m, _)| u64::from(m.partitions))
            .sum();
        let deferred = total >= DEFERRED_SYNC_PARTITIONS;
        let mut opened: Vec<Result<Arc<Topic>>> = {
            let _deferred = deferred.then(pubsub_storage::fs::defer_syncs);
            // Topic files first, then every partition of every topic at
            // once (in parallel: see `Inner::open_topics`).
            let mut written: Vec<Result<()>> = Vec::with_capacity(validated.len());
            let mut to_open = Vec::new();
            for v in validated {
                written.push(v.and_then(|(meta, config)| {
                    metadata::write(&topic_file(&self.dir, &meta.name), KIND_TOPIC, &meta)?;
                    to_open.push((meta, config));
                    Ok(())
                }));
            }
            let names: Vec<String> = to_open.iter().map(|(m, _)| m.name.clone()).collect();
            let mut opened = to_open
                .into_iter()
                .map(|(meta, config)| self.create_closed_topic(meta, config))
                .zip(names);
            written
                .into_iter()
                .map(|w| {
                    w?;
                    let (topic, name) = opened
                        .next()
                        .unwrap_or((Err(BrokerError::Closed), String::new()));
                    topic.inspect_err(|_| {
                        let _ = std::fs::remove_file(topic_file(&self.dir, &name));
                    })
                })
                .collect()
        };
        if deferred {
            let partitions: Vec<Arc<Partition>> = opened
                .iter()
                .flatten()
                .flat_map(|t| t.partitions.iter().filter_map(|e| e.get().cloned()))
                .collect();
            if let Err(e) = self.sync_then_record_recovery_points(&partitions) {
                // Nothing was answered yet: undo what may not be durable.
                for t in opened.iter().flatten() {
                    let _ = std::fs::remove_file(topic_file(&self.dir, &t.meta.name));
                    for i in 0..t.meta.partitions as i32 {
                        let _ = remove_partition_dir(&partition_dir(&self.dir, &t.meta.name, i));
                    }
                }
                let reason = e.to_string();
                opened = opened
                    .into_iter()
                    .map(|r| {
                        r.and_then(|_| {
                            Err(BrokerError::io(
                                "create topic",
                                &self.dir,
                                std::io::Error::other(reason.clone()),
                            ))
                        })
                    })
                    .collect();
            }
        }
        let mut topics = self.topics.write();
        for t in opened.iter().flatten() {
            topics.insert(t.meta.name.clone(), Arc::clone(t));
            info!(topic = %t.meta.name, partitions = t.meta.partitions, "created topic");
        }
        opened
    }

    /// The partitions of a new topic (its file written), created closed:
    /// each gets its directory and its partition file (epoch 0 at this
    /// generation: what its epoch derives from, docs/FORMAT.md 9.3) and
    /// stays closed, known empty, until its first use opens it and creates
    /// its log (as a partition left closed by a clean close does). So
    /// CreateTopics costs a directory and a small file per partition, not
    /// a log's files, maps and checkpoints. A directory already there (a
    /// deleted topic's leftover) is opened instead, which sets it aside.
    /// A failed partition fails the topic, and the directories made for
    /// its other partitions are removed (never what stood in the way).
    fn create_closed_topic(&self, meta: TopicMeta, config: TopicConfig) -> Result<Arc<Topic>> {
        let config = Arc::new(config);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        let mut made = Vec::new();
        let created = self.create_closed_partitions(&meta, &config, &mut partitions, &mut made);
        if let Err(e) = created {
            drop(partitions);
            for dir in &made {
                let _ = remove_partition_dir(dir);
            }
            return Err(e);
        }
        Ok(Arc::new(Topic {
            meta,
            config,
            partitions,
        }))
    }

    /// [`Inner::create_closed_topic`]'s loop: each partition's entry pushed
    /// to `partitions`, each directory it made to `made`.
    fn create_closed_partitions(
        &self,
        meta: &TopicMeta,
        config: &Arc<TopicConfig>,
        partitions: &mut Vec<Arc<PartitionEntry>>,
        made: &mut Vec<std::path::PathBuf>,
    ) -> Result<()> {
        let made_before = made.len();
        for i in 0..meta.partitions as i32 {
            let dir = partition_dir(&self.dir, &meta.name, i);
            match std::fs::create_dir(&dir) {
                Ok(()) => made.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let p = self.open_partition(meta, config, i)?;
                    partitions.push(PartitionEntry::open(p, Arc::clone(config)));
                    continue;
                }
                Err(e) => return Err(BrokerError::io("create directory", &dir, e)),
            }
            let pmeta = PartitionMeta {
                topic: meta.name.clone(),
                topic_id: meta.id,
                partition: i,
                leader_epoch: 0,
                generation: self.generation,
            };
            // The file's bytes are fsynced here, its name with its
            // directory's fsync below.
            metadata::write_unsynced_dir(&dir.join(PARTITION_FILE), KIND_PARTITION, &pmeta)?;
            partitions.push(PartitionEntry::created_closed(
                i,
                self.generation,
                Arc::clone(config),
            ));
        }
        // Durable before the topic is answered: each new directory's entry
        // for its partition file, then the data directory's entries for the
        // new directories, once for the whole topic (a crash before leaves
        // a topic file whose partitions are missing or have no partition
        // file, which a start recovers as empty partitions).
        let fsync_dir = |dir: &std::path::Path| {
            RealFs
                .sync_dir(dir)
                .map_err(|e| BrokerError::io("fsync directory", dir, e))
        };
        for dir in &made[made_before..] {
            fsync_dir(dir)?;
        }
        if made.len() > made_before {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Checks that a topic could be created as asked; returns its partition
    /// count and settings.
    fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(u32, TopicConfig)> {
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
        let config = self.config.topic_defaults.with_overrides(configs)?;
        Ok((count, config))
    }

    /// The topic, created with defaults if it does not exist and
    /// auto-creation is on.
    pub(super) fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if !self.config.auto_create_topics {
            return Err(BrokerError::unknown_topic(name, None));
        }
        match self.create_topic(name, None, BTreeMap::new(), false) {
            Ok(t) => Ok(t),
            Err(BrokerError::TopicAlreadyExists(_)) => self.existing_topic(name),
            Err(e) => Err(e),
        }
    }

    /// Replaces a topic's entry (after its file was written).
    fn replace_topic(&self, topic: Topic) {
        self.topics
            .write()
            .insert(topic.meta.name.clone(), Arc::new(topic));
    }
}

impl Broker {
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

    /// Creates several topics at once (CreateTopics): one result per topic,
    /// in order. Cheaper than one [`Broker::create_topic`] each when they
    /// hold many partitions: their files are made durable together.
    pub fn create_topics(&self, topics: Vec<NewTopic>) -> Vec<Result<TopicDescription>> {
        self.inner
            .create_topics(topics)
            .into_iter()
            .map(|r| r.map(|t| t.describe()))
            .collect()
    }

    /// Checks a topic creation without doing it (CreateTopics with
    /// `validate_only`): returns the settings the topic would have.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(u32, TopicConfig)> {
        self.inner.validate_new_topic(name, partitions, configs)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self.inner.existing_topic(name)?;
        if topic.meta.internal {
            return Err(BrokerError::InvalidTopic {
                name: name.to_string(),
                reason: "internal topics cannot be deleted",
            });
        }
        // The topic file goes first: a failure here changes nothing.
        let path = topic_file(&self.inner.dir, name);
        std::fs::remove_file(&path).map_err(|e| BrokerError::io("delete", &path, e))?;
        self.inner.topics.write().remove(name);
        // Every entry is marked deleted before any directory goes, whatever
        // fails after: an entry left unmarked could be opened (or
        // recovered) later on the directory of a topic re-created under the
        // same name. Under the open lock: a first use that found the
        // partition before the topic went either opened it already (its
        // files go below) or opens nothing after (it finds the entry
        // deleted).
        for e in &topic.partitions {
            e.with_opening(|_, opened| {
                e.set_deleted();
                if let Some(p) = opened {
                    p.notify_gone();
                }
            });
        }
        // A failed fsync here leaves the partitions' files: the topic may
        // be back at the next start.
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        if let Ok(d) = File::open(&topics_dir) {
            d.sync_all()
                .map_err(|e| BrokerError::io("fsync directory", &topics_dir, e))?;
        }
        let mut first_error = None;
        for e in &topic.partitions {
            let dir = partition_dir(&self.inner.dir, name, e.index());
            if let Err(err) = remove_partition_dir(&dir) {
                first_error.get_or_insert(err);
            }
        }
        if let Some(err) = first_error {
            return Err(err);
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
        let t = self.inner.existing_topic(name)?;
        for e in &t.partitions {
            self.inner.settle(&t, e)?;
        }
        Ok(t.describe())
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Option<u32> {
        self.inner.topic(name).map(|t| t.meta.partitions)
    }

    /// The topic's id.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.inner.topic(name).map(|t| t.meta.id)
    }

    /// The name of the topic with this id (Metadata v10+ asks by id).
    pub fn topic_by_id(&self, id: Uuid) -> Option<String> {
        if id.is_nil() {
            return None;
        }
        self.inner
            .topics
            .read()
            .values()
            .find(|t| t.meta.id == id)
            .map(|t| t.meta.name.clone())
    }

    /// The topic's partition count, creating the topic if it is unknown and
    /// auto-creation is on.
    pub fn ensure_topic(&self, name: &str) -> Result<u32> {
        Ok(self.inner.topic_or_create(name)?.meta.partitions)
    }

    /// Grows a topic to `total` partitions (never shrinks).
    pub fn add_partitions(&self, name: &str, total: u32) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self.inner.existing_topic(name)?;
        let old = topic.meta.partitions;
        if total <= old {
            return Err(BrokerError::PartitionsNotIncreased {
                topic: name.to_string(),
                current: old,
                requested: total,
            });
        }
        if total > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic {name} has {old} partitions; the new count {total} must be at most {MAX_PARTITIONS}"
            )));
        }
        let mut meta = topic.meta.clone();
        meta.partitions = total;
        // The new partitions at once (in parallel), their files made
        // durable by two filesystem syncs when there are many; then the
        // topic file, which makes them part of the topic. A failure undoes
        // what was made (a start would remove the directories of
        // partitions past the topic file's count anyway).
        let deferred = u64::from(total - old) >= DEFERRED_SYNC_PARTITIONS;
        let added = {
            let _deferred = deferred.then(pubsub_storage::fs::defer_syncs);
            let job = [(meta.clone(), Arc::clone(&topic.config), old)];
            self.inner.open_partitions(&job, None).pop()
        }
        .unwrap_or(Err(BrokerError::Closed))?;
        let opened: Vec<Arc<Partition>> = added.iter().filter_map(|e| e.get().cloned()).collect();
        let committed = (|| {
            if deferred {
                self.inner.sync_then_record_recovery_points(&opened)?;
            }
            metadata::write(&topic_file(&self.inner.dir, name), KIND_TOPIC, &meta)
        })();
        if let Err(e) = committed {
            drop((opened, added));
            for i in old..total {
                let _ = remove_partition_dir(&partition_dir(&self.inner.dir, name, i as i32));
            }
            return Err(e);
        }
        let mut partitions = topic.partitions.clone();
        partitions.extend(added);
        self.inner.replace_topic(Topic {
            meta,
            config: Arc::clone(&topic.config),
            partitions,
        });
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
        let topic = self.inner.existing_topic(name)?;
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
        for e in &topic.partitions {
            // A partition not opened yet opens with the new settings.
            e.with_opening(|to_open, opened| {
                *to_open = Arc::clone(&config);
                if let Some(p) = opened {
                    p.log()
                        .set_config(config.log_config(self.inner.config.flush))
                        .map_err(|e| BrokerError::storage(name, p.index(), e))?;
                    p.set_config(Arc::clone(&config));
                }
                Ok::<(), BrokerError>(())
            })?;
        }
        self.inner.replace_topic(Topic {
            meta,
            config,
            partitions: topic.partitions.clone(),
        });
        Ok(())
    }
}
