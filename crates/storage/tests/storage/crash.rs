//! Crash test with real processes: a child appends and reports every
//! acknowledged batch; it is killed with SIGKILL at random moments, many
//! times. After every kill the log must hold exactly the batches the child
//! wrote, in order, byte for byte, every acknowledged one among them, and
//! nothing else.
//!
//! The child is this same test binary, re-run with an environment variable
//! that makes the test body act as the appender.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use pubsub_records::{BatchBuilder, BatchMut, Batches, NewRecord};
use pubsub_storage::{FlushPolicy, Log, LogConfig};

use crate::common::*;

const CHILD_DIR: &str = "PUBSUB_CRASH_CHILD_DIR";
const CHILD_FLUSH: &str = "PUBSUB_CRASH_CHILD_FLUSH";

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        flush,
        ..LogConfig::default()
    }
}

/// Batch number `seq`: its content depends only on `seq`.
fn batch(seq: u64) -> Vec<u8> {
    let n = 1 + (seq % 7) as usize;
    let size = if seq.is_multiple_of(11) { 3000 } else { 40 };
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let value = format!("{seq}:{i}:").repeat(size / 8);
        let key = format!("k{}", seq % 13);
        b.push(&NewRecord {
            timestamp: 1_600_000_000_000 + seq as i64 * 1000 + i as i64,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    b.build().expect("build")
}

/// The child: append forever, printing `ack SEQ BASE LAST` after each append
/// returns.
fn child(dir: &str, flush: FlushPolicy) -> ! {
    let (log, _) = Log::open(dir, config(flush)).expect("child open");
    // Continue numbering after what the log already holds.
    let mut seq = 0u64;
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20).expect("read");
        for b in Batches::new(&r.records) {
            let b = b.expect("batch");
            seq += 1;
            next = b.last_offset() as u64 + 1;
        }
    }
    let mut out = std::io::stdout().lock();
    loop {
        let mut bytes = batch(seq);
        let info = log.append(&mut bytes).expect("child append");
        writeln!(out, "ack {seq} {} {}", info.base_offset, info.last_offset).expect("stdout");
        out.flush().expect("flush");
        seq += 1;
    }
}

/// Checks the log against the child's acknowledgements; returns the batch count.
fn verify(dir: &std::path::Path, acks: &[(u64, u64, u64)]) -> u64 {
    let (log, report) = Log::open(dir, config(FlushPolicy::Never)).expect("reopen after kill");
    assert!(
        report.dropped_segments.is_empty(),
        "a kill cannot cut a sealed segment: {report}"
    );
    let mut seq = 0u64;
    let mut offset = 0u64;
    for (base, bytes) in raw_batches(&log) {
        let mut want = batch(seq);
        BatchMut::parse(&mut want)
            .expect("batch")
            .set_base_offset(offset as i64);
        assert_eq!(base, offset, "batch {seq} is at the wrong offset");
        assert!(
            bytes == want,
            "batch {seq} at offset {offset} differs from what was written"
        );
        offset += pubsub_records::Batch::parse(&bytes)
            .expect("batch")
            .last_offset_delta() as u64
            + 1;
        seq += 1;
    }
    for &(s, base, last) in acks {
        assert!(
            s < seq,
            "acknowledged batch {s} (offsets {base}-{last}) is missing; log holds {seq}"
        );
    }
    assert_eq!(log.log_end_offset(), offset);
    if seq.is_multiple_of(2) {
        log.close().expect("close");
    }
    seq
}

fn kill_cycles(flush_name: &str, cycles: usize, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut rng = Rng(seed);
    let mut acks: Vec<(u64, u64, u64)> = Vec::new();
    let mut batches = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::appends_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_FLUSH, flush_name)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let ["ack", s, b, l] = parts[..] {
                    if let (Ok(s), Ok(b), Ok(l)) = (s.parse(), b.parse(), l.parse()) {
                        acks.push((s, b, l));
                    }
                }
            }
            acks
        });
        // Let it start and append for a while, then kill it mid-flight.
        let mut waited = 0;
        while waited < 40 && child.try_wait().expect("try_wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
            waited += 1;
            if dir.path().join("00000000000000000000.log").exists() && waited > 2 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(150)));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "child died on its own"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let new_acks = reader.join().expect("reader");
        acks.extend(new_acks);
        let count = verify(dir.path(), &acks);
        assert!(
            count >= batches,
            "cycle {cycle}: batches went from {batches} to {count}"
        );
        batches = count;
    }
    assert!(
        acks.len() > cycles,
        "the child acknowledged only {} batches",
        acks.len()
    );
}

#[test]
fn appends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let flush = match std::env::var(CHILD_FLUSH).as_deref() {
            Ok("always") => FlushPolicy::Always,
            _ => FlushPolicy::Never,
        };
        child(&dir, flush);
    }
    kill_cycles("never", 25, 0x5eed);
    kill_cycles("always", 15, 0xbeef);
}
