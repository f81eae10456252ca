//! Runs README.md top to bottom, as a new user would, so its commands cannot
//! rot. Every `sh`, `python`, `js` and `rust` block must be preceded by a
//! `<!-- check: KIND [expect="TEXT"] -->` comment saying how it is checked:
//!
//! - `serve`: the `pubsub serve` command is started (the previous one
//!   stopped first) with `--listen 127.0.0.1:0`, and `--metrics` on port 0;
//! - `shell`, `bench`: the block runs in bash (`set -euo pipefail`) against
//!   that broker and must succeed; `bench` scales `--messages` and
//!   `--duration` down so CI stays short;
//! - `stopped`: the broker is stopped (SIGTERM), then the block runs;
//! - `python`, `node`: the block runs in python3 / node;
//! - `example`: the embedded stock example's binary runs;
//! - `ci`: each command must be a line of `.ci/run`, which runs it;
//! - `doctest`: the Rust block is a doc test of `pubsub-broker`
//!   (`include_str!` of this README), run by `cargo test --workspace`.
//!
//! With `expect`, the block's output must contain TEXT. Everything runs in
//! a fresh directory, in order, with these substitutions (so that nothing
//! binds a fixed port and the binary under test is the one used):
//! `127.0.0.1:9092` and `127.0.0.1:9644` become the ports actually bound;
//! `cargo run --release -p pubsub-cli --` and `$PWD/target/release` become
//! the test's `pubsub` binary and its directory; the example's `cargo run`
//! becomes its binary under `target/debug/examples`.
//!
//! Needs what `.ci/run` installs: kcat, curl, python3 with confluent-kafka,
//! node and npm (with access to the npm registry for `npm install kafkajs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::daemon::binary;

/// One fenced block and how to check it.
#[derive(Debug)]
struct Block {
    /// Line number of the opening fence.
    line: usize,
    /// The info string (`sh`, `python`, ...).
    info: String,
    /// The check kind, if a comment gave one.
    kind: Option<String>,
    /// Text the output must contain.
    expect: Option<String>,
    /// The block's text.
    text: String,
}

/// Info strings of blocks that hold commands or code.
const RUNNABLE: &[&str] = &["sh", "bash", "console", "python", "js", "rust"];

fn parse(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut pending: Option<(String, Option<String>)> = None;
    let mut lines = readme.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix("<!-- check:") {
            let rest = rest.trim_end_matches("-->").trim();
            let (kind, expect) = match rest.split_once(" expect=") {
                Some((k, e)) => (k.trim(), Some(quoted(e.trim()))),
                None => (rest, None),
            };
            pending = Some((kind.to_string(), expect));
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let mut text = String::new();
            for (_, l) in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            let (kind, expect) = pending.take().map_or((None, None), |(k, e)| (Some(k), e));
            blocks.push(Block {
                line: i + 1,
                info: info.trim().to_string(),
                kind,
                expect,
                text,
            });
            continue;
        }
        if !line.trim().is_empty() {
            // A check comment applies to the very next block only.
            pending = None;
        }
    }
    blocks
}

/// The text of a `"..."` string in which `\"` stands for a quote.
fn quoted(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"').unwrap_or(s).chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// A `pubsub serve` started from the README.
struct Served {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Served {
    fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().expect("wait for pubsub serve");
        assert!(status.success(), "pubsub serve exited with {status}");
    }

    fn next_line(&mut self, what: &str) -> String {
        match self.stdout.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => l,
            Err(_) => {
                let _ = self.child.kill();
                panic!("pubsub serve printed no {what} line");
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tour {
    work: PathBuf,
    bin_dir: PathBuf,
    served: Option<Served>,
    subs: Vec<(String, String)>,
    bootstrap: String,
}

impl Tour {
    fn substitute(&self, text: &str) -> String {
        let mut s = text.to_string();
        let pubsub = binary();
        let examples = self.bin_dir.join("examples");
        for (from, to) in [
            ("cargo run --release -p pubsub-cli --", pubsub.to_string()),
            (
                "cargo run -p pubsub-broker --example stock_monitor --",
                examples.join("stock_monitor").display().to_string(),
            ),
            ("$PWD/target/release", self.bin_dir.display().to_string()),
        ] {
            s = s.replace(from, &to);
        }
        for (from, to) in &self.subs {
            s = s.replace(from, to);
        }
        s
    }

    fn serve(&mut self, b: &Block) {
        if let Some(s) = self.served.take() {
            s.stop();
        }
        let line = self.substitute(b.text.trim());
        let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        assert!(
            words.len() >= 2 && words[0] == binary() && words[1] == "serve",
            "README line {}: a serve block holds one `pubsub serve` command",
            b.line
        );
        let metrics = words.iter().position(|w| w == "--metrics");
        if let Some(i) = metrics {
            words[i + 1] = "127.0.0.1:0".into();
        }
        words.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
        let mut child = Command::new(&words[0])
            .args(&words[1..])
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pubsub serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut served = Served { child, stdout: rx };
        let listening = served.next_line("listening on");
        let addr = listening
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
            .to_string();
        self.bootstrap = addr.clone();
        self.subs = vec![("127.0.0.1:9092".into(), addr)];
        if metrics.is_some() {
            let line = served.next_line("metrics on");
            let maddr = line
                .strip_prefix("metrics on ")
                .unwrap_or_else(|| panic!("unexpected line {line:?}"))
                .to_string();
            self.subs.push(("127.0.0.1:9644".into(), maddr));
        }
        self.served = Some(served);
    }

    /// Runs `program args` on the block's (substituted) text; checks it
    /// succeeds and prints what the block expects.
    fn run(&self, b: &Block, program: &str, args: &[&str], text: &str) {
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(program)
            .args(args)
            .arg(text)
            .current_dir(&self.work)
            .env("PATH", path)
            // The client subcommands' default address, where the broker is.
            .env("PUBSUB_BOOTSTRAP", &self.bootstrap)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("README line {}: cannot run {program}: {e}", b.line));
        let start = std::time::Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            if start.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                panic!("README line {}: still running after 300 s:\n{text}", b.line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("--- README line {}:\n{text}{stdout}", b.line);
        assert!(
            out.status.success(),
            "README line {} failed ({}):\n{text}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            b.line,
            out.status
        );
        if let Some(want) = &b.expect {
            assert!(
                stdout.contains(want.as_str()),
                "README line {}: output lacks {want:?}:\n{stdout}\nstderr:\n{stderr}",
                b.line
            );
        }
    }
}

/// `--messages N` and `--duration D` of bench commands, scaled down.
fn scale_bench(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
            for i in 1..words.len() {
                match words[i - 1].as_str() {
                    "--messages" => words[i] = "3000".into(),
                    "--duration" => words[i] = "2s".into(),
                    _ => {}
                }
            }
            words.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn readme_runs_top_to_bottom() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let blocks = parse(&readme);
    let unchecked: Vec<usize> = blocks
        .iter()
        .filter(|b| RUNNABLE.contains(&b.info.as_str()) && b.kind.is_none())
        .map(|b| b.line)
        .collect();
    assert!(
        unchecked.is_empty(),
        "README blocks at lines {unchecked:?} have no <!-- check: ... --> comment"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tour = Tour {
        work: dir.path().to_path_buf(),
        bin_dir: Path::new(binary()).parent().expect("bin dir").to_path_buf(),
        served: None,
        subs: Vec::new(),
        bootstrap: String::new(),
    };
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    let mut kinds_seen = std::collections::BTreeSet::new();
    for b in &blocks {
        let Some(kind) = b.kind.as_deref() else {
            continue;
        };
        kinds_seen.insert(kind.to_string());
        let text = tour.substitute(&b.text);
        let script = |t: &str| format!("set -euo pipefail\n{t}");
        match kind {
            "serve" => tour.serve(b),
            "shell" => tour.run(b, "bash", &["-c"], &script(&text)),
            "bench" => tour.run(b, "bash", &["-c"], &script(&scale_bench(&text))),
            "stopped" => {
                if let Some(s) = tour.served.take() {
                    s.stop();
                }
                tour.run(b, "bash", &["-c"], &script(&text));
            }
            "python" => tour.run(b, "python3", &["-c"], &text),
            "node" => tour.run(b, "node", &["-e"], &text),
            "example" => {
                let program = text.split_whitespace().next().unwrap_or_default();
                assert!(
                    Path::new(program).exists(),
                    "README line {}: {program} is missing; `cargo test --workspace` builds it \
                     (or: cargo build -p pubsub-broker --example stock_monitor)",
                    b.line
                );
                tour.run(b, "bash", &["-c"], &script(&text));
            }
            "ci" => {
                for cmd in b.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    assert!(
                        ci.lines().any(|l| l.trim() == cmd),
                        "README line {}: `{cmd}` is not run by .ci/run",
                        b.line
                    );
                }
            }
            "doctest" => {
                assert_eq!(b.info, "rust", "README line {}", b.line);
                let lib = std::fs::read_to_string(repo().join("crates/broker/src/lib.rs"))
                    .expect("broker lib.rs");
                assert!(
                    lib.contains("include_str!(\"../../../README.md\")"),
                    "pubsub-broker no longer runs the README's Rust blocks as doc tests"
                );
            }
            other => panic!("README line {}: unknown check kind {other:?}", b.line),
        }
    }
    if let Some(s) = tour.served.take() {
        s.stop();
    }
    // The README exercises every kind of check (a renamed kind fails here).
    for kind in [
        "serve", "shell", "bench", "stopped", "python", "node", "example", "ci", "doctest",
    ] {
        assert!(
            kinds_seen.contains(kind),
            "no README block checked as {kind}"
        );
    }
}

#[test]
fn check_comments_are_parsed() {
    let blocks = parse(
        "<!-- check: shell expect=\"a \\\"b\\\"\" -->\n```sh\necho hi\n```\n\ntext\n```sh\nls\n```\n<!-- check: ci -->\n\nprose\n```sh\nx\n```\n",
    );
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].kind.as_deref(), Some("shell"));
    assert_eq!(blocks[0].expect.as_deref(), Some("a \"b\""));
    assert_eq!(blocks[0].text, "echo hi\n");
    assert_eq!(blocks[1].kind, None);
    assert_eq!(blocks[2].kind, None, "prose between comment and block");
    assert_eq!(
        scale_bench("pubsub bench produce --messages 2000000 --duration 20s --rate 5"),
        "pubsub bench produce --messages 3000 --duration 2s --rate 5"
    );
}

/// The README's section on Kafka clients (kcat, confluent-kafka for Python,
/// kafkajs for Node.js) run against a real Apache Kafka 4.1.1 as well, with
/// the same expectations: what it promises of pubsub is what Kafka does.
#[test]
fn readme_client_snippets_work_against_apache_kafka() {
    let Some(kafka) = crate::reference::Kafka::start() else {
        return;
    };
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Using it from Kafka clients")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section on Kafka clients");
    let dir = tempfile::tempdir().expect("tempdir");
    let tour = Tour {
        work: dir.path().to_path_buf(),
        bin_dir: Path::new(binary()).parent().expect("bin dir").to_path_buf(),
        served: None,
        subs: vec![("127.0.0.1:9092".into(), kafka.bootstrap.clone())],
        bootstrap: kafka.bootstrap.clone(),
    };
    let mut ran = std::collections::BTreeSet::new();
    for b in parse(section) {
        let Some(kind) = b.kind.as_deref() else {
            continue;
        };
        let text = tour.substitute(&b.text);
        match kind {
            "shell" => tour.run(&b, "bash", &["-c"], &format!("set -euo pipefail\n{text}")),
            "python" => tour.run(&b, "python3", &["-c"], &text),
            "node" => tour.run(&b, "node", &["-e"], &text),
            other => panic!("the client section holds a {other:?} block: run it here too"),
        }
        ran.insert(kind.to_string());
    }
    assert_eq!(
        ran,
        ["node", "python", "shell"].map(String::from).into(),
        "kcat, Python and Node.js snippets all ran"
    );
}
