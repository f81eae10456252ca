//! Authorization of protocol requests: [`RULES`] is the one table of which
//! operation on which resource each API needs (Kafka's "Operations and
//! Resources on Protocols", checked against its KafkaApis), and
//! docs/SECURITY.md's table is generated from it (a test keeps them equal).
//! Handlers ask [`Access::allows`] with one of the rules; the decision is
//! the broker's pure ACL function over a snapshot of the ACLs. With the
//! authorizer off every request is allowed, as today.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use pubsub_broker::security::acl::{
    self, AclIndex, Decision, Operation, ResourceType, CLUSTER_NAME,
};
use pubsub_broker::security::Principal;

use crate::config::ServerConfig;
use crate::context::Ctx;

/// One row of the table: `api` needs `operation` on a `resource`;
/// refused, the item gets `error`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The API.
    pub api: ApiKey,
    /// The operation needed.
    pub operation: Operation,
    /// On resources of this type.
    pub resource: ResourceType,
    /// The error code of a refusal.
    pub error: i16,
    /// When the rule applies, for the docs.
    pub when: &'static str,
}

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GROUP: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED
const TXN: i16 = 53; // TRANSACTIONAL_ID_AUTHORIZATION_FAILED

macro_rules! rules {
    ($($NAME:ident: $api:ident, $op:ident, $rt:ident, $err:expr, $when:literal;)*) => {
        $(
            #[doc = $when]
            pub const $NAME: Rule = Rule {
                api: ApiKey::$api,
                operation: Operation::$op,
                resource: ResourceType::$rt,
                error: $err,
                when: $when,
            };
        )*
        /// Every rule, in API order.
        pub const RULES: &[Rule] = &[$($NAME,)*];
    };
}

rules! {
    PRODUCE: Produce, Write, Topic, TOPIC, "each topic written to";
    PRODUCE_TXN: Produce, Write, TransactionalId, TXN, "transactional batches: their transactional id (every partition fails)";
    FETCH: Fetch, Read, Topic, TOPIC, "each topic read";
    LIST_OFFSETS: ListOffsets, Describe, Topic, TOPIC, "each topic";
    METADATA: Metadata, Describe, Topic, TOPIC, "each topic named (all topics: only those allowed are listed)";
    METADATA_CREATE_CLUSTER: Metadata, Create, Cluster, TOPIC, "auto-creation of a missing topic: Create on the cluster, or else";
    METADATA_CREATE_TOPIC: Metadata, Create, Topic, TOPIC, "auto-creation of a missing topic: Create on the topic";
    METADATA_CLUSTER_OPERATIONS: Metadata, Describe, Cluster, 0, "cluster_authorized_operations answered (0 without it)";
    OFFSET_COMMIT_GROUP: OffsetCommit, Read, Group, GROUP, "the group";
    OFFSET_COMMIT_TOPIC: OffsetCommit, Read, Topic, TOPIC, "each topic committed";
    OFFSET_FETCH_GROUP: OffsetFetch, Describe, Group, GROUP, "the group";
    OFFSET_FETCH_TOPIC: OffsetFetch, Describe, Topic, TOPIC, "each topic (all topics: only those allowed)";
    FIND_COORDINATOR_GROUP: FindCoordinator, Describe, Group, GROUP, "a group's coordinator";
    FIND_COORDINATOR_TXN: FindCoordinator, Describe, TransactionalId, TXN, "a transaction coordinator";
    JOIN_GROUP: JoinGroup, Read, Group, GROUP, "the group";
    HEARTBEAT: Heartbeat, Read, Group, GROUP, "the group";
    LEAVE_GROUP: LeaveGroup, Read, Group, GROUP, "the group";
    SYNC_GROUP: SyncGroup, Read, Group, GROUP, "the group";
    DESCRIBE_GROUPS: DescribeGroups, Describe, Group, GROUP, "each group";
    LIST_GROUPS_CLUSTER: ListGroups, Describe, Cluster, 0, "every group listed, or else";
    LIST_GROUPS_GROUP: ListGroups, Describe, Group, 0, "only the groups allowed are listed";
    CREATE_TOPICS_CLUSTER: CreateTopics, Create, Cluster, TOPIC, "any topic, or else";
    CREATE_TOPICS_TOPIC: CreateTopics, Create, Topic, TOPIC, "each topic";
    CREATE_TOPICS_CONFIGS: CreateTopics, DescribeConfigs, Topic, TOPIC, "a created topic's settings answered (without it: none, topic_config_error_code)";
    DELETE_TOPICS: DeleteTopics, Delete, Topic, TOPIC, "each topic";
    DELETE_RECORDS: DeleteRecords, Delete, Topic, TOPIC, "each topic";
    INIT_PRODUCER_ID_TXN: InitProducerId, Write, TransactionalId, TXN, "with a transactional id";
    INIT_PRODUCER_ID_IDEMPOTENT: InitProducerId, IdempotentWrite, Cluster, CLUSTER, "without one: IdempotentWrite on the cluster, or else";
    INIT_PRODUCER_ID_ANY_TOPIC: InitProducerId, Write, Topic, CLUSTER, "without one: Write on any topic";
    ADD_PARTITIONS_TO_TXN_TXN: AddPartitionsToTxn, Write, TransactionalId, TXN, "the transactional id (every partition fails)";
    ADD_PARTITIONS_TO_TXN_TOPIC: AddPartitionsToTxn, Write, Topic, TOPIC, "each topic (the others: OPERATION_NOT_ATTEMPTED)";
    ADD_PARTITIONS_TO_TXN_BATCHED: AddPartitionsToTxn, ClusterAction, Cluster, CLUSTER, "versions 4+ (the broker-to-broker form)";
    ADD_OFFSETS_TO_TXN_TXN: AddOffsetsToTxn, Write, TransactionalId, TXN, "the transactional id";
    ADD_OFFSETS_TO_TXN_GROUP: AddOffsetsToTxn, Read, Group, GROUP, "the group";
    END_TXN: EndTxn, Write, TransactionalId, TXN, "the transactional id";
    WRITE_TXN_MARKERS: WriteTxnMarkers, ClusterAction, Cluster, CLUSTER, "always (operators' markers: `kafka-transactions abort`)";
    TXN_OFFSET_COMMIT_TXN: TxnOffsetCommit, Write, TransactionalId, TXN, "the transactional id (every partition fails)";
    TXN_OFFSET_COMMIT_GROUP: TxnOffsetCommit, Read, Group, GROUP, "the group (every partition fails)";
    TXN_OFFSET_COMMIT_TOPIC: TxnOffsetCommit, Read, Topic, TOPIC, "each topic committed";
    OFFSET_FOR_LEADER_EPOCH: OffsetForLeaderEpoch, Describe, Topic, TOPIC, "each topic";
    DESCRIBE_ACLS: DescribeAcls, Describe, Cluster, CLUSTER, "always";
    CREATE_ACLS: CreateAcls, Alter, Cluster, CLUSTER, "always";
    DELETE_ACLS: DeleteAcls, Alter, Cluster, CLUSTER, "always";
    DESCRIBE_CONFIGS_BROKER: DescribeConfigs, DescribeConfigs, Cluster, CLUSTER, "a broker resource";
    DESCRIBE_CONFIGS_TOPIC: DescribeConfigs, DescribeConfigs, Topic, TOPIC, "a topic resource";
    ALTER_CONFIGS_BROKER: AlterConfigs, AlterConfigs, Cluster, CLUSTER, "a broker resource";
    ALTER_CONFIGS_TOPIC: AlterConfigs, AlterConfigs, Topic, TOPIC, "a topic resource";
    DESCRIBE_LOG_DIRS: DescribeLogDirs, Describe, Cluster, CLUSTER, "always";
    CREATE_PARTITIONS: CreatePartitions, Alter, Topic, TOPIC, "each topic";
    DELETE_GROUPS: DeleteGroups, Delete, Group, GROUP, "each group";
    INCREMENTAL_ALTER_CONFIGS_BROKER: IncrementalAlterConfigs, AlterConfigs, Cluster, CLUSTER, "a broker resource";
    INCREMENTAL_ALTER_CONFIGS_TOPIC: IncrementalAlterConfigs, AlterConfigs, Topic, TOPIC, "a topic resource";
    OFFSET_DELETE_GROUP: OffsetDelete, Delete, Group, GROUP, "the group";
    OFFSET_DELETE_TOPIC: OffsetDelete, Read, Topic, TOPIC, "each topic";
    DESCRIBE_USER_SCRAM_CREDENTIALS: DescribeUserScramCredentials, Describe, Cluster, CLUSTER, "always";
    ALTER_USER_SCRAM_CREDENTIALS: AlterUserScramCredentials, Alter, Cluster, CLUSTER, "always";
    DESCRIBE_CLUSTER_OPERATIONS: DescribeCluster, Describe, Cluster, 0, "cluster_authorized_operations answered (0 without it)";
    DESCRIBE_PRODUCERS: DescribeProducers, Read, Topic, TOPIC, "each topic";
    DESCRIBE_TOPIC_PARTITIONS: DescribeTopicPartitions, Describe, Topic, TOPIC, "each topic named (all topics: only those allowed)";
    DESCRIBE_TRANSACTIONS: DescribeTransactions, Describe, TransactionalId, TXN, "each transactional id";
    DESCRIBE_TRANSACTIONS_TOPIC: DescribeTransactions, Describe, Topic, 0, "each topic of a transaction (only those allowed are answered)";
    LIST_TRANSACTIONS: ListTransactions, Describe, TransactionalId, 0, "only the transactional ids allowed are listed";
}

/// What one request may do: the connection's principal and host, a
/// snapshot of the ACLs and the authorizer's settings. Cheap to make (and
/// free with the authorizer off); make one per request and ask it per item.
#[derive(Debug, Clone)]
pub struct Access {
    /// `None`: the authorizer is off, everything is allowed.
    on: Option<Enforced>,
}

#[derive(Debug, Clone)]
struct Enforced {
    acls: Arc<AclIndex>,
    config: Arc<ServerConfig>,
    principal: Principal,
    host: String,
}

impl Access {
    /// The access of `ctx`'s connection now.
    pub fn of(ctx: &Ctx) -> Access {
        let on = ctx.config.authorizer.enabled.then(|| Enforced {
            acls: ctx.broker.acls().snapshot(),
            config: Arc::clone(&ctx.config),
            principal: ctx.principal(),
            // Kafka compares ACL hosts with the bare address.
            host: ctx.client_host.trim_start_matches('/').to_string(),
        });
        Access { on }
    }

    /// Whether the authorizer is on.
    pub fn enforced(&self) -> bool {
        self.on.is_some()
    }

    /// Whether `rule` allows the request on the resource `name` (ignored
    /// for the cluster, whose one name is `kafka-cluster`). Denials are
    /// logged, as Kafka's authorizer logs them.
    pub fn allows(&self, rule: &Rule, name: &str) -> bool {
        let allowed = self.check(rule, name);
        if !allowed {
            self.log_denial(rule, name);
        }
        allowed
    }

    /// Logs a refusal, as Kafka's authorizer logs one.
    pub fn log_denial(&self, rule: &Rule, name: &str) {
        if let Some(on) = &self.on {
            tracing::info!(
                principal = %on.principal,
                host = %on.host,
                api = ?rule.api,
                operation = %rule.operation,
                resource = %rule.resource,
                name = self.name(rule, name),
                "authorization denied"
            );
        }
    }

    /// [`Access::allows`] without the log line, for filtering lists (the
    /// topics of an all-topics Metadata, the groups of ListGroups).
    pub fn filters(&self, rule: &Rule, name: &str) -> bool {
        self.check(rule, name)
    }

    /// Whether `rule` allows its operation on some resource of its type
    /// (Kafka's authorizeByResourceType).
    pub fn allows_any(&self, rule: &Rule) -> bool {
        match &self.on {
            None => true,
            Some(on) => {
                acl::authorize_any(
                    &on.acls,
                    &on.config.authorizer,
                    &on.principal,
                    &on.host,
                    rule.operation,
                    rule.resource,
                ) == Decision::Allow
            }
        }
    }

    /// The `authorized_operations` bitfield of a resource: every operation
    /// of its type the principal may do (all of them with the authorizer
    /// off, as Kafka answers).
    pub fn operations(&self, resource: ResourceType, name: &str) -> i32 {
        match &self.on {
            None => resource
                .operations()
                .iter()
                .fold(0, |bits, op| bits | (1 << op.code())),
            Some(on) => acl::authorized_operations(
                &on.acls,
                &on.config.authorizer,
                &on.principal,
                &on.host,
                resource,
                name,
            ),
        }
    }

    /// The refusal of a config resource (DescribeConfigs, AlterConfigs,
    /// IncrementalAlterConfigs): `topic` for a topic (type 2), `broker`
    /// for a broker or broker logger (4, 8); `None` when allowed or of
    /// another type.
    pub fn config_refusal(
        &self,
        resource_type: i8,
        name: &str,
        topic: &Rule,
        broker: &Rule,
    ) -> Option<(i16, String)> {
        let rule = match resource_type {
            2 => topic,
            4 | 8 => broker,
            _ => return None,
        };
        (!self.allows(rule, name)).then(|| (rule.error, "Authorization failed.".to_string()))
    }

    fn name<'a>(&self, rule: &Rule, name: &'a str) -> &'a str {
        if rule.resource == ResourceType::Cluster {
            CLUSTER_NAME
        } else {
            name
        }
    }

    fn check(&self, rule: &Rule, name: &str) -> bool {
        match &self.on {
            None => true,
            Some(on) => {
                acl::authorize(
                    &on.acls,
                    &on.config.authorizer,
                    &on.principal,
                    &on.host,
                    rule.operation,
                    rule.resource,
                    self.name(rule, name),
                ) == Decision::Allow
            }
        }
    }
}

/// Kafka's name of a refusal code (for the docs table).
fn error_name(code: i16) -> String {
    if code == 0 {
        return "(filtered, no error)".into();
    }
    let name = format!("{:?}", ResponseError::try_from_code(code));
    // `Some(TopicAuthorizationFailed)` -> TOPIC_AUTHORIZATION_FAILED.
    let inner = name.trim_start_matches("Some(").trim_end_matches(')');
    let mut out = String::new();
    for (i, c) in inner.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    format!("{out} ({code})")
}

/// The docs table (docs/SECURITY.md), rendered from [`RULES`].
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "| API (key) | Operation | Resource | Refused with | When |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| {:?} ({}) | {} | {} | {} | {} |\n",
            r.api,
            r.api as i16,
            r.operation,
            r.resource,
            error_name(r.error),
            r.when
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_table_is_the_rules_table() {
        let doc = include_str!("../../../docs/SECURITY.md");
        let begin = "<!-- rules:begin -->\n";
        let end = "<!-- rules:end -->";
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        assert_eq!(
            &doc[start..stop],
            rules_markdown(),
            "docs/SECURITY.md's table differs from authorize::RULES; paste rules_markdown()"
        );
    }

    #[test]
    fn every_error_is_an_authorization_error() {
        for r in RULES {
            assert!(
                [0, TOPIC, GROUP, CLUSTER, TXN].contains(&r.error),
                "{:?}",
                r.api
            );
        }
    }
}
