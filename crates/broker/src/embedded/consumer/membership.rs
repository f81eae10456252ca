//! The consumer as a group member: heartbeats, (re)joining with a
//! JoinGroup + SyncGroup round (computing the assignment when it leads),
//! and installing a new assignment at the committed offsets.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{Assigned, Consumer, OffsetReset, TopicPartition};
use crate::error::{BrokerError, Result};
use crate::group::assignor::{assign, AssignorMember, Strategy};
use crate::group::protocol::{by_topic, Assignment, Subscription};
use crate::group::{JoinRequest, SyncRequest};

impl Consumer {
    pub(super) fn heartbeat_interval(&self) -> Duration {
        self.config.session_timeout / 3
    }

    pub(super) fn heartbeat_if_due(&mut self) {
        if self.needs_join || self.member_id.is_empty() {
            return;
        }
        // In-process, a rebalance is noticed at once instead of at the next
        // heartbeat: the consumer is woken at least every clock tick.
        let rebalancing = self
            .broker
            .coordinator()
            .is_rebalancing(&self.config.group_id);
        if !rebalancing && self.last_heartbeat.elapsed() < self.heartbeat_interval() {
            return;
        }
        self.last_heartbeat = Instant::now();
        let result = self.broker.coordinator().heartbeat(
            &self.config.group_id,
            &self.member_id,
            self.config.name.as_deref(),
            self.generation,
            self.broker.now_ms(),
        );
        match result {
            Ok(()) => {
                // The leader notices new partitions of its topics.
                if !self.assigned_counts.is_empty()
                    && self
                        .assigned_counts
                        .iter()
                        .any(|(t, n)| self.broker.partition_count(t) != Some(*n))
                {
                    self.needs_join = true;
                }
            }
            Err(BrokerError::RebalanceInProgress(_))
            | Err(BrokerError::IllegalGeneration { .. }) => {
                self.needs_join = true;
            }
            Err(BrokerError::UnknownMemberId { .. }) => {
                self.member_id.clear();
                self.needs_join = true;
            }
            Err(e) => warn!(group = %self.config.group_id, error = %e, "heartbeat failed"),
        }
    }

    /// Rejoins the group if needed; returns when assigned, or at `deadline`.
    pub(super) async fn ensure_active(&mut self, deadline: Instant) -> Result<()> {
        while self.needs_join {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if self.config.auto_commit && !self.assigned.is_empty() {
                // Commit what was consumed before the partitions move.
                if let Err(e) = self.commit() {
                    debug!(error = %e, "commit before rebalance failed");
                }
            }
            match self.join_once(deadline).await {
                Ok(true) => self.needs_join = false,
                Ok(false) => {}
                Err(BrokerError::Timeout(w)) => {
                    if Instant::now() >= deadline {
                        return Ok(());
                    }
                    debug!(what = w, "retrying the join");
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline && self.needs_join {
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) fn subscription_bytes(&self) -> Vec<u8> {
        let sticky = self.config.strategy == Strategy::Sticky;
        Subscription {
            topics: self.topics.clone(),
            user_data: None,
            owned_partitions: if sticky {
                by_topic(&self.assignment())
            } else {
                Vec::new()
            },
            generation: if sticky { self.generation } else { -1 },
        }
        .encode()
    }

    /// One JoinGroup + SyncGroup round. Ok(false): start over.
    pub(super) async fn join_once(&mut self, deadline: Instant) -> Result<bool> {
        let req = JoinRequest {
            group_id: self.config.group_id.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: self.config.name.clone(),
            protocol_type: "consumer".into(),
            protocols: vec![(
                self.config.strategy.name().to_string(),
                self.subscription_bytes(),
            )],
            session_timeout_ms: self.config.session_timeout.as_millis() as i32,
            rebalance_timeout_ms: self.config.rebalance_timeout.as_millis() as i32,
            client_id: self
                .config
                .name
                .clone()
                .unwrap_or_else(|| "pubsub-embedded".into()),
            client_host: "embedded".into(),
            require_known_member_id: true,
            // A skipped assignment is answered by the stored one at SyncGroup.
            skip_assignment_supported: true,
        };
        let promise = match self.broker.coordinator().join(req, self.broker.now_ms()) {
            Ok(p) => p,
            Err(BrokerError::MemberIdRequired(id)) => {
                self.member_id = id;
                return Ok(false);
            }
            Err(e) => return self.rejoin_or_fail(e),
        };
        let resp = match self.wait(&promise, deadline).await? {
            Ok(r) => r,
            Err(e) => return self.rejoin_or_fail(e),
        };
        self.member_id = resp.member_id.clone();
        self.generation = resp.generation_id;
        let mut assignments = Vec::new();
        self.assigned_counts.clear();
        if resp.leader == resp.member_id && !resp.members.is_empty() {
            let strategy = resp
                .protocol_name
                .as_deref()
                .and_then(Strategy::from_name)
                .unwrap_or(self.config.strategy);
            let mut members = Vec::with_capacity(resp.members.len());
            for m in &resp.members {
                let sub = Subscription::decode(&m.metadata).unwrap_or_default();
                for t in &sub.topics {
                    if let Some(n) = self.broker.partition_count(t) {
                        self.assigned_counts.insert(t.clone(), n);
                    }
                }
                members.push(AssignorMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    topics: sub.topics,
                    owned: sub
                        .owned_partitions
                        .iter()
                        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                        .collect(),
                });
            }
            for (member, parts) in assign(strategy, &members, &self.assigned_counts) {
                let bytes = Assignment {
                    partitions: by_topic(&parts),
                    user_data: None,
                }
                .encode();
                assignments.push((member, bytes));
            }
        }
        let sync = self.broker.coordinator().sync(
            self.broker.offsets_store(),
            SyncRequest {
                group_id: self.config.group_id.clone(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: self.config.name.clone(),
                protocol_type: resp.protocol_type.clone(),
                protocol_name: resp.protocol_name.clone(),
                assignments,
            },
            self.broker.now_ms(),
        );
        let promise = match sync {
            Ok(p) => p,
            Err(e) => return self.rejoin_or_fail(e),
        };
        let synced = match self.wait(&promise, deadline).await? {
            Ok(r) => r,
            Err(e) => return self.rejoin_or_fail(e),
        };
        let assignment = Assignment::decode(&synced.assignment)
            .map_err(|e| BrokerError::InvalidRecord(format!("undecodable assignment: {e}")))?;
        self.install(assignment.topic_partitions())?;
        self.last_heartbeat = Instant::now();
        Ok(true)
    }

    /// A join or sync the group turned down: `Ok(false)` (join again) for
    /// the errors that mean "start over" (forgetting a member id the group
    /// no longer knows), the error itself otherwise.
    pub(super) fn rejoin_or_fail(&mut self, e: BrokerError) -> Result<bool> {
        match e {
            BrokerError::UnknownMemberId { .. } => {
                self.member_id.clear();
                Ok(false)
            }
            BrokerError::RebalanceInProgress(_) | BrokerError::IllegalGeneration { .. } => {
                Ok(false)
            }
            e => Err(e),
        }
    }

    /// Waits for a promise until `deadline` (woken by the clock tick too).
    pub(super) async fn wait<T>(
        &self,
        promise: &crate::notify::Promise<T>,
        deadline: Instant,
    ) -> Result<T> {
        self.broker.subscribe_ticks(promise.bell());
        loop {
            if let Some(v) = promise.try_take() {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(BrokerError::Timeout("waiting for the group coordinator"));
            }
            promise.bell().wait_async().await;
        }
    }

    /// Takes a new assignment: positions of kept partitions stay; new ones
    /// start at the committed offset (or the reset policy).
    pub(super) fn install(&mut self, mut parts: Vec<TopicPartition>) -> Result<()> {
        parts.sort();
        let mut kept = Vec::with_capacity(parts.len());
        for a in std::mem::take(&mut self.assigned) {
            if parts.iter().any(|(t, p)| a.is(t, *p)) {
                kept.push(a);
            } else {
                if let Ok(p) = self.broker.partition(&a.topic, a.partition) {
                    p.unsubscribe(&self.wakeup);
                }
                self.buffer
                    .retain(|r| !(r.partition == a.partition && r.topic == a.topic));
            }
        }
        let new: Vec<TopicPartition> = parts
            .iter()
            .filter(|(t, p)| !kept.iter().any(|a| a.is(t, *p)))
            .cloned()
            .collect();
        let committed = self
            .broker
            .coordinator()
            .fetch_offsets(&self.config.group_id, Some(&new));
        for ((topic, partition), c) in committed {
            let p = self.broker.partition(&topic, partition)?;
            p.subscribe(&self.wakeup);
            let log = p.log();
            let offset = match c {
                Some(c) if c.offset >= 0 => c.offset as u64,
                _ => match self.config.offset_reset {
                    OffsetReset::Earliest => log.log_start_offset(),
                    OffsetReset::Latest => log.log_end_offset(),
                },
            };
            kept.push(Assigned {
                topic: Arc::from(topic.as_str()),
                partition,
                position: offset,
                fetch_position: offset,
            });
        }
        kept.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        debug!(group = %self.config.group_id, member = %self.member_id, generation = self.generation, partitions = ?parts, "assigned");
        self.assigned = kept;
        self.next_partition = 0;
        self.wakeup.wake();
        Ok(())
    }
}
