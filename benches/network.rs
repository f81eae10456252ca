//! `net-bench`: the daemon under a real Kafka client load generator, next
//! to baselines measured in the same run.
//!
//! For each case it starts a fresh `pubsub serve` (release build) on a
//! free loopback port and a new data directory, runs librdkafka's
//! `rdkafka_performance` against it and parses its summary; the baselines
//! are a raw loopback TCP copy (one writer, one reader, 1 MiB writes; the
//! reader plain, woken by every arriving segment, and with a 256 KiB
//! low-water mark, as pubsub's client reads a large answer) and
//! the storage engine's in-process `Log::append` of the same 1 KiB records
//! in batches of the same size, flush never and fsync per batch, on the
//! same file system. `pubsub bench produce` then runs the same workload,
//! and again paced at half the peak rdkafka_performance reached, for
//! latency percentiles (rdkafka_performance's own pacing polls once per
//! message and cannot hold such rates), and `pubsub bench e2e` at that
//! rate for end-to-end latency. After acks=1 cases, rdkafka_performance
//! and `pubsub bench consume` read the topic back. The disk is synced and
//! left to drain for a few seconds before each case.
//!
//! ```sh
//! cargo build --release -p pubsub-cli -p pubsub-benches
//! target/release/net-bench --rdkafka-perf ../shared/tools/rdkafka-perf
//! ```
//!
//! `--produce` runs only what the produce path is judged by: the in-process
//! append (flush never) and acks=1 produce over the network, alternated
//! `--rounds` times (default 3) so both see the same machine, each
//! network row with the server's CPU time per message (utime + stime from
//! `/proc/PID/stat`, steadier than throughput on a shared machine), and the
//! ratio of the medians (and of each round's). Every case starts from the
//! same state (log or topic existing, first append done, disk settled) and
//! writes the same batches; `Broker::produce` in-process separates what the
//! broker adds to `Log::append` from what the network adds.
//! `--clients broker,raw,rdkafka,own` picks the cases (default all).
//!
//! Prints a markdown table and writes `target/net-bench.json`.
//!
//! `--send-modes` runs no broker: the server's `FrameSender` sends a
//! cached file to a loopback reader with `splice` and with `sendfile`,
//! next to a send from memory, alternated `--rounds` times, with the
//! sending thread's CPU per GB (`send_modes.rs`).
//!
//! `--consume-only` runs just the consume cases (1 and 8 partitions:
//! rdkafka_performance produces the topic with acks=1, then reads it back
//! `--consume-runs` times, the page cache warm) next to the loopback copy
//! measured before and after them and just before each case; it prints
//! consume / loopback ratios (to the mean and to the copy just before) and,
//! per row, the broker's and the client's CPU seconds per GB (the client:
//! the raw consumer's thread or the tool's process, from `/proc/self/stat`
//! with its waited-for children). Per run: the raw consumer at
//! `--fetch-bytes` and at librdkafka's default 1 MiB a partition,
//! rdkafka_performance with its defaults and with
//! `max.partition.fetch.bytes` at `--fetch-bytes`, and `pubsub bench`.
//! `--kafka` runs the same cases against Apache Kafka 4.1.1 afterwards
//! (`compat/kafka`, so run from the repository root, with
//! `benches/vs-kafka.sh`'s JVM settings). `--pubsub PATH` points it at
//! another build (an A/B of the fetch path).
//!
//! Both modes also run raw-wire clients (`raw_client.rs`): a consumer that
//! walks only batch headers and a producer of prebuilt requests, each
//! costing about what the loopback copy's reader or writer costs, so their
//! rows measure the broker alone; rdkafka_performance's rows measure the
//! broker plus a real client. `--fetch-bytes N` sets the raw consumer's
//! fetch size (default 8 MiB), `--window N` the raw producer's requests in
//! flight (default 16).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use pubsub_client::low_water;
use pubsub_storage::{FlushPolicy, Log, LogConfig};

#[path = "common.rs"]
mod common;
#[path = "raw_client.rs"]
mod raw_client;
#[path = "send_modes.rs"]
mod send_modes;

const MB: f64 = 1_000_000.0;

struct Args {
    rdkafka_perf: String,
    pubsub: PathBuf,
    dir: PathBuf,
    messages: u64,
    batch: usize,
    quick: bool,
    produce_only: bool,
    rounds: usize,
    consume_only: bool,
    send_modes: bool,
    consume_runs: u32,
    fetch_bytes: i32,
    window: usize,
    against: Option<String>,
    partitions: u32,
    /// `--produce`'s cases besides the in-process append.
    clients: Vec<String>,
    kafka: bool,
}

fn args() -> Args {
    let mut a = Args {
        rdkafka_perf: std::env::var("RDKAFKA_PERF")
            .unwrap_or_else(|_| "rdkafka_performance".into()),
        pubsub: PathBuf::from("target/release/pubsub"),
        dir: std::env::temp_dir(),
        messages: 1_000_000,
        batch: 200,
        quick: false,
        produce_only: false,
        rounds: 3,
        consume_only: false,
        send_modes: false,
        consume_runs: 3,
        fetch_bytes: 8 << 20,
        window: 16,
        against: None,
        partitions: 1,
        clients: ["broker", "raw", "rdkafka", "own"]
            .map(String::from)
            .to_vec(),
        kafka: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| fail(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--rdkafka-perf" => a.rdkafka_perf = value(),
            "--pubsub" => a.pubsub = value().into(),
            "--dir" => a.dir = value().into(),
            "--messages" => a.messages = value().parse().unwrap_or_else(|_| fail("--messages N")),
            "--batch" => a.batch = value().parse().unwrap_or_else(|_| fail("--batch N")),
            "--quick" => a.quick = true,
            "--produce" => a.produce_only = true,
            "--rounds" => a.rounds = value().parse().unwrap_or_else(|_| fail("--rounds N")),
            "--consume-only" => a.consume_only = true,
            "--send-modes" => a.send_modes = true,
            "--kafka" => a.kafka = true,
            "--consume-runs" => {
                a.consume_runs = value().parse().unwrap_or_else(|_| fail("--consume-runs N"))
            }
            "--fetch-bytes" => {
                a.fetch_bytes = value().parse().unwrap_or_else(|_| fail("--fetch-bytes N"))
            }
            "--against" => a.against = Some(value()),
            "--partitions" => {
                a.partitions = value().parse().unwrap_or_else(|_| fail("--partitions N"))
            }
            "--window" => a.window = value().parse().unwrap_or_else(|_| fail("--window N")),
            "--clients" => {
                a.clients = value()
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect();
                let known = ["broker", "raw", "rdkafka", "own"];
                if let Some(c) = a.clients.iter().find(|c| !known.contains(&c.as_str())) {
                    fail(&format!("--clients: unknown {c} (of {})", known.join(",")))
                }
            }
            "-h" | "--help" => {
                println!(
                    "net-bench [--rdkafka-perf PATH] [--pubsub PATH] [--dir DIR] \
                     [--messages N] [--batch N] [--quick] [--produce [--rounds N] [--window N] [--clients broker,raw,rdkafka,own]] \
                     [--consume-only [--consume-runs N] [--fetch-bytes N] [--kafka]] [--send-modes [--rounds N]] \
                     [--against HOST:PORT [--partitions N]]\n\n\
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

pub(crate) fn fail(msg: &str) -> ! {
    eprintln!("net-bench: {msg}");
    // Servers still running are stopped (exit skips destructors).
    for pid in SERVERS.lock().map(|v| v.clone()).unwrap_or_default() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    std::process::exit(2)
}

/// Process ids of the servers started and not yet stopped.
static SERVERS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

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
    if let Some(addr) = &a.against {
        raw_against(&a, addr);
        return;
    }
    if a.produce_only {
        produce_path(&a, work.path());
        return;
    }
    if a.consume_only {
        consume_only(&a, work.path(), bytes);
        return;
    }
    if a.send_modes {
        send_modes::run(work.path(), bytes, a.rounds);
        return;
    }

    eprintln!("baseline: loopback TCP copy");
    let copies = Copies::measure(bytes.max(1 << 30));
    let loopback = copies.plain;
    eprintln!("baseline: in-process Log::append");
    let requests = (a.messages / a.batch as u64).max(1);
    let (append, _) = log_append(work.path(), requests, a.batch, FlushPolicy::Never);
    let (append_fsync, _) = log_append(
        work.path(),
        (requests / 4).max(1),
        a.batch,
        FlushPolicy::Always,
    );

    let mut rows = Vec::new();
    for partitions in [1u32, 8] {
        for acks in [1i32, -1] {
            let name = format!(
                "produce acks={} partitions={partitions}, rdkafka_performance",
                acks_name(acks)
            );
            eprintln!("{name}");
            let server = Server::start(&a, work.path(), partitions);
            settle();
            let mut argv = produce_args(&a, &server.addr, acks, partitions);
            argv.extend(["-c".into(), a.messages.to_string()]);
            let produced = perf_row(&a, name, &argv);
            let peak = produced.msg_s;
            rows.push(produced);
            if acks == 1 {
                // Consume what was just written, from the beginning.
                let name = format!("consume partitions={partitions}, rdkafka_performance");
                eprintln!("{name}");
                let argv = consume_args(&a, &server.addr, partitions, None);
                rows.push(perf_row(&a, name, &argv));
                let name = format!("consume partitions={partitions}, pubsub bench");
                eprintln!("{name}");
                rows.push(own_consume(&a, &server.addr, &name, "bench"));
            }
            // pubsub's own load generator on the same workload, then at
            // half the peak rate rdkafka_performance just reached: it paces
            // batches precisely and measures latency open-loop.
            settle();
            let name = format!(
                "produce acks={} partitions={partitions}, pubsub bench",
                acks_name(acks)
            );
            eprintln!("{name}");
            rows.push(own_load(
                &a,
                &server.addr,
                &name,
                "produce",
                "own",
                acks,
                partitions,
                a.messages,
                None,
            ));
            settle();
            let rate = (peak / 2.0) as u64;
            let name = format!(
                "produce acks={} partitions={partitions} at half peak ({rate} msg/s), pubsub bench",
                acks_name(acks)
            );
            eprintln!("{name}");
            let count = (rate * 4).min(a.messages);
            rows.push(own_load(
                &a,
                &server.addr,
                &name,
                "produce",
                "paced",
                acks,
                partitions,
                count,
                Some(rate),
            ));
            // The same paced load, consumed as it arrives: end-to-end
            // latency next to the produce latency of the row above.
            settle();
            let name = format!(
                "end to end acks={} partitions={partitions} at half peak ({rate} msg/s), pubsub bench e2e",
                acks_name(acks)
            );
            eprintln!("{name}");
            rows.push(own_load(
                &a,
                &server.addr,
                &name,
                "e2e",
                "e2e",
                acks,
                partitions,
                count,
                Some(rate),
            ));
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
    println!(
        "| loopback TCP copy, 1 MiB writes, reader's low-water mark {} KiB | {:.0} |",
        MARK_KIB, copies.marked
    );
    println!("| Log::append in-process, flush never | {append:.0} |");
    println!("| Log::append in-process, fsync per batch | {append_fsync:.0} |");
    println!("\n| ratio | value |");
    println!("|---|---|");
    for r in rows
        .iter()
        .filter(|r| r.name.starts_with("produce") && !r.name.contains("half"))
    {
        let base = if r.name.contains("acks=all") {
            append_fsync
        } else {
            append
        };
        println!("| {} / in-process append | {:.2}x |", r.name, r.mb_s / base);
        println!("| {} / loopback copy | {:.2}x |", r.name, r.mb_s / loopback);
    }
    for r in rows.iter().filter(|r| r.name.starts_with("consume")) {
        println!("| {} / loopback copy | {:.2}x |", r.name, r.mb_s / loopback);
        println!(
            "| {} / loopback copy, marked reader | {:.2}x |",
            r.name,
            r.mb_s / copies.marked
        );
    }

    let json = serde_json::json!({
        "batch": a.batch,
        "messages": a.messages,
        "baselines": {
            "loopback_copy_mb_s": loopback,
            "loopback_copy_marked_mb_s": copies.marked,
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

/// `--produce`: in-process append and acks=1 network produce on one
/// partition, alternated, then the medians and their ratio.
///
/// Every case is measured in the same state: its log or topic already
/// exists before the clock starts (the in-process logs are opened first; a
/// network case's topic is created and sent one small request, which writes
/// the partition's leader-epoch file, then left idle while the disk
/// settles), each writes the same batches (`messages / batch` of them), and
/// MB/s counts 1 KiB payloads in every row.
fn produce_path(a: &Args, base: &Path) {
    let mut appends = Vec::new();
    let mut brokers = Vec::new();
    let mut perf = Vec::new();
    let mut own = Vec::new();
    let mut raw = Vec::new();
    let batch = common::batch_of_1k_records(a.batch, 11);
    let requests = (a.messages / a.batch as u64).max(1);
    let messages = requests * a.batch as u64;
    let load_before = load_average();
    let wants = |client: &str| a.clients.iter().any(|c| c == client);
    for round in 1..=a.rounds.max(1) {
        eprintln!("round {round}: in-process Log::append");
        let (mb, cpu) = log_append(base, requests, a.batch, FlushPolicy::Never);
        appends.push((mb, cpu, None));
        if wants("broker") {
            eprintln!("round {round}: in-process Broker::produce");
            let (mb, cpu) = broker_produce(base, requests, a.batch);
            brokers.push((mb, cpu, None));
        }
        if wants("rdkafka") {
            eprintln!("round {round}: produce acks=1, rdkafka_performance");
            let server = warm_server(a, base, "bench");
            let mut argv = produce_args(a, &server.addr, 1, 1);
            argv.extend(["-c".into(), messages.to_string()]);
            let (cpu, client) = (server.cpu_ticks(), children_cpu_ticks());
            let row = perf_row(a, String::new(), &argv);
            perf.push((
                row.mb_s,
                server.cpu_ticks() - cpu,
                Some(children_cpu_ticks() - client),
            ));
            server.stop();
        }
        if wants("own") {
            eprintln!("round {round}: produce acks=1, pubsub bench");
            let server = warm_server(a, base, "own");
            let (cpu, client) = (server.cpu_ticks(), children_cpu_ticks());
            let row = own_load(a, &server.addr, "", "produce", "own", 1, 1, messages, None);
            own.push((
                row.mb_s,
                server.cpu_ticks() - cpu,
                Some(children_cpu_ticks() - client),
            ));
            server.stop();
        }
        if wants("raw") {
            eprintln!("round {round}: produce acks=1, raw producer");
            let server = warm_server(a, base, "bench");
            let cpu = server.cpu_ticks();
            let moved = raw_client::produce(
                &server.addr,
                "bench",
                1,
                &batch,
                a.batch as u64,
                requests,
                a.window,
            )
            .unwrap_or_else(|e| fail(&format!("raw producer: {e}")));
            raw.push((
                raw_row(String::new(), &moved).mb_s,
                server.cpu_ticks() - cpu,
                None,
            ));
            server.stop();
        }
    }
    let load_after = load_average();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Clock ticks are 10 ms on Linux (USER_HZ 100).
    let us_per_msg = |ticks: u64| ticks as f64 * 10_000.0 / messages as f64;
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}-{hi:.0}")
    };
    let append_mb: Vec<f64> = appends.iter().map(|r| r.0).collect();
    let append = median(append_mb.clone());
    let append_cpu = median(appends.iter().map(|r| us_per_msg(r.1)).collect());
    println!("\nload average (1, 5, 15 min): {load_before} at the start, {load_after} at the end");
    println!(
        "\n| 1 KiB records, batches of {}, {messages} messages, acks=1 / flush never, 1 partition | MB/s per round | median MB/s (min-max) | ratio to in-process append (per round) | CPU µs/msg per round (in-process: the process; network: the server) | in-process append CPU / this CPU (medians) | client CPU µs/msg per round |",
        a.batch
    );
    println!("|---|---|---|---|---|---|---|");
    let raw_name = format!(
        "produce, raw producer ({} in flight; measures the broker)",
        a.window
    );
    for (name, rows) in [
        ("Log::append in-process", &appends),
        (
            "Broker::produce in-process (partition checks, no network)",
            &brokers,
        ),
        (raw_name.as_str(), &raw),
        ("produce, rdkafka_performance", &perf),
        ("produce, pubsub bench", &own),
    ] {
        if rows.is_empty() {
            continue;
        }
        let mb: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let cpu: Vec<f64> = rows.iter().map(|r| us_per_msg(r.1)).collect();
        let cpu_list = cpu
            .iter()
            .map(|c| format!("{c:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Clients run as child processes: their CPU, once waited for.
        let client_list = rows
            .iter()
            .filter_map(|r| r.2)
            .map(|t| format!("{:.2}", us_per_msg(t)))
            .collect::<Vec<_>>()
            .join(", ");
        // Each round's ratio is to that round's append, measured a minute
        // or two apart at most.
        let per_round = mb
            .iter()
            .zip(&append_mb)
            .map(|(m, a)| format!("{:.2}", m / a))
            .collect::<Vec<_>>()
            .join(", ");
        let m = median(mb.clone());
        println!(
            "| {name} | {} | {m:.0} ({}) | {:.2}x ({per_round}) | {cpu_list} | {:.2}x | {client_list} |",
            list(&mb),
            spread(&mb),
            m / append,
            append_cpu / median(cpu)
        );
    }
}

/// A fresh server whose `topic` (one partition) exists and has taken one
/// small produce request, then a settled disk: what a case measures is
/// steady-state appends, as the in-process append's (whose log is open
/// before its clock starts). The first append to a partition writes its
/// leader-epoch file with an fsync.
fn warm_server(a: &Args, base: &Path, topic: &str) -> Server {
    let server = Server::start(a, base, 1);
    let small = common::batch_of_1k_records(1, 3);
    raw_client::produce(&server.addr, topic, 1, &small, 1, 1, 1)
        .unwrap_or_else(|e| fail(&format!("warming {topic} up: {e}")));
    settle();
    server
}

/// CPU time (utime + stime, all threads) of process `pid` (or `self`) so
/// far, in clock ticks.
fn process_cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_ticks(&stat, &[14, 15])
}

/// CPU time (cutime + cstime) of this process's children that have been
/// waited for, in clock ticks: a client run with `Command::output` counts
/// once it has exited.
fn children_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_ticks(&stat, &[16, 17])
}

/// `/proc/loadavg`'s three averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The consume cases alone, between two loopback copies. Per run, against
/// the same broker and topic: the raw consumer with `--fetch-bytes`
/// fetches and with librdkafka's default 1 MiB per partition (the broker
/// alone, at the client's fetch size), rdkafka_performance with its
/// defaults and with `max.partition.fetch.bytes` raised to
/// `--fetch-bytes` (fewer round trips), and `pubsub bench consume`. Each
/// row has the broker's CPU time per GB and the client's (the raw
/// consumer's thread or the tool's process), the two halves of the cores
/// a consume shares, and its ratio to the mean of the loopback copies
/// before and after all cases and to a loopback copy run just before it
/// (this machine's copy rate drifts by 1.3x within a minute). `--kafka`
/// runs the same cases against Apache Kafka (`compat/kafka`, run from the
/// repository root) after pubsub's.
fn consume_only(a: &Args, base: &Path, bytes: u64) {
    // Every loopback copy moves at least 1 GiB, however few the messages.
    let copy = bytes.max(1 << 30);
    eprintln!("baseline: loopback TCP copy");
    let before = Copies::measure(copy);
    let mut rows = Vec::new();
    let mut brokers = vec![BrokerKind::Pubsub];
    if a.kafka {
        brokers.push(BrokerKind::Kafka);
    }
    for kind in brokers {
        for partitions in [1u32, 8] {
            let server = Server::start_kind(a, base, partitions, kind);
            let mut argv = produce_args(a, &server.addr, 1, partitions);
            argv.extend(["-c".into(), a.messages.to_string()]);
            eprintln!("{} produce partitions={partitions}", kind.name());
            run_perf(a, &argv);
            settle();
            for run in 1..=a.consume_runs {
                let prefix = format!("{} consume partitions={partitions} run {run}", kind.name());
                for fetch in [a.fetch_bytes, RDKAFKA_PARTITION_FETCH] {
                    let name = format!(
                        "{prefix}, raw consumer ({} MiB fetches)",
                        f64::from(fetch) / f64::from(1 << 20)
                    );
                    eprintln!("{name}");
                    let adjacent = loopback_copy(copy, Reader::Marked);
                    let cost = Cost::start(&server);
                    let moved =
                        raw_client::consume(&server.addr, "bench", partitions as i32, fetch)
                            .unwrap_or_else(|e| fail(&format!("raw consumer: {e}")));
                    if moved.records != a.messages {
                        fail(&format!(
                            "raw consumer read {} records of {}",
                            moved.records, a.messages
                        ));
                    }
                    rows.push((raw_row(name, &moved), cost.stop(&server), adjacent));
                }
                let name = format!("{prefix}, rdkafka_performance (defaults: 1 MiB a partition)");
                eprintln!("{name}");
                let adjacent = loopback_copy(copy, Reader::Marked);
                let cost = Cost::start(&server);
                let row = perf_row(a, name, &consume_args(a, &server.addr, partitions, None));
                rows.push((row, cost.stop(&server), adjacent));
                let name = format!(
                    "{prefix}, rdkafka_performance (max.partition.fetch.bytes {} MiB)",
                    a.fetch_bytes >> 20
                );
                eprintln!("{name}");
                let adjacent = loopback_copy(copy, Reader::Marked);
                let cost = Cost::start(&server);
                let argv = consume_args(a, &server.addr, partitions, Some(a.fetch_bytes));
                let row = perf_row(a, name, &argv);
                rows.push((row, cost.stop(&server), adjacent));
                let name = format!("{prefix}, pubsub bench");
                eprintln!("{name}");
                let adjacent = loopback_copy(copy, Reader::Marked);
                let cost = Cost::start(&server);
                let row = own_consume(a, &server.addr, &name, "bench");
                rows.push((row, cost.stop(&server), adjacent));
            }
            server.stop();
        }
    }
    eprintln!("baseline: loopback TCP copy");
    let after = Copies::measure(copy);
    let loopback = Copies::mean(before, after);
    println!(
        "\n| workload (1 KiB messages, batches of {}) | MB/s | msg/s | broker CPU s/GB | client CPU s/GB | / loopback copy | / copy, marked reader | marked copy just before, MB/s | / that copy |",
        a.batch
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // GB of payload a run moved.
    let gb = a.messages as f64 * 1024.0 / 1e9;
    for (r, (broker, client), adjacent) in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.0} | {:.2}x |",
            r.name,
            r.mb_s,
            r.msg_s,
            broker / gb,
            client / gb,
            r.mb_s / loopback.plain,
            r.mb_s / loopback.marked,
            adjacent,
            r.mb_s / adjacent
        );
    }
    println!(
        "\nloopback TCP copy, 1 MiB writes: plain reader {:.0} MB/s before, {:.0} after; reader with a {} KiB low-water mark {:.0} before, {:.0} after (ratios use the means); load average at the end: {}",
        before.plain,
        after.plain,
        MARK_KIB,
        before.marked,
        after.marked,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}

/// librdkafka's default `max.partition.fetch.bytes`.
const RDKAFKA_PARTITION_FETCH: i32 = 1 << 20;

/// CPU seconds of the broker and of this process with its waited-for
/// children (the client: the raw consumer's thread or a tool's process)
/// across one run.
struct Cost {
    broker: u64,
    client: u64,
}

impl Cost {
    fn start(server: &Server) -> Cost {
        Cost {
            broker: server.cpu_ticks(),
            client: own_and_children_ticks(),
        }
    }

    /// (broker, client) seconds since `start`.
    fn stop(self, server: &Server) -> (f64, f64) {
        let secs = |t: u64| t as f64 / 100.0;
        (
            secs(server.cpu_ticks().saturating_sub(self.broker)),
            secs(own_and_children_ticks().saturating_sub(self.client)),
        )
    }
}

/// `--against`: the raw producer writes `--messages` records (none: 0) to
/// topic `raw` of a running broker (its partitions created with the broker's
/// default count, `--partitions` of them written), then the raw consumer
/// reads them back `--consume-runs` times: a load for profiling a broker
/// started by hand (perf, strace, callgrind).
fn raw_against(a: &Args, addr: &str) {
    let batch = common::batch_of_1k_records(a.batch, 11);
    let requests = (a.messages / a.batch as u64).max(1);
    let p = a.partitions as i32;
    if a.messages == 0 {
        return raw_consume_runs(a, addr);
    }
    let m = raw_client::produce(addr, "raw", p, &batch, a.batch as u64, requests, a.window)
        .unwrap_or_else(|e| fail(&format!("raw producer: {e}")));
    let row = raw_row(String::new(), &m);
    println!(
        "raw produce: {} records, {} requests, {:.0} MB/s, {:.0} msg/s",
        m.records, m.requests, row.mb_s, row.msg_s
    );
    raw_consume_runs(a, addr);
}

fn raw_consume_runs(a: &Args, addr: &str) {
    for run in 1..=a.consume_runs {
        let m = raw_client::consume(addr, "raw", a.partitions as i32, a.fetch_bytes)
            .unwrap_or_else(|e| fail(&format!("raw consumer: {e}")));
        let row = raw_row(String::new(), &m);
        println!(
            "raw consume run {run}: {} records, {} requests, {:.0} MB/s, {:.0} msg/s",
            m.records, m.requests, row.mb_s, row.msg_s
        );
    }
}

/// A row of a raw client's run: MB/s of 1 KiB payloads, as
/// rdkafka_performance counts them.
fn raw_row(name: String, m: &raw_client::Moved) -> Row {
    Row {
        name,
        mb_s: m.records as f64 * 1024.0 / m.secs / MB,
        msg_s: m.records as f64 / m.secs,
        latency: None,
    }
}

/// rdkafka_performance reading the topic `bench` from the beginning;
/// `partition_fetch`: its `max.partition.fetch.bytes` (default 1 MiB).
fn consume_args(
    a: &Args,
    addr: &str,
    partitions: u32,
    partition_fetch: Option<i32>,
) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "-C".into(),
        "-t".into(),
        "bench".into(),
        "-b".into(),
        addr.into(),
        "-o".into(),
        "beginning".into(),
        "-c".into(),
        a.messages.to_string(),
        "-X".into(),
        "fetch.max.bytes=52428800".into(),
    ];
    if let Some(bytes) = partition_fetch {
        argv.extend(["-X".into(), format!("max.partition.fetch.bytes={bytes}")]);
    }
    for p in 0..partitions {
        argv.extend(["-p".into(), p.to_string()]);
    }
    argv
}

/// Lets the disk drain between cases: this class of virtual disk absorbs
/// a burst of a gigabyte or two quickly, then writes at its sustained rate.
pub(crate) fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_secs(5));
}

/// Runs `pubsub bench KIND --json` (`produce` or `e2e`) with the run's
/// message size and batch and reads its report.
#[allow(clippy::too_many_arguments)]
fn own_load(
    a: &Args,
    addr: &str,
    name: &str,
    kind: &str,
    topic: &str,
    acks: i32,
    partitions: u32,
    messages: u64,
    rate: Option<u64>,
) -> Row {
    let mut cmd = Command::new(&a.pubsub);
    cmd.args([
        "bench",
        kind,
        "--json",
        "--size",
        "1024",
        "--bootstrap",
        addr,
        "--topic",
        topic,
    ])
    .args([
        "--acks",
        &acks.to_string(),
        "--partitions",
        &partitions.to_string(),
    ])
    .args([
        "--messages",
        &messages.to_string(),
        "--batch",
        &a.batch.to_string(),
    ]);
    if let Some(r) = rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    own_row(name, cmd)
}

/// Runs `pubsub bench consume --json` over what `topic` holds.
fn own_consume(a: &Args, addr: &str, name: &str, topic: &str) -> Row {
    let mut cmd = Command::new(&a.pubsub);
    cmd.args([
        "bench",
        "consume",
        "--json",
        "--bootstrap",
        addr,
        "--topic",
        topic,
    ]);
    own_row(name, cmd)
}

/// Runs a `pubsub bench ... --json` command and reads its report.
fn own_row(name: &str, mut cmd: Command) -> Row {
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("running pubsub bench: {e}")));
    if !out.status.success() {
        fail(&format!(
            "pubsub bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| fail(&format!("pubsub bench output: {e}")));
    let f = |pointer: &str| {
        v.pointer(pointer)
            .and_then(|x| x.as_f64())
            .unwrap_or(f64::NAN)
    };
    Row {
        name: name.to_string(),
        mb_s: f("/mb_per_s"),
        msg_s: f("/msg_per_s"),
        latency: Some(Percentiles {
            p50: f("/latency_ms/p50"),
            p99: f("/latency_ms/p99"),
            p999: f("/latency_ms/p99.9"),
            max: f("/latency_ms/max"),
        }),
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

/// Runs rdkafka_performance and makes a row of its summary.
fn perf_row(a: &Args, name: String, argv: &[String]) -> Row {
    let (mb_s, msg_s) = perf_summary(&run_perf(a, argv));
    Row {
        name,
        mb_s,
        msg_s,
        latency: None,
    }
}

/// (MB/s, msg/s) from the last "... N msgs/s and X MB/s" line.
fn perf_summary(text: &str) -> (f64, f64) {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("msgs/s") && l.contains("MB/s"))
        .unwrap_or_else(|| {
            fail(&format!(
                "no summary in rdkafka_performance output:\n{text}"
            ))
        });
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |w: &str| -> f64 {
        words
            .iter()
            .position(|x| x.trim_end_matches([',', ')']) == w)
            .and_then(|i| words.get(i.checked_sub(1)?))
            .and_then(|v| v.trim_start_matches('(').parse().ok())
            .unwrap_or_else(|| fail(&format!("cannot parse {w} in: {line}")))
    };
    (before("MB/s"), before("msgs/s"))
}

/// Which broker a case runs against.
#[derive(Clone, Copy)]
enum BrokerKind {
    /// `pubsub serve` (`--pubsub`).
    Pubsub,
    /// Apache Kafka 4.1.1 from `compat/kafka` with the JVM settings and
    /// thread counts `benches/vs-kafka.sh` uses.
    Kafka,
}

impl BrokerKind {
    fn name(self) -> &'static str {
        match self {
            BrokerKind::Pubsub => "pubsub",
            BrokerKind::Kafka => "Kafka",
        }
    }
}

struct Server {
    /// `pubsub serve`; None for Kafka, which `compat/kafka` starts detached.
    child: Option<Child>,
    pid: u32,
    addr: String,
    /// Kafka's directory, for `compat/kafka stop`.
    kafka: Option<PathBuf>,
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
        if let Ok(mut v) = SERVERS.lock() {
            v.push(child.id());
        }
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
            pid: child.id(),
            child: Some(child),
            addr,
            kafka: None,
            _dir: dir,
        }
    }

    fn start_kind(a: &Args, base: &Path, partitions: u32, kind: BrokerKind) -> Server {
        match kind {
            BrokerKind::Pubsub => Server::start(a, base, partitions),
            BrokerKind::Kafka => Server::start_kafka(base, partitions),
        }
    }

    /// A fresh Kafka whose auto-created topics get `partitions`.
    fn start_kafka(base: &Path, partitions: u32) -> Server {
        let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail(&format!("{e}")));
        let kafka = dir.path().join("kafka");
        let out = Command::new("compat/kafka")
            .arg("start")
            .arg(&kafka)
            .args([
                format!("num.partitions={partitions}"),
                "num.network.threads=3".into(),
                "num.io.threads=8".into(),
            ])
            .env("KAFKA_HEAP", "1g")
            .env(
                "KAFKA_JVM_FLAGS",
                "-XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35",
            )
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| {
                fail(&format!(
                    "compat/kafka start (run from the repository root): {e}"
                ))
            });
        let text = String::from_utf8_lossy(&out.stdout);
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| fail(&format!("compat/kafka start printed {text:?}")))
            .to_string();
        let pid = std::fs::read_to_string(kafka.join("kafka.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| fail("no kafka.pid"));
        if let Ok(mut v) = SERVERS.lock() {
            v.push(pid);
        }
        Server {
            child: None,
            pid,
            addr,
            kafka: Some(kafka),
            _dir: dir,
        }
    }

    /// The server's CPU time so far (utime + stime), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        process_cpu_ticks(&self.pid.to_string())
    }

    fn stop(mut self) {
        if let Some(dir) = self.kafka.take() {
            let _ = Command::new("compat/kafka").arg("stop").arg(dir).status();
        } else {
            // SIGTERM, then wait: the next case starts on a quiet machine.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            if let Some(child) = self.child.as_mut() {
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Never leave a server behind (a failed case exits the process).
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(dir) = self.kafka.take() {
            let _ = Command::new("compat/kafka").arg("kill9").arg(dir).status();
        }
        let id = self.pid;
        if let Ok(mut v) = SERVERS.lock() {
            v.retain(|&p| p != id);
        }
    }
}

/// The sum of the numbered fields of a `/proc/PID/stat` line, in clock
/// ticks (utime 14, stime 15, cutime 16, cstime 17).
fn stat_ticks(stat: &str, fields: &[usize]) -> u64 {
    // Fields after the command name (which may hold spaces) start at 3.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    fields
        .iter()
        .map(|&n| {
            rest.get(n - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// This process's CPU time and that of the children it has waited for, in
/// clock ticks.
fn own_and_children_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_ticks(&stat, &[14, 15, 16, 17])
}

/// The marked reader's low-water mark, KiB (as printed).
const MARK_KIB: usize = low_water::MAX_MARK >> 10;

/// How a loopback copy's reader waits for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Woken by every arriving segment (the socket's default mark of 1).
    Plain,
    /// The socket's low-water mark at [`low_water::MAX_MARK`], as pubsub's
    /// client and the raw consumer read a large answer.
    Marked,
}

/// A loopback listener and the thread that accepts one connection on it
/// and reads it to its end in 1 MiB reads; the thread returns the bytes
/// read.
pub(crate) fn loopback_reader(how: Reader) -> (std::net::SocketAddr, std::thread::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("{e}")));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(&format!("{e}")));
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap_or_else(|e| fail(&format!("{e}")));
        let marked = how == Reader::Marked;
        if marked {
            low_water::set_mark(s.as_fd(), low_water::MAX_MARK)
                .unwrap_or_else(|e| fail(&format!("SO_RCVLOWAT: {e}")));
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            // Woken as a non-blocking reader is: once a mark is queued.
            let read = if marked {
                low_water::read_when_ready(s.as_fd(), &mut buf)
            } else {
                s.read(&mut buf)
            };
            match read {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) => fail(&format!("loopback read: {e}")),
            }
        }
        total
    });
    (addr, reader)
}

/// The loopback copy with each reader, one after the other; MB/s.
#[derive(Debug, Clone, Copy)]
struct Copies {
    plain: f64,
    marked: f64,
}

impl Copies {
    fn measure(bytes: u64) -> Copies {
        Copies {
            plain: loopback_copy(bytes, Reader::Plain),
            marked: loopback_copy(bytes, Reader::Marked),
        }
    }

    fn mean(a: Copies, b: Copies) -> Copies {
        Copies {
            plain: (a.plain + b.plain) / 2.0,
            marked: (a.marked + b.marked) / 2.0,
        }
    }
}

/// Raw loopback TCP: one thread writes `bytes` in 1 MiB writes, another
/// reads them as `how` says; MB/s.
fn loopback_copy(bytes: u64, how: Reader) -> f64 {
    let (addr, reader) = loopback_reader(how);
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("{e}")));
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        s.write_all(&chunk)
            .unwrap_or_else(|e| fail(&format!("loopback write: {e}")));
        sent += chunk.len() as u64;
    }
    drop(s);
    let got = reader.join().unwrap_or_else(|_| fail("reader thread"));
    let secs = start.elapsed().as_secs_f64();
    got as f64 / secs / MB
}

/// The storage engine's in-process append of `requests` batches of `batch`
/// 1 KiB records, each copied into the buffer appended from (the server's
/// socket read copies each byte once too) and CRC checked as client bytes
/// are; MB/s of payload, and this process's CPU ticks over the appends
/// (the writeback thread's included, as in a server's). The log is opened
/// and the disk settled before the clock starts.
fn log_append(base: &Path, requests: u64, batch: usize, flush: FlushPolicy) -> (f64, u64) {
    let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail(&format!("{e}")));
    let config = LogConfig {
        flush,
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir.path(), config).unwrap_or_else(|e| fail(&format!("{e}")));
    let template = common::batch_of_1k_records(batch, 11);
    let mut scratch = template.clone();
    settle();
    let cpu = process_cpu_ticks("self");
    let start = Instant::now();
    for _ in 0..requests {
        scratch.copy_from_slice(&template);
        log.append(&mut scratch)
            .unwrap_or_else(|e| fail(&format!("append: {e}")));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_ticks("self") - cpu;
    let _ = log.close();
    ((requests * batch as u64 * 1024) as f64 / secs / MB, cpu)
}

/// The embedded broker's `Broker::produce` (acks=1) of the same batches to
/// a one-partition topic created first: [`log_append`] plus what the
/// broker adds to an append without the network (the partition's CRC
/// check, leader-epoch stamping, producer state, counters); MB/s of payload
/// and CPU ticks, as [`log_append`].
fn broker_produce(base: &Path, requests: u64, batch: usize) -> (f64, u64) {
    let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail(&format!("{e}")));
    let broker = pubsub_broker::Broker::open(dir.path(), pubsub_broker::BrokerConfig::default())
        .unwrap_or_else(|e| fail(&format!("{e}")));
    broker
        .create_topic("bench", Some(1), Default::default())
        .unwrap_or_else(|e| fail(&format!("{e}")));
    let template = common::batch_of_1k_records(batch, 11);
    let mut scratch = template.clone();
    // The first append writes the partition's leader-epoch file.
    broker
        .produce("bench", 0, &mut scratch, pubsub_broker::Acks::Leader)
        .unwrap_or_else(|e| fail(&format!("produce: {e}")));
    settle();
    let cpu = process_cpu_ticks("self");
    let start = Instant::now();
    for _ in 0..requests {
        scratch.copy_from_slice(&template);
        broker
            .produce("bench", 0, &mut scratch, pubsub_broker::Acks::Leader)
            .unwrap_or_else(|e| fail(&format!("produce: {e}")));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_ticks("self") - cpu;
    let _ = broker.close();
    ((requests * batch as u64 * 1024) as f64 / secs / MB, cpu)
}
