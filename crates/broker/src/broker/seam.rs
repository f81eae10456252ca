//! Races held open by the tests, at seams (test builds only):
//! [`Seam::BeforeOpen`], where a first use has found its partition
//! unopened and is about to take the open lock, and
//! [`Seam::RecoveryHolds`], where the background recovery pass holds the
//! open lock of a partition it has recovered but not yet made durable;
//! and the tests that stop a caller there while a topic deletion runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A point where a test can stop the broker on one data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seam {
    /// A first use found a partition unopened and has not taken its open
    /// lock yet.
    BeforeOpen,
    /// The recovery pass has opened a partition of its chunk and holds its
    /// open lock until the chunk is durable.
    RecoveryHolds,
}

/// What a test runs at a seam.
type Hook = Arc<dyn Fn() + Send + Sync>;

static HOOKS: Mutex<Vec<(Seam, PathBuf, Hook)>> = parking_lot::const_mutex(Vec::new());

/// Runs the hook set at `seam` for the broker on `dir`, if any.
pub(super) fn reached(seam: Seam, dir: &Path) {
    let hook = HOOKS
        .lock()
        .iter()
        .find(|(s, d, _)| *s == seam && d == dir)
        .map(|(_, _, h)| Arc::clone(h));
    if let Some(hook) = hook {
        hook();
    }
}

/// A hook of the broker on a directory, set until dropped.
struct Held(Seam, PathBuf);

impl Drop for Held {
    fn drop(&mut self) {
        HOOKS
            .lock()
            .retain(|(s, d, _)| !(*s == self.0 && d == &self.1));
    }
}

/// Sets `hook` at `seam` for the broker on `dir` until the guard drops.
fn hold(seam: Seam, dir: &Path, hook: Hook) -> Held {
    HOOKS.lock().push((seam, dir.to_path_buf(), hook));
    Held(seam, dir.to_path_buf())
}

mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

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
        let _hook = hold(
            Seam::BeforeOpen,
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

    /// A bound on a wait that only a deadlock reaches (not a timing).
    const HANG: Duration = Duration::from_secs(120);

    /// Copies the directory tree at `from` into `to`.
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create dir");
        for e in std::fs::read_dir(from).expect("read dir") {
            let e = e.expect("entry");
            let target = to.join(e.file_name());
            if e.file_type().expect("file type").is_dir() {
                copy_tree(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).expect("copy");
            }
        }
    }

    /// `records` acks=all records appended to each of `partitions` of
    /// `topic`, in one batch a partition.
    fn write_each(broker: &Broker, topic: &str, partitions: i32, records: usize) {
        for p in 0..partitions {
            let mut b = pubsub_records::BatchBuilder::new();
            for _ in 0..records {
                b.push(&pubsub_records::NewRecord {
                    timestamp: 1_700_000_000_000,
                    key: None,
                    value: Some(b"v"),
                    headers: &[],
                })
                .expect("push");
            }
            let mut batch = b.build().expect("build");
            broker
                .produce(topic, p, &mut batch, crate::Acks::All)
                .expect("produce");
        }
    }

    /// A broker on `dir` as after a kill, with `topics` (name, partitions)
    /// written (one record a partition) and unrecovered, and no background
    /// recovery pass: a copy of a data directory taken while its broker is
    /// open, after writes (nothing writes during the copy: that broker has
    /// no background threads either).
    fn open_unclean(dir: &Path, topics: &[(&str, i32)]) -> Broker {
        let config = BrokerConfig {
            background: false,
            ..BrokerConfig::default()
        };
        let source = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(source.path(), config.clone()).expect("open");
        for (topic, partitions) in topics {
            broker
                .create_topic(topic, Some(*partitions as u32), BTreeMap::new())
                .expect("create");
            write_each(&broker, topic, *partitions, 1);
        }
        copy_tree(source.path(), dir);
        broker.close().expect("close");
        drop(broker);
        Broker::open(dir, config).expect("open the copy")
    }

    /// Stops the background recovery pass, run by `broker.recover_pending()`
    /// on a thread of its own, the first time it holds a recovered
    /// partition: returns the hook's guard, a receiver told when the pass
    /// is there, the sender that lets it go on, and a receiver of the
    /// pass's count of recovered partitions.
    fn pass_stopped_at_its_first_partition(
        broker: &Broker,
        dir: &Path,
    ) -> (
        Held,
        mpsc::Receiver<()>,
        mpsc::Sender<()>,
        mpsc::Receiver<usize>,
    ) {
        let (reached, at_seam) = mpsc::channel::<()>();
        let (release, go) = mpsc::channel::<()>();
        let (reached, go) = (Mutex::new(reached), Mutex::new(go));
        let first = AtomicBool::new(true);
        let hook = hold(
            Seam::RecoveryHolds,
            dir,
            Arc::new(move || {
                if first.swap(false, Ordering::AcqRel) {
                    let _ = reached.lock().send(());
                    let _ = go.lock().recv();
                }
            }),
        );
        let (pass_done, pass) = mpsc::channel();
        let broker = broker.clone();
        std::thread::spawn(move || {
            let _ = pass_done.send(broker.recover_pending());
        });
        (hook, at_seam, release, pass)
    }

    /// The background recovery pass holds the open locks of the partitions
    /// of its chunk until the chunk is durable. A topic deletion that comes
    /// meanwhile holds the admin lock and waits for one of those open
    /// locks: the pass must finish its chunk without waiting for the admin
    /// lock (it once did, and the two waited for each other for ever); the
    /// deletion then finishes, and the topic is re-created empty.
    #[test]
    fn a_deletion_during_a_recovery_chunk_waits_for_the_chunk_and_finishes() {
        const PARTITIONS: i32 = 3;
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open_unclean(dir.path(), &[("doomed", PARTITIONS)]);
        assert_eq!(broker.pending_recovery(), PARTITIONS as usize);

        let (_hook, at_seam, release, pass) =
            pass_stopped_at_its_first_partition(&broker, dir.path());
        at_seam
            .recv_timeout(HANG)
            .expect("the pass holds a recovered partition of its chunk");
        let (deletion_done, deletion) = mpsc::channel();
        {
            let broker = broker.clone();
            std::thread::spawn(move || {
                let _ = deletion_done.send(broker.delete_topic("doomed"));
            });
        }
        // The topic leaves the list under the admin lock, which the
        // deletion then holds while it waits for the held open lock.
        let since = Instant::now();
        while broker.topics(false).iter().any(|t| t == "doomed") {
            assert!(since.elapsed() < HANG, "the deletion never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            deletion.recv_timeout(Duration::from_millis(50)).is_err(),
            "the deletion waits for the open lock the pass holds"
        );
        release.send(()).expect("release the pass");
        let recovered = pass
            .recv_timeout(HANG)
            .expect("the pass finishes its chunk while the deletion holds the admin lock");
        assert_eq!(recovered, PARTITIONS as usize, "the whole chunk recovered");
        deletion
            .recv_timeout(HANG)
            .expect("the deletion finishes after the chunk")
            .expect("delete");
        assert!(
            left(dir.path(), "doomed").is_empty(),
            "deleted: {:?}",
            left(dir.path(), "doomed")
        );
        assert_eq!(broker.pending_recovery(), 0);
        broker
            .create_topic("doomed", Some(PARTITIONS as u32), BTreeMap::new())
            .expect("re-create");
        let described = broker.describe_topic("doomed").expect("describe");
        assert!(
            described.partitions.iter().all(|p| p.log_end_offset == 0),
            "the re-created topic is empty: {described:?}"
        );
        broker.close().expect("close");
    }

    /// A topic deleted and re-created while the pass holds a partition of
    /// another topic earlier in its chunk: the pass then reaches the
    /// deleted topic's entries, finds them deleted under their open locks
    /// and skips them, so the re-created topic keeps its directories and
    /// what was written to it, now and after a restart.
    #[test]
    fn the_pass_skips_the_entries_of_a_topic_deleted_before_it_reached_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open_unclean(dir.path(), &[("alpha", 1), ("doomed", 2)]);
        assert_eq!(broker.pending_recovery(), 3);
        let (_hook, at_seam, release, pass) =
            pass_stopped_at_its_first_partition(&broker, dir.path());
        at_seam
            .recv_timeout(HANG)
            .expect("the pass holds alpha-0, the first of its chunk");
        // None of doomed's open locks is held: the deletion goes through.
        broker.delete_topic("doomed").expect("delete");
        broker
            .create_topic("doomed", Some(2), BTreeMap::new())
            .expect("re-create");
        write_each(&broker, "doomed", 2, 2);
        release.send(()).expect("release the pass");
        let recovered = pass.recv_timeout(HANG).expect("the pass finishes");
        assert_eq!(recovered, 1, "alpha-0 only: doomed's old entries skipped");
        assert_eq!(broker.pending_recovery(), 0);
        let ends = |broker: &Broker| -> Vec<u64> {
            let d = broker.describe_topic("doomed").expect("describe");
            d.partitions.iter().map(|p| p.log_end_offset).collect()
        };
        assert_eq!(ends(&broker), [2, 2], "the re-created topic's records");
        let mut dirs = left(dir.path(), "doomed");
        dirs.sort();
        assert_eq!(dirs, ["doomed-0", "doomed-1"], "nothing set aside");
        broker.close().expect("close");
        drop(broker);
        let config = BrokerConfig {
            background: false,
            ..BrokerConfig::default()
        };
        let broker = Broker::open(dir.path(), config).expect("reopen");
        assert_eq!(ends(&broker), [2, 2], "and after a restart");
        broker.close().expect("close");
    }
}
