//! `pubsub acl create|list|delete`: access control lists of a running
//! broker, over Kafka's CreateAcls, DescribeAcls and DeleteAcls, with the
//! flags of Kafka's `kafka-acls.sh` (simplified: the action is the
//! subcommand).

use clap::{Args, Subcommand};
use pubsub_client::acls::{self, Acl, AclFilter, Operation, PatternType, Permission, ResourceType};

use crate::error::CliError;
use crate::remote::{block_on, write_out, ConnArgs};
use crate::table::Table;

/// The one resource name of the cluster resource.
const CLUSTER_NAME: &str = "kafka-cluster";

/// ACL commands.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Allow or deny principals operations on resources: one ACL per
    /// principal, host, operation and resource given.
    #[command(
        after_help = "Examples:\n  pubsub acl create --allow-principal User:alice --operation read --operation describe --topic orders\n  pubsub acl create --allow-principal User:alice --operation read --group billing\n  pubsub acl create --allow-principal User:etl --operation write --topic logs- --resource-pattern-type prefixed\n  pubsub acl create --deny-principal User:mallory --deny-host 10.0.0.66 --operation all --topic '*'\n  pubsub acl create --allow-principal User:ops --operation create --cluster\n\nOperations (any case, - or _): ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,\nCLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, TWO_PHASE_COMMIT.\nDeny wins over Allow. `acl list` prints Kafka's names, as kafka-acls.sh does."
    )]
    Create {
        #[command(flatten)]
        who: Principals,
        /// Operation, repeatable (read, write, describe, ...)
        #[arg(long, required = true, value_name = "OPERATION")]
        operation: Vec<Operation>,
        #[command(flatten)]
        resources: Resources,
        /// literal (the name exactly; `*` is every name) or prefixed
        #[arg(long, default_value = "literal", value_name = "TYPE")]
        resource_pattern_type: PatternType,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List ACLs: all, or those about the resources, principal or
    /// operation given.
    #[command(
        after_help = "Examples:\n  pubsub acl list\n  pubsub acl list --topic orders\n  pubsub acl list --topic orders --resource-pattern-type match    # what applies to orders\n  pubsub acl list --principal User:alice --json"
    )]
    List {
        #[command(flatten)]
        resources: Resources,
        /// Only ACLs of this principal (e.g. User:alice)
        #[arg(long, value_name = "PRINCIPAL")]
        principal: Option<String>,
        /// Only ACLs of this operation
        #[arg(long, value_name = "OPERATION")]
        operation: Option<Operation>,
        /// any, match (every pattern that applies to the name), literal or
        /// prefixed
        #[arg(long, default_value = "any", value_name = "TYPE")]
        resource_pattern_type: PatternType,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete the ACLs of the resources given (all of them, or those of the
    /// principals and operations given); prints what was deleted.
    #[command(
        after_help = "Examples:\n  pubsub acl delete --topic orders\n  pubsub acl delete --allow-principal User:alice --operation read --topic orders\n  pubsub acl delete --topic logs- --resource-pattern-type prefixed"
    )]
    Delete {
        #[command(flatten)]
        who: Principals,
        /// Only ACLs of this operation, repeatable
        #[arg(long, value_name = "OPERATION")]
        operation: Vec<Operation>,
        #[command(flatten)]
        resources: Resources,
        /// literal, prefixed, or any
        #[arg(long, default_value = "literal", value_name = "TYPE")]
        resource_pattern_type: PatternType,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Who an ACL is about.
#[derive(Debug, Args)]
pub struct Principals {
    /// Principal to allow (e.g. User:alice, User:*), repeatable
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// Principal to deny, repeatable
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// Host the allowed principals connect from, repeatable [default: *]
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// Host the denied principals connect from, repeatable [default: *]
    #[arg(long, value_name = "HOST")]
    deny_host: Vec<String>,
}

/// What an ACL is about.
#[derive(Debug, Args)]
pub struct Resources {
    /// Topic (`*`: all topics), repeatable
    #[arg(long, value_name = "TOPIC")]
    topic: Vec<String>,
    /// Consumer group (`*`: all groups), repeatable
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// Transactional id, repeatable
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// The cluster
    #[arg(long)]
    cluster: bool,
}

impl Resources {
    fn list(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.into()));
        }
        out
    }
}

impl Principals {
    /// (permission, principal, host) of every ACL these flags make.
    fn grants(&self) -> Vec<(Permission, String, String)> {
        let hosts = |given: &[String]| {
            if given.is_empty() {
                vec!["*".to_string()]
            } else {
                given.to_vec()
            }
        };
        let mut out = Vec::new();
        for (permission, principals, hosts) in [
            (
                Permission::Allow,
                &self.allow_principal,
                hosts(&self.allow_host),
            ),
            (
                Permission::Deny,
                &self.deny_principal,
                hosts(&self.deny_host),
            ),
        ] {
            for p in principals {
                for h in &hosts {
                    out.push((permission, p.clone(), h.clone()));
                }
            }
        }
        out
    }
}

fn check_principal(p: &str) -> Result<(), CliError> {
    match p.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(CliError::Usage(format!(
            "{p:?} is not a principal: write TYPE:NAME, e.g. User:alice or User:*"
        ))),
    }
}

fn render(acls: &[Acl], json: bool) -> String {
    if json {
        let list: Vec<serde_json::Value> = acls
            .iter()
            .map(|a| {
                serde_json::json!({
                    "resource_type": a.resource_type.name(),
                    "resource_name": a.resource_name,
                    "pattern_type": a.pattern.name(),
                    "principal": a.principal,
                    "host": a.host,
                    "operation": a.operation.name(),
                    "permission": a.permission.name(),
                })
            })
            .collect();
        return format!("{:#}\n", serde_json::Value::Array(list));
    }
    let mut table = Table::new(&[
        "RESOURCE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]);
    for a in acls {
        table.row(vec![
            a.resource_type.name().into(),
            a.resource_name.clone(),
            a.pattern.name().into(),
            a.principal.clone(),
            a.host.clone(),
            a.operation.name().into(),
            a.permission.name().into(),
        ]);
    }
    table.render()
}

/// Runs an ACL command.
pub fn run(cmd: AclCommand) -> Result<(), CliError> {
    block_on(async move {
        match cmd {
            AclCommand::Create {
                who,
                operation,
                resources,
                resource_pattern_type,
                conn,
            } => {
                if !matches!(
                    resource_pattern_type,
                    PatternType::Literal | PatternType::Prefixed
                ) {
                    return Err(CliError::Usage(
                        "an ACL's --resource-pattern-type is literal or prefixed".into(),
                    ));
                }
                let grants = who.grants();
                if grants.is_empty() {
                    return Err(CliError::Usage(
                        "give --allow-principal or --deny-principal".into(),
                    ));
                }
                let resources = resources.list();
                if resources.is_empty() {
                    return Err(CliError::Usage(
                        "give a resource: --topic, --group, --transactional-id or --cluster".into(),
                    ));
                }
                if operation.contains(&Operation::Any) {
                    return Err(CliError::Usage(
                        "Any is a filter, not an operation (All covers every operation)".into(),
                    ));
                }
                let mut acls = Vec::new();
                for (permission, principal, host) in &grants {
                    check_principal(principal)?;
                    for op in &operation {
                        for (resource_type, name) in &resources {
                            acls.push(Acl {
                                resource_type: *resource_type,
                                resource_name: name.clone(),
                                pattern: resource_pattern_type,
                                principal: principal.clone(),
                                host: host.clone(),
                                operation: *op,
                                permission: *permission,
                            });
                        }
                    }
                }
                let mut cluster = conn.connect().await?;
                acls::create_acls(cluster.bootstrap()?, &acls).await?;
                eprintln!("created {} ACLs", acls.len());
                Ok(())
            }
            AclCommand::List {
                resources,
                principal,
                operation,
                resource_pattern_type,
                json,
                conn,
            } => {
                let base = AclFilter {
                    pattern: Some(resource_pattern_type),
                    principal,
                    operation,
                    ..AclFilter::default()
                };
                let resources = resources.list();
                let filters: Vec<AclFilter> = if resources.is_empty() {
                    vec![base]
                } else {
                    resources
                        .into_iter()
                        .map(|(t, n)| AclFilter {
                            resource_type: Some(t),
                            resource_name: Some(n),
                            ..base.clone()
                        })
                        .collect()
                };
                let mut cluster = conn.connect().await?;
                let mut found = Vec::new();
                for f in &filters {
                    found.extend(acls::describe_acls(cluster.bootstrap()?, f).await?);
                }
                found.sort();
                found.dedup();
                write_out(render(&found, json).as_bytes()).map(drop)
            }
            AclCommand::Delete {
                who,
                operation,
                resources,
                resource_pattern_type,
                conn,
            } => {
                let resources = resources.list();
                if resources.is_empty() {
                    return Err(CliError::Usage(
                        "give a resource: --topic, --group, --transactional-id or --cluster".into(),
                    ));
                }
                let grants: Vec<(Option<Permission>, Option<String>, Option<String>)> = {
                    let g = who.grants();
                    if g.is_empty() {
                        vec![(None, None, None)]
                    } else {
                        // A host given narrows; the default `*` matches any.
                        let any_host = who.allow_host.is_empty() && who.deny_host.is_empty();
                        g.into_iter()
                            .map(|(perm, p, h)| (Some(perm), Some(p), (!any_host).then_some(h)))
                            .collect()
                    }
                };
                let operations: Vec<Option<Operation>> = if operation.is_empty() {
                    vec![None]
                } else {
                    operation.into_iter().map(Some).collect()
                };
                let mut cluster = conn.connect().await?;
                let mut deleted = Vec::new();
                for (resource_type, name) in &resources {
                    for (permission, principal, host) in &grants {
                        for op in &operations {
                            let filter = AclFilter {
                                resource_type: Some(*resource_type),
                                resource_name: Some(name.clone()),
                                pattern: Some(resource_pattern_type),
                                principal: principal.clone(),
                                host: host.clone(),
                                operation: *op,
                                permission: *permission,
                            };
                            deleted.extend(acls::delete_acls(cluster.bootstrap()?, &filter).await?);
                        }
                    }
                }
                deleted.sort();
                eprintln!("deleted {} ACLs", deleted.len());
                write_out(render(&deleted, false).as_bytes()).map(drop)
            }
        }
    })
}
