//! Races around a partition's first-use open, held open by the tests: a
//! seam (test builds only) where a first use has found its partition
//! unopened and is about to take the open lock, and the tests that stop a
//! caller there while a topic deletion runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// What a test runs at the seam, for the broker on one data directory.
type Hook = Arc<dyn Fn() + Send + Sync>;

static BEFORE_OPEN: Mutex<Vec<(PathBuf, Hook)>> = parking_lot::const_mutex(Vec::new());

/// Runs the hook set for the broker on `dir`, if any: a first use found a
/// partition unopened and has not taken its open lock yet.
pub(super) fn before_open(dir: &Path) {
    let hook = BEFORE_OPEN
        .lock()
        .iter()
        .find(|(d, _)| d == dir)
        .map(|(_, h)| Arc::clone(h));
    if let Some(hook) = hook {
        hook();
    }
}

/// The hook of the broker on a directory, set until dropped.
struct HeldBeforeOpen(PathBuf);

impl Drop for HeldBeforeOpen {
    fn drop(&mut self) {
        BEFORE_OPEN.lock().retain(|(d, _)| d != &self.0);
    }
}

/// Sets the hook of the broker on `dir` until the guard drops.
fn hold_before_open(dir: &Path, hook: Hook) -> HeldBeforeOpen {
    BEFORE_OPEN.lock().push((dir.to_path_buf(), hook));
    HeldBeforeOpen(dir.to_path_buf())
}

mod tests {
    use std::collections::BTreeMap;
    use std::sync::mpsc;

    use super::*;
    use crate::{Broker, BrokerConfig, BrokerError};

    /// Every entry of the data directory whose name starts with `prefix`.
    fn left(dir: &Path, prefix: &str) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    /// A partition left closed by a clean close is found by a first use;
    /// its topic is deleted before that use takes the open lock. The open
    /// must not bring the partition's directory back, nor hand out the
    /// partition.
    #[test]
    fn a_deletion_racing_a_first_use_open_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig {
            background: false,
            ..BrokerConfig::default()
        };
        let broker = Broker::open(dir.path(), config.clone()).expect("open");
        broker
            .create_topic("doomed", Some(2), BTreeMap::new())
            .expect("create");
        broker.close().expect("close");
        drop(broker);
        let broker = Broker::open(dir.path(), config).expect("reopen");
        assert!(broker.partitions().iter().all(|p| p.topic() != "doomed"));

        let (reached, at_seam) = mpsc::channel::<()>();
        let (release, go) = mpsc::channel::<()>();
        let go = Mutex::new(go);
        let reached = Mutex::new(reached);
        let _hook = hold_before_open(
            dir.path(),
            Arc::new(move || {
                let _ = reached.lock().send(());
                let _ = go.lock().recv();
            }),
        );
        let user = {
            let broker = broker.clone();
            std::thread::spawn(move || broker.partition("doomed", 1).map(|p| p.index()))
        };
        at_seam.recv().expect("the first use reached the seam");
        broker.delete_topic("doomed").expect("delete");
        assert!(left(dir.path(), "doomed").is_empty(), "deleted");
        release.send(()).expect("release");
        let opened = user.join().expect("user thread");
        assert!(
            matches!(opened, Err(BrokerError::UnknownTopicOrPartition { .. })),
            "a deleted partition is not served: {opened:?}"
        );
        assert!(
            left(dir.path(), "doomed").is_empty(),
            "nothing brought back: {:?}",
            left(dir.path(), "doomed")
        );
        broker.close().expect("close");
    }
}
