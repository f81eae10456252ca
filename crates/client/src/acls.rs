//! Access control lists over Kafka's own APIs: CreateAcls (30),
//! DescribeAcls (29) and DeleteAcls (31), with Kafka's vocabulary (resource
//! types, LITERAL and PREFIXED patterns, operations, Allow and Deny: the
//! broker's own, from `pubsub_records::security`) and its numbers on the
//! wire.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

pub use pubsub_records::security::{Operation, PatternType, Permission, ResourceType};

/// One ACL: `principal` from `host` is `permission`ed `operation` on the
/// resources of `resource_type` that `resource_name` matches as `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (`*` for all; `kafka-cluster` for the cluster).
    pub resource_name: String,
    /// How the name matches.
    pub pattern: PatternType,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// The client host, `*` for any.
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// Allow or Deny.
    pub permission: Permission,
}

/// Which ACLs to list or delete: `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type.
    pub resource_type: Option<ResourceType>,
    /// The resource name.
    pub resource_name: Option<String>,
    /// The pattern type (`None`: any; `Some(Match)`: what applies to the name).
    pub pattern: Option<PatternType>,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: Option<Operation>,
    /// The permission.
    pub permission: Option<Permission>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn decoded<T>(value: Option<T>, what: &str, code: i8) -> Result<T> {
    value.ok_or_else(|| ClientError::Protocol(format!("the broker sent {what} number {code}")))
}

/// Creates `acls`; the first refusal is the error.
pub async fn create_acls(conn: &mut Connection, acls: &[Acl]) -> Result<()> {
    let v = conn.versions().pick::<CreateAclsRequest>(1..=3)?;
    let req = CreateAclsRequest::default().with_creations(
        acls.iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.resource_type.code())
                    .with_resource_name(sb(&a.resource_name))
                    .with_resource_pattern_type(a.pattern.code())
                    .with_principal(sb(&a.principal))
                    .with_host(sb(&a.host))
                    .with_operation(a.operation.code())
                    .with_permission_type(a.permission.code())
            })
            .collect(),
    );
    let resp = conn.call(v, &req).await?;
    if resp.results.len() != acls.len() {
        return Err(ClientError::Protocol(format!(
            "{} ACLs were sent, {} answered",
            acls.len(),
            resp.results.len()
        )));
    }
    for r in &resp.results {
        check(
            r.error_code,
            || "creating ACLs".into(),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// The ACLs `filter` matches.
pub async fn describe_acls(conn: &mut Connection, filter: &AclFilter) -> Result<Vec<Acl>> {
    let v = conn.versions().pick::<DescribeAclsRequest>(1..=3)?;
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(filter.resource_type.unwrap_or(ResourceType::Any).code())
        .with_resource_name_filter(filter.resource_name.as_deref().map(sb))
        .with_pattern_type_filter(filter.pattern.unwrap_or(PatternType::Any).code())
        .with_principal_filter(filter.principal.as_deref().map(sb))
        .with_host_filter(filter.host.as_deref().map(sb))
        .with_operation(filter.operation.unwrap_or(Operation::Any).code())
        .with_permission_type(filter.permission.unwrap_or(Permission::Any).code());
    let resp = conn.call(v, &req).await?;
    check(
        resp.error_code,
        || "listing ACLs".into(),
        resp.error_message.as_deref(),
    )?;
    let mut acls = Vec::new();
    for r in &resp.resources {
        let resource_type = decoded(
            ResourceType::from_code(r.resource_type),
            "resource type",
            r.resource_type,
        )?;
        let pattern = decoded(
            PatternType::from_code(r.pattern_type),
            "pattern type",
            r.pattern_type,
        )?;
        for a in &r.acls {
            acls.push(Acl {
                resource_type,
                resource_name: r.resource_name.to_string(),
                pattern,
                principal: a.principal.to_string(),
                host: a.host.to_string(),
                operation: decoded(Operation::from_code(a.operation), "operation", a.operation)?,
                permission: decoded(
                    Permission::from_code(a.permission_type),
                    "permission",
                    a.permission_type,
                )?,
            });
        }
    }
    acls.sort();
    Ok(acls)
}

/// Deletes the ACLs `filter` matches; returns them.
pub async fn delete_acls(conn: &mut Connection, filter: &AclFilter) -> Result<Vec<Acl>> {
    let v = conn.versions().pick::<DeleteAclsRequest>(1..=3)?;
    let req = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(filter.resource_type.unwrap_or(ResourceType::Any).code())
        .with_resource_name_filter(filter.resource_name.as_deref().map(sb))
        .with_pattern_type_filter(filter.pattern.unwrap_or(PatternType::Any).code())
        .with_principal_filter(filter.principal.as_deref().map(sb))
        .with_host_filter(filter.host.as_deref().map(sb))
        .with_operation(filter.operation.unwrap_or(Operation::Any).code())
        .with_permission_type(filter.permission.unwrap_or(Permission::Any).code())]);
    let resp = conn.call(v, &req).await?;
    let r = resp
        .filter_results
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Protocol("DeleteAcls answered no filter".into()))?;
    check(
        r.error_code,
        || "deleting ACLs".into(),
        r.error_message.as_deref(),
    )?;
    let mut deleted = Vec::new();
    for m in &r.matching_acls {
        check(
            m.error_code,
            || "deleting an ACL".into(),
            m.error_message.as_deref(),
        )?;
        deleted.push(Acl {
            resource_type: decoded(
                ResourceType::from_code(m.resource_type),
                "resource type",
                m.resource_type,
            )?,
            resource_name: m.resource_name.to_string(),
            pattern: decoded(
                PatternType::from_code(m.pattern_type),
                "pattern type",
                m.pattern_type,
            )?,
            principal: m.principal.to_string(),
            host: m.host.to_string(),
            operation: decoded(Operation::from_code(m.operation), "operation", m.operation)?,
            permission: decoded(
                Permission::from_code(m.permission_type),
                "permission",
                m.permission_type,
            )?,
        });
    }
    deleted.sort();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_kafka_acls_spells_them() {
        assert_eq!("read".parse::<Operation>(), Ok(Operation::Read));
        assert_eq!(
            "describe-configs".parse::<Operation>(),
            Ok(Operation::DescribeConfigs)
        );
        assert_eq!(
            "IDEMPOTENT_WRITE".parse::<Operation>(),
            Ok(Operation::IdempotentWrite)
        );
        assert_eq!("prefixed".parse::<PatternType>(), Ok(PatternType::Prefixed));
        assert_eq!(
            "transactional-id".parse::<ResourceType>(),
            Ok(ResourceType::TransactionalId)
        );
        let err = "reed".parse::<Operation>().expect_err("no such operation");
        assert!(
            err.contains("READ") && err.contains("IDEMPOTENT_WRITE"),
            "{err}"
        );
    }

    #[test]
    fn wire_numbers_are_kafkas() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::Cluster.code(), 4);
        assert_eq!(PatternType::Literal.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(Operation::Write.code(), 4);
        assert_eq!(Operation::IdempotentWrite.code(), 12);
        assert_eq!(Permission::Allow.code(), 3);
        assert_eq!(Permission::Deny.code(), 2);
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
        }
        assert_eq!(Operation::from_code(0), None);
    }
}
