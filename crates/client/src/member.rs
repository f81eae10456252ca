//! Membership of a consumer group for one topic: join (the leader computes
//! a range assignment for every member), heartbeats from a task of their
//! own that notice a rebalance, offset commits as a member, and leaving.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, Result};
use crate::groups::{self, decode_subscription, encode_assignment, encode_subscription};

/// The one assignor this client offers.
const ASSIGNOR: &str = "range";
/// The group forgets a member silent this long.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the group waits for members to rejoin in a rebalance.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Heartbeat period: short, so a rebalance is noticed quickly.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A joined member of a group.
#[derive(Debug)]
pub struct Membership {
    group: String,
    topic: String,
    client_id: String,
    member_id: String,
    generation: i32,
    assignment: Vec<i32>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins `group` as a consumer of `topic` and waits for an assignment.
    pub async fn join(
        cluster: &mut Cluster,
        group: &str,
        topic: &str,
        client_id: &str,
    ) -> Result<Membership> {
        let mut m = Membership {
            group: group.to_string(),
            topic: topic.to_string(),
            client_id: client_id.to_string(),
            member_id: String::new(),
            generation: -1,
            assignment: Vec::new(),
            rejoin: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
        };
        m.rejoin(cluster).await?;
        Ok(m)
    }

    /// This member's partitions of the topic, in order.
    pub fn assignment(&self) -> &[i32] {
        &self.assignment
    }

    /// A rebalance started (or the membership was lost): call `rejoin`.
    pub fn needs_rejoin(&self) -> bool {
        self.rejoin.load(Ordering::Relaxed)
    }

    /// Joins again (after a rebalance started) and takes the new assignment.
    pub async fn rejoin(&mut self, cluster: &mut Cluster) -> Result<()> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.rejoin.store(false, Ordering::Relaxed);
        let subscription = encode_subscription(std::slice::from_ref(&self.topic))?;
        let retry_until = std::time::Instant::now() + crate::cluster::COORDINATOR_WAIT;
        loop {
            let conn = cluster.coordinator(&self.group).await?;
            let joined = join_once(conn, &self.group, &self.member_id, &subscription).await?;
            match ResponseError::try_from_code(joined.error_code) {
                Some(ResponseError::MemberIdRequired) => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                // The coordinator is loading, moving or away: ask again,
                // for as long as FindCoordinator would.
                Some(e) if e.is_retriable() && std::time::Instant::now() < retry_until => {
                    cluster.forget_coordinator(&self.group);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                _ => check(
                    joined.error_code,
                    || format!("joining group {}", self.group),
                    None,
                )?,
            }
            self.member_id = joined.member_id.to_string();
            self.generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                leader_assignments(cluster, &joined).await?
            } else {
                Vec::new()
            };
            let conn = cluster.coordinator(&self.group).await?;
            let v = conn.versions().pick::<SyncGroupRequest>(0..=5)?;
            let mut req = SyncGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(sb(&self.member_id))
                .with_assignments(assignments);
            if v >= 5 {
                req = req
                    .with_protocol_type(Some(sb("consumer")))
                    .with_protocol_name(Some(sb(ASSIGNOR)));
            }
            let synced = conn.call(v, &req).await?;
            if synced.error_code == ResponseError::RebalanceInProgress.code() {
                continue;
            }
            check(
                synced.error_code,
                || format!("syncing group {}", self.group),
                None,
            )?;
            let mut mine = groups::decode_assignment(synced.assignment)?;
            self.assignment = mine.remove(&self.topic).unwrap_or_default();
            self.assignment.sort_unstable();
            break;
        }
        let addr = cluster.coordinator_addr(&self.group).await?;
        self.heartbeat = Some(tokio::spawn(heartbeat(
            addr,
            self.client_id.clone(),
            cluster.security().clone(),
            self.group.clone(),
            self.member_id.clone(),
            self.generation,
            self.rejoin.clone(),
        )));
        Ok(())
    }

    /// Commits `offsets` (partition -> next offset to read) as this member.
    pub async fn commit(&self, cluster: &mut Cluster, offsets: &BTreeMap<i32, i64>) -> Result<()> {
        let conn = cluster.coordinator(&self.group).await?;
        let done = groups::commit_offsets(
            conn,
            &self.group,
            self.generation,
            &self.member_id,
            &self.topic,
            offsets,
        )
        .await;
        if done.is_err() {
            // NOT_COORDINATOR, a broken connection...: look it up again.
            cluster.forget_coordinator(&self.group);
        }
        done
    }

    /// Leaves the group, so the others take over at once.
    pub async fn leave(mut self, cluster: &mut Cluster) -> Result<()> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let conn = cluster.coordinator(&self.group).await?;
        let v = conn.versions().pick::<LeaveGroupRequest>(0..=4)?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(sb(&self.group)));
        req = if v >= 3 {
            req.with_members(vec![
                MemberIdentity::default().with_member_id(sb(&self.member_id))
            ])
        } else {
            req.with_member_id(sb(&self.member_id))
        };
        let resp = conn.call(v, &req).await?;
        check(
            resp.error_code,
            || format!("leaving group {}", self.group),
            None,
        )
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

async fn join_once(
    conn: &mut Connection,
    group: &str,
    member_id: &str,
    subscription: &bytes::Bytes,
) -> Result<JoinGroupResponse> {
    let v = conn.versions().pick::<JoinGroupRequest>(0..=7)?;
    let mut req = JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(SESSION_TIMEOUT_MS)
        .with_member_id(sb(member_id))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb(ASSIGNOR))
            .with_metadata(subscription.clone())]);
    if v >= 1 {
        req = req.with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS);
    }
    conn.call(v, &req).await
}

/// The leader's work: a range assignment of every subscribed topic over
/// the members subscribed to it.
async fn leader_assignments(
    cluster: &mut Cluster,
    joined: &JoinGroupResponse,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let mut subscriptions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &joined.members {
        subscriptions.insert(
            m.member_id.to_string(),
            decode_subscription(m.metadata.clone())?,
        );
    }
    let mut topics: Vec<&str> = subscriptions
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let metadata = cluster.metadata(Some(&topics)).await?;
    let partitions: BTreeMap<String, usize> = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.partitions.len())))
        .collect();
    let plan = range_assign(&subscriptions, &partitions);
    subscriptions
        .keys()
        .map(|member| {
            let mine = plan.get(member).cloned().unwrap_or_default();
            Ok(SyncGroupRequestAssignment::default()
                .with_member_id(sb(member))
                .with_assignment(encode_assignment(&mine)?))
        })
        .collect()
}

/// Kafka's range assignor: per topic, the members subscribed to it in
/// member-id order each take a contiguous range; the first
/// `partitions % members` take one more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, usize>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut plan: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = count / members.len();
        let extra = count % members.len();
        let mut next = 0usize;
        for (i, member) in members.into_iter().enumerate() {
            let take = per + usize::from(i < extra);
            let range: Vec<i32> = (next..next + take)
                .filter_map(|p| i32::try_from(p).ok())
                .collect();
            next += take;
            plan.entry(member.clone())
                .or_default()
                .insert(topic.clone(), range);
        }
    }
    plan
}

/// Heartbeats until aborted; flags `rejoin` when the coordinator says the
/// group is rebalancing or no longer knows this member.
async fn heartbeat(
    addr: String,
    client_id: String,
    security: Arc<crate::security::Security>,
    group: String,
    member_id: String,
    generation: i32,
    rejoin: Arc<AtomicBool>,
) {
    let mut conn = None;
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        if conn.is_none() {
            conn = Connection::connect_secure(&addr, &client_id, &security)
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let Ok(v) = c.versions().pick::<HeartbeatRequest>(0..=4) else {
            rejoin.store(true, Ordering::Relaxed);
            return;
        };
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(&group)))
            .with_generation_id(generation)
            .with_member_id(sb(&member_id));
        match c.call(v, &req).await {
            Ok(r) if r.error_code == 0 => {}
            Ok(_) => {
                rejoin.store(true, Ordering::Relaxed);
                return;
            }
            // A broken connection is retried on the next beat.
            Err(_) => conn = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_covers_every_partition_once() {
        let mut subs = BTreeMap::new();
        subs.insert("a".to_string(), vec!["t".to_string()]);
        subs.insert("b".to_string(), vec!["t".to_string(), "u".to_string()]);
        subs.insert("c".to_string(), vec!["t".to_string()]);
        let mut parts = BTreeMap::new();
        parts.insert("t".to_string(), 7);
        parts.insert("u".to_string(), 2);
        let plan = range_assign(&subs, &parts);
        assert_eq!(plan["a"]["t"], vec![0, 1, 2]);
        assert_eq!(plan["b"]["t"], vec![3, 4]);
        assert_eq!(plan["c"]["t"], vec![5, 6]);
        assert_eq!(plan["b"]["u"], vec![0, 1]);
        assert!(!plan["a"].contains_key("u"));
    }
}
