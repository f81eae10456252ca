//! The authorization decision, as Kafka's StandardAuthorizer makes it:
//!
//! 1. a super user is allowed everything;
//! 2. the bindings that apply are those whose pattern covers the resource
//!    (the literal name, the literal `*`, or a prefix of the name), whose
//!    principal is the client's or `User:*`, and whose host is the
//!    client's or `*`;
//! 3. a DENY for the operation (or All) among them denies; otherwise an
//!    ALLOW for it (or for an operation implying it, or All) allows;
//! 4. otherwise: denied, unless no binding at all covers the resource and
//!    `allow_if_no_acl` is set (Kafka's `allow.everyone.if.no.acl.found`).
//!
//! [`AclIndex`] groups the bindings by resource type and name so a decision
//! looks at the bindings of one resource (its literal name, `*`, and the
//! prefixes of its name that have bindings), never at all of them.

use std::collections::{BTreeSet, HashMap};

use super::WILDCARD_PRINCIPAL;
use super::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};
use crate::security::Principal;

/// What the authorizer was told (`[auth]` in `pubsub serve`'s settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Enforce ACLs (`authorizer = true`); off, every request is allowed
    /// and the ACL APIs answer SECURITY_DISABLED, as Kafka without an
    /// authorizer.
    pub enabled: bool,
    /// Principals allowed everything (`super_users = ["User:admin"]`).
    pub super_users: Vec<String>,
    /// Allow an operation on a resource no binding covers (Kafka's
    /// `allow.everyone.if.no.acl.found`, false).
    pub allow_if_no_acl: bool,
}

impl AuthorizerConfig {
    /// Whether `principal` is a super user.
    pub fn is_super_user(&self, principal: &Principal) -> bool {
        let text = principal.to_string();
        self.super_users.contains(&text)
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse with the resource type's authorization error.
    Deny,
}

/// The bindings of one resource type, by name.
#[derive(Debug, Default, Clone)]
struct TypeIndex {
    /// Literal bindings by name (`*` included, under `*`).
    literal: HashMap<String, Vec<AclBinding>>,
    /// Prefixed bindings by prefix.
    prefixed: HashMap<String, Vec<AclBinding>>,
    /// The byte lengths of the prefixes in `prefixed`: a name is looked up
    /// once per length, not once per binding.
    prefix_lengths: BTreeSet<usize>,
}

/// Every binding, indexed for decisions.
#[derive(Debug, Default, Clone)]
pub struct AclIndex {
    all: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, TypeIndex>,
}

impl AclIndex {
    /// The index of `bindings` (duplicates kept once).
    pub fn new(bindings: impl IntoIterator<Item = AclBinding>) -> AclIndex {
        let mut index = AclIndex::default();
        for b in bindings {
            index.insert(b);
        }
        index
    }

    /// Adds a binding; false if it was there already.
    pub fn insert(&mut self, binding: AclBinding) -> bool {
        if !self.all.insert(binding.clone()) {
            return false;
        }
        let t = self.by_type.entry(binding.resource_type).or_default();
        match binding.pattern_type {
            PatternType::Prefixed => {
                t.prefix_lengths.insert(binding.resource_name.len());
                t.prefixed
                    .entry(binding.resource_name.clone())
                    .or_default()
                    .push(binding);
            }
            _ => t
                .literal
                .entry(binding.resource_name.clone())
                .or_default()
                .push(binding),
        }
        true
    }

    /// Every binding, in a stable order.
    pub fn bindings(&self) -> impl Iterator<Item = &AclBinding> {
        self.all.iter()
    }

    /// How many bindings there are.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Calls `f` with every binding whose pattern covers `name` (of type
    /// `resource_type`) until it returns false.
    fn for_each_covering(
        &self,
        resource_type: ResourceType,
        name: &str,
        mut f: impl FnMut(&AclBinding) -> bool,
    ) {
        let Some(t) = self.by_type.get(&resource_type) else {
            return;
        };
        let literal = [name, WILDCARD];
        let literal = if name == WILDCARD {
            &literal[..1]
        } else {
            &literal[..]
        };
        for key in literal {
            for b in t.literal.get(*key).into_iter().flatten() {
                if !f(b) {
                    return;
                }
            }
        }
        for &len in t.prefix_lengths.range(..=name.len()) {
            let Some(prefix) = name.get(..len) else {
                continue;
            };
            for b in t.prefixed.get(prefix).into_iter().flatten() {
                if !f(b) {
                    return;
                }
            }
        }
    }
}

fn entry_applies(b: &AclBinding, principal: &str, host: &str) -> bool {
    (b.principal == principal || b.principal == WILDCARD_PRINCIPAL)
        && (b.host == WILDCARD || b.host == host)
}

/// Whether `principal`, connected from `host` (`127.0.0.1`, no leading
/// slash), may do `operation` on the resource `resource_type`/`name`.
pub fn authorize(
    acls: &AclIndex,
    config: &AuthorizerConfig,
    principal: &Principal,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> Decision {
    let who = principal.to_string();
    if config.super_users.contains(&who) {
        return Decision::Allow;
    }
    let mut covered = false;
    let mut allowed = false;
    let mut denied = false;
    acls.for_each_covering(resource_type, name, |b| {
        covered = true;
        if !entry_applies(b, &who, host) {
            return true;
        }
        match b.permission {
            Permission::Deny if b.operation.deny_covers(operation) => {
                denied = true;
                false
            }
            Permission::Allow if b.operation.allow_implies(operation) => {
                allowed = true;
                true
            }
            _ => true,
        }
    });
    if denied {
        Decision::Deny
    } else if allowed || (!covered && config.allow_if_no_acl) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Whether `principal` may do `operation` on some resource of the type
/// (Kafka's `authorizeByResourceType`: InitProducerId lets a producer with
/// Write on any topic be idempotent). Allowed when the decision for a
/// resource named `hardcode` allows (super users, `allow_if_no_acl`, a
/// wildcard allow); denied by a literal `*` DENY; otherwise allowed when an
/// ALLOW binding for exactly this operation (or All) names a literal not
/// denied literally or by a denied prefix, or a prefix no denied prefix
/// dominates.
pub fn authorize_any(
    acls: &AclIndex,
    config: &AuthorizerConfig,
    principal: &Principal,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
) -> Decision {
    if authorize(
        acls,
        config,
        principal,
        host,
        operation,
        resource_type,
        "hardcode",
    ) == Decision::Allow
    {
        return Decision::Allow;
    }
    let who = principal.to_string();
    let Some(t) = acls.by_type.get(&resource_type) else {
        return Decision::Deny;
    };
    let mut deny_literal = BTreeSet::new();
    let mut deny_prefix = BTreeSet::new();
    let mut allow_literal = Vec::new();
    let mut allow_prefix = Vec::new();
    let all = t.literal.values().chain(t.prefixed.values()).flatten();
    for b in all {
        if !entry_applies(b, &who, host) || !b.operation.deny_covers(operation) {
            continue;
        }
        let literal = b.pattern_type == PatternType::Literal;
        match (b.permission, literal) {
            (Permission::Deny, true) if b.resource_name == WILDCARD => return Decision::Deny,
            (Permission::Deny, true) => {
                deny_literal.insert(b.resource_name.as_str());
            }
            (Permission::Deny, false) => {
                deny_prefix.insert(b.resource_name.as_str());
            }
            (Permission::Allow, true) if b.resource_name == WILDCARD => return Decision::Allow,
            (Permission::Allow, true) => allow_literal.push(b.resource_name.as_str()),
            (Permission::Allow, false) => allow_prefix.push(b.resource_name.as_str()),
            _ => {}
        }
    }
    let dominated = |name: &str| {
        name.char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .any(|p| deny_prefix.contains(p))
    };
    let literal_ok = allow_literal
        .iter()
        .any(|n| !deny_literal.contains(n) && !dominated(n));
    if literal_ok || allow_prefix.iter().any(|n| !dominated(n)) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// The `authorized_operations` bitfield of a resource: bit `code` set for
/// every operation of its type the principal may do.
pub fn authorized_operations(
    acls: &AclIndex,
    config: &AuthorizerConfig,
    principal: &Principal,
    host: &str,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    resource_type
        .operations()
        .iter()
        .filter(|op| {
            authorize(acls, config, principal, host, **op, resource_type, name) == Decision::Allow
        })
        .fold(0, |bits, op| bits | (1 << op.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        host: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }

    fn topic_acl(
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        acl(ResourceType::Topic, name, pattern, principal, "*", op, perm)
    }

    fn enabled() -> AuthorizerConfig {
        AuthorizerConfig {
            enabled: true,
            super_users: vec!["User:admin".into()],
            allow_if_no_acl: false,
        }
    }

    fn decide(
        acls: &[AclBinding],
        config: &AuthorizerConfig,
        who: &str,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> Decision {
        let index = AclIndex::new(acls.iter().cloned());
        let principal = Principal::parse(who).expect("principal");
        authorize(&index, config, &principal, host, op, rt, name)
    }

    use Decision::{Allow, Deny};
    use Operation::*;
    use PatternType::{Literal, Prefixed};
    use Permission::{Allow as A, Deny as D};
    use ResourceType::{Cluster, Group, Topic, TransactionalId};

    #[test]
    fn no_binding_denies_unless_allow_if_no_acl() {
        let c = enabled();
        assert_eq!(
            decide(&[], &c, "User:alice", "1.2.3.4", Read, Topic, "t"),
            Deny
        );
        let open = AuthorizerConfig {
            allow_if_no_acl: true,
            ..enabled()
        };
        assert_eq!(
            decide(&[], &open, "User:alice", "1.2.3.4", Read, Topic, "t"),
            Allow
        );
        // A binding for someone else on the resource: no longer "no ACL".
        let bob = [topic_acl("t", Literal, "User:bob", Read, A)];
        assert_eq!(
            decide(&bob, &open, "User:alice", "h", Read, Topic, "t"),
            Deny
        );
        assert_eq!(
            decide(&bob, &open, "User:alice", "h", Read, Topic, "u"),
            Allow
        );
        // ... whatever its operation.
        let bob_write = [topic_acl("t", Literal, "User:bob", Write, A)];
        assert_eq!(
            decide(&bob_write, &open, "User:alice", "h", Read, Topic, "t"),
            Deny
        );
    }

    #[test]
    fn super_users_are_allowed_even_against_deny() {
        let acls = [topic_acl("*", Literal, "User:*", All, D)];
        assert_eq!(
            decide(&acls, &enabled(), "User:admin", "h", Delete, Topic, "t"),
            Allow
        );
        assert_eq!(
            decide(&acls, &enabled(), "User:alice", "h", Delete, Topic, "t"),
            Deny
        );
        assert_eq!(
            decide(
                &[],
                &enabled(),
                "User:admin",
                "h",
                ClusterAction,
                Cluster,
                "kafka-cluster"
            ),
            Allow
        );
    }

    #[test]
    fn patterns_literal_wildcard_prefixed() {
        let c = enabled();
        let lit = [topic_acl("orders", Literal, "User:alice", Read, A)];
        assert_eq!(
            decide(&lit, &c, "User:alice", "h", Read, Topic, "orders"),
            Allow
        );
        assert_eq!(
            decide(&lit, &c, "User:alice", "h", Read, Topic, "orders2"),
            Deny
        );
        assert_eq!(
            decide(&lit, &c, "User:alice", "h", Read, Group, "orders"),
            Deny
        );
        let star = [topic_acl("*", Literal, "User:alice", Read, A)];
        assert_eq!(
            decide(&star, &c, "User:alice", "h", Read, Topic, "anything"),
            Allow
        );
        let pre = [topic_acl("ord", Prefixed, "User:alice", Read, A)];
        assert_eq!(
            decide(&pre, &c, "User:alice", "h", Read, Topic, "orders"),
            Allow
        );
        assert_eq!(
            decide(&pre, &c, "User:alice", "h", Read, Topic, "ord"),
            Allow
        );
        assert_eq!(decide(&pre, &c, "User:alice", "h", Read, Topic, "or"), Deny);
        // A prefixed `*` is a prefix like any other, not a wildcard.
        let pstar = [topic_acl("*", Prefixed, "User:alice", Read, A)];
        assert_eq!(
            decide(&pstar, &c, "User:alice", "h", Read, Topic, "orders"),
            Deny
        );
        assert_eq!(
            decide(&pstar, &c, "User:alice", "h", Read, Topic, "*x"),
            Allow
        );
        // A literal binding matches the name only literally.
        let lit_pre = [topic_acl("ord", Literal, "User:alice", Read, A)];
        assert_eq!(
            decide(&lit_pre, &c, "User:alice", "h", Read, Topic, "orders"),
            Deny
        );
    }

    #[test]
    fn principals_and_hosts() {
        let c = enabled();
        let any_user = [topic_acl("t", Literal, "User:*", Write, A)];
        assert_eq!(
            decide(&any_user, &c, "User:bob", "h", Write, Topic, "t"),
            Allow
        );
        assert_eq!(
            decide(&any_user, &c, "User:ANONYMOUS", "h", Write, Topic, "t"),
            Allow
        );
        // Kafka matches `User:*` for every principal, whatever its type.
        assert_eq!(
            decide(&any_user, &c, "Group:ops", "h", Write, Topic, "t"),
            Allow
        );
        let host = [acl(Topic, "t", Literal, "User:alice", "10.0.0.1", Write, A)];
        assert_eq!(
            decide(&host, &c, "User:alice", "10.0.0.1", Write, Topic, "t"),
            Allow
        );
        assert_eq!(
            decide(&host, &c, "User:alice", "10.0.0.2", Write, Topic, "t"),
            Deny
        );
        assert_eq!(
            decide(&host, &c, "User:bob", "10.0.0.1", Write, Topic, "t"),
            Deny
        );
        // ANONYMOUS is a principal like any other.
        let anon = [topic_acl("t", Literal, "User:ANONYMOUS", Read, A)];
        assert_eq!(
            decide(&anon, &c, "User:ANONYMOUS", "h", Read, Topic, "t"),
            Allow
        );
        assert_eq!(decide(&anon, &c, "User:alice", "h", Read, Topic, "t"), Deny);
    }

    #[test]
    fn deny_wins_and_implications_apply_to_allow_only() {
        let c = enabled();
        let both = [
            topic_acl("t", Prefixed, "User:*", Read, A),
            topic_acl("t", Literal, "User:alice", Read, D),
        ];
        assert_eq!(decide(&both, &c, "User:alice", "h", Read, Topic, "t"), Deny);
        assert_eq!(decide(&both, &c, "User:bob", "h", Read, Topic, "t"), Allow);
        // Read implies Describe; a Read deny does not deny Describe.
        assert_eq!(
            decide(&both, &c, "User:alice", "h", Describe, Topic, "t"),
            Allow
        );
        let deny_all = [
            topic_acl("t", Literal, "User:alice", All, A),
            topic_acl("*", Literal, "User:alice", All, D),
        ];
        assert_eq!(
            decide(&deny_all, &c, "User:alice", "h", Describe, Topic, "t"),
            Deny
        );
        for (granted, wanted, result) in [
            (Write, Describe, Allow),
            (Delete, Describe, Allow),
            (Alter, Describe, Allow),
            (Create, Describe, Deny),
            (AlterConfigs, DescribeConfigs, Allow),
            (DescribeConfigs, AlterConfigs, Deny),
            (Describe, Read, Deny),
            (All, IdempotentWrite, Allow),
            (Write, IdempotentWrite, Deny),
        ] {
            let acls = [acl(
                Cluster,
                "kafka-cluster",
                Literal,
                "User:alice",
                "*",
                granted,
                A,
            )];
            assert_eq!(
                decide(
                    &acls,
                    &c,
                    "User:alice",
                    "h",
                    wanted,
                    Cluster,
                    "kafka-cluster"
                ),
                result,
                "{granted} -> {wanted}"
            );
        }
    }

    #[test]
    fn authorize_any_follows_kafkas_resource_type_rules() {
        let c = enabled();
        let p = Principal::user("alice");
        let any = |acls: &[AclBinding], config: &AuthorizerConfig| {
            authorize_any(
                &AclIndex::new(acls.iter().cloned()),
                config,
                &p,
                "h",
                Write,
                Topic,
            )
        };
        assert_eq!(any(&[], &c), Deny);
        assert_eq!(
            any(
                &[],
                &AuthorizerConfig {
                    allow_if_no_acl: true,
                    ..enabled()
                }
            ),
            Allow
        );
        assert_eq!(
            any(&[topic_acl("x", Literal, "User:alice", Write, A)], &c),
            Allow
        );
        assert_eq!(
            any(&[topic_acl("x", Literal, "User:alice", Read, A)], &c),
            Deny
        );
        assert_eq!(
            any(&[topic_acl("x", Literal, "User:bob", Write, A)], &c),
            Deny
        );
        assert_eq!(
            any(
                &[
                    topic_acl("x", Literal, "User:alice", Write, A),
                    topic_acl("x", Literal, "User:alice", Write, D)
                ],
                &c
            ),
            Deny
        );
        assert_eq!(
            any(
                &[
                    topic_acl("xy", Literal, "User:alice", Write, A),
                    topic_acl("x", Prefixed, "User:alice", Write, D)
                ],
                &c
            ),
            Deny
        );
        assert_eq!(
            any(
                &[
                    topic_acl("xy", Prefixed, "User:alice", Write, A),
                    topic_acl("xyz", Prefixed, "User:alice", Write, D)
                ],
                &c
            ),
            Allow
        );
        assert_eq!(
            any(
                &[
                    topic_acl("y", Literal, "User:alice", Write, A),
                    topic_acl("*", Literal, "User:*", Write, D)
                ],
                &c
            ),
            Deny
        );
        let admin = Principal::user("admin");
        let deny_all = AclIndex::new([topic_acl("*", Literal, "User:*", All, D)]);
        assert_eq!(
            authorize_any(&deny_all, &c, &admin, "h", Write, Topic),
            Allow
        );
        let tx = AclIndex::new([acl(
            TransactionalId,
            "t",
            Literal,
            "User:alice",
            "*",
            Write,
            A,
        )]);
        assert_eq!(authorize_any(&tx, &c, &p, "h", Write, Topic), Deny);
    }

    #[test]
    fn authorized_operations_bitfield() {
        let c = enabled();
        let acls = AclIndex::new([acl(Group, "g", Literal, "User:alice", "*", Read, A)]);
        let p = Principal::user("alice");
        let bits = authorized_operations(&acls, &c, &p, "h", Group, "g");
        assert_eq!(bits, (1 << Read.code()) | (1 << Describe.code()));
        let admin = Principal::user("admin");
        let all = authorized_operations(&acls, &c, &admin, "h", Cluster, "kafka-cluster");
        assert_eq!(
            all,
            Cluster
                .operations()
                .iter()
                .fold(0, |b, o| b | (1 << o.code()))
        );
    }

    /// A decision looks at the bindings covering its resource, not at all
    /// of them: 20,000 bindings on 10,000 topics, Metadata-like decisions
    /// for 5,000 topics each visit only their own few.
    #[test]
    fn decisions_visit_only_the_covering_bindings() {
        let mut acls = Vec::new();
        for i in 0..10_000 {
            acls.push(topic_acl(
                &format!("topic-{i}"),
                Literal,
                "User:alice",
                Read,
                A,
            ));
            acls.push(topic_acl(
                &format!("topic-{i}"),
                Literal,
                "User:bob",
                Write,
                A,
            ));
        }
        acls.push(topic_acl("topic-1", Prefixed, "User:carol", Describe, A));
        acls.push(topic_acl("*", Literal, "User:ops", Describe, A));
        let index = AclIndex::new(acls);
        assert_eq!(index.len(), 20_002);
        let alice = Principal::user("alice");
        let started = std::time::Instant::now();
        let mut visited = 0;
        for i in 0..5_000 {
            let name = format!("topic-{i}");
            let mut here = 0;
            index.for_each_covering(Topic, &name, |_| {
                here += 1;
                true
            });
            // Its two literals, the wildcard, and `topic-1` for topic-1*.
            let expected = if name.starts_with("topic-1") { 4 } else { 3 };
            assert_eq!(here, expected, "{name}");
            visited += here;
            assert_eq!(
                authorize(&index, &enabled(), &alice, "h", Describe, Topic, &name),
                Allow
            );
        }
        assert!(visited < 20_000);
        // Indicative only (not asserted): `cargo test -p pubsub-broker --lib
        // decisions_visit -- --nocapture`.
        eprintln!(
            "5,000 decisions over 20,002 bindings: {:?} (with the walk above)",
            started.elapsed()
        );
    }

    /// The decision by a plain scan of every binding.
    fn reference(
        acls: &[AclBinding],
        config: &AuthorizerConfig,
        who: &Principal,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> Decision {
        if config.super_users.contains(&who.to_string()) {
            return Allow;
        }
        let covering: Vec<&AclBinding> = acls
            .iter()
            .filter(|b| b.resource_type == rt)
            .filter(|b| match b.pattern_type {
                Literal => b.resource_name == name || b.resource_name == "*",
                Prefixed => name.starts_with(&b.resource_name),
                _ => false,
            })
            .collect();
        let applying: Vec<&&AclBinding> = covering
            .iter()
            .filter(|b| b.principal == who.to_string() || b.principal == "User:*")
            .filter(|b| b.host == "*" || b.host == host)
            .collect();
        let denies = applying
            .iter()
            .any(|b| b.permission == D && (b.operation == op || b.operation == All));
        let implied = |granted: Operation| {
            granted == op
                || granted == All
                || (op == Describe && [Read, Write, Delete, Alter].contains(&granted))
                || (op == DescribeConfigs && granted == AlterConfigs)
        };
        let allows = applying
            .iter()
            .any(|b| b.permission == A && implied(b.operation));
        if denies {
            Deny
        } else if allows || (covering.is_empty() && config.allow_if_no_acl) {
            Allow
        } else {
            Deny
        }
    }

    fn arb_binding() -> impl Strategy<Value = AclBinding> {
        (
            prop::sample::select(vec![Topic, Group, Cluster]),
            prop::sample::select(vec!["a", "ab", "abc", "b", "*", "é", "éa"]),
            prop::sample::select(vec![Literal, Prefixed]),
            prop::sample::select(vec!["User:alice", "User:bob", "User:*", "User:admin"]),
            prop::sample::select(vec!["*", "10.0.0.1", "10.0.0.2"]),
            prop::sample::select(Operation::ALL[1..12].to_vec()),
            prop::sample::select(vec![A, D]),
        )
            .prop_map(|(rt, name, pattern, principal, host, op, perm)| {
                acl(rt, name, pattern, principal, host, op, perm)
            })
    }

    proptest! {
        #[test]
        fn index_decides_as_a_plain_scan(
            acls in prop::collection::vec(arb_binding(), 0..12),
            who in prop::sample::select(vec!["User:alice", "User:bob", "User:admin", "User:ANONYMOUS"]),
            host in prop::sample::select(vec!["10.0.0.1", "10.0.0.2"]),
            op in prop::sample::select(Operation::ALL[2..12].to_vec()),
            rt in prop::sample::select(vec![Topic, Group, Cluster]),
            name in prop::sample::select(vec!["a", "ab", "abc", "abd", "b", "*", "é", "éa", "x"]),
            allow_if_no_acl in any::<bool>(),
        ) {
            let config = AuthorizerConfig { enabled: true, super_users: vec!["User:admin".into()], allow_if_no_acl };
            let principal = Principal::parse(who).expect("principal");
            let index = AclIndex::new(acls.iter().cloned());
            prop_assert_eq!(
                authorize(&index, &config, &principal, host, op, rt, name),
                reference(&acls, &config, &principal, host, op, rt, name)
            );
        }
    }
}
