//! The transaction coordinator's background threads, counted in
//! /proc/self/task: many transactions ending at once are made durable and
//! completed by a fixed few threads for the broker's life, not one thread
//! per EndTxn, and the broker's close leaves none behind. Its own test
//! binary: it counts every thread of the process, which the other broker
//! tests, run in parallel in theirs, would add to.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use pubsub_broker::txn::TRANSACTION_STATE;
use pubsub_broker::{wall_clock_ms, Broker, BrokerConfig};

/// Transactional ids committing at once.
const IDS: usize = 50;
/// Transactions each id commits.
const ROUNDS: usize = 3;
/// Partitions of the topic the transactions write to (2 each).
const PARTITIONS: i32 = 8;
/// The most the broker runs for its transactions: the completer and 8
/// fsync threads (`txn_background::SYNC_THREADS`).
const MOST_THREADS: usize = 1 + 8;

/// The ids of the process's threads whose name starts with `txn-` (the
/// coordinator's background threads, as the broker names them).
fn txn_threads() -> BTreeSet<u64> {
    let mut tids = BTreeSet::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return tids;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let tid = task.file_name().to_string_lossy().parse::<u64>();
        if let (true, Ok(tid)) = (comm.starts_with("txn-"), tid) {
            tids.insert(tid);
        }
    }
    tids
}

/// Records `__transaction_state` holds, over its partitions.
fn state_records(broker: &Broker, partitions: i32) -> u64 {
    (0..partitions)
        .map(|p| {
            broker
                .partition(TRANSACTION_STATE, p)
                .map_or(0, |p| p.log().log_end_offset())
        })
        .sum()
}

#[test]
fn many_transactions_ending_at_once_use_a_fixed_few_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig {
        // No clock: only the coordinator's own threads complete anything.
        background: false,
        ..BrokerConfig::default()
    };
    config.txn.state_topic_partitions = 3;
    let broker = Broker::open(dir.path(), config).expect("open");
    broker
        .create_topic("orders", Some(PARTITIONS as u32), Default::default())
        .expect("create");
    assert!(
        txn_threads().is_empty(),
        "none before the first transaction"
    );

    // Every thread named txn- seen while the transactions run.
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while running.load(Ordering::Acquire) {
                seen.extend(txn_threads());
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen
        })
    };
    let start = Arc::new(Barrier::new(IDS));
    let clients: Vec<_> = (0..IDS)
        .map(|i| {
            let (broker, start) = (broker.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let id = format!("tx-{i}");
                let (txns, store) = (broker.transactions(), broker.txn_store());
                let (pid, epoch) = txns
                    .init_producer_id(store, &id, 60_000, None, wall_clock_ms())
                    .expect("init");
                let p = i as i32 % PARTITIONS;
                let two = [
                    ("orders".to_string(), p),
                    ("orders".to_string(), (p + 1) % PARTITIONS),
                ];
                for _ in 0..ROUNDS {
                    txns.add_partitions(store, &id, pid, epoch, &two, wall_clock_ms())
                        .expect("add");
                    // Every id's EndTxn at once.
                    start.wait();
                    txns.end_txn(store, &id, pid, epoch, true, wall_clock_ms())
                        .expect("commit");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client thread");
    }
    // Each id: InitProducerId, then per transaction Ongoing, PrepareCommit
    // and the completion, which only the completer logs after the last
    // round. Bounded: a completion never logged fails below.
    let expected = (IDS * (1 + 3 * ROUNDS)) as u64;
    for _ in 0..6_000 {
        if state_records(&broker, 3) >= expected {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    running.store(false, Ordering::Release);
    let seen = sampler.join().expect("the sampler");
    assert!(!seen.is_empty(), "the background threads ran");
    assert!(
        seen.len() <= MOST_THREADS,
        "{} threads for {} transactions: {seen:?}",
        seen.len(),
        IDS * ROUNDS
    );
    assert_eq!(
        state_records(&broker, 3),
        expected,
        "every completion logged"
    );
    broker.close().expect("close");
    assert!(txn_threads().is_empty(), "the close stops every one");
}
