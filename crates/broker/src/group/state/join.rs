//! The join phase of a rebalance: JoinGroup (new, known and static
//! members), starting and completing a rebalance, choosing the protocol and
//! the leader, and members departing.

use std::sync::Arc;

use super::{fresh_member_id, Group, GroupState, JoinPromise, Member};
use crate::config::GroupConfig;
use crate::error::{BrokerError, Result};
use crate::group::records::StoredGroup;
use crate::group::{JoinMember, JoinRequest, JoinResponse};
use crate::notify::Promise;

impl Group {
    /// Handles a JoinGroup.
    pub fn join(&mut self, req: JoinRequest, now: u64, cfg: &GroupConfig) -> Result<JoinPromise> {
        let min = cfg.min_session_timeout.as_millis() as i32;
        let max = cfg.max_session_timeout.as_millis() as i32;
        if req.session_timeout_ms < min || req.session_timeout_ms > max {
            return Err(BrokerError::InvalidSessionTimeout {
                timeout_ms: req.session_timeout_ms,
                min_ms: min,
                max_ms: max,
            });
        }
        if self.state == GroupState::Dead {
            return Err(self.unknown_member(&req.member_id));
        }
        let except = (!req.member_id.is_empty()).then_some(req.member_id.as_str());
        if !self.supports(&req.protocol_type, &req.protocols, except) {
            return Err(BrokerError::InconsistentGroupProtocol(self.id.clone()));
        }
        let promise: JoinPromise = Promise::new();
        let session = req.session_timeout_ms.max(0) as u64;
        let rebalance = if req.rebalance_timeout_ms < 0 {
            session
        } else {
            req.rebalance_timeout_ms as u64
        };

        if req.member_id.is_empty() {
            let new_id = fresh_member_id(&req.client_id);
            if let Some(iid) = req.group_instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&iid).cloned() {
                    let times = (session, rebalance, now);
                    return Ok(self.rejoin_static(&iid, &old_id, new_id, req, times, promise, cfg));
                }
                self.static_members.insert(iid, new_id.clone());
            } else if req.require_known_member_id {
                self.pending_members.insert(new_id.clone(), now + session);
                return Err(BrokerError::MemberIdRequired(new_id));
            }
            self.admit(new_id, req, (session, rebalance, now), &promise, cfg);
            return Ok(promise);
        }

        if self.pending_members.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            self.admit(id, req, (session, rebalance, now), &promise, cfg);
            return Ok(promise);
        }
        self.check_member(&req.member_id, req.group_instance_id.as_deref())?;
        let leader = self.leader.clone();
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return Err(self.unknown_member(&req.member_id));
        };
        let changed = member.protocols != req.protocols;
        member.protocols = req.protocols;
        member.session_timeout_ms = session;
        member.rebalance_timeout_ms = rebalance;
        member.last_heartbeat = now;
        let is_leader = leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                // A repeated JoinGroup replaces the one still waiting.
                if let Some(old) = member.pending_join.replace(Arc::clone(&promise)) {
                    old.fulfil(Err(BrokerError::RebalanceInProgress(self.id.clone())));
                }
                self.try_complete_join(now);
            }
            GroupState::CompletingRebalance if !changed => {
                // The member lost our answer: send it again.
                promise.fulfil(Ok(self.join_response(&req.member_id)));
            }
            GroupState::Stable if !changed && !is_leader => {
                promise.fulfil(Ok(self.join_response(&req.member_id)));
            }
            _ => {
                member.pending_join = Some(Arc::clone(&promise));
                self.prepare_rebalance(now, cfg);
            }
        }
        Ok(promise)
    }

    /// A static member came back with no member id (a restart): it takes
    /// over its old identity under a new member id, and keeps its
    /// assignment without a rebalance if nothing about it changed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rejoin_static(
        &mut self,
        iid: &str,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        (session, rebalance, now): (u64, u64, u64),
        promise: JoinPromise,
        cfg: &GroupConfig,
    ) -> JoinPromise {
        let Some(mut member) = self.members.remove(old_id) else {
            // Known instance id but no member: join as a new static member.
            self.static_members.insert(iid.to_string(), new_id.clone());
            self.admit(new_id, req, (session, rebalance, now), &promise, cfg);
            return promise;
        };
        let fenced = |p: Option<JoinPromise>| {
            if let Some(p) = p {
                p.fulfil(Err(BrokerError::FencedInstanceId(iid.to_string())));
            }
        };
        fenced(member.pending_join.take());
        if let Some(s) = member.pending_sync.take() {
            s.fulfil(Err(BrokerError::FencedInstanceId(iid.to_string())));
        }
        let skip_supported = req.skip_assignment_supported;
        member.member_id = new_id.clone();
        member.protocols = req.protocols;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout_ms = session;
        member.rebalance_timeout_ms = rebalance;
        member.last_heartbeat = now;
        let leader = self.leader.as_deref() == Some(old_id);
        if leader {
            self.leader = Some(new_id.clone());
        }
        self.static_members.insert(iid.to_string(), new_id.clone());
        self.members.insert(new_id.clone(), member);
        // As Kafka: new subscription bytes alone (a restarted consumer owns
        // no partitions yet) keep the assignment; a change of the protocol
        // the group would choose does not. A returning follower keeps its
        // assignment; a returning leader only when it can be told to skip
        // the assignment (it gets the members, to watch their
        // subscriptions), else the group rebalances.
        let same_protocol = self.select_protocol() == self.protocol;
        if self.state == GroupState::Stable && same_protocol && (!leader || skip_supported) {
            let mut resp = self.join_response(&new_id);
            resp.skip_assignment = leader;
            promise.fulfil(Ok(resp));
        } else {
            if let Some(m) = self.members.get_mut(&new_id) {
                m.pending_join = Some(Arc::clone(&promise));
            }
            self.prepare_rebalance(now, cfg);
        }
        promise
    }

    /// Adds a member whose join waits on `promise`, and starts (or extends)
    /// the rebalance that will answer it.
    fn admit(
        &mut self,
        member_id: String,
        req: JoinRequest,
        (session, rebalance, now): (u64, u64, u64),
        promise: &JoinPromise,
        cfg: &GroupConfig,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: session,
                rebalance_timeout_ms: rebalance,
                protocols: req.protocols,
                assignment: Vec::new(),
                last_heartbeat: now,
                pending_join: Some(Arc::clone(promise)),
                pending_sync: None,
            },
        );
        self.prepare_rebalance(now, cfg);
    }

    pub(super) fn max_rebalance_timeout(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Enters (or stays in) PreparingRebalance after a membership change.
    pub(super) fn prepare_rebalance(&mut self, now: u64, cfg: &GroupConfig) {
        match self.state {
            GroupState::PreparingRebalance => {
                if self.initial_delay {
                    // Each new member pushes the initial delay back, up to
                    // the rebalance timeout.
                    let delay = cfg.initial_rebalance_delay.as_millis() as u64;
                    let cap = self.join_started + self.max_rebalance_timeout();
                    self.join_deadline = (now + delay).min(cap.max(now));
                }
                self.try_complete_join(now);
            }
            GroupState::Empty => {
                let delay = cfg.initial_rebalance_delay.as_millis() as u64;
                self.start_rebalance(now, delay > 0, delay);
            }
            _ => self.start_rebalance(now, false, 0),
        }
    }

    pub(super) fn start_rebalance(&mut self, now: u64, initial: bool, delay: u64) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(p) = m.pending_sync.take() {
                    p.fulfil(Err(BrokerError::RebalanceInProgress(self.id.clone())));
                }
            }
        }
        self.state = GroupState::PreparingRebalance;
        self.initial_delay = initial;
        self.join_started = now;
        self.join_deadline = if initial {
            now + delay
        } else {
            now + self.max_rebalance_timeout()
        };
        self.try_complete_join(now);
    }

    /// Completes the join phase if everyone rejoined (and any initial delay
    /// is over) or the deadline passed.
    pub(super) fn try_complete_join(&mut self, now: u64) -> Option<StoredGroup> {
        if self.state != GroupState::PreparingRebalance {
            return None;
        }
        let all_joined = self.pending_members.is_empty()
            && self.members.values().all(|m| m.pending_join.is_some());
        let due = now >= self.join_deadline;
        if (all_joined && !self.initial_delay) || due {
            return self.complete_join(now);
        }
        None
    }

    pub(super) fn complete_join(&mut self, now: u64) -> Option<StoredGroup> {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.pending_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.initial_delay = false;
        self.generation += 1;
        self.state_timestamp = now as i64;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return Some(self.stored());
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        self.sync_deadline = now + self.max_rebalance_timeout();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let resp = self.join_response(&id);
            if let Some(m) = self.members.get_mut(&id) {
                // The last assignment stays until the leader's sync
                // replaces it: Kafka describes it meanwhile.
                m.last_heartbeat = now;
                if let Some(p) = m.pending_join.take() {
                    p.fulfil(Ok(resp));
                }
            }
        }
        None
    }

    /// Kafka's vote: among the protocols every member supports, each member
    /// votes for its most preferred; the most votes wins (ties: the first
    /// member's preference).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some((choice, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == choice) {
                    v.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, c)| c.clone())
    }

    pub(super) fn join_response(&self, member_id: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    pub(super) fn remove_member(&mut self, member_id: &str) {
        let Some(mut m) = self.members.remove(member_id) else {
            self.pending_members.remove(member_id);
            return;
        };
        if let Some(p) = m.pending_join.take() {
            p.fulfil(Err(self.unknown_member(member_id)));
        }
        if let Some(p) = m.pending_sync.take() {
            p.fulfil(Err(self.unknown_member(member_id)));
        }
        if let Some(iid) = &m.instance_id {
            if self.static_members.get(iid).map(String::as_str) == Some(member_id) {
                self.static_members.remove(iid);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// After members left or expired: rebalance the rest (or become Empty).
    pub(super) fn after_departure(&mut self, now: u64, cfg: &GroupConfig) -> Option<StoredGroup> {
        match self.state {
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = GroupState::PreparingRebalance;
                    self.join_deadline = now;
                    self.initial_delay = false;
                    self.complete_join(now)
                } else {
                    self.prepare_rebalance(now, cfg);
                    None
                }
            }
            GroupState::Empty | GroupState::Dead => None,
        }
    }
}
