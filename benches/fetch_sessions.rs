//! Fetch over many partitions of which one has data, through the server's
//! fetch handler (in process, no socket): the same request each iteration,
//!
//! - `fetch_sessions/full`: a full fetch without a session (epoch -1) naming
//!   every partition, the baseline (what librdkafka sends);
//! - `fetch_sessions/incremental`: an incremental fetch of a session over
//!   the same partitions, naming none (what the Java client sends once its
//!   positions stop moving).
//!
//! Both answer the records of partition 0; the full answer also carries
//! every idle partition. The data directory is on /dev/shm where there is
//! one (creating the partitions then costs no fsync).
//!
//! ```sh
//! cargo bench -p pubsub-benches --bench fetch_sessions
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use pubsub_broker::{Acks, Broker, BrokerConfig};
use pubsub_records::{BatchBuilder, NewRecord};
use pubsub_server::{Ctx, ServerConfig};

const PARTITIONS: i32 = 1000;

fn request(session_id: i32, epoch: i32, partitions: i32) -> FetchRequest {
    let parts = (0..partitions)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(0)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let topics = if partitions == 0 {
        vec![]
    } else {
        vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("wide")))
            .with_partitions(parts)]
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}

fn fetch(c: &mut Criterion) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let broker = Broker::open(dir.path(), BrokerConfig::default()).expect("open");
    broker
        .create_topic("wide", Some(PARTITIONS as u32), Default::default())
        .expect("topic");
    let mut b = BatchBuilder::new();
    for i in 0..10 {
        let value = format!("value-{i}");
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    let mut batch = b.build().expect("build");
    broker
        .partition("wide", 0)
        .expect("partition")
        .append(&mut batch, Acks::Leader, 1_700_000_000_000, false)
        .expect("append");
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = Ctx::new(
        broker.clone(),
        Arc::new(ServerConfig::default()),
        std::net::Ipv4Addr::LOCALHOST.into(),
        shutdown,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let header = RequestHeader::default();
    // The answer as the handler gives it, and its encoded size (encoding
    // is part of what each fetch costs).
    let handle = |req: FetchRequest| {
        let (answer, files) = rt.block_on(pubsub_server::handlers::fetch::handle(
            &ctx, &header, req, 12,
        ));
        // Records stay in their files: the frame's length counts them.
        let frame = pubsub_server::fetch_response::encode(12, 0, &answer, &files).expect("encode");
        (answer, frame.len() as usize)
    };

    let mut g = c.benchmark_group("fetch_sessions");
    g.throughput(Throughput::Elements(PARTITIONS as u64));
    g.measurement_time(Duration::from_secs(5));
    let full = request(0, -1, PARTITIONS);
    let (answer, full_bytes) = handle(full.clone());
    assert_eq!(answer.responses[0].partitions.len(), PARTITIONS as usize);
    g.bench_function("full", |bench| bench.iter(|| handle(full.clone())));

    let (opened, _) = handle(request(0, 0, PARTITIONS));
    let id = opened.session_id;
    assert!(id > 0, "a session");
    let mut epoch = 1;
    let (answer, incremental_bytes) = handle(request(id, epoch, 0));
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.responses[0].partitions.len(), 1, "only partition 0");
    let mut req_full = Vec::new();
    full.encode(&mut req_full, 12).expect("encode");
    let mut req_incremental = Vec::new();
    request(id, epoch, 0)
        .encode(&mut req_incremental, 12)
        .expect("encode");
    eprintln!(
        "{PARTITIONS} partitions, one with records: full fetch {} B request, {full_bytes} B answer; \
         incremental {} B request, {incremental_bytes} B answer",
        req_full.len(),
        req_incremental.len()
    );
    g.bench_function("incremental", |bench| {
        bench.iter(|| {
            epoch += 1;
            handle(request(id, epoch, 0))
        })
    });
    g.finish();
    broker.close().ok();
}

criterion_group!(benches, fetch);
criterion_main!(benches);
