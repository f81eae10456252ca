//! Helpers shared by the storage tests.

#![allow(dead_code)]

use pubsub_records::{Batch, BatchBuilder, Batches, Compression, NewRecord};
use pubsub_storage::{Log, LogConfig};

/// One record as the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// One record to write: key, value, timestamp.
pub type Spec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// A small config that rolls and indexes often.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        max_index_bytes: 4096,
        segment_ms: None,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// A batch of records `(key, value, timestamp)`.
pub fn batch_of(records: &[Spec<'_>], codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new().compression(codec);
    for (key, value, ts) in records {
        b.push(&NewRecord {
            timestamp: *ts,
            key: *key,
            value: *value,
            headers: &[],
        })
        .expect("push");
    }
    b.build().expect("build")
}

/// `n` records with values `"{prefix}-{i}"` and timestamps `ts0 + i`.
pub fn simple_batch(prefix: &str, n: usize, ts0: i64) -> Vec<u8> {
    let values: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let recs: Vec<Spec<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (None, Some(v.as_bytes()), ts0 + i as i64))
        .collect();
    batch_of(&recs, Compression::None)
}

/// Decodes every record of the batches in `bytes`.
pub fn records_in(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    for batch in Batches::new(bytes) {
        let batch = batch.expect("whole batches");
        batch.validate().expect("valid batch");
        let set = batch.records(64 << 20).expect("records");
        for r in set.iter() {
            let r = r.expect("record");
            out.push(Rec {
                offset: r.offset as u64,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
            });
        }
    }
    out
}

/// Every record from `from` to the end, read in steps of `step` bytes.
pub fn read_from(log: &Log, from: u64, step: usize) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        let r = log.read(next, step).expect("read");
        if r.records.is_empty() {
            break;
        }
        let mut last = next;
        for batch in Batches::new(&r.records) {
            let batch = batch.expect("batch");
            last = batch.last_offset() as u64;
        }
        out.extend(
            records_in(&r.records)
                .into_iter()
                .filter(|x| x.offset >= next),
        );
        next = last + 1;
    }
    out
}

/// Every record in the log.
pub fn read_all(log: &Log) -> Vec<Rec> {
    read_from(log, log.log_start_offset(), 64 << 10)
}

/// Base offsets and raw bytes of every batch in the log.
pub fn raw_batches(log: &Log) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20).expect("read");
        if r.records.is_empty() {
            break;
        }
        for batch in Batches::new(&r.records) {
            let batch = batch.expect("batch");
            out.push((batch.base_offset() as u64, batch.as_bytes().to_vec()));
            next = batch.last_offset() as u64 + 1;
        }
    }
    out
}

/// The base offset of the first batch in a read.
pub fn first_base(bytes: &[u8]) -> Option<u64> {
    Batch::parse(bytes).ok().map(|b| b.base_offset() as u64)
}

/// Tiny deterministic PRNG for tests that want variety without a crate.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Copies a directory tree (fixtures are opened from copies).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
