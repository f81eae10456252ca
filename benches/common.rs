//! Data shared by the benchmarks.

#![allow(dead_code)]

use std::path::Path;

use pubsub_records::{BatchBuilder, NewRecord};
use pubsub_storage::{Log, LogConfig};

/// One batch of `records` 1 KiB records (values vary so nothing is trivially
/// compressible, though batches are uncompressed).
pub fn batch_of_1k_records(records: usize, seed: u64) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    let mut value = vec![0u8; 1024];
    let mut x = seed | 1;
    for i in 0..records {
        for chunk in value.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(&value),
            headers: &[],
        })
        .expect("push");
    }
    b.build().expect("build")
}

/// Writes a log of about `bytes` bytes of 16 KiB batches into `dir` and
/// closes it. Record timestamps increase by 1 ms per record.
pub fn build_log(dir: &Path, bytes: u64, config: LogConfig) -> (u64, u64) {
    let (log, _) = Log::open(dir, config).expect("open");
    let template = batch_of_1k_records(16, 7);
    let mut written = 0;
    let mut ts = 1_700_000_000_000i64;
    while written < bytes {
        let mut b = BatchBuilder::new();
        for i in 0..16 {
            b.push(&NewRecord {
                timestamp: ts + i,
                key: None,
                value: Some(&template[100..1124]),
                headers: &[],
            })
            .expect("push");
        }
        ts += 16;
        let mut batch = b.build().expect("build");
        written += batch.len() as u64;
        log.append(&mut batch).expect("append");
    }
    let end = log.log_end_offset();
    log.close().expect("close");
    (end, written)
}
