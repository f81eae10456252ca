//! The group coordinator: every consumer group of the broker, the classic
//! group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed
//! offsets, and their persistence in `__consumer_offsets`.
//!
//! Groups are independent state machines ([`state`]), each behind its own
//! lock; what they must make durable (assignments, commits, deletions) is
//! written through an [`OffsetsStore`] while that group's lock is held, so
//! records of one group reach the log in order, and a commit is
//! acknowledged only once durable. Time is passed in (`now`, monotonic ms),
//! so the coordinator is tested without sleeping; the broker's clock thread
//! calls [`GroupCoordinator::tick`].
//!
//! Transactional offset commits (TxnOffsetCommit, KIP-98/KIP-447) are
//! written as a transactional batch of the producer and held pending per
//! (group, producer id): OffsetFetch does not return them until the
//! transaction's COMMIT marker lands on the group's `__consumer_offsets`
//! partition ([`GroupCoordinator::complete_txn`]); an ABORT drops them.
//! The loader replays markers the same way, so a restart keeps committed
//! ones, drops aborted ones and leaves open ones pending.

pub mod assignor;
pub mod protocol;
pub mod records;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;

use tracing::warn;

use crate::config::GroupConfig;
use crate::error::{BrokerError, Result};
use crate::names::validate_group_id;
use crate::notify::Promise;
use records::{partition_for_group, CommittedOffset, OffsetsKey, StoredGroup};
use state::{Group, SyncStep};
pub use state::{
    GroupDescription, GroupState, JoinMember, JoinRequest, JoinResponse, MemberDescription,
    SyncRequest, SyncResponse,
};

/// A `__consumer_offsets` record: key, and value (`None` deletes the key).
pub type OffsetsRecord = (Vec<u8>, Option<Vec<u8>>);

/// The record that deletes a committed offset: its key, no value.
fn offset_tombstone(group: &str, topic: &str, partition: i32) -> OffsetsRecord {
    let key = OffsetsKey::Offset {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
    };
    (key.encode(), None)
}

/// Where the coordinator makes its records durable (the broker appends them
/// to the group's `__consumer_offsets` partition and waits for the fsync).
pub trait OffsetsStore {
    /// Appends `(key, value)` records for `group`; a `None` value deletes.
    /// Returns once they are durable.
    fn persist(&self, group: &str, records: Vec<OffsetsRecord>) -> Result<()>;
    /// Appends `records` for `group` as one transactional batch of the
    /// producer (id and epoch); returns once they are durable. The
    /// transaction's marker, written later to the same partition, decides
    /// them.
    fn persist_transactional(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<OffsetsRecord>,
    ) -> Result<()>;
}

/// One entry of `__consumer_offsets` as the loader reads it, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsLogEntry {
    /// A record; `producer_id` is set when its batch is transactional.
    Record {
        /// The record's key.
        key: Vec<u8>,
        /// Its value (`None`: a tombstone).
        value: Option<Vec<u8>>,
        /// The producer of a transactional batch.
        producer_id: Option<i64>,
    },
    /// A COMMIT (`commit`) or ABORT marker of a producer's transaction in
    /// one `__consumer_offsets` partition.
    Marker {
        /// The partition it is in.
        partition: i32,
        /// The producer whose transaction it ends.
        producer_id: i64,
        /// COMMIT (or ABORT).
        commit: bool,
    },
}

/// One partition's commit in an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch the client saw (-1 if none).
    pub leader_epoch: i32,
    /// Client metadata (stored and returned verbatim).
    pub metadata: String,
}

/// An OffsetCommit.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Group.
    pub group_id: String,
    /// Generation (-1 for a commit outside group membership).
    pub generation_id: i32,
    /// Member id ("" outside group membership).
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// What to commit.
    pub entries: Vec<CommitEntry>,
}

/// A TxnOffsetCommit: offsets committed within a producer's transaction.
#[derive(Debug, Clone, Default)]
pub struct TxnCommitRequest {
    /// Group.
    pub group_id: String,
    /// The transaction's producer id.
    pub producer_id: i64,
    /// The producer's epoch.
    pub producer_epoch: i16,
    /// Generation (-1 outside group membership).
    pub generation_id: i32,
    /// Member id ("" outside group membership).
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// What to commit.
    pub entries: Vec<CommitEntry>,
}

fn to_committed(entries: Vec<CommitEntry>, wall_ms: i64) -> Vec<((String, i32), CommittedOffset)> {
    entries
        .into_iter()
        .map(|e| {
            (
                (e.topic, e.partition),
                CommittedOffset {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata,
                    commit_timestamp: wall_ms,
                },
            )
        })
        .collect()
}

fn offset_records(group: &str, commits: &[((String, i32), CommittedOffset)]) -> Vec<OffsetsRecord> {
    commits
        .iter()
        .map(|((topic, partition), c)| {
            (
                OffsetsKey::Offset {
                    group: group.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                }
                .encode(),
                Some(c.encode()),
            )
        })
        .collect()
}

/// A group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer", or "" for a group with only offsets).
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// One partition's answer to an OffsetDelete: deleted (or had nothing to
/// delete), or refused.
pub type OffsetDeletion = ((String, i32), Result<()>);

/// Every group of the broker.
#[derive(Debug)]
pub struct GroupCoordinator {
    groups: Mutex<BTreeMap<String, Arc<Mutex<Group>>>>,
    config: GroupConfig,
}

fn group_record(group: &str, stored: &StoredGroup) -> OffsetsRecord {
    (
        OffsetsKey::Group {
            group: group.to_string(),
        }
        .encode(),
        Some(stored.encode()),
    )
}

impl GroupCoordinator {
    /// An empty coordinator.
    pub fn new(config: GroupConfig) -> Self {
        GroupCoordinator {
            groups: Mutex::new(BTreeMap::new()),
            config,
        }
    }

    /// Rebuilds groups from `__consumer_offsets` entries, in log order:
    /// plain records apply at once; a transactional batch's records are
    /// pending for their producer until its marker in the same partition
    /// commits (or aborts) them; without a marker they stay pending, for
    /// the transaction coordinator to complete or time out.
    pub fn load(&self, entries: impl IntoIterator<Item = OffsetsLogEntry>, now: u64) {
        let mut groups = self.groups.lock();
        let n = self.config.offsets_topic_partitions;
        for entry in entries {
            let (key, value, producer_id) = match entry {
                OffsetsLogEntry::Record {
                    key,
                    value,
                    producer_id,
                } => (key, value, producer_id),
                OffsetsLogEntry::Marker {
                    partition,
                    producer_id,
                    commit,
                } => {
                    for (id, g) in groups.iter() {
                        if partition_for_group(id, n) == partition {
                            g.lock().complete_txn(producer_id, commit);
                        }
                    }
                    continue;
                }
            };
            let key = match OffsetsKey::decode(&key) {
                Ok(k) => k,
                Err(e) => {
                    warn!(error = %e, "skipping an unreadable __consumer_offsets key");
                    continue;
                }
            };
            let entry = groups
                .entry(key.group().to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(key.group()))));
            let mut g = entry.lock();
            match (key, value) {
                (
                    OffsetsKey::Offset {
                        topic, partition, ..
                    },
                    Some(v),
                ) => match CommittedOffset::decode(&v) {
                    Ok(c) => {
                        let tp = (topic, partition);
                        match producer_id {
                            Some(pid) => {
                                g.pending_txn.entry(pid).or_default().insert(tp, Some(c));
                            }
                            None => {
                                g.supersede_pending([&tp]);
                                g.offsets.insert(tp, c);
                            }
                        }
                    }
                    Err(e) => {
                        warn!(group = %g.id, error = %e, "skipping an unreadable offset commit")
                    }
                },
                (
                    OffsetsKey::Offset {
                        topic, partition, ..
                    },
                    None,
                ) => {
                    let tp = (topic, partition);
                    g.supersede_pending([&tp]);
                    g.offsets.remove(&tp);
                }
                (OffsetsKey::Group { group }, Some(v)) => match StoredGroup::decode(&v) {
                    Ok(stored) => {
                        let offsets = std::mem::take(&mut g.offsets);
                        let pending = std::mem::take(&mut g.pending_txn);
                        *g = Group::restore(&group, stored, now);
                        g.offsets = offsets;
                        g.pending_txn = pending;
                    }
                    Err(e) => {
                        warn!(group = %group, error = %e, "skipping unreadable group metadata")
                    }
                },
                (OffsetsKey::Group { group }, None) => {
                    let offsets = std::mem::take(&mut g.offsets);
                    let pending = std::mem::take(&mut g.pending_txn);
                    *g = Group::new(&group);
                    g.offsets = offsets;
                    g.pending_txn = pending;
                }
            }
        }
        groups.retain(|_, g| {
            let g = g.lock();
            !(g.is_empty() && g.offsets.is_empty() && g.pending_txn.is_empty() && g.generation == 0)
        });
    }

    fn group(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups.lock().get(id).cloned()
    }

    fn group_or_create(&self, id: &str) -> Arc<Mutex<Group>> {
        Arc::clone(
            self.groups
                .lock()
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(id)))),
        )
    }

    fn unknown(group: &str, member: &str) -> BrokerError {
        BrokerError::UnknownMemberId {
            group: group.to_string(),
            member_id: member.to_string(),
        }
    }

    /// Stores metadata of a group that changed on its own (emptied).
    fn persist_quietly(&self, store: &dyn OffsetsStore, group: &str, stored: Option<StoredGroup>) {
        if let Some(stored) = stored {
            if let Err(e) = store.persist(group, vec![group_record(group, &stored)]) {
                warn!(group, error = %e, "could not store group metadata");
            }
        }
    }

    /// JoinGroup. The promise is fulfilled when the join phase completes.
    pub fn join(&self, req: JoinRequest, now: u64) -> Result<Arc<Promise<Result<JoinResponse>>>> {
        validate_group_id(&req.group_id)?;
        let group = if req.member_id.is_empty() {
            self.group_or_create(&req.group_id)
        } else {
            self.group(&req.group_id)
                .ok_or_else(|| Self::unknown(&req.group_id, &req.member_id))?
        };
        let mut g = group.lock();
        g.join(req, now, &self.config)
    }

    /// SyncGroup. The leader's assignment is stored before anyone gets it.
    pub fn sync(
        &self,
        store: &dyn OffsetsStore,
        req: SyncRequest,
        now: u64,
    ) -> Result<Arc<Promise<Result<SyncResponse>>>> {
        let group = self
            .group(&req.group_id)
            .ok_or_else(|| Self::unknown(&req.group_id, &req.member_id))?;
        let mut g = group.lock();
        let generation = req.generation_id;
        match g.sync(req, now)? {
            SyncStep::Wait(p) => Ok(p),
            SyncStep::Persist(stored, p) => {
                let id = g.id.clone();
                match store.persist(&id, vec![group_record(&id, &stored)]) {
                    Ok(()) => g.finish_sync(generation, now),
                    Err(e) => {
                        warn!(group = %id, error = %e, "could not store the assignment; rebalancing");
                        g.abort_sync(now);
                    }
                }
                Ok(p)
            }
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: u64,
    ) -> Result<()> {
        let group = self
            .group(group_id)
            .ok_or_else(|| Self::unknown(group_id, member_id))?;
        let mut g = group.lock();
        g.heartbeat(member_id, instance_id, generation, now)
    }

    /// LeaveGroup for (member id, instance id) pairs: one result each.
    pub fn leave(
        &self,
        store: &dyn OffsetsStore,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: u64,
    ) -> Result<Vec<Result<()>>> {
        let group = self
            .group(group_id)
            .ok_or_else(|| BrokerError::GroupIdNotFound(group_id.to_string()))?;
        let mut g = group.lock();
        let (results, stored) = g.leave(members, now, &self.config);
        self.persist_quietly(store, group_id, stored);
        Ok(results)
    }

    /// OffsetCommit: validated, made durable, then visible.
    pub fn commit(
        &self,
        store: &dyn OffsetsStore,
        req: CommitRequest,
        now: u64,
        wall_ms: i64,
    ) -> Result<()> {
        validate_group_id(&req.group_id)?;
        let group = if req.generation_id < 0 && req.member_id.is_empty() {
            self.group_or_create(&req.group_id)
        } else {
            self.group(&req.group_id)
                .ok_or_else(|| Self::unknown(&req.group_id, &req.member_id))?
        };
        let mut g = group.lock();
        g.check_commit(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            now,
        )?;
        let commits = to_committed(req.entries, wall_ms);
        store.persist(&req.group_id, offset_records(&req.group_id, &commits))?;
        g.supersede_pending(commits.iter().map(|(tp, _)| tp));
        g.offsets.extend(commits);
        Ok(())
    }

    /// TxnOffsetCommit: the offsets are written to the group's
    /// `__consumer_offsets` partition as a transactional batch of the
    /// producer and held pending until the transaction's marker
    /// ([`Self::complete_txn`]). An unknown group is created for a request
    /// without a generation and refused with ILLEGAL_GENERATION otherwise,
    /// as Kafka's group coordinator does. The caller has checked that the
    /// group's partition is in the producer's ongoing transaction (and
    /// holds that transaction still while this runs).
    pub fn txn_commit(
        &self,
        store: &dyn OffsetsStore,
        req: TxnCommitRequest,
        now: u64,
        wall_ms: i64,
    ) -> Result<()> {
        validate_group_id(&req.group_id)?;
        let group = match self.group(&req.group_id) {
            Some(g) => g,
            None if req.generation_id < 0 => self.group_or_create(&req.group_id),
            None => {
                return Err(BrokerError::IllegalGeneration {
                    group: req.group_id.clone(),
                    generation: req.generation_id,
                    current: -1,
                })
            }
        };
        let mut g = group.lock();
        g.check_txn_commit(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            now,
        )?;
        if req.entries.is_empty() {
            return Ok(());
        }
        let commits = to_committed(req.entries, wall_ms);
        store.persist_transactional(
            &req.group_id,
            req.producer_id,
            req.producer_epoch,
            offset_records(&req.group_id, &commits),
        )?;
        let pending = g.pending_txn.entry(req.producer_id).or_default();
        for (tp, c) in commits {
            pending.insert(tp, Some(c));
        }
        Ok(())
    }

    /// A transaction marker of `producer_id` landed on `__consumer_offsets`
    /// partition `partition`: the pending transactional commits of that
    /// producer in the groups of that partition are committed (`commit`)
    /// or dropped.
    pub fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let n = self.config.offsets_topic_partitions;
        let groups: Vec<Arc<Mutex<Group>>> = self
            .groups
            .lock()
            .iter()
            .filter(|(id, _)| partition_for_group(id, n) == partition)
            .map(|(_, g)| Arc::clone(g))
            .collect();
        for g in groups {
            g.lock().complete_txn(producer_id, commit);
        }
    }

    /// The partitions of a group with a transactional commit awaiting its
    /// marker (OffsetFetch with `require_stable` answers them
    /// UNSTABLE_OFFSET_COMMIT).
    pub fn pending_offsets(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        match self.group(group_id) {
            Some(g) => g
                .lock()
                .pending_txn
                .values()
                .flat_map(|p| p.keys().cloned())
                .collect(),
            None => BTreeSet::new(),
        }
    }

    /// OffsetFetch: committed offsets of the given partitions, or of all.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        let Some(group) = self.group(group_id) else {
            return partitions
                .unwrap_or_default()
                .iter()
                .map(|tp| (tp.clone(), None))
                .collect();
        };
        let g = group.lock();
        match partitions {
            Some(ps) => ps
                .iter()
                .map(|tp| (tp.clone(), g.offsets.get(tp).cloned()))
                .collect(),
            None => g
                .offsets
                .iter()
                .map(|(tp, c)| (tp.clone(), Some(c.clone())))
                .collect(),
        }
    }

    /// True while the group waits for its members to rejoin.
    pub fn is_rebalancing(&self, group_id: &str) -> bool {
        self.group(group_id)
            .is_some_and(|g| g.lock().state == GroupState::PreparingRebalance)
    }

    /// DescribeGroups (an unknown group is reported Dead with no members).
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        match self.group(group_id) {
            Some(g) => g.lock().describe(),
            None => GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// ListGroups.
    pub fn list(&self) -> Vec<GroupListing> {
        let groups: Vec<Arc<Mutex<Group>>> = self.groups.lock().values().cloned().collect();
        groups
            .iter()
            .map(|g| {
                let g = g.lock();
                let d = g.describe();
                GroupListing {
                    group_id: d.group_id,
                    protocol_type: d.protocol_type,
                    state: d.state,
                }
            })
            .filter(|l| l.state != GroupState::Dead)
            .collect()
    }

    /// DeleteGroups: an empty group and its offsets go (tombstones are
    /// written first).
    pub fn delete(&self, store: &dyn OffsetsStore, group_id: &str) -> Result<()> {
        let group = self
            .group(group_id)
            .ok_or_else(|| BrokerError::GroupIdNotFound(group_id.to_string()))?;
        let mut g = group.lock();
        if g.state == GroupState::Dead {
            return Err(BrokerError::GroupIdNotFound(group_id.to_string()));
        }
        if g.member_count() > 0 {
            return Err(BrokerError::NonEmptyGroup(group_id.to_string()));
        }
        // Pending transactional commits get tombstones too, so a marker
        // read after them at the next load cannot revive the offsets.
        let doomed: BTreeSet<&(String, i32)> = g
            .offsets
            .keys()
            .chain(g.pending_txn.values().flat_map(|p| p.keys()))
            .collect();
        let mut records: Vec<OffsetsRecord> = doomed
            .into_iter()
            .map(|(topic, partition)| offset_tombstone(group_id, topic, *partition))
            .collect();
        records.push((
            OffsetsKey::Group {
                group: group_id.to_string(),
            }
            .encode(),
            None,
        ));
        store.persist(group_id, records)?;
        g.delete()?;
        drop(g);
        self.groups.lock().remove(group_id);
        Ok(())
    }

    /// OffsetDelete: removes the group's committed offsets of the given
    /// partitions (tombstones are written first). A partition of a topic
    /// the group's members consume is refused with
    /// `GroupSubscribedToTopic`; one without a committed offset is
    /// answered without error, as Kafka does. An unknown or deleted group
    /// is `GroupIdNotFound`.
    pub fn delete_offsets(
        &self,
        store: &dyn OffsetsStore,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<OffsetDeletion>> {
        validate_group_id(group_id)?;
        let group = self
            .group(group_id)
            .ok_or_else(|| BrokerError::GroupIdNotFound(group_id.to_string()))?;
        let mut g = group.lock();
        g.check_offset_delete()?;
        let mut results = Vec::with_capacity(partitions.len());
        let mut doomed = Vec::new();
        for (topic, partition) in partitions {
            let tp = (topic.clone(), *partition);
            if g.is_subscribed_to(topic) {
                let refusal = BrokerError::GroupSubscribedToTopic {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                };
                results.push((tp, Err(refusal)));
                continue;
            }
            if g.offsets.contains_key(&tp) || g.has_pending(&tp) {
                doomed.push(tp.clone());
            }
            results.push((tp, Ok(())));
        }
        let records: Vec<OffsetsRecord> = doomed
            .iter()
            .map(|(topic, partition)| offset_tombstone(group_id, topic, *partition))
            .collect();
        if !records.is_empty() {
            store.persist(group_id, records)?;
        }
        g.supersede_pending(&doomed);
        for tp in &doomed {
            g.offsets.remove(tp);
        }
        Ok(results)
    }

    /// Advances every group's timers to `now`.
    pub fn tick(&self, store: &dyn OffsetsStore, now: u64) {
        let groups: Vec<Arc<Mutex<Group>>> = self.groups.lock().values().cloned().collect();
        for group in groups {
            let mut g = group.lock();
            let stored = g.tick(now, &self.config);
            let id = g.id.clone();
            self.persist_quietly(store, &id, stored);
        }
    }
}
