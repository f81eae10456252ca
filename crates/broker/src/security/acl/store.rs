//! The broker's ACLs on disk: every binding in `<data>/acls.checkpoint`, a
//! checksummed checkpoint container replaced atomically (kind 22, JSON
//! payload, docs/FORMAT.md), read at open. A change is written and synced
//! before it is applied or acknowledged; readers take a snapshot of the
//! index and never wait for a writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::{AclBinding, AclFilter, AclIndex};
use crate::error::Result;
use crate::metadata;

/// `<data>/acls.checkpoint`.
pub const ACLS_FILE: &str = "acls.checkpoint";
/// The checkpoint kind of [`ACLS_FILE`].
pub(crate) const KIND_ACLS: u16 = pubsub_storage::checkpoint::FIRST_USER_KIND + 6;

#[derive(Debug, Serialize, Deserialize)]
struct AclsFile {
    acls: Vec<AclBinding>,
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
        let file: Option<AclsFile> = metadata::read(&path, KIND_ACLS)?;
        let index = AclIndex::new(file.map(|f| f.acls).unwrap_or_default());
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
            acls: next.bindings().cloned().collect(),
        };
        metadata::write(&self.path, KIND_ACLS, &file)?;
        *self.current.write() = Arc::new(next);
        Ok(())
    }
}

/// Why [`AclStore::open`] would refuse the ACL file of `dir`, if it would
/// (`pubsub log check`).
pub(crate) fn file_problem(dir: &Path) -> Option<String> {
    metadata::read::<AclsFile>(&dir.join(ACLS_FILE), KIND_ACLS)
        .err()
        .map(|e| e.to_string())
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
}
