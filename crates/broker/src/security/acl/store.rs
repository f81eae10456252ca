//! The broker's ACLs on disk: every binding in `<data>/acls.checkpoint`, a
//! checksummed checkpoint container replaced atomically (kind 22, JSON
//! payload, docs/FORMAT.md 9.7), read at open. The vocabulary is written
//! as CamelCase names (`TransactionalId`, `Read`) and read from those,
//! Kafka's names (`TRANSACTIONAL_ID`) or wire codes, so every file an
//! earlier pubsub wrote still loads. A change is written and synced
//! before it is applied or acknowledged; readers take a snapshot of the
//! index and never wait for a writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::{AclBinding, AclFilter, AclIndex, Operation, PatternType, Permission, ResourceType};
use crate::error::{BrokerError, Result};
use crate::metadata;

/// `<data>/acls.checkpoint`.
pub const ACLS_FILE: &str = "acls.checkpoint";
/// The checkpoint kind of [`ACLS_FILE`].
pub(crate) const KIND_ACLS: u16 = pubsub_storage::checkpoint::FIRST_USER_KIND + 6;

#[derive(Debug, Serialize, Deserialize)]
struct AclsFile {
    acls: Vec<StoredBinding>,
}

/// An [`AclBinding`] as the file holds it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredBinding {
    resource_type: Word,
    resource_name: String,
    pattern_type: Word,
    principal: String,
    host: String,
    operation: Word,
    permission: Word,
}

/// A vocabulary value in the file: a name (any spelling
/// `from_name` takes) or a wire code.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Word {
    Name(String),
    Code(i8),
}

impl Word {
    fn decode<T>(
        &self,
        field: &str,
        from_name: fn(&str) -> Option<T>,
        from_code: fn(i8) -> Option<T>,
    ) -> std::result::Result<T, String> {
        match self {
            Word::Name(n) => from_name(n).ok_or_else(|| format!("unknown {field} {n:?}")),
            Word::Code(c) => from_code(*c).ok_or_else(|| format!("unknown {field} code {c}")),
        }
    }
}

impl StoredBinding {
    fn of(b: &AclBinding) -> StoredBinding {
        StoredBinding {
            resource_type: Word::Name(b.resource_type.camel_name().into()),
            resource_name: b.resource_name.clone(),
            pattern_type: Word::Name(b.pattern_type.camel_name().into()),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: Word::Name(b.operation.camel_name().into()),
            permission: Word::Name(b.permission.camel_name().into()),
        }
    }

    fn binding(self) -> std::result::Result<AclBinding, String> {
        Ok(AclBinding {
            resource_type: self.resource_type.decode(
                "resource_type",
                ResourceType::from_name,
                ResourceType::from_code,
            )?,
            resource_name: self.resource_name,
            pattern_type: self.pattern_type.decode(
                "pattern_type",
                PatternType::from_name,
                PatternType::from_code,
            )?,
            principal: self.principal,
            host: self.host,
            operation: self.operation.decode(
                "operation",
                Operation::from_name,
                Operation::from_code,
            )?,
            permission: self.permission.decode(
                "permission",
                Permission::from_name,
                Permission::from_code,
            )?,
        })
    }
}

/// The bindings of the file at `path` (none if it is absent).
fn load(path: &Path) -> Result<Vec<AclBinding>> {
    let file: Option<AclsFile> = metadata::read(path, KIND_ACLS)?;
    file.map(|f| f.acls)
        .unwrap_or_default()
        .into_iter()
        .map(|b| {
            b.binding().map_err(|reason| BrokerError::CorruptMetadata {
                path: path.to_path_buf(),
                reason,
            })
        })
        .collect()
}

/// The durable set of bindings.
#[derive(Debug)]
pub struct AclStore {
    path: PathBuf,
    current: RwLock<Arc<AclIndex>>,
    /// Serialises changes (read, write the file, swap).
    writer: Mutex<()>,
}

impl AclStore {
    /// Loads the bindings of the data directory `dir` (none if the file is
    /// absent; an error if it is damaged).
    pub fn open(dir: &Path) -> Result<AclStore> {
        let path = dir.join(ACLS_FILE);
        let index = AclIndex::new(load(&path)?);
        Ok(AclStore {
            path,
            current: RwLock::new(Arc::new(index)),
            writer: Mutex::new(()),
        })
    }

    /// The bindings now (a cheap shared snapshot).
    pub fn snapshot(&self) -> Arc<AclIndex> {
        Arc::clone(&self.current.read())
    }

    /// Adds `bindings` (valid ones: see [`AclBinding::invalid`]); those
    /// present already are kept once. Durable when it returns `Ok`.
    pub fn create(&self, bindings: &[AclBinding]) -> Result<()> {
        let _w = self.writer.lock();
        let mut next = (*self.snapshot()).clone();
        let mut changed = false;
        for b in bindings {
            changed |= next.insert(b.clone());
        }
        if changed {
            self.replace(next)?;
        }
        Ok(())
    }

    /// Removes every binding one of `filters` matches; answers, per filter,
    /// the bindings it matched. Durable when it returns `Ok`.
    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>> {
        let _w = self.writer.lock();
        let now = self.snapshot();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| now.bindings().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        if matched.iter().any(|m| !m.is_empty()) {
            let next = AclIndex::new(
                now.bindings()
                    .filter(|b| !filters.iter().any(|f| f.matches(b)))
                    .cloned(),
            );
            self.replace(next)?;
        }
        Ok(matched)
    }

    /// The bindings `filter` matches.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.snapshot()
            .bindings()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    fn replace(&self, next: AclIndex) -> Result<()> {
        let file = AclsFile {
            acls: next.bindings().map(StoredBinding::of).collect(),
        };
        metadata::write(&self.path, KIND_ACLS, &file)?;
        *self.current.write() = Arc::new(next);
        Ok(())
    }
}

/// Why [`AclStore::open`] would refuse the ACL file of `dir`, if it would
/// (`pubsub log check`).
pub(crate) fn file_problem(dir: &Path) -> Option<String> {
    load(&dir.join(ACLS_FILE)).err().map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::{Operation, PatternType, Permission, ResourceType};
    use super::*;

    fn binding(name: &str, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn bindings_survive_reopen_and_deletes_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AclStore::open(dir.path()).expect("open");
        assert!(store.snapshot().is_empty());
        let a = binding("t", "User:alice");
        let b = binding("u", "User:bob");
        store
            .create(&[a.clone(), b.clone(), a.clone()])
            .expect("create");
        assert_eq!(store.snapshot().len(), 2);
        let reopened = AclStore::open(dir.path()).expect("reopen");
        assert_eq!(
            reopened.describe(&AclFilter::any()),
            vec![a.clone(), b.clone()]
        );
        let mut alice = AclFilter::any();
        alice.principal = Some("User:alice".into());
        let mut none = AclFilter::any();
        none.principal = Some("User:carol".into());
        let matched = reopened.delete(&[alice.clone(), none]).expect("delete");
        assert_eq!(matched, vec![vec![a], vec![]]);
        let again = AclStore::open(dir.path()).expect("reopen");
        assert_eq!(again.describe(&AclFilter::any()), vec![b]);
        assert_eq!(again.delete(&[alice]).expect("delete"), vec![vec![]]);
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AclStore::open(dir.path()).expect("open");
        store.create(&[binding("t", "User:alice")]).expect("create");
        let path = dir.path().join(ACLS_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, bytes).expect("write");
        assert!(AclStore::open(dir.path()).is_err());
        let why = crate::check::broker_file_problem(dir.path()).expect("a problem");
        assert!(why.contains(ACLS_FILE), "{why}");
    }

    /// The ACL file an earlier pubsub wrote (data/fixtures/broker/README.md)
    /// loads with every binding, and a file rewritten now reads the same.
    #[test]
    fn a_file_written_by_pubsub_0_1_loads() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/fixtures/broker/acls-0.1/acls.checkpoint");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(&fixture, dir.path().join(ACLS_FILE)).expect("copy fixture");
        let store = AclStore::open(dir.path()).expect("open the old file");
        let all = store.describe(&AclFilter::any());
        assert_eq!(all.len(), 13);
        let has =
            |rt: ResourceType, name: &str, pt: PatternType, who: &str, op: Operation, perm| {
                all.iter().any(|b| {
                    b.resource_type == rt
                        && b.resource_name == name
                        && b.pattern_type == pt
                        && b.principal == who
                        && b.operation == op
                        && b.permission == perm
                })
            };
        use Operation::*;
        use Permission::*;
        assert!(has(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:alice",
            Describe,
            Allow
        ));
        assert!(has(
            ResourceType::Topic,
            "*",
            PatternType::Literal,
            "User:mallory",
            All,
            Deny
        ));
        assert!(has(
            ResourceType::Topic,
            "logs-",
            PatternType::Prefixed,
            "User:etl",
            Write,
            Allow
        ));
        assert!(has(
            ResourceType::Group,
            "billing",
            PatternType::Literal,
            "User:alice",
            Delete,
            Allow
        ));
        assert!(has(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:ops",
            IdempotentWrite,
            Allow
        ));
        assert!(has(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:ops",
            ClusterAction,
            Allow
        ));
        assert!(has(
            ResourceType::TransactionalId,
            "tx-",
            PatternType::Prefixed,
            "User:txn",
            Alter,
            Allow
        ));
        assert!(all.iter().any(|b| b.host == "10.0.0.66"));
        // Rewritten by this version (a delete), the rest reads back alike.
        let mut mallory = AclFilter::any();
        mallory.principal = Some("User:mallory".into());
        store.delete(&[mallory]).expect("delete");
        let again = AclStore::open(dir.path()).expect("reopen");
        assert_eq!(again.describe(&AclFilter::any()).len(), 12);
        let text =
            String::from_utf8_lossy(&std::fs::read(dir.path().join(ACLS_FILE)).expect("read"))
                .into_owned();
        assert!(
            text.contains(r#""resource_type":"TransactionalId""#),
            "{text}"
        );
        assert!(text.contains(r#""operation":"IdempotentWrite""#), "{text}");
    }

    /// Kafka's names and wire codes load as well; a value no version knows
    /// refuses the file, as damage does.
    #[test]
    fn names_and_codes_load_and_unknown_values_refuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ACLS_FILE);
        let file = serde_json::json!({"acls": [
            {"resource_type": "TRANSACTIONAL_ID", "resource_name": "tx", "pattern_type": "LITERAL",
             "principal": "User:a", "host": "*", "operation": "TWO_PHASE_COMMIT", "permission": "ALLOW"},
            {"resource_type": 2, "resource_name": "t", "pattern_type": 4,
             "principal": "User:b", "host": "*", "operation": 12, "permission": 2},
        ]});
        metadata::write(&path, KIND_ACLS, &file).expect("write");
        let got = AclStore::open(dir.path())
            .expect("open")
            .describe(&AclFilter::any());
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .any(|b| b.resource_type == ResourceType::TransactionalId
                && b.operation == Operation::TwoPhaseCommit));
        assert!(got.iter().any(|b| b.resource_type == ResourceType::Topic
            && b.pattern_type == PatternType::Prefixed
            && b.operation == Operation::IdempotentWrite
            && b.permission == Permission::Deny));
        let unknown = serde_json::json!({"acls": [
            {"resource_type": "Topic", "resource_name": "t", "pattern_type": "Literal",
             "principal": "User:a", "host": "*", "operation": 99, "permission": "Allow"},
        ]});
        metadata::write(&path, KIND_ACLS, &unknown).expect("write");
        let err = AclStore::open(dir.path()).expect_err("an unknown operation");
        assert!(
            err.to_string().contains("unknown operation code 99"),
            "{err}"
        );
        let why = crate::check::broker_file_problem(dir.path()).expect("a problem");
        assert!(why.contains("unknown operation"), "{why}");
    }
}
