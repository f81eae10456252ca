//! Storage failures. A file that may grow no more (RLIMIT_FSIZE: EFBIG, not
//! a full disk) fails that partition's writes with KAFKA_STORAGE_ERROR until
//! a restart, while other partitions and the broker keep working. A full
//! file system (a size-limited tmpfs) fails writes with KAFKA_STORAGE_ERROR,
//! and offset commits with NOT_COORDINATOR, until space returns, and then
//! they work again without a restart.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{DeleteTopicsRequest, GroupId, OffsetCommitRequest, TopicName};

use crate::client::{create_topic, s, Client};
use crate::daemon::{Daemon, Options};
use crate::kafka::{fetch_all, produce_raw, produce_values};
use crate::metrics::{get, scrape, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_file_fails_one_partition_and_the_broker_stays_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        Options {
            max_file_bytes: Some(16 << 20),
            ..Options::default()
        },
    );
    let mut c = Client::connect(daemon.addr).await;
    produce_values(&mut c, "other", 0, -1, &["fine".to_string()]).await;
    produce_values(&mut c, "filling", 0, -1, &["first".to_string()]).await;

    // 512 KiB batches until the file can grow no more.
    let chunk: Vec<String> = (0..8).map(|_| "f".repeat(64 << 10)).collect();
    let mut acked = 1usize;
    let mut failure = None;
    for _ in 0..64 {
        let p = produce_raw(&mut c, "filling", 0, -1, &chunk).await;
        if p.error_code == 0 {
            acked += chunk.len();
        } else {
            failure = Some(p.error_code);
            break;
        }
    }
    assert_eq!(
        failure,
        Some(56),
        "KAFKA_STORAGE_ERROR once the file is full"
    );
    // Later writes to that partition keep failing: a write failing otherwise
    // than for want of space (EFBIG here) poisons the log until a restart.
    let p = produce_raw(&mut c, "filling", 0, 1, &["x".to_string()]).await;
    assert_eq!(p.error_code, 56);

    // Everything acknowledged is readable; other partitions take writes.
    let got = fetch_all(&mut c, "filling", 0).await;
    assert_eq!(got.len(), acked);
    let offsets = produce_values(&mut c, "other", 0, -1, &["still fine".to_string()]).await;
    assert_eq!(offsets, vec![1]);
    assert_eq!(fetch_all(&mut c, "other", 0).await.len(), 2);
    let stderr = daemon.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(daemon);
}

/// A tmpfs of a few MiB mounted for one test, unmounted when dropped.
struct SmallFs {
    mount_point: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` at `at` (created); `Err` says why it could
    /// not be (not root, no CAP_SYS_ADMIN, no tmpfs).
    fn mount(at: &Path, bytes: u64) -> Result<SmallFs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let target = CString::new(at.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let options = CString::new(format!("size={bytes}")).map_err(|e| e.to_string())?;
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(SmallFs {
            mount_point: at.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.mount_point.as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated path; detaching cannot fail the test.
            unsafe {
                libc::umount2(target.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// Writes to `path` until the file system is full (a real ENOSPC).
fn fill_up(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler file");
    let chunk = vec![0x5au8; 64 << 10];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return;
        }
    }
}

async fn commit(c: &mut Client, group: &str, topic: &str, offset: i64) -> i16 {
    let r = c
        .call(
            8,
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(s(""))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)])]),
        )
        .await;
    r.topics[0].partitions[0].error_code
}

/// Produces 512 KiB batches (acks=1 and acks=all in turn) to `topic` until
/// the disk is full; returns the values acknowledged, in order.
async fn produce_until_full(c: &mut Client, topic: &str, tag: &str) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..64 {
        let chunk: Vec<String> = (0..8)
            .map(|j| format!("{tag}-{i}-{j}-{}", "f".repeat(64 << 10)))
            .collect();
        let acks = if i % 2 == 0 { 1 } else { -1 };
        let p = produce_raw(c, topic, 0, acks, &chunk).await;
        match p.error_code {
            0 => {
                assert_eq!(p.base_offset, acked.len() as i64, "offsets stay contiguous");
                acked.extend(chunk);
            }
            56 => return acked,
            other => panic!("produce to {topic}: unexpected error {other}"),
        }
    }
    panic!("{topic}: 32 MiB went into an 8 MiB file system");
}

fn lines_with(stderr: &str, needles: &[&str]) -> usize {
    stderr
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_commits_until_space_returns_then_both_work_without_a_restart()
{
    let tmp = tempfile::tempdir().expect("tempdir");
    // The data directory is the mount point: the daemon's stderr file goes
    // next to it, off the small file system.
    let data = tmp.path().join("data");
    let fs = match SmallFs::mount(&data, 8 << 20) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "SKIPPED a_full_disk_fails_writes_and_commits_until_space_returns: cannot mount a tmpfs ({why}); run as root to test a full disk"
            );
            return;
        }
    };
    let daemon = Daemon::start_with(
        &data,
        Options {
            metrics: true,
            ..Options::default()
        },
    );
    let metrics = daemon.metrics.expect("metrics address");
    let mut c = Client::connect(daemon.addr).await;
    create_topic(&mut c, "filling", 1, &[]).await;
    create_topic(&mut c, "second", 1, &[]).await;
    assert_eq!(get(metrics, "/health").await.0, 200);

    // 1. Fill the disk through the broker, then take the last free page
    //    with a file of our own.
    let acked = produce_until_full(&mut c, "filling", "a").await;
    assert!(
        acked.len() >= 8,
        "some batches fitted before the disk filled"
    );
    let filler = data.join("filler.bin");
    fill_up(&filler);

    // 2. While full: produce (both acks) keeps failing, nothing else breaks.
    // (A batch of a few bytes may still fit in the last page of the
    // segment: 64 KiB cannot.)
    let small = vec!["small".to_string()];
    let big = vec!["b".repeat(64 << 10)];
    for acks in [1, -1, 1] {
        assert_eq!(
            produce_raw(&mut c, "filling", 0, acks, &big)
                .await
                .error_code,
            56
        );
    }
    // A commit cannot be written to __consumer_offsets: Kafka's coordinator
    // answers NOT_COORDINATOR for KAFKA_STORAGE_ERROR (the client finds the
    // coordinator again and retries).
    assert_eq!(
        commit(&mut c, "g", "filling", 5).await,
        16,
        "NOT_COORDINATOR"
    );
    // A topic cannot be created (its metadata file finds no space): Kafka's
    // KAFKA_STORAGE_ERROR for a log directory's I/O failure, which clients
    // retry; nothing of it is left behind.
    let r = c
        .call(
            7,
            &pubsub_client::admin::create_topics_request::<&str, &str>("while-full", 1, &[]),
        )
        .await;
    assert_eq!(
        r.topics[0].error_code, 56,
        "{:?}",
        r.topics[0].error_message
    );
    let got = fetch_all(&mut c, "filling", 0).await;
    assert_eq!(
        got.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        acked,
        "every acknowledged record is readable, nothing else"
    );
    let (status, _, body) = get(metrics, "/health").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("out of space"), "{body}");
    assert!(body.contains("filling-0: "), "{body}");
    assert!(body.contains("__consumer_offsets-"), "{body}");
    assert!(
        !body.contains("refuse writes until the broker restarts"),
        "{body}"
    );
    let m = scrape(metrics).await;
    assert!(value(&m, "pubsub_partitions_out_of_space") >= 2.0);
    assert_eq!(
        value(
            &m,
            "pubsub_partition_out_of_space{topic=\"filling\",partition=\"0\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "pubsub_partitions_poisoned"), 0.0);

    // 3. The operator frees space: writes and commits work, no restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    let p = produce_raw(&mut c, "filling", 0, -1, &small).await;
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    assert_eq!(
        p.base_offset,
        acked.len() as i64,
        "no offset was lost or skipped"
    );
    let p = produce_raw(&mut c, "filling", 0, 1, &small).await;
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    assert_eq!(commit(&mut c, "g", "filling", 5).await, 0);
    create_topic(&mut c, "while-full", 1, &[]).await;
    let got = fetch_all(&mut c, "filling", 0).await;
    assert_eq!(got.len(), acked.len() + 2);
    assert_eq!(
        got[..acked.len()]
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>(),
        acked
    );
    let (status, _, body) = get(metrics, "/health").await;
    assert_eq!(status, 200, "{body}");
    let m = scrape(metrics).await;
    assert_eq!(value(&m, "pubsub_partitions_out_of_space"), 0.0);
    assert_eq!(
        value(
            &m,
            "pubsub_group_committed_offset{group=\"g\",topic=\"filling\",partition=\"0\"}"
        ),
        5.0
    );

    // 4. Full again, through another topic; deleting a topic frees space.
    let second = produce_until_full(&mut c, "second", "b").await;
    let half_mib: Vec<String> = (0..8).map(|_| "r".repeat(64 << 10)).collect();
    let refused = produce_raw(&mut c, "second", 0, -1, &half_mib).await;
    assert_eq!(refused.error_code, 56);
    let r = c
        .call(
            4,
            &DeleteTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topic_names(vec![TopicName(s("filling"))]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    let p = produce_raw(&mut c, "second", 0, -1, &small).await;
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    assert_eq!(p.base_offset, second.len() as i64);
    let got = fetch_all(&mut c, "second", 0).await;
    assert_eq!(
        got[..second.len()]
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>(),
        second
    );

    // The broker said each episode once, not once per refused request.
    drop(c);
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let filling_dir = data.join("filling-0").display().to_string();
    let second_dir = data.join("second-0").display().to_string();
    for (dir, episodes) in [(&filling_dir, 1), (&second_dir, 1)] {
        assert_eq!(
            lines_with(&stderr, &["out of space: writes", dir]),
            episodes,
            "{stderr}"
        );
    }
    assert_eq!(
        lines_with(&stderr, &["out of space: writes", "__consumer_offsets-"]),
        1,
        "{stderr}"
    );
    assert_eq!(
        lines_with(&stderr, &["space available again", "__consumer_offsets-"]),
        1,
        "{stderr}"
    );
    assert_eq!(
        lines_with(&stderr, &["space available again", &filling_dir]),
        1,
        "{stderr}"
    );
    assert_eq!(
        lines_with(&stderr, &["space available again", &second_dir]),
        1,
        "{stderr}"
    );
    drop(fs);
}
