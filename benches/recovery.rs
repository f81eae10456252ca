//! Opening logs:
//!
//! - `recovery_1GiB/rp_one_segment_behind`: open after an unclean stop of a
//!   1 GiB log (128 MiB segments) whose recovery point is at the start of the
//!   last sealed segment, so that segment and the active one are scanned;
//!   `/rp_zero` scans all of it, for comparison with a full CRC pass;
//!   baseline `/raw_read_scanned_bytes`: reading the same bytes from a file.
//! - `open_clean/1000_segments`: open of a cleanly closed log of 1,000 segments.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pubsub_storage::checkpoint::{Checkpoint, RecoveryCheckpoint};
use pubsub_storage::fs::RealFs;
use pubsub_storage::{Log, LogConfig, CLEAN_SHUTDOWN};

use common::build_log;

fn set_unclean(dir: &std::path::Path, rp: u64) {
    let _ = std::fs::remove_file(dir.join(CLEAN_SHUTDOWN));
    RecoveryCheckpoint {
        recovery_point: rp,
        log_start_offset: 0,
    }
    .write_to(&RealFs, dir)
    .expect("checkpoint");
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let cfg = LogConfig {
        segment_bytes: 128 << 20,
        ..LogConfig::default()
    };
    build_log(dir.path(), 1 << 30, cfg.clone());
    let segments = {
        let (log, _) = Log::open(dir.path(), cfg.clone()).expect("open");
        let s = log.segments();
        log.close().expect("close");
        s
    };
    let behind = &segments[segments.len() - 2];
    let scanned: u64 = segments[segments.len() - 2..].iter().map(|s| s.size).sum();

    let mut g = c.benchmark_group("recovery_1GiB");
    g.sample_size(10).throughput(Throughput::Bytes(scanned));
    let open_with_rp = |rp: u64, iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            set_unclean(dir.path(), rp);
            let start = Instant::now();
            let (log, report) = Log::open(dir.path(), cfg.clone()).expect("recover");
            total += start.elapsed();
            assert!(!report.clean_shutdown && report.is_clean());
            drop(log);
        }
        total
    };
    g.bench_function("rp_one_segment_behind", |b| {
        b.iter_custom(|iters| open_with_rp(behind.base_offset, iters))
    });
    g.bench_function("raw_read_scanned_bytes", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut total = 0;
            for seg in &segments[segments.len() - 2..] {
                let mut f = File::open(dir.path().join(format!("{:020}.log", seg.base_offset)))
                    .expect("open");
                loop {
                    let n = f.read(&mut buf).expect("read");
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

    let all: u64 = segments.iter().map(|s| s.size).sum();
    let mut g = c.benchmark_group("recovery_1GiB_full");
    g.sample_size(10).throughput(Throughput::Bytes(all));
    g.bench_function("rp_zero", |b| b.iter_custom(|iters| open_with_rp(0, iters)));
    g.finish();
}

fn open_clean(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let cfg = LogConfig {
        segment_bytes: 64 << 10,
        ..LogConfig::default()
    };
    // ~64 KiB segments of 16 KiB batches: 4 batches per segment.
    build_log(dir.path(), 1000 * 4 * 16_700, cfg.clone());
    let n = {
        let (log, _) = Log::open(dir.path(), cfg.clone()).expect("open");
        let n = log.segments().len();
        log.close().expect("close");
        n
    };
    assert!(n >= 1000, "built {n} segments");
    let mut g = c.benchmark_group("open_clean");
    g.sample_size(20);
    g.bench_function("1000_segments", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (log, report) = Log::open(dir.path(), cfg.clone()).expect("open");
                total += start.elapsed();
                assert!(report.clean_shutdown);
                log.close().expect("close");
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, recovery, open_clean);
criterion_main!(benches);
