//! Fetch over the wire: long polls woken by appends, independence of
//! partitions, whole batches, offsets out of range, where the reads run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pubsub_client::fetch;

use crate::client::Client;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_an_append_and_does_not_hold_up_other_partitions() {
    let server = TestServer::start().await;
    let mut admin = Client::connect(server.addr).await;
    create_topic(&mut admin, "lp", 2, &[]).await;

    // Connection A waits on partition 1 (max_wait 30 s, the server's cap).
    let addr = server.addr;
    let waiter = tokio::spawn(async move {
        let mut a = Client::connect(addr).await;
        let started = Instant::now();
        let r = a
            .call(FETCH_V, &fetch_request("lp", 1, 0, 30_000, 1 << 20))
            .await;
        (r, started.elapsed())
    });
    // Connection B produces to partition 0 and reads it back while A waits.
    let mut b = Client::connect(server.addr).await;
    for i in 0..20 {
        let v = format!("p0-{i}");
        let p = produce(&mut b, "lp", 0, -1, bytes(batch_of(&[&v]))).await;
        assert_eq!(p.error_code, 0);
    }
    let r = b
        .call(FETCH_V, &fetch_request("lp", 0, 0, 30_000, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].high_watermark, 20);
    assert!(
        !waiter.is_finished(),
        "partition 1 is still empty: A is still waiting"
    );

    // An append to partition 1 completes A's fetch.
    let p = produce(&mut b, "lp", 1, 1, bytes(batch_of(&["wake"]))).await;
    assert_eq!(p.error_code, 0);
    let (r, waited) = waiter.await.expect("waiter");
    let part = &r.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    assert_eq!(part.high_watermark, 1);
    let records = part.records.clone().expect("records");
    assert_eq!(
        pubsub_records::Batch::parse(&records)
            .expect("batch")
            .record_count(),
        1
    );
    assert!(
        waited < Duration::from_secs(25),
        "woken by the append, not by max_wait ({waited:?})"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_edges_whole_first_batch_empty_not_null_and_out_of_range() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "edges", 1, &[]).await;
    let big = "y".repeat(10_000);
    produce(&mut c, "edges", 0, -1, bytes(batch_of(&[&big, &big, &big]))).await;
    produce(&mut c, "edges", 0, -1, bytes(batch_of(&["small"]))).await;

    // max_bytes smaller than the first batch: the first batch still comes, whole.
    let r = c.call(FETCH_V, &fetch_request("edges", 0, 2, 0, 100)).await;
    let part = &r.responses[0].partitions[0];
    let records = part.records.clone().expect("records");
    let batch = pubsub_records::Batch::parse(&records).expect("whole batch");
    assert_eq!((batch.base_offset(), batch.record_count()), (0, 3));
    assert_eq!(
        records.len(),
        batch.len(),
        "only that batch: the budget is spent"
    );

    // At the end: no error, and an empty (not null) record set.
    let r = c
        .call(FETCH_V, &fetch_request("edges", 0, 4, 0, 1 << 20))
        .await;
    let part = &r.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    assert_eq!(
        part.records.as_ref().map(|r| r.len()),
        Some(0),
        "empty, never null"
    );
    assert_eq!(
        (
            part.high_watermark,
            part.last_stable_offset,
            part.log_start_offset
        ),
        (4, 4, 0)
    );
    assert_eq!(*part.preferred_read_replica, -1);

    // Past the end: OFFSET_OUT_OF_RANGE, answered at once.
    let r = c
        .call(FETCH_V, &fetch_request("edges", 0, 99, 10_000, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1);

    // A topic that does not exist.
    let r = c
        .call(FETCH_V, &fetch_request("nope", 0, 0, 0, 1 << 20))
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 3);
    server.stop().await;
}

/// Kafka's `minOneMessage` (ReplicaManager.readFromLocalLog): only the first
/// partition of an answer with records may exceed the budget with a whole
/// first batch; a later partition whose first batch does not fit the room
/// left gets no records, and gets them in the next fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_first_partition_with_records_gets_a_batch_past_the_budget() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "minone", 2, &[]).await;
    let small = bytes(batch_of(&["small"]));
    let big_value = "z".repeat(5_000);
    let big = bytes(batch_of(&[&big_value]));
    assert_eq!(
        produce(&mut c, "minone", 0, -1, small.clone())
            .await
            .error_code,
        0
    );
    assert_eq!(
        produce(&mut c, "minone", 1, -1, big.clone())
            .await
            .error_code,
        0
    );
    // Room for the small batch and some, not for the big one.
    let max = (small.len() + 1_000) as i32;
    let fetch = |p0: i64, p1: i64| {
        let positions = std::collections::BTreeMap::from([(0, p0), (1, p1)]);
        pubsub_client::fetch::request("minone", &positions, 0, max, 1 << 20)
    };
    let records = |r: &kafka_protocol::messages::FetchResponse, p: i32| -> usize {
        r.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|x| x.partition_index == p)
            .and_then(|x| x.records.as_ref())
            .map_or(0, |b| b.len())
    };
    let r = c.call(FETCH_V, &fetch(0, 0)).await;
    assert_eq!(records(&r, 0), small.len(), "partition 0: its batch");
    assert_eq!(
        records(&r, 1),
        0,
        "partition 1's batch does not fit the room left"
    );
    // Partition 0 caught up: partition 1 is the first with records now.
    let r = c.call(FETCH_V, &fetch(1, 0)).await;
    assert_eq!(records(&r, 0), 0);
    assert_eq!(records(&r, 1), big.len(), "whole, past the budget");
    server.stop().await;
}

/// A request naming a partition twice is answered once, from the last
/// position given (Kafka reads the partitions into a LinkedHashMap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_named_twice_is_answered_once_from_its_last_position() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "twice", 1, &[]).await;
    for v in ["first", "second"] {
        assert_eq!(
            produce(&mut c, "twice", 0, -1, bytes(batch_of(&[v])))
                .await
                .error_code,
            0
        );
    }
    let mut req = fetch_request("twice", 0, 0, 0, 1 << 20);
    let mut again = req.topics[0].partitions[0].clone();
    again.fetch_offset = 1;
    req.topics[0].partitions.push(again);
    for version in [4, FETCH_V] {
        let r = c.call(version, &req).await;
        let parts: Vec<_> = r.responses.iter().flat_map(|t| &t.partitions).collect();
        assert_eq!(parts.len(), 1, "v{version}: one answer for the partition");
        let records = parts[0].records.clone().expect("records");
        let batch = pubsub_records::Batch::parse(&records).expect("batch");
        assert_eq!(batch.base_offset(), 1, "v{version}: from the last position");
        assert_eq!(records.len(), batch.len());
    }
    server.stop().await;
}

/// A fetch of many partitions reads them on the network worker while their
/// batch headers are in the page cache: no `block_in_place` (a thread
/// hand-off on the path of every fetch, which librdkafka asking for all its
/// partitions in one request waited through). With the segment files
/// evicted, the request leaves the worker once, not once per partition,
/// and answers the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_cached_partitions_reads_on_the_worker_and_of_evicted_ones_leaves_it_once() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    let partitions = 8;
    create_topic(&mut c, "ow", partitions, &[]).await;
    let value = "v".repeat(6000);
    for p in 0..partitions {
        for _ in 0..3 {
            let values = [value.as_str(); 10];
            let r = produce(&mut c, "ow", p, -1, bytes(batch_of(&values))).await;
            assert_eq!(r.error_code, 0);
        }
    }
    let positions: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let req = fetch::request("ow", &positions, 0, 50 << 20, 1 << 20);
    let records_of = |r: &kafka_protocol::messages::FetchResponse| -> Vec<(i32, usize)> {
        r.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
                let records = p.records.as_deref().unwrap_or_default();
                let mut n = 0;
                fetch::for_each_record(records, 0, true, |_| n += 1).expect("records");
                (p.partition_index, n)
            })
            .collect()
    };
    let all: Vec<(i32, usize)> = (0..partitions).map(|p| (p, 30)).collect();
    for _ in 0..5 {
        let r = c.call(FETCH_V, &req).await;
        assert_eq!(records_of(&r), all);
    }
    assert_eq!(
        server.metrics.fetch_reads_off_worker(),
        0,
        "fetches of cached partitions left the worker"
    );

    // Written back and dropped from the page cache (advice the kernel may
    // not take at once: asked until it says the pages are gone).
    let logs: Vec<std::fs::File> = walk(server.dir.path())
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "log")
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|d| d.to_string_lossy().starts_with("ow-"))
        })
        .map(|p| std::fs::File::open(p).expect("open segment"))
        .collect();
    assert_eq!(logs.len(), partitions as usize, "one segment each");
    let mut evicted = false;
    for _ in 0..20 {
        use std::os::fd::AsRawFd;
        for f in &logs {
            f.sync_all().expect("fsync");
            // SAFETY: a valid descriptor; the advice only drops clean cached pages.
            let advised =
                unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(advised, 0, "posix_fadvise");
        }
        let cached: Vec<Option<bool>> = logs
            .iter()
            .map(|f| {
                let len = f.metadata().expect("metadata").len();
                pubsub_server::sender::in_page_cache(f, 0, len)
            })
            .collect();
        if cached.contains(&None) {
            break; // the kernel cannot tell (no cachestat): not checked
        }
        if cached.iter().all(|c| *c == Some(false)) {
            evicted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = c.call(FETCH_V, &req).await;
    assert_eq!(records_of(&r), all);
    if evicted {
        assert_eq!(
            server.metrics.fetch_reads_off_worker(),
            1,
            "a fetch of 8 evicted partitions leaves the worker once"
        );
    } else {
        eprintln!("the segment pages stayed cached: the path off the worker was not reached");
    }
    server.stop().await;
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
