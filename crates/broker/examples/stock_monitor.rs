//! The seed's stock-monitoring pipeline on the embedded broker.
//!
//! Topics: `stock-price-update` (3 partitions), `stock-news-update` (2),
//! `trade-execution` (2), `portfolio-update` (1). Producers replay prices from
//! `data/stock-prices.csv` and publish news, trades and portfolio changes.
//! Consumers, in four groups:
//!
//! - `price-watchers`: price-analyzer, alert-generator
//! - `news-readers`: news-aggregator, sentiment-analyzer
//! - `trade-handlers`: trade-processor, order-verifier
//! - `portfolio`: portfolio-manager
//!
//! Each prints what it receives with partition and offset. The run stops by
//! itself after `--seconds` (default 3). Run it twice on the same
//! `--data-dir`: the second run continues from the committed positions.
//!
//! ```text
//! cargo run -p pubsub-broker --example stock_monitor -- --seconds 3 --data-dir /tmp/stocks
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pubsub_broker::{
    Broker, BrokerConfig, BrokerError, ConsumerConfig, Flow, ProducerConfig, ProducerRecord,
};

struct Args {
    seconds: u64,
    data_dir: PathBuf,
    prices: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 3,
        data_dir: PathBuf::from("stock-monitor-data"),
        prices: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/stock-prices.csv"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--data-dir" => args.data_dir = PathBuf::from(value()?),
            "--prices" => args.prices = PathBuf::from(value()?),
            "--help" | "-h" => {
                return Err(
                    "usage: stock_monitor [--seconds N] [--data-dir DIR] [--prices FILE]".into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// (consumer name, group, topic)
const CONSUMERS: [(&str, &str, &str); 7] = [
    ("price-analyzer", "price-watchers", "stock-price-update"),
    ("alert-generator", "price-watchers", "stock-price-update"),
    ("news-aggregator", "news-readers", "stock-news-update"),
    ("sentiment-analyzer", "news-readers", "stock-news-update"),
    ("trade-processor", "trade-handlers", "trade-execution"),
    ("order-verifier", "trade-handlers", "trade-execution"),
    ("portfolio-manager", "portfolio", "portfolio-update"),
];

const HEADLINES: [&str; 5] = [
    "beats earnings expectations",
    "announces a share buyback",
    "faces a regulatory inquiry",
    "launches a new product line",
    "cuts its full-year guidance",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let prices = std::fs::read_to_string(&args.prices)
        .map_err(|e| format!("cannot read {}: {e}", args.prices.display()))?;
    let ticks: Vec<(String, f64)> = prices
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (sym, price) = l.split_once(',')?;
            Some((sym.trim().to_string(), price.trim().parse().ok()?))
        })
        .collect();

    // A short initial rebalance delay: the example's consumers all start at once.
    let mut config = BrokerConfig::default();
    config.group.initial_rebalance_delay = Duration::from_millis(300);
    let broker = Broker::open(&args.data_dir, config)?;
    for (topic, partitions) in [
        ("stock-price-update", 3),
        ("stock-news-update", 2),
        ("trade-execution", 2),
        ("portfolio-update", 1),
    ] {
        match broker.create_topic(topic, Some(partitions), Default::default()) {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    println!("data directory: {}", args.data_dir.display());

    let print_lock = Arc::new(Mutex::new(()));
    let stops = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for (name, group, topic) in CONSUMERS {
        let (broker, print_lock, stops, ready) = (
            broker.clone(),
            print_lock.clone(),
            stops.clone(),
            ready.clone(),
        );
        threads.push(std::thread::spawn(move || -> Result<usize, BrokerError> {
            let config = ConsumerConfig {
                session_timeout: Duration::from_secs(6),
                ..ConsumerConfig::new(group).name(name)
            };
            let mut consumer = broker.consumer(config)?;
            stops
                .lock()
                .map_err(|_| BrokerError::Closed)?
                .push(consumer.stop_handle());
            consumer.subscribe(&[topic])?;
            {
                let _p = print_lock.lock();
                for (t, p) in consumer.assignment() {
                    println!(
                        "[{name}] ({group}) assigned {t}/{p}, starting at offset {}",
                        consumer.position(&t, p).unwrap_or(0)
                    );
                }
            }
            ready.fetch_add(1, Ordering::SeqCst);
            let mut received = 0;
            consumer.run(|r| {
                received += 1;
                let _p = print_lock.lock();
                println!(
                    "[{name}] ({group}) {}/{}@{} key={} value={}",
                    r.topic,
                    r.partition,
                    r.offset,
                    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()),
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()),
                );
                Flow::Continue
            })?;
            consumer.close()?;
            Ok(received)
        }));
    }
    // Let the groups form before publishing, so both members of a group share the work.
    let start = Instant::now();
    while ready.load(Ordering::SeqCst) < CONSUMERS.len()
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    let producer = broker.producer(ProducerConfig::default())?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (mut published, mut i) = (0usize, 0usize);
    while Instant::now() < deadline {
        let (sym, price) = &ticks[i % ticks.len()];
        let value = format!("{sym} {price:.2}");
        producer.send(
            &ProducerRecord::new("stock-price-update", value.as_bytes()).key(sym.as_bytes()),
        )?;
        if i % 5 == 0 {
            let news = format!("{sym} {}", HEADLINES[i / 5 % HEADLINES.len()]);
            producer.send(
                &ProducerRecord::new("stock-news-update", news.as_bytes()).key(sym.as_bytes()),
            )?;
        }
        if i % 3 == 0 {
            let qty = 10 * (1 + i % 7);
            let trade = format!("BUY {qty} {sym} @ {price:.2}");
            producer.send(
                &ProducerRecord::new("trade-execution", trade.as_bytes()).key(sym.as_bytes()),
            )?;
            let position = format!("{sym} +{qty}");
            producer.send(
                &ProducerRecord::new("portfolio-update", position.as_bytes()).key(b"portfolio"),
            )?;
            published += 2;
        }
        published += 1 + usize::from(i % 5 == 0);
        i += 1;
        std::thread::sleep(Duration::from_millis(25));
    }
    producer.close();
    // Give consumers a moment to drain, then stop them (they commit on close).
    std::thread::sleep(Duration::from_millis(300));
    for s in stops.lock().map_err(|_| BrokerError::Closed)?.iter() {
        s.stop();
    }
    let mut total = 0;
    for (t, (name, group, _)) in threads.into_iter().zip(CONSUMERS) {
        let n = t.join().map_err(|_| "a consumer thread panicked")??;
        println!("summary: {name} ({group}) received {n} records");
        total += n;
    }
    broker.close()?;
    println!("summary: published {published} records, consumers received {total}");
    Ok(())
}
