//! End-to-end latency of the embedded broker: a producer sends 1 KiB
//! records to one partition at a steady, moderate rate; a consumer in a
//! group receives them; each record's latency is "received" minus "sent"
//! (the send time travels in the record). Percentiles come from an
//! HdrHistogram. Written to target/criterion/e2e_latency/<case>/summary.json
//! for the report.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pubsub_broker::{Acks, Broker, BrokerConfig, ConsumerConfig, ProducerConfig, ProducerRecord};

const RATE: u64 = 5_000; // records per second
const SECONDS: u64 = 4;

fn run(case: &str, acks: Acks, linger: Duration) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let mut config = BrokerConfig::default();
    config.group.offsets_topic_partitions = 1;
    config.group.initial_rebalance_delay = Duration::ZERO;
    let broker = Broker::open(dir.path(), config).expect("open");
    broker
        .create_topic("latency", Some(1), Default::default())
        .expect("topic");
    let origin = Instant::now();
    let consumer_broker = broker.clone();
    let total = RATE * SECONDS;
    let reader = std::thread::spawn(move || {
        let mut c = consumer_broker
            .consumer(ConsumerConfig {
                auto_commit: false,
                ..ConsumerConfig::new("latency")
            })
            .expect("consumer");
        c.subscribe(&["latency"]).expect("subscribe");
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let mut seen = 0;
        while seen < total {
            for r in c.poll(Duration::from_secs(5)).expect("poll") {
                let value = r.value.expect("value");
                let mut sent = [0u8; 8];
                sent.copy_from_slice(&value[..8]);
                let sent_us = u64::from_le_bytes(sent);
                let now_us = origin.elapsed().as_micros() as u64;
                h.record(now_us.saturating_sub(sent_us).max(1))
                    .expect("record");
                seen += 1;
            }
        }
        h
    });
    std::thread::sleep(Duration::from_millis(200)); // the consumer joins
    let producer = broker
        .producer(ProducerConfig {
            acks,
            linger,
            ..ProducerConfig::default()
        })
        .expect("producer");
    let mut value = vec![7u8; 1024];
    let interval = Duration::from_nanos(1_000_000_000 / RATE);
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        value[..8].copy_from_slice(&(origin.elapsed().as_micros() as u64).to_le_bytes());
        producer
            .send(&ProducerRecord::new("latency", &value))
            .expect("send");
    }
    producer.flush();
    let h = reader.join().expect("reader");
    producer.close();
    broker.close().expect("close");
    let p = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "e2e_latency/{case}: {} records at {RATE}/s: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        h.len(),
        p(0.50),
        p(0.99),
        p(0.999),
        h.max() as f64 / 1000.0
    );
    let dir = std::path::Path::new("../target/criterion/e2e_latency").join(case);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let json = format!(
        "{{\"rate\": {RATE}, \"records\": {}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}, \"max_ms\": {:.3}}}\n",
        h.len(),
        p(0.50),
        p(0.99),
        p(0.999),
        h.max() as f64 / 1000.0
    );
    std::fs::write(dir.join("summary.json"), json).expect("write summary");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // we need to honour: run quickly there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    run("acks1_linger0", Acks::Leader, Duration::ZERO);
    run("acks1_linger5ms", Acks::Leader, Duration::from_millis(5));
    run("acksall_linger0", Acks::All, Duration::ZERO);
}
