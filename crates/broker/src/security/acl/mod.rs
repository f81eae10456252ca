//! Access control lists with Kafka's model: a binding says that a
//! principal from a host is allowed (or denied) an operation on the
//! resources a pattern names. [`decision`] holds the pure decision function
//! every protocol handler consults; [`store`] keeps the bindings durable
//! with the broker's metadata (`acls.checkpoint`, docs/FORMAT.md).
//!
//! The numeric codes are the wire codes of Kafka's `ResourceType`,
//! `PatternType`, `AclOperation` and `AclPermissionType`, so requests and
//! answers convert without a table of their own.

pub mod decision;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::security::Principal;

pub use decision::{
    authorize, authorize_any, authorized_operations, AclIndex, AuthorizerConfig, Decision,
};
pub use store::AclStore;

/// The one cluster resource's name (Kafka's `kafka-cluster`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name (or host) that matches every name.
pub const WILDCARD: &str = "*";
/// The principal that matches every `User:` principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $Name:ident { $($(#[$vdoc:meta])* $Variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $Name {
            $($(#[$vdoc])* $Variant = $code,)*
        }

        impl $Name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$Name] = &[$($Name::$Variant,)*];

            /// The wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The value of a wire code (`None`: Kafka's UNKNOWN).
            pub fn from_code(code: i8) -> Option<$Name> {
                match code {
                    $($code => Some($Name::$Variant),)*
                    _ => None,
                }
            }

            /// Kafka's name (`TRANSACTIONAL_ID`, `PREFIXED`, `IDEMPOTENT_WRITE`).
            pub fn name(self) -> &'static str {
                match self {
                    $($Name::$Variant => $text,)*
                }
            }

            /// The value of a name, in any case, `-` or `_` alike
            /// (`transactional-id`, `Prefixed`, `IdempotentWrite`).
            pub fn from_name(name: &str) -> Option<$Name> {
                let wanted: String = name
                    .chars()
                    .filter(|c| *c != '_' && *c != '-')
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                $Name::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.name().replace('_', "") == wanted)
            }
        }

        impl std::fmt::Display for $Name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

wire_enum! {
    /// What kind of thing a binding protects.
    ResourceType {
        /// Filters only: every type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (one resource, [`CLUSTER_NAME`]).
        Cluster = 4, "CLUSTER";
        /// A transactional producer id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token (stored; no API of pubsub checks it).
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (stored; no API of pubsub checks it).
        User = 7, "USER";
    }
}

wire_enum! {
    /// How a binding's resource name matches names.
    PatternType {
        /// Filters only: every pattern type, names compared exactly.
        Any = 1, "ANY";
        /// Filters only: every binding that would apply to the name.
        Match = 2, "MATCH";
        /// The name itself, or every name when it is `*`.
        Literal = 3, "LITERAL";
        /// Every name that starts with it.
        Prefixed = 4, "PREFIXED";
    }
}

wire_enum! {
    /// What a principal does to a resource.
    Operation {
        /// Filters only: every operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Consume, join a group.
        Read = 3, "READ";
        /// Produce.
        Write = 4, "WRITE";
        /// Create topics.
        Create = 5, "CREATE";
        /// Delete topics, records, groups.
        Delete = 6, "DELETE";
        /// Add partitions, change ACLs.
        Alter = 7, "ALTER";
        /// See that a resource exists.
        Describe = 8, "DESCRIBE";
        /// Inter-broker requests.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Read settings.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Change settings.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Produce idempotently.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

wire_enum! {
    /// Whether a binding allows or denies.
    Permission {
        /// Filters only: both.
        Any = 1, "ANY";
        /// Denies (and wins over any allow).
        Deny = 2, "DENY";
        /// Allows.
        Allow = 3, "ALLOW";
    }
}

impl Operation {
    /// Whether an ALLOW binding for `self` also allows `wanted` (Kafka's
    /// implications: Describe by Read, Write, Delete and Alter;
    /// DescribeConfigs by AlterConfigs; everything by All).
    pub fn allow_implies(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || match wanted {
                Operation::Describe => matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self == Operation::AlterConfigs,
                _ => false,
            }
    }

    /// Whether a DENY binding for `self` denies `wanted` (no implications
    /// but All).
    pub fn deny_covers(self, wanted: Operation) -> bool {
        self == wanted || self == Operation::All
    }
}

impl ResourceType {
    /// The operations that apply to resources of this type, as the
    /// `authorized_operations` bitfields of Metadata, DescribeCluster and
    /// DescribeGroups list them (Kafka's `AclEntry.supportedOperations`).
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// One access control entry on one resource pattern (Kafka's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// Topic, Group, Cluster, TransactionalId, ...
    pub resource_type: ResourceType,
    /// The name, prefix, or `*`.
    pub resource_name: String,
    /// Literal or Prefixed.
    pub pattern_type: PatternType,
    /// `User:alice` or `User:*`.
    pub principal: String,
    /// The client address (`127.0.0.1`) or `*`.
    pub host: String,
    /// What is allowed or denied.
    pub operation: Operation,
    /// Allow or Deny.
    pub permission: Permission,
}

impl AclBinding {
    /// Why this binding cannot be stored, in Kafka's words, or `None`.
    pub fn invalid(&self) -> Option<String> {
        if self.resource_type == ResourceType::Any {
            return Some(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Some(format!("Invalid patternType {}", self.pattern_type));
        }
        if self.operation == Operation::Any {
            return Some(format!("Invalid operation {}", self.operation));
        }
        if self.permission == Permission::Any {
            return Some(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_name.is_empty() {
            return Some("Resource name should not be empty".into());
        }
        if Principal::parse(&self.principal).is_none() {
            return Some(format!("Invalid principal {}", self.principal));
        }
        if self.host.is_empty() {
            return Some("Invalid empty host".into());
        }
        None
    }

    /// Whether the binding's pattern covers the resource `name`.
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
            PatternType::Any | PatternType::Match => false,
        }
    }
}

/// Which bindings DescribeAcls and DeleteAcls mean (Kafka's
/// `AclBindingFilter`): `None` fields and the `Any` values match
/// everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// A type or Any.
    pub resource_type: ResourceType,
    /// A name, or every name.
    pub resource_name: Option<String>,
    /// A pattern type, Any, or Match.
    pub pattern_type: PatternType,
    /// A principal, or every principal.
    pub principal: Option<String>,
    /// A host, or every host.
    pub host: Option<String>,
    /// An operation or Any.
    pub operation: Operation,
    /// A permission or Any.
    pub permission: Permission,
}

impl AclFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    /// Whether `binding` is one this filter means.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == Operation::Any || self.operation == binding.operation)
            && (self.permission == Permission::Any || self.permission == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        let pattern_ok = match self.pattern_type {
            PatternType::Any | PatternType::Match => true,
            exact => exact == binding.pattern_type,
        };
        if !pattern_ok {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Match {
            // Every binding that would apply to a resource of this name.
            binding.covers(name)
        } else {
            *name == binding.resource_name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn codes_and_names_are_kafkas() {
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(Operation::IdempotentWrite.code(), 12);
        assert_eq!(Permission::Allow.code(), 3);
        assert_eq!(ResourceType::from_code(0), None);
        assert_eq!(Operation::from_code(15), None);
        assert_eq!(
            ResourceType::from_name("transactional-id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(
            Operation::from_name("IdempotentWrite"),
            Some(Operation::IdempotentWrite)
        );
        assert_eq!(
            Operation::from_name("describe_configs"),
            Some(Operation::DescribeConfigs)
        );
        assert_eq!(PatternType::from_name("nope"), None);
        for op in Operation::ALL_VALUES {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
            assert_eq!(Operation::from_name(op.name()), Some(*op));
        }
    }

    #[test]
    fn implications_are_kafkas() {
        use Operation::*;
        for op in [Read, Write, Delete, Alter, Describe, All] {
            assert!(op.allow_implies(Describe), "{op}");
        }
        for op in [
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
        ] {
            assert!(!op.allow_implies(Describe), "{op}");
        }
        assert!(AlterConfigs.allow_implies(DescribeConfigs));
        assert!(!Alter.allow_implies(DescribeConfigs));
        assert!(!Write.allow_implies(IdempotentWrite));
        assert!(!Read.allow_implies(Write));
        assert!(!Read.deny_covers(Describe));
        assert!(All.deny_covers(Read));
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        assert_eq!(binding("t", PatternType::Literal).invalid(), None);
        assert!(binding("t", PatternType::Match).invalid().is_some());
        assert!(binding("t", PatternType::Any).invalid().is_some());
        assert!(binding("", PatternType::Literal).invalid().is_some());
        let mut b = binding("t", PatternType::Literal);
        b.principal = "alice".into();
        assert!(b.invalid().is_some());
        let mut b = binding("t", PatternType::Literal);
        b.operation = Operation::Any;
        assert!(b.invalid().is_some());
        let mut b = binding("t", PatternType::Literal);
        b.permission = Permission::Any;
        assert!(b.invalid().is_some());
        let mut b = binding("t", PatternType::Literal);
        b.resource_type = ResourceType::Any;
        assert!(b.invalid().is_some());
    }

    #[test]
    fn filters_match_as_kafkas() {
        let lit = binding("orders", PatternType::Literal);
        let star = binding("*", PatternType::Literal);
        let pre = binding("ord", PatternType::Prefixed);
        let mut f = AclFilter::any();
        assert!(f.matches(&lit) && f.matches(&star) && f.matches(&pre));
        // Any with a name: exact names only.
        f.resource_name = Some("orders".into());
        assert!(f.matches(&lit) && !f.matches(&star) && !f.matches(&pre));
        // Match: every binding that applies to the name.
        f.pattern_type = PatternType::Match;
        assert!(f.matches(&lit) && f.matches(&star) && f.matches(&pre));
        f.resource_name = Some("other".into());
        assert!(!f.matches(&lit) && f.matches(&star) && !f.matches(&pre));
        // An exact pattern type.
        let mut f = AclFilter::any();
        f.pattern_type = PatternType::Prefixed;
        assert!(!f.matches(&lit) && f.matches(&pre));
        f.resource_name = Some("ord".into());
        assert!(f.matches(&pre));
        f.resource_name = Some("orders".into());
        assert!(!f.matches(&pre));
        // Entry fields.
        let mut f = AclFilter::any();
        f.principal = Some("User:bob".into());
        assert!(!f.matches(&lit));
        f.principal = Some("User:alice".into());
        f.host = Some("*".into());
        f.operation = Operation::Read;
        f.permission = Permission::Allow;
        assert!(f.matches(&lit));
        f.operation = Operation::All;
        assert!(
            !f.matches(&lit),
            "a filter's All means the All binding only"
        );
        f.operation = Operation::Read;
        f.permission = Permission::Deny;
        assert!(!f.matches(&lit));
        f.permission = Permission::Any;
        f.resource_type = ResourceType::Group;
        assert!(!f.matches(&lit));
    }
}
