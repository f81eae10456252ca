//! Access control lists with Kafka's model: a binding says that a
//! principal from a host is allowed (or denied) an operation on the
//! resources a pattern names. [`decision`] holds the pure decision function
//! every protocol handler consults; [`store`] keeps the bindings durable
//! with the broker's metadata (`acls.checkpoint`, docs/FORMAT.md).
//!
//! The vocabulary (resource types, pattern types, operations, permissions
//! with Kafka's wire codes and names) is `pubsub_records::security`'s, the
//! one the client shares, re-exported here.

pub mod decision;
pub mod store;

use crate::security::Principal;

pub use decision::{
    authorize, authorize_any, authorized_operations, AclIndex, AuthorizerConfig, Decision,
};
pub use pubsub_records::security::{Operation, PatternType, Permission, ResourceType};
pub use store::AclStore;

/// The one cluster resource's name (Kafka's `kafka-cluster`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name (or host) that matches every name.
pub const WILDCARD: &str = "*";
/// The principal that matches every `User:` principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// One access control entry on one resource pattern (Kafka's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
