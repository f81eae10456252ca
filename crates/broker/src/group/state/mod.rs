//! One consumer group: Kafka's classic group protocol as a state machine.
//!
//! States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable (and
//! Dead once deleted). Every method takes the current time (`now`, in
//! monotonic milliseconds) and does no I/O: what must be made durable is
//! returned to the caller ([`super::GroupCoordinator`]), which writes it to
//! `__consumer_offsets` before completing the requests that depend on it.
//! Answers that cannot be given at once (JoinGroup while others are still
//! joining, SyncGroup of a follower) are [`Promise`]s fulfilled later.
//!
//! [`join`] holds the join phase of a rebalance (JoinGroup, completing it,
//! members departing); [`requests`] the requests and answers; this module
//! the group itself, SyncGroup, heartbeats, LeaveGroup, timers, commits
//! and descriptions.

mod join;
mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::protocol::Subscription;
use super::records::{CommittedOffset, StoredGroup, StoredMember};
use crate::config::GroupConfig;
use crate::error::{BrokerError, Result};
use crate::notify::Promise;

pub use requests::{
    GroupDescription, JoinMember, JoinRequest, JoinResponse, MemberDescription, SyncRequest,
    SyncResponse,
};

/// Where a group is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may still be stored).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned; members heartbeat.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups/ListGroups.
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub(crate) type JoinPromise = Arc<Promise<Result<JoinResponse>>>;
pub(crate) type SyncPromise = Arc<Promise<Result<SyncResponse>>>;

#[derive(Debug)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    last_heartbeat: u64,
    pending_join: Option<JoinPromise>,
    pending_sync: Option<SyncPromise>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// What a SyncGroup needs from the caller next.
#[derive(Debug)]
pub(crate) enum SyncStep {
    /// Wait on this promise (fulfilled at once if the answer is known).
    Wait(SyncPromise),
    /// The leader's assignment: store this, then call
    /// [`Group::finish_sync`] (or [`Group::abort_sync`] if storing failed).
    Persist(StoredGroup, SyncPromise),
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    protocol_type: Option<String>,
    protocol: Option<String>,
    pub generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED -> expiry time.
    pending_members: BTreeMap<String, u64>,
    static_members: HashMap<String, String>,
    /// PreparingRebalance: when the join phase ends at the latest.
    join_deadline: u64,
    /// PreparingRebalance from Empty: the initial delay is running.
    initial_delay: bool,
    join_started: u64,
    /// CompletingRebalance: when the leader's SyncGroup is overdue.
    sync_deadline: u64,
    state_timestamp: i64,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Transactional offset commits awaiting their transaction's marker,
    /// by producer id; `None`: a later plain commit (or deletion) of the
    /// partition supersedes it, so the COMMIT marker applies nothing there.
    pub pending_txn: BTreeMap<i64, BTreeMap<(String, i32), Option<CommittedOffset>>>,
}

fn fresh_member_id(client_id: &str) -> String {
    let prefix = if client_id.is_empty() {
        "member"
    } else {
        client_id
    };
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: HashMap::new(),
            join_deadline: 0,
            initial_delay: false,
            join_started: 0,
            sync_deadline: 0,
            state_timestamp: -1,
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
        }
    }

    /// Rebuilds a group from its stored metadata (at broker start). Members
    /// get one session timeout from `now` to come back.
    pub fn restore(id: &str, stored: StoredGroup, now: u64) -> Group {
        let mut g = Group::new(id);
        g.generation = stored.generation;
        g.protocol_type = Some(stored.protocol_type).filter(|p| !p.is_empty());
        g.protocol = stored.protocol;
        g.leader = stored.leader;
        g.state_timestamp = stored.state_timestamp;
        for m in stored.members {
            if let Some(i) = &m.instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            let protocol = g.protocol.clone().unwrap_or_default();
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms.max(0) as u64,
                    rebalance_timeout_ms: m.rebalance_timeout_ms.max(m.session_timeout_ms).max(0)
                        as u64,
                    protocols: vec![(protocol, m.subscription)],
                    assignment: m.assignment,
                    last_heartbeat: now,
                    pending_join: None,
                    pending_sync: None,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    /// The group's metadata as stored in `__consumer_offsets`.
    pub fn stored(&self) -> StoredGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms as i32,
                    session_timeout_ms: m.session_timeout_ms as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    fn unknown_member(&self, member_id: &str) -> BrokerError {
        BrokerError::UnknownMemberId {
            group: self.id.clone(),
            member_id: member_id.to_string(),
        }
    }

    /// Checks that `member_id` is a member and that a static instance id, if
    /// given, still belongs to it.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<()> {
        if let Some(iid) = instance_id {
            match self.static_members.get(iid) {
                Some(current) if current != member_id => {
                    return Err(BrokerError::FencedInstanceId(iid.to_string()))
                }
                None if self.members.contains_key(member_id) => {
                    return Err(BrokerError::FencedInstanceId(iid.to_string()))
                }
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(self.unknown_member(member_id));
        }
        Ok(())
    }

    fn check_generation(&self, generation: i32) -> Result<()> {
        if generation != self.generation {
            return Err(BrokerError::IllegalGeneration {
                group: self.id.clone(),
                generation,
                current: self.generation,
            });
        }
        Ok(())
    }

    /// Protocols every member (but `except`) supports, in `ours` order.
    fn supports(
        &self,
        protocol_type: &str,
        ours: &[(String, Vec<u8>)],
        except: Option<&str>,
    ) -> bool {
        if ours.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != except)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        ours.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Handles a SyncGroup.
    pub fn sync(&mut self, req: SyncRequest, now: u64) -> Result<SyncStep> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Err(self.unknown_member(&req.member_id));
        }
        self.check_member(&req.member_id, req.group_instance_id.as_deref())?;
        self.check_generation(req.generation_id)?;
        let mismatch = |ours: &Option<String>, theirs: &Option<String>| {
            theirs.is_some() && ours.is_some() && ours != theirs
        };
        if mismatch(&self.protocol_type, &req.protocol_type)
            || mismatch(&self.protocol, &req.protocol_name)
        {
            return Err(BrokerError::InconsistentGroupProtocol(self.id.clone()));
        }
        let promise: SyncPromise = Promise::new();
        match self.state {
            GroupState::PreparingRebalance => {
                Err(BrokerError::RebalanceInProgress(self.id.clone()))
            }
            GroupState::Stable => {
                let assignment = self
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                promise.fulfil(Ok(self.sync_response(assignment)));
                Ok(SyncStep::Wait(promise))
            }
            GroupState::CompletingRebalance => {
                let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.last_heartbeat = now;
                    m.pending_sync = Some(Arc::clone(&promise));
                }
                if !is_leader {
                    return Ok(SyncStep::Wait(promise));
                }
                let given: HashMap<String, Vec<u8>> = req.assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.get(&m.member_id).cloned().unwrap_or_default();
                }
                Ok(SyncStep::Persist(self.stored(), promise))
            }
            GroupState::Empty | GroupState::Dead => Err(self.unknown_member(&req.member_id)),
        }
    }

    fn sync_response(&self, assignment: Vec<u8>) -> SyncResponse {
        SyncResponse {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// The leader's assignment is stored: the group is Stable; every member
    /// waiting in SyncGroup gets its part.
    pub fn finish_sync(&mut self, generation: i32, now: u64) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        self.state = GroupState::Stable;
        self.state_timestamp = now as i64;
        let responses: Vec<(SyncPromise, Vec<u8>)> = self
            .members
            .values_mut()
            .filter_map(|m| m.pending_sync.take().map(|p| (p, m.assignment.clone())))
            .collect();
        for (p, a) in responses {
            p.fulfil(Ok(self.sync_response(a)));
        }
    }

    /// Storing the assignment failed: members must rejoin.
    pub fn abort_sync(&mut self, now: u64) {
        self.start_rebalance(now, false, 0);
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: u64,
    ) -> Result<()> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Err(self.unknown_member(member_id));
        }
        self.check_member(member_id, instance_id)?;
        self.check_generation(generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(BrokerError::RebalanceInProgress(self.id.clone()));
        }
        Ok(())
    }

    /// Handles a LeaveGroup of (member id, instance id) pairs; one result
    /// each, plus group metadata to store if the group became empty.
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>)],
        now: u64,
        cfg: &GroupConfig,
    ) -> (Vec<Result<()>>, Option<StoredGroup>) {
        let mut results = Vec::with_capacity(members.len());
        let mut any = false;
        for (member_id, instance_id) in members {
            let target = match instance_id {
                Some(iid) => match self.static_members.get(iid) {
                    Some(current) if member_id.is_empty() || current == member_id => {
                        Ok(current.clone())
                    }
                    Some(_) => Err(BrokerError::FencedInstanceId(iid.clone())),
                    None => Err(self.unknown_member(member_id)),
                },
                None if self.members.contains_key(member_id)
                    || self.pending_members.contains_key(member_id) =>
                {
                    Ok(member_id.clone())
                }
                None => Err(self.unknown_member(member_id)),
            };
            match target {
                Ok(id) => {
                    self.remove_member(&id);
                    any = true;
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let stored = if any {
            self.after_departure(now, cfg)
        } else {
            None
        };
        (results, stored)
    }

    /// Expires members and pending ids past their session timeout, ends an
    /// overdue join phase, and restarts a rebalance whose leader never sent
    /// its assignment. Returns group metadata to store if the group emptied.
    pub fn tick(&mut self, now: u64, cfg: &GroupConfig) -> Option<StoredGroup> {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // A member waiting in JoinGroup is alive: it is waiting on us.
                m.pending_join.is_none()
                    && now.saturating_sub(m.last_heartbeat) > m.session_timeout_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        let mut stored = None;
        if !expired.is_empty() {
            for id in &expired {
                self.remove_member(id);
            }
            stored = self.after_departure(now, cfg);
        }
        match self.state {
            GroupState::PreparingRebalance => stored = self.try_complete_join(now).or(stored),
            GroupState::CompletingRebalance if now >= self.sync_deadline => {
                let laggards: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.pending_sync.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in &laggards {
                    self.remove_member(id);
                }
                stored = self.after_departure(now, cfg).or(stored);
                if self.state == GroupState::CompletingRebalance {
                    self.start_rebalance(now, false, 0);
                }
            }
            _ => {}
        }
        stored
    }

    /// Checks an OffsetCommit: a member of the current generation, or a
    /// "simple" commit (generation -1, no member) to a group without members.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: u64,
    ) -> Result<()> {
        if self.state == GroupState::Dead {
            return Err(self.unknown_member(member_id));
        }
        if generation < 0 && member_id.is_empty() {
            if self.members.is_empty() {
                return Ok(());
            }
            return Err(self.unknown_member(member_id));
        }
        self.check_member(member_id, instance_id)?;
        self.check_generation(generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(BrokerError::RebalanceInProgress(self.id.clone()));
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        Ok(())
    }

    /// Checks a TxnOffsetCommit's member and generation, as Kafka's
    /// classic groups do: without a generation, a request naming no member
    /// (a producer outside group management) or a group without members
    /// may commit; otherwise the member must be known (its static instance
    /// id not fenced) and the generation current. Unlike a plain commit, a
    /// rebalance in progress does not refuse it.
    pub fn check_txn_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: u64,
    ) -> Result<()> {
        if self.state == GroupState::Dead {
            return Err(self.unknown_member(member_id));
        }
        if generation < 0
            && (self.members.is_empty() || (member_id.is_empty() && instance_id.is_none()))
        {
            return Ok(());
        }
        self.check_member(member_id, instance_id)?;
        self.check_generation(generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        Ok(())
    }

    /// A plain commit or deletion of these partitions supersedes every
    /// pending transactional commit of them (Kafka keeps whichever write
    /// came last in the log).
    pub fn supersede_pending<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a (String, i32)>,
    ) {
        if self.pending_txn.is_empty() {
            return;
        }
        for tp in partitions {
            for pending in self.pending_txn.values_mut() {
                if let Some(slot) = pending.get_mut(tp) {
                    *slot = None;
                }
            }
        }
    }

    /// The marker of `producer_id`'s transaction: its pending commits
    /// become the committed offsets (COMMIT) or are dropped (ABORT).
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.pending_txn.remove(&producer_id) else {
            return;
        };
        if commit {
            for (tp, c) in pending {
                if let Some(c) = c {
                    self.offsets.insert(tp, c);
                }
            }
        }
    }

    /// Whether a transactional commit of the partition awaits its marker.
    pub fn has_pending(&self, tp: &(String, i32)) -> bool {
        self.pending_txn.values().any(|p| p.contains_key(tp))
    }

    /// DescribeGroups.
    pub fn describe(&self) -> GroupDescription {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Whether the members consume `topic`, as Kafka decides it for
    /// OffsetDelete: only a "consumer" group with a chosen protocol can be,
    /// through its members' subscriptions (an unreadable one counts as not
    /// knowing, so not subscribed, as in Kafka).
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        let (Some("consumer"), Some(protocol)) =
            (self.protocol_type.as_deref(), self.protocol.as_deref())
        else {
            return false;
        };
        let mut subscribed = false;
        for m in self.members.values() {
            match Subscription::decode(&m.metadata_for(protocol)) {
                Ok(s) => subscribed |= s.topics.iter().any(|t| t == topic),
                Err(_) => return false,
            }
        }
        subscribed
    }

    /// Whether OffsetDelete may touch this group at all, as Kafka's classic
    /// group decides: not a Dead one (GROUP_ID_NOT_FOUND), and not one with
    /// live members that does not use the consumer protocol (Connect and
    /// other custom protocols: NON_EMPTY_GROUP), since its subscriptions
    /// cannot be read.
    pub fn check_offset_delete(&self) -> Result<()> {
        match self.state {
            GroupState::Dead => Err(BrokerError::GroupIdNotFound(self.id.clone())),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if self.protocol_type.as_deref() != Some("consumer") =>
            {
                Err(BrokerError::NonEmptyGroup(self.id.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Marks the group deleted (only an empty group can be).
    pub fn delete(&mut self) -> Result<()> {
        if !self.members.is_empty() {
            return Err(BrokerError::NonEmptyGroup(self.id.clone()));
        }
        self.state = GroupState::Dead;
        self.offsets.clear();
        Ok(())
    }
}
