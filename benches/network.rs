//! `net-bench`: the daemon under a real Kafka client load generator, next
//! to baselines measured in the same run.
//!
//! For each case it starts a fresh `pubsub serve` (release build) on a
//! free loopback port and a new data directory, runs librdkafka's
//! `rdkafka_performance` against it and parses its summary; the baselines
//! are a raw loopback TCP copy (one writer, one reader, 1 MiB writes) and
//! the storage engine's in-process `Log::append` of the same 1 KiB records
//! in batches of the same size, flush never and fsync per batch, on the
//! same file system. Latency is rdkafka_performance's per-message delivery
//! latency (`-l -A file`: produce call to delivery report).
//!
//! ```sh
//! cargo build --release -p pubsub-cli -p pubsub-benches
//! target/release/net-bench --rdkafka-perf ../shared/tools/rdkafka-perf
//! ```
//!
//! Prints a markdown table and writes `target/net-bench.json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use pubsub_storage::{FlushPolicy, Log, LogConfig};

#[path = "common.rs"]
mod common;

const MB: f64 = 1_000_000.0;

struct Args {
    rdkafka_perf: String,
    pubsub: PathBuf,
    dir: PathBuf,
    messages: u64,
    batch: usize,
    quick: bool,
}

fn args() -> Args {
    let mut a = Args {
        rdkafka_perf: std::env::var("RDKAFKA_PERF").unwrap_or_else(|_| "rdkafka_performance".into()),
        pubsub: PathBuf::from("target/release/pubsub"),
        dir: std::env::temp_dir(),
        messages: 2_000_000,
        batch: 200,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--rdkafka-perf" => a.rdkafka_perf = value(),
            "--pubsub" => a.pubsub = value().into(),
            "--dir" => a.dir = value().into(),
            "--messages" => a.messages = value().parse().unwrap_or_else(|_| fail("--messages N")),
            "--batch" => a.batch = value().parse().unwrap_or_else(|_| fail("--batch N")),
            "--quick" => a.quick = true,
            "-h" | "--help" => {
                println!(
                    "net-bench [--rdkafka-perf PATH] [--pubsub PATH] [--dir DIR] \
                     [--messages N] [--batch N] [--quick]\n\n\
                     Example:\n  target/release/net-bench --rdkafka-perf ../shared/tools/rdkafka-perf"
                );
                std::process::exit(0);
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if a.quick {
        a.messages = a.messages.min(200_000);
    }
    a
}

fn fail(msg: &str) -> ! {
    eprintln!("net-bench: {msg}");
    std::process::exit(2)
}

/// One row of the report.
struct Row {
    name: String,
    mb_s: f64,
    msg_s: f64,
    latency: Option<Percentiles>,
}

#[derive(Clone, Copy)]
struct Percentiles {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn main() {
    let a = args();
    let work = tempfile::tempdir_in(&a.dir).unwrap_or_else(|e| fail(&format!("temp dir: {e}")));
    let bytes = a.messages * 1024;

    eprintln!("baseline: loopback TCP copy");
    let loopback = loopback_copy(bytes.max(1 << 30));
    eprintln!("baseline: in-process Log::append");
    let append = log_append(work.path(), bytes, a.batch, FlushPolicy::Never);
    let append_fsync = log_append(work.path(), bytes / 4, a.batch, FlushPolicy::Always);

    let mut rows = Vec::new();
    for partitions in [1u32, 8] {
        for acks in [1i32, -1] {
            let name = format!("produce acks={} partitions={partitions}", acks_name(acks));
            eprintln!("{name}");
            let server = Server::start(&a, work.path(), partitions);
            let mut argv = produce_args(&a, &server.addr, acks, partitions);
            argv.extend(["-c".into(), a.messages.to_string()]);
            let (mb_s, msg_s) = perf_summary(&run_perf(&a, &argv));
            rows.push(Row {
                name,
                mb_s,
                msg_s,
                latency: None,
            });
            if acks == 1 {
                // Consume what was just written, from the beginning.
                let name = format!("consume partitions={partitions}");
                eprintln!("{name}");
                let mut argv: Vec<String> = vec![
                    "-C".into(),
                    "-t".into(),
                    "bench".into(),
                    "-b".into(),
                    server.addr.clone(),
                    "-o".into(),
                    "beginning".into(),
                    "-c".into(),
                    a.messages.to_string(),
                    "-X".into(),
                    "fetch.max.bytes=52428800".into(),
                ];
                for p in 0..partitions {
                    argv.extend(["-p".into(), p.to_string()]);
                }
                let (mb_s, msg_s) = perf_summary(&run_perf(&a, &argv));
                rows.push(Row {
                    name,
                    mb_s,
                    msg_s,
                    latency: None,
                });
            }
            // Latency at half the rate just measured.
            let peak = msg_s;
            let rate = (peak / 2.0) as u64;
            let name = format!(
                "latency acks={} partitions={partitions} at {} msg/s",
                acks_name(acks),
                rate
            );
            eprintln!("{name}");
            let lat_file = work.path().join("latency.txt");
            let mut argv = produce_args(&a, &server.addr, acks, partitions);
            let count = (rate * 5).clamp(10_000, a.messages);
            argv.extend([
                "-c".into(),
                count.to_string(),
                "-r".into(),
                rate.to_string(),
                "-l".into(),
                "-A".into(),
                lat_file.display().to_string(),
            ]);
            let (mb_s, msg_s) = perf_summary(&run_perf(&a, &argv));
            rows.push(Row {
                name,
                mb_s,
                msg_s,
                latency: Some(percentiles(&lat_file)),
            });
            server.stop();
        }
    }

    println!(
        "\n| workload (1 KiB messages, batches of {}) | MB/s | msg/s | p50 ms | p99 ms | p99.9 ms | max ms |",
        a.batch
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        match r.latency {
            Some(l) => println!(
                "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                r.name, r.mb_s, r.msg_s, l.p50, l.p99, l.p999, l.max
            ),
            None => println!("| {} | {:.0} | {:.0} | | | | |", r.name, r.mb_s, r.msg_s),
        }
    }
    println!("\n| baseline (same run) | MB/s |");
    println!("|---|---|");
    println!("| loopback TCP copy, 1 MiB writes | {loopback:.0} |");
    println!("| Log::append in-process, flush never | {append:.0} |");
    println!("| Log::append in-process, fsync per batch | {append_fsync:.0} |");
    println!("\n| ratio | value |");
    println!("|---|---|");
    for r in rows.iter().filter(|r| r.name.starts_with("produce")) {
        let base = if r.name.contains("acks=all") {
            append_fsync
        } else {
            append
        };
        println!(
            "| {} / in-process append | {:.2}x |",
            r.name,
            r.mb_s / base
        );
        println!("| {} / loopback copy | {:.2}x |", r.name, r.mb_s / loopback);
    }
    for r in rows.iter().filter(|r| r.name.starts_with("consume")) {
        println!("| {} / loopback copy | {:.2}x |", r.name, r.mb_s / loopback);
    }

    let json = serde_json::json!({
        "batch": a.batch,
        "messages": a.messages,
        "baselines": {
            "loopback_copy_mb_s": loopback,
            "log_append_mb_s": append,
            "log_append_fsync_mb_s": append_fsync,
        },
        "rows": rows.iter().map(|r| serde_json::json!({
            "name": r.name,
            "mb_s": r.mb_s,
            "msg_s": r.msg_s,
            "latency_ms": r.latency.map(|l| serde_json::json!({
                "p50": l.p50, "p99": l.p99, "p99.9": l.p999, "max": l.max
            })),
        })).collect::<Vec<_>>(),
    });
    let out = Path::new("target").join("net-bench.json");
    if let Err(e) = std::fs::write(&out, format!("{json:#}\n")) {
        eprintln!("net-bench: writing {}: {e}", out.display());
    }
}

fn acks_name(acks: i32) -> &'static str {
    if acks < 0 {
        "all"
    } else {
        "1"
    }
}

fn produce_args(a: &Args, addr: &str, acks: i32, partitions: u32) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "-P".into(),
        "-t".into(),
        "bench".into(),
        "-b".into(),
        addr.into(),
        "-s".into(),
        "1024".into(),
        "-a".into(),
        acks.to_string(),
        "-X".into(),
        format!("batch.num.messages={}", a.batch),
        "-X".into(),
        "linger.ms=5".into(),
    ];
    if partitions == 1 {
        v.extend(["-p".into(), "0".into()]);
    }
    v
}

fn run_perf(a: &Args, argv: &[String]) -> String {
    let out = Command::new(&a.rdkafka_perf)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| fail(&format!("running {}: {e}", a.rdkafka_perf)));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        fail(&format!("rdkafka_performance {argv:?} failed:\n{text}"));
    }
    text
}

/// (MB/s, msg/s) from the last "... N msgs/s and X MB/s" line.
fn perf_summary(text: &str) -> (f64, f64) {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("msgs/s and"))
        .unwrap_or_else(|| fail(&format!("no summary in rdkafka_performance output:\n{text}")));
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |w: &str| -> f64 {
        words
            .iter()
            .position(|x| x.trim_end_matches(',') == w)
            .and_then(|i| words.get(i.checked_sub(1)?))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("cannot parse {w} in: {line}")))
    };
    (before("MB/s"), before("msgs/s"))
}

/// Percentiles (ms) of the per-message latencies (µs, one per line).
fn percentiles(path: &Path) -> Percentiles {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{e}")));
    let mut v: Vec<u64> = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if v.is_empty() {
        fail("no latency samples");
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    }
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(a: &Args, base: &Path, partitions: u32) -> Server {
        let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail(&format!("{e}")));
        let mut child = Command::new(&a.pubsub)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("PUBSUB_TOPICS_DEFAULT_PARTITIONS", partitions.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("starting {}: {e}", a.pubsub.display())));
        let stdout = child.stdout.take().unwrap_or_else(|| fail("no stdout"));
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap_or_else(|e| fail(&format!("{e}")));
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| fail(&format!("unexpected first line {line:?}")))
            .to_string();
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    fn stop(mut self) {
        // SIGTERM, then wait: the next case starts on a quiet machine.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Raw loopback TCP: one thread writes `bytes` in 1 MiB writes, another
/// reads them; MB/s.
fn loopback_copy(bytes: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("{e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&format!("{e}")));
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap_or_else(|e| fail(&format!("{e}")));
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) => fail(&format!("loopback read: {e}")),
            }
        }
        total
    });
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("{e}")));
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        s.write_all(&chunk).unwrap_or_else(|e| fail(&format!("loopback write: {e}")));
        sent += chunk.len() as u64;
    }
    drop(s);
    let got = reader.join().unwrap_or_else(|_| fail("reader thread"));
    let secs = start.elapsed().as_secs_f64();
    got as f64 / secs / MB
}

/// The storage engine's in-process append of 1 KiB records in batches of
/// `batch`, CRC checked as for client bytes; MB/s.
fn log_append(base: &Path, bytes: u64, batch: usize, flush: FlushPolicy) -> f64 {
    let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail(&format!("{e}")));
    let config = LogConfig {
        flush,
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir.path(), config).unwrap_or_else(|e| fail(&format!("{e}")));
    let template = common::batch_of_1k_records(batch, 11);
    let mut scratch = template.clone();
    let start = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        scratch.copy_from_slice(&template);
        log.append(&mut scratch)
            .unwrap_or_else(|e| fail(&format!("append: {e}")));
        written += scratch.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = log.close();
    written as f64 / secs / MB
}
