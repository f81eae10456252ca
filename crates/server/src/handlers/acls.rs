//! What the three ACL APIs share: wire codes to bindings and filters (an
//! unknown code is Kafka's UNKNOWN, which makes the request invalid), and
//! bindings back to the wire.

use kafka_protocol::protocol::StrBytes;
use pubsub_broker::security::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};

/// Kafka's message when the authorizer is off.
pub(crate) const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// The wire fields of a binding or a filter.
pub(crate) struct Wire<'a> {
    pub resource_type: i8,
    pub resource_name: Option<&'a StrBytes>,
    pub pattern_type: i8,
    pub principal: Option<&'a StrBytes>,
    pub host: Option<&'a StrBytes>,
    pub operation: i8,
    pub permission: i8,
}

fn known<T>(value: Option<T>, what: &str, code: i8) -> Result<T, String> {
    value.ok_or_else(|| format!("Invalid {what} code {code} (UNKNOWN)"))
}

impl Wire<'_> {
    /// The filter these fields describe (DescribeAcls, DeleteAcls).
    pub(crate) fn filter(&self) -> Result<AclFilter, String> {
        Ok(AclFilter {
            resource_type: known(
                ResourceType::from_code(self.resource_type),
                "resourceType",
                self.resource_type,
            )?,
            resource_name: self.resource_name.map(|s| s.to_string()),
            pattern_type: known(
                PatternType::from_code(self.pattern_type),
                "patternType",
                self.pattern_type,
            )?,
            principal: self.principal.map(|s| s.to_string()),
            host: self.host.map(|s| s.to_string()),
            operation: known(
                Operation::from_code(self.operation),
                "operation",
                self.operation,
            )?,
            permission: known(
                Permission::from_code(self.permission),
                "permissionType",
                self.permission,
            )?,
        })
    }

    /// The binding these fields describe (CreateAcls), validated as Kafka
    /// validates a new ACL.
    pub(crate) fn binding(&self) -> Result<AclBinding, String> {
        let f = self.filter()?;
        let binding = AclBinding {
            resource_type: f.resource_type,
            resource_name: f.resource_name.unwrap_or_default(),
            pattern_type: f.pattern_type,
            principal: f.principal.unwrap_or_default(),
            host: f.host.unwrap_or_default(),
            operation: f.operation,
            permission: f.permission,
        };
        match binding.invalid() {
            Some(why) => Err(why),
            None => Ok(binding),
        }
    }
}
