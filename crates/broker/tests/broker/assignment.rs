//! Assignment strategies: every partition has exactly one owner and loads
//! differ by at most one, for every (partitions 1-16, members 1-16); sticky
//! moves as little as possible.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use pubsub_broker::group::assignor::{assign, AssignorMember, Strategy};

const STRATEGIES: [Strategy; 3] = [Strategy::Range, Strategy::RoundRobin, Strategy::Sticky];

fn members(n: usize, topics: &[&str]) -> Vec<AssignorMember> {
    (0..n)
        .map(|i| AssignorMember {
            member_id: format!("member-{i:02}"),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: Vec::new(),
        })
        .collect()
}

fn check_exactly_once(
    out: &BTreeMap<String, Vec<(String, i32)>>,
    partitions: &BTreeMap<String, u32>,
) {
    let mut seen = BTreeSet::new();
    for parts in out.values() {
        for tp in parts {
            assert!(seen.insert(tp.clone()), "{tp:?} assigned twice: {out:?}");
        }
    }
    let all: BTreeSet<(String, i32)> = partitions
        .iter()
        .flat_map(|(t, n)| (0..*n as i32).map(move |p| (t.clone(), p)))
        .collect();
    assert_eq!(seen, all, "some partition has no owner: {out:?}");
}

fn loads(out: &BTreeMap<String, Vec<(String, i32)>>) -> (usize, usize) {
    let l: Vec<usize> = out.values().map(Vec::len).collect();
    (*l.iter().min().unwrap_or(&0), *l.iter().max().unwrap_or(&0))
}

#[test]
fn every_combination_of_partitions_and_members_is_exact_and_balanced() {
    for strategy in STRATEGIES {
        for p in 1..=16u32 {
            for m in 1..=16usize {
                let partitions = BTreeMap::from([("t".to_string(), p)]);
                let out = assign(strategy, &members(m, &["t"]), &partitions);
                assert_eq!(out.len(), m, "every member gets an entry");
                check_exactly_once(&out, &partitions);
                let (min, max) = loads(&out);
                assert!(
                    max - min <= 1,
                    "{strategy:?} p={p} m={m}: loads {min}..{max}"
                );
                let idle = out.values().filter(|v| v.is_empty()).count();
                assert_eq!(
                    idle,
                    m.saturating_sub(p as usize),
                    "{strategy:?} p={p} m={m}"
                );
            }
        }
    }
}

#[test]
fn round_robin_and_sticky_balance_across_topics() {
    let partitions = BTreeMap::from([
        ("a".to_string(), 3),
        ("b".to_string(), 4),
        ("c".to_string(), 1),
    ]);
    for strategy in [Strategy::RoundRobin, Strategy::Sticky] {
        for m in 1..=10 {
            let out = assign(strategy, &members(m, &["a", "b", "c"]), &partitions);
            check_exactly_once(&out, &partitions);
            let (min, max) = loads(&out);
            assert!(max - min <= 1, "{strategy:?} m={m}: {out:?}");
        }
    }
    // Range balances per topic (as Kafka's does).
    let out = assign(Strategy::Range, &members(2, &["a", "b", "c"]), &partitions);
    check_exactly_once(&out, &partitions);
}

#[test]
fn range_matches_kafkas_layout() {
    let partitions = BTreeMap::from([("t".to_string(), 10)]);
    let out = assign(Strategy::Range, &members(3, &["t"]), &partitions);
    let ranges: Vec<Vec<i32>> = out
        .values()
        .map(|v| v.iter().map(|(_, p)| *p).collect())
        .collect();
    assert_eq!(ranges, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
}

#[test]
fn static_members_sort_by_instance_id() {
    let partitions = BTreeMap::from([("t".to_string(), 2)]);
    let mut ms = members(2, &["t"]);
    ms[0].instance_id = Some("zeta".into());
    ms[1].instance_id = Some("alpha".into());
    let out = assign(Strategy::Range, &ms, &partitions);
    assert_eq!(out["member-01"], vec![("t".to_string(), 0)], "alpha first");
    assert_eq!(out["member-00"], vec![("t".to_string(), 1)]);
}

#[test]
fn members_only_get_topics_they_subscribe_to() {
    let partitions = BTreeMap::from([("a".to_string(), 4), ("b".to_string(), 2)]);
    let mut ms = members(2, &["a"]);
    ms[1].topics = vec!["a".into(), "b".into()];
    for strategy in STRATEGIES {
        let out = assign(strategy, &ms, &partitions);
        check_exactly_once(&out, &partitions);
        assert!(
            out["member-00"].iter().all(|(t, _)| t == "a"),
            "{strategy:?}: {out:?}"
        );
    }
}

proptest! {
    /// A member joining a balanced sticky group takes only what it needs:
    /// every partition that moves, moves to the newcomer.
    #[test]
    fn sticky_moves_only_what_the_newcomer_needs(p in 1u32..40, m in 1usize..12) {
        let partitions = BTreeMap::from([("t".to_string(), p)]);
        let before = assign(Strategy::Sticky, &members(m, &["t"]), &partitions);
        let mut next = members(m + 1, &["t"]);
        for member in next.iter_mut() {
            member.owned = before.get(&member.member_id).cloned().unwrap_or_default();
        }
        let after = assign(Strategy::Sticky, &next, &partitions);
        check_exactly_once(&after, &partitions);
        let (min, max) = loads(&after);
        prop_assert!(max - min <= 1);
        let newcomer = format!("member-{m:02}");
        for (member, parts) in &after {
            if *member == newcomer {
                continue;
            }
            for tp in parts {
                prop_assert!(before[member].contains(tp), "{tp:?} moved between old members");
            }
        }
        // And a member leaving hands over only its own partitions.
        let mut fewer = members(m + 1, &["t"]);
        fewer.remove(0);
        for member in fewer.iter_mut() {
            member.owned = after[&member.member_id].clone();
        }
        let later = assign(Strategy::Sticky, &fewer, &partitions);
        check_exactly_once(&later, &partitions);
        for member in &fewer {
            for tp in &after[&member.member_id] {
                prop_assert!(later[&member.member_id].contains(tp), "{tp:?} taken from a member that stayed");
            }
        }
    }
}
