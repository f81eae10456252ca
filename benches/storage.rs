//! Storage engine throughput and latency, each next to a baseline measured in
//! the same run on the same file system:
//!
//! - `append_{16KiB,1MiB}/log` vs `/raw_write`: 1 KiB records, flush never,
//!   against `write_all` of the same bytes to a plain file; `/log_trusted`
//!   is the same without the CRC check (batches built in-process);
//! - `append_fsync_{16KiB,1MiB}/log` vs `/raw_write_fdatasync`: fsync per append;
//! - `read_1GiB/log` vs `/raw_read`: sequential read of a 1 GiB log;
//! - `lookup_1GiB/offset`, `/timestamp`: random lookups in that log.
//!
//! `cargo run -p pubsub-benches --bin bench-report` prints the ratios.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pubsub_storage::{FlushPolicy, Log, LogConfig};

use common::{batch_of_1k_records, build_log};

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        flush,
        ..LogConfig::default()
    }
}

/// Appends `volume` bytes of `batch` to a fresh log per iteration;
/// `trusted` skips the CRC check (batches built in-process).
fn time_log_appends(
    batch: &[u8],
    volume: usize,
    flush: FlushPolicy,
    trusted: bool,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let (log, _) = Log::open(dir.path(), config(flush)).expect("open");
        let mut buf = batch.to_vec();
        let n = volume / batch.len();
        let start = Instant::now();
        for _ in 0..n {
            if trusted {
                log.append_trusted(black_box(&mut buf)).expect("append");
            } else {
                log.append(black_box(&mut buf)).expect("append");
            }
        }
        total += start.elapsed();
        drop(log);
    }
    total
}

/// Writes the same bytes to a plain file, optionally fdatasync per write.
fn time_raw_writes(batch: &[u8], volume: usize, sync: bool, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let mut file = File::create(dir.path().join("raw.log")).expect("create");
        let n = volume / batch.len();
        let start = Instant::now();
        for _ in 0..n {
            file.write_all(black_box(batch)).expect("write");
            if sync {
                file.sync_data().expect("fdatasync");
            }
        }
        total += start.elapsed();
    }
    total
}

fn append(c: &mut Criterion) {
    for (name, records, volume) in [("16KiB", 16, 64 << 20), ("1MiB", 1024, 256 << 20)] {
        let batch = batch_of_1k_records(records, 1);
        let bytes = (volume / batch.len() * batch.len()) as u64;
        let mut g = c.benchmark_group(format!("append_{name}"));
        g.sample_size(10).throughput(Throughput::Bytes(bytes));
        g.bench_function("log", |b| {
            b.iter_custom(|iters| {
                time_log_appends(&batch, volume, FlushPolicy::Never, false, iters)
            })
        });
        g.bench_function("log_trusted", |b| {
            b.iter_custom(|iters| time_log_appends(&batch, volume, FlushPolicy::Never, true, iters))
        });
        g.bench_function("raw_write", |b| {
            b.iter_custom(|iters| time_raw_writes(&batch, volume, false, iters))
        });
        g.finish();
    }
}

fn append_fsync(c: &mut Criterion) {
    for (name, records, volume) in [("16KiB", 16, 4 << 20), ("1MiB", 1024, 32 << 20)] {
        let batch = batch_of_1k_records(records, 2);
        let bytes = (volume / batch.len() * batch.len()) as u64;
        let mut g = c.benchmark_group(format!("append_fsync_{name}"));
        g.sample_size(10).throughput(Throughput::Bytes(bytes));
        g.bench_function("log", |b| {
            b.iter_custom(|iters| {
                time_log_appends(&batch, volume, FlushPolicy::Always, false, iters)
            })
        });
        g.bench_function("raw_write_fdatasync", |b| {
            b.iter_custom(|iters| time_raw_writes(&batch, volume, true, iters))
        });
        g.finish();
    }
}

const GIB: u64 = 1 << 30;

fn read_and_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let cfg = LogConfig::default();
    let (end, bytes) = build_log(dir.path(), GIB, cfg.clone());
    let (log, _) = Log::open(dir.path(), cfg).expect("open");
    let segments: Vec<_> = log.segments();

    let mut g = c.benchmark_group("read_1GiB");
    g.sample_size(10).throughput(Throughput::Bytes(bytes));
    let mut buf = Vec::with_capacity(2 << 20);
    g.bench_function("log", |b| {
        b.iter(|| {
            let mut next = 0;
            let mut total = 0usize;
            while next < end {
                log.read_into(next, 1 << 20, &mut buf).expect("read");
                // The next offset follows the last batch read.
                let mut at = 0;
                while at < buf.len() {
                    let h = pubsub_records::BatchHeader::parse(&buf[at..]).expect("header");
                    next = h.last_offset() as u64 + 1;
                    at += h.len;
                }
                total += buf.len();
            }
            black_box(total)
        })
    });
    let mut raw = vec![0u8; 1 << 20];
    g.bench_function("raw_read", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for seg in &segments {
                let path = dir.path().join(format!("{:020}.log", seg.base_offset));
                let mut f = File::open(path).expect("open");
                loop {
                    let n = f.read(&mut raw).expect("read");
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
            }
            black_box(total)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lookup_1GiB");
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut rand = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    g.bench_function("offset", |b| {
        b.iter(|| {
            let o = rand(end);
            log.read_into(o, 1, &mut buf).expect("read");
            black_box(buf.len())
        })
    });
    let first_ts = 1_700_000_000_000i64;
    g.bench_function("timestamp", |b| {
        b.iter(|| {
            let t = first_ts + rand(end) as i64;
            black_box(log.offset_for_timestamp(t).expect("lookup"))
        })
    });
    g.finish();
}

criterion_group!(benches, append, append_fsync, read_and_lookup);
criterion_main!(benches);
