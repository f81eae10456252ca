//! A storage failure (the process may write no more bytes to a file, as on
//! a full disk) fails that partition's writes with KAFKA_STORAGE_ERROR while
//! other partitions and the broker keep working.

use crate::client::Client;
use crate::daemon::{Daemon, Options};
use crate::kafka::{fetch_all, produce_raw, produce_values};

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
    // Later writes to that partition keep failing (it is poisoned, not half-written).
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
