//! Embedded broker throughput, each next to the storage engine's raw figure
//! from the same run:
//!
//! - `produce_{100B,1KiB}/embedded` (Producer::send, batching, acks=1) vs
//!   `/storage_append` (Log::append_trusted of batches holding the same
//!   records);
//! - `consume_{100B,1KiB}/embedded` (a group consumer polling every record,
//!   decoded) vs `/storage_read` (Log::read_into over the same partition).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pubsub_broker::{Acks, Broker, BrokerConfig, ConsumerConfig, ProducerConfig, ProducerRecord};
use pubsub_records::{BatchBuilder, NewRecord};
use pubsub_storage::{Log, LogConfig};

const MESSAGES: usize = 200_000;

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn broker(dir: &std::path::Path) -> Broker {
    let mut config = BrokerConfig::default();
    config.group.offsets_topic_partitions = 1;
    config.group.initial_rebalance_delay = Duration::ZERO;
    let b = Broker::open(dir, config).expect("open");
    b.create_topic("bench", Some(1), Default::default())
        .expect("topic");
    b
}

/// Batches of `size`-byte records up to ~256 KiB, as the producer forms them.
fn batches(size: usize, count: usize) -> Vec<Vec<u8>> {
    let value = payload(size);
    let per_batch = ((256 << 10) / (size + 10)).max(1);
    let mut out = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(per_batch);
        let mut b = BatchBuilder::new();
        for _ in 0..n {
            b.push(&NewRecord {
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(&value),
                headers: &[],
            })
            .expect("push");
        }
        out.push(b.build().expect("build"));
        left -= n;
    }
    out
}

fn produce(c: &mut Criterion) {
    for (name, size) in [("100B", 100usize), ("1KiB", 1024)] {
        let value = payload(size);
        let prebuilt = batches(size, MESSAGES);
        let bytes: u64 = prebuilt.iter().map(|b| b.len() as u64).sum();
        let mut g = c.benchmark_group(format!("produce_{name}"));
        g.sample_size(10).throughput(Throughput::Bytes(bytes));
        g.bench_function("embedded", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(".").expect("tempdir");
                    let broker = broker(dir.path());
                    let producer = broker
                        .producer(ProducerConfig {
                            acks: Acks::Leader,
                            idempotent: false,
                            ..ProducerConfig::default()
                        })
                        .expect("producer");
                    let start = Instant::now();
                    let mut last = None;
                    for _ in 0..MESSAGES {
                        last = Some(
                            producer
                                .send(&ProducerRecord::new("bench", &value).partition(0))
                                .expect("send"),
                        );
                    }
                    producer.flush();
                    last.expect("sent").wait().expect("delivered");
                    total += start.elapsed();
                    producer.close();
                    broker.close().expect("close");
                }
                total
            })
        });
        g.bench_function("storage_append", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(".").expect("tempdir");
                    let (log, _) = Log::open(dir.path(), LogConfig::default()).expect("log");
                    let mut work = prebuilt.clone();
                    let start = Instant::now();
                    for batch in work.iter_mut() {
                        log.append_trusted(black_box(batch)).expect("append");
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        g.finish();
    }
}

fn consume(c: &mut Criterion) {
    for (name, size) in [("100B", 100usize), ("1KiB", 1024)] {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let broker = broker(dir.path());
        let mut prebuilt = batches(size, MESSAGES);
        let bytes: u64 = prebuilt.iter().map(|b| b.len() as u64).sum();
        for batch in prebuilt.iter_mut() {
            broker
                .produce("bench", 0, batch, Acks::Leader)
                .expect("fill");
        }
        let end = broker
            .partition("bench", 0)
            .expect("p")
            .log()
            .log_end_offset();
        let mut g = c.benchmark_group(format!("consume_{name}"));
        g.sample_size(10).throughput(Throughput::Bytes(bytes));
        let mut round = 0;
        g.bench_function("embedded", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let mut consumer = broker
                        .consumer(ConsumerConfig {
                            auto_commit: false,
                            max_poll_records: 10_000,
                            ..ConsumerConfig::new(&format!("bench-{round}"))
                        })
                        .expect("consumer");
                    consumer.subscribe(&["bench"]).expect("subscribe");
                    let start = Instant::now();
                    let mut n = 0;
                    while n < MESSAGES {
                        let recs = consumer.poll(Duration::from_secs(5)).expect("poll");
                        n += recs.len();
                        black_box(recs);
                    }
                    total += start.elapsed();
                    consumer.close().expect("close");
                }
                total
            })
        });
        let log = broker.partition("bench", 0).expect("p");
        let mut buf = Vec::with_capacity(2 << 20);
        g.bench_function("storage_read", |b| {
            b.iter(|| {
                let mut next = 0;
                while next < end {
                    log.read(next, 1 << 20, &mut buf).expect("read");
                    for batch in pubsub_records::Batches::new(&buf) {
                        next = batch.expect("batch").last_offset() as u64 + 1;
                    }
                }
                black_box(buf.len())
            })
        });
        g.finish();
        broker.close().expect("close");
    }
}

criterion_group!(benches, produce, consume);
criterion_main!(benches);
