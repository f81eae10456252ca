//! `net-bench --send-modes`: the server's own `FrameSender` sending a
//! file's page-cache pages to a loopback reader in each zero-copy mode
//! (`splice` through a pooled pipe, `sendfile`), next to a plain `send` of
//! the same bytes from memory (the loopback copy's writer). Each case
//! moves `--messages` KiB (at least 1 GiB) as 8 MiB answers of eight
//! 1 MiB ranges, as an 8-partition fetch does; the cases are alternated
//! `--rounds` times. Per case: MB/s and the sending thread's CPU seconds
//! per GB (`getrusage(RUSAGE_THREAD)`; the sender runs on a
//! current-thread runtime, so that is all its work, the loopback's
//! receive processing run in its softirqs included).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use pubsub_broker::FileRange;
use pubsub_server::fetch_response::{Chunk, ResponseFrame};
use pubsub_server::sender::{FrameSender, SendMode};
use pubsub_storage::fs::{FileHandle, RealFile};

use super::{fail, settle, MB};

/// The file sent from: 128 MiB, just written, so in the page cache.
const FILE: usize = 128 << 20;

/// One range, as one partition's share of a fetch.
const RANGE: usize = 1 << 20;

/// Ranges per answer.
const RANGES: usize = 8;

/// How a case sends.
#[derive(Clone, Copy)]
enum Case {
    Zero(SendMode),
    FromMemory,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Zero(SendMode::Splice) => "splice through a 1 MiB pipe (SendMode::Splice)",
            Case::Zero(SendMode::Sendfile) => "sendfile (SendMode::Sendfile)",
            Case::Zero(SendMode::Copy) => "pread and send (SendMode::Copy)",
            Case::FromMemory => "send from memory (the loopback copy's writer)",
        }
    }
}

/// Runs the cases and prints their table.
pub fn run(dir: &Path, bytes: u64, rounds: usize) {
    let path = dir.join("send-modes.bin");
    let pattern: Vec<u8> = (0..FILE).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &pattern).unwrap_or_else(|e| fail(&format!("{e}")));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| fail(&format!("{e}")));
    let file: Arc<dyn FileHandle> = Arc::new(RealFile::new(file));
    let answers = (bytes.max(1 << 30) as usize).div_ceil(RANGE * RANGES);
    let cases = [
        Case::Zero(SendMode::Splice),
        Case::Zero(SendMode::Sendfile),
        Case::FromMemory,
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); cases.len()];
    settle();
    for round in 1..=rounds {
        for (i, case) in cases.iter().enumerate() {
            eprintln!("round {round}: {}", case.name());
            results[i].push(one(*case, &file, &pattern, answers));
        }
    }
    println!(
        "\n| {answers} answers of {RANGES} x 1 MiB ranges, page cache warm | MB/s per round | median MB/s | sender CPU s/GB per round | median CPU s/GB | CPU / send from memory (medians) |"
    );
    println!("|---|---|---|---|---|---|");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let from_memory_cpu = median(results[cases.len() - 1].iter().map(|r| r.1).collect());
    for (case, r) in cases.iter().zip(&results) {
        let rates: Vec<f64> = r.iter().map(|x| x.0).collect();
        let cpus: Vec<f64> = r.iter().map(|x| x.1).collect();
        let join = |v: &[f64], digits: usize| {
            v.iter()
                .map(|x| format!("{x:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cpu = median(cpus.clone());
        println!(
            "| {} | {} | {:.0} | {} | {:.3} | {:.2}x |",
            case.name(),
            join(&rates, 0),
            median(rates.clone()),
            join(&cpus, 3),
            cpu,
            cpu / from_memory_cpu
        );
    }
    println!("\nload average at the end: {}", super::load_average());
}

/// One case: MB/s and the sender's CPU seconds per GB.
fn one(case: Case, file: &Arc<dyn FileHandle>, pattern: &[u8], answers: usize) -> (f64, f64) {
    let (addr, reader) = super::loopback_reader(super::Reader::Plain);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail(&format!("{e}")));
    // The bytes a send from memory sends, copied before the clock starts.
    let from_memory = matches!(case, Case::FromMemory).then(|| Bytes::copy_from_slice(pattern));
    let cpu = thread_cpu_seconds();
    let start = Instant::now();
    match case {
        Case::Zero(mode) => runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| fail(&format!("{e}")));
            let (_read, write) = stream.into_split();
            let mut sender = FrameSender::new(write, mode);
            for a in 0..answers {
                let chunks = (0..RANGES)
                    .map(|r| {
                        let pos = ((a * RANGES + r) * RANGE) % FILE;
                        Chunk::File(FileRange::new(
                            Arc::clone(file),
                            pos as u64,
                            RANGE as u64,
                            0,
                            0,
                        ))
                    })
                    .collect();
                sender
                    .send(ResponseFrame::from_chunks(chunks))
                    .await
                    .unwrap_or_else(|e| fail(&format!("send: {e}")));
            }
            sender
                .flush()
                .await
                .unwrap_or_else(|e| fail(&format!("flush: {e}")));
        }),
        Case::FromMemory => {
            let bytes = from_memory.unwrap_or_default();
            let mut s =
                std::net::TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("{e}")));
            for a in 0..answers * RANGES {
                let pos = (a * RANGE) % FILE;
                s.write_all(&bytes[pos..pos + RANGE])
                    .unwrap_or_else(|e| fail(&format!("send: {e}")));
            }
        }
    }
    let cpu = thread_cpu_seconds() - cpu;
    let got = reader.join().unwrap_or_else(|_| fail("reader thread"));
    let secs = start.elapsed().as_secs_f64();
    let want = (answers * RANGES * RANGE) as u64;
    if got != want {
        fail(&format!("the reader got {got} bytes of {want}"));
    }
    (got as f64 / secs / MB, cpu / (got as f64 / 1e9))
}

/// This thread's user + system CPU seconds.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        fail("getrusage");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
