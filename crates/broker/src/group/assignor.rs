//! Partition assignment strategies: range (the default, like the seed and
//! Kafka's RangeAssignor), round-robin, and sticky (balanced, moving as few
//! partitions as possible from their previous owners).
//!
//! Every strategy gives each subscribed partition exactly one owner; for
//! members with the same subscription, loads differ by at most one (range
//! balances per topic, as Kafka's does).

use std::collections::{BTreeMap, BTreeSet};

/// An assignment strategy, by its Kafka protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Contiguous ranges per topic.
    #[default]
    Range,
    /// Partitions dealt round the members.
    RoundRobin,
    /// Balanced, keeping previous owners where possible.
    Sticky,
}

impl Strategy {
    /// Name used in JoinGroup protocols.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "roundrobin",
            Strategy::Sticky => "sticky",
        }
    }

    /// The strategy a protocol name stands for.
    pub fn from_name(name: &str) -> Option<Strategy> {
        match name {
            "range" => Some(Strategy::Range),
            "roundrobin" => Some(Strategy::RoundRobin),
            "sticky" => Some(Strategy::Sticky),
            _ => None,
        }
    }
}

/// A member as the assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignorMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id, if any (sorts before dynamic members, by instance id).
    pub instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions it owned before (for sticky).
    pub owned: Vec<(String, i32)>,
}

/// Kafka's member order: static members by instance id first, then the rest
/// by member id.
fn sort_key(m: &AssignorMember) -> (u8, &str) {
    match &m.instance_id {
        Some(i) => (0, i.as_str()),
        None => (1, m.member_id.as_str()),
    }
}

/// member id -> assigned (topic, partition), for every member (possibly
/// empty). `partitions` gives each known topic's partition count; unknown
/// topics are skipped.
pub fn assign(
    strategy: Strategy,
    members: &[AssignorMember],
    partitions: &BTreeMap<String, u32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut sorted: Vec<&AssignorMember> = members.iter().collect();
    sorted.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    let mut out: BTreeMap<String, Vec<(String, i32)>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    match strategy {
        Strategy::Range => range(&sorted, partitions, &mut out),
        Strategy::RoundRobin => round_robin(&sorted, partitions, &mut out),
        Strategy::Sticky => sticky(&sorted, partitions, &mut out),
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn subscribed_topics(
    members: &[&AssignorMember],
    partitions: &BTreeMap<String, u32>,
) -> BTreeSet<String> {
    members
        .iter()
        .flat_map(|m| m.topics.iter())
        .filter(|t| partitions.contains_key(*t))
        .cloned()
        .collect()
}

fn range(
    members: &[&AssignorMember],
    partitions: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<(String, i32)>>,
) {
    for topic in subscribed_topics(members, partitions) {
        let n = partitions[&topic] as usize;
        let consumers: Vec<&&AssignorMember> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .collect();
        let c = consumers.len();
        let (per, extra) = (n / c, n % c);
        for (i, m) in consumers.iter().enumerate() {
            let start = i * per + i.min(extra);
            let len = per + usize::from(i < extra);
            if let Some(v) = out.get_mut(&m.member_id) {
                v.extend((start..start + len).map(|p| (topic.clone(), p as i32)));
            }
        }
    }
}

fn all_partitions(
    members: &[&AssignorMember],
    partitions: &BTreeMap<String, u32>,
) -> Vec<(String, i32)> {
    subscribed_topics(members, partitions)
        .into_iter()
        .flat_map(|t| {
            let n = partitions[&t];
            (0..n as i32).map(move |p| (t.clone(), p))
        })
        .collect()
}

fn round_robin(
    members: &[&AssignorMember],
    partitions: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<(String, i32)>>,
) {
    let mut next = 0usize;
    for (topic, p) in all_partitions(members, partitions) {
        for step in 0..members.len() {
            let m = members[(next + step) % members.len()];
            if m.topics.contains(&topic) {
                if let Some(v) = out.get_mut(&m.member_id) {
                    v.push((topic.clone(), p));
                }
                next = (next + step + 1) % members.len();
                break;
            }
        }
    }
}

fn sticky(
    members: &[&AssignorMember],
    partitions: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<(String, i32)>>,
) {
    let all = all_partitions(members, partitions);
    let total = all.len();
    let exists: BTreeSet<&(String, i32)> = all.iter().collect();
    let m = members.len();
    // Previous ownership that is still valid, each partition claimed once.
    let mut claimed: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut kept: Vec<Vec<(String, i32)>> = Vec::with_capacity(m);
    for member in members {
        let mut own: Vec<(String, i32)> = member
            .owned
            .iter()
            .filter(|tp| exists.contains(tp) && member.topics.contains(&tp.0))
            .filter(|tp| claimed.insert((*tp).clone()))
            .cloned()
            .collect();
        own.sort();
        kept.push(own);
    }
    // Quotas: the members that owned most get the extra partitions.
    let (base, extra) = (total / m, total % m);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| kept[b].len().cmp(&kept[a].len()).then(a.cmp(&b)));
    let mut quota = vec![base; m];
    for &i in order.iter().take(extra) {
        quota[i] += 1;
    }
    let mut pool: BTreeSet<(String, i32)> = all.iter().cloned().collect();
    for i in 0..m {
        kept[i].truncate(quota[i]);
        for tp in &kept[i] {
            pool.remove(tp);
        }
    }
    for tp in pool {
        let eligible = (0..m).filter(|&i| members[i].topics.contains(&tp.0));
        let below = eligible
            .clone()
            .filter(|&i| kept[i].len() < quota[i])
            .min_by_key(|&i| (kept[i].len(), i));
        if let Some(i) = below.or_else(|| eligible.min_by_key(|&i| (kept[i].len(), i))) {
            kept[i].push(tp);
        }
    }
    for (i, member) in members.iter().enumerate() {
        if let Some(v) = out.get_mut(&member.member_id) {
            v.append(&mut kept[i]);
        }
    }
}
