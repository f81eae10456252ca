//! The client subcommands (`topic`, `produce`, `consume`, `group`) as a
//! user runs them: the real binary against a real daemon, checked by what
//! they print and by what the broker then holds.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{binary, Daemon};
use crate::reference::wait_output;

/// Runs `pubsub ARGS --bootstrap ADDR` with `stdin`.
fn run(d: &Daemon, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .arg("--bootstrap")
        .arg(d.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pubsub");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    wait_output(child, "pubsub", Duration::from_secs(60))
}

/// Runs a command that must succeed; its stdout.
fn ok(d: &Daemon, args: &[&str], stdin: &str) -> String {
    let out = run(d, args, stdin);
    assert!(
        out.status.success(),
        "pubsub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command that must fail with one line on stderr; that line.
fn fails(d: &Daemon, args: &[&str], stdin: &str) -> String {
    let out = run(d, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "pubsub {args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    stderr
}

/// The rows of a table printed by a command, split on whitespace.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The row of a table whose first cells are `first`.
fn row<'a>(rows: &'a [Vec<String>], first: &[&str]) -> &'a [String] {
    rows.iter()
        .find(|r| r.len() >= first.len() && r.iter().zip(first).all(|(a, b)| a == b))
        .unwrap_or_else(|| panic!("no row {first:?} in {rows:?}"))
}

#[test]
fn topic_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(
        &d,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    );
    ok(&d, &["topic", "create", "prices"], "");
    let err = fails(&d, &["topic", "create", "orders", "--partitions", "3"], "");
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");

    let list = rows(&ok(&d, &["topic", "list"], ""));
    assert_eq!(list[0], ["TOPIC", "PARTITIONS"]);
    assert_eq!(row(&list, &["orders"]), ["orders", "3"]);
    assert_eq!(
        row(&list, &["prices"]),
        ["prices", "1"],
        "the broker default"
    );
    assert!(!list.iter().any(|r| r[0] == "__consumer_offsets"));

    ok(
        &d,
        &["produce", "orders", "--partition", "1"],
        "a\nbb\nccc\n",
    );
    let describe = ok(&d, &["topic", "describe", "orders"], "");
    let table = rows(&describe);
    assert_eq!(table[0], ["TOPIC", "orders", "PARTITIONS", "3"]);
    assert_eq!(
        row(&table, &["PARTITION"]),
        ["PARTITION", "LEADER", "EARLIEST", "LATEST", "SIZE"]
    );
    assert_eq!(&row(&table, &["0", "0"])[..4], ["0", "0", "0", "0"]);
    let p1 = row(&table, &["1", "0"]);
    assert_eq!(&p1[..4], ["1", "0", "0", "3"]);
    let size: u64 = p1[4].parse().expect("a size in bytes");
    assert!(
        size > 61 + 3 * 8,
        "one batch of three records: {size} bytes"
    );
    assert_eq!(
        row(&table, &["retention.ms"]),
        ["retention.ms", "3600000", "topic"]
    );
    assert_eq!(
        row(&table, &["cleanup.policy"]),
        ["cleanup.policy", "delete", "default"]
    );

    ok(
        &d,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "cleanup.policy=compact",
            "--delete",
            "retention.ms",
        ],
        "",
    );
    let table = rows(&ok(&d, &["topic", "describe", "orders"], ""));
    assert_eq!(
        row(&table, &["cleanup.policy"]),
        ["cleanup.policy", "compact", "topic"]
    );
    assert_eq!(row(&table, &["retention.ms"])[2], "default");
    let err = fails(
        &d,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=soon",
        ],
        "",
    );
    assert!(err.contains("INVALID_CONFIG"), "{err}");
    fails(&d, &["topic", "alter-config", "orders"], "");

    ok(&d, &["topic", "delete", "orders", "prices"], "");
    let list = rows(&ok(&d, &["topic", "list"], ""));
    assert_eq!(list.len(), 1, "{list:?}");
    let err = fails(&d, &["topic", "describe", "orders"], "");
    assert_eq!(err.trim(), "error: topic \"orders\" does not exist");
    let err = fails(&d, &["topic", "delete", "orders"], "");
    assert_eq!(err.trim(), "error: topic \"orders\" does not exist");
}

#[test]
fn produce_and_consume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(&d, &["topic", "create", "t", "--partitions", "4"], "");
    // Keyed: the same key always lands on the same partition.
    let lines: String = (0..40)
        .map(|i| format!("key-{}:value {i}\n", i % 5))
        .collect();
    let verbose = ok(
        &d,
        &["produce", "t", "-K", ":", "--verbose", "--acks", "1"],
        &lines,
    );
    let placed: Vec<(i32, i64)> = verbose
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!((w[0], w[2]), ("partition", "offset"), "{l}");
            (w[1].parse().unwrap(), w[3].parse().unwrap())
        })
        .collect();
    assert_eq!(placed.len(), 40);
    for i in 0..40 {
        assert_eq!(placed[i].0, placed[i % 5].0, "key-{} moved", i % 5);
    }
    let mut seen = std::collections::HashSet::new();
    for p in &placed {
        assert!(seen.insert(*p), "offset {p:?} given twice");
    }

    // Every message comes back, as text: values only.
    let text = ok(
        &d,
        &["consume", "t", "--from-beginning", "--count", "40"],
        "",
    );
    let mut got: Vec<&str> = text.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = (0..40).map(|i| format!("value {i}")).collect();
    want.sort_unstable();
    assert_eq!(got, want);

    // JSON: partition, offset, key, headers, value, timestamp; compressed.
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        ok(
            &d,
            &[
                "produce",
                "t",
                "--partition",
                "3",
                "-H",
                "src=test",
                "-H",
                "codec=x",
                "--compression",
                codec,
                "-K",
                "=",
            ],
            &format!("k={codec}-1\nk={codec}-2\n"),
        );
    }
    let end = placed.iter().filter(|p| p.0 == 3).count() as i64;
    let json = ok(
        &d,
        &[
            "consume",
            "t",
            "--partition",
            "3",
            "--offset",
            &end.to_string(),
            "--count",
            "8",
            "--format",
            "json",
        ],
        "",
    );
    let messages: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(messages.len(), 8);
    for (i, m) in messages.iter().enumerate() {
        let codec = ["gzip", "snappy", "lz4", "zstd"][i / 2];
        assert_eq!(m["partition"], 3);
        assert_eq!(m["offset"], end + i as i64);
        assert_eq!(m["key"], "k");
        assert_eq!(m["value"], format!("{codec}-{}", i % 2 + 1));
        assert_eq!(
            m["headers"],
            serde_json::json!([{"key": "src", "value": "test"}, {"key": "codec", "value": "x"}])
        );
        assert!(m["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

    // --offset in the middle, on one partition.
    let text = ok(
        &d,
        &[
            "consume",
            "t",
            "--partition",
            "3",
            "--offset",
            &(end + 5).to_string(),
            "--count",
            "2",
        ],
        "",
    );
    assert_eq!(text, "lz4-2\nzstd-1\n");
}

#[test]
fn consume_from_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(&d, &["topic", "create", "t"], "");
    ok(&d, &["produce", "t"], "old 1\nold 2\n");
    std::thread::sleep(Duration::from_millis(20));
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%3NZ"])
        .output()
        .expect("date");
    let now = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::thread::sleep(Duration::from_millis(20));
    ok(&d, &["produce", "t"], "new 1\nnew 2\n");
    let text = ok(
        &d,
        &["consume", "t", "--from-time", &now, "--count", "2"],
        "",
    );
    assert_eq!(text, "new 1\nnew 2\n");
    // A bad argument is clap's usage error (exit status 2).
    let out = run(&d, &["consume", "t", "--from-time", "yesterday"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: invalid value 'yesterday'"), "{err}");
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    // A missing topic fails at once instead of waiting for it.
    let err = fails(&d, &["consume", "missing"], "");
    assert_eq!(err.trim(), "error: topic \"missing\" does not exist");
    let err = fails(&d, &["consume", "missing", "--group", "g"], "");
    assert_eq!(err.trim(), "error: topic \"missing\" does not exist");
    let err = fails(&d, &["consume", "t", "--count", "0"], "");
    assert_eq!(err.trim(), "error: --count must be at least 1");
    let err = fails(&d, &["consume", "missing", "--group", "g"], "");
    assert_eq!(err.trim(), "error: topic \"missing\" does not exist");
    let err = fails(&d, &["produce", "missing"], "x\n");
    assert_eq!(err.trim(), "error: topic \"missing\" does not exist");
    ok(&d, &["topic", "create", "t", "--partitions", "2"], "");
    let err = fails(&d, &["produce", "t", "--partition", "7"], "x\n");
    assert!(err.contains("no partition 7"), "{err}");
    // A line without the key separator stops the input; lines before it are stored.
    let err = fails(
        &d,
        &["produce", "t", "-K", ":", "--partition", "0"],
        "a:1\nb:2\nno separator\nc:3\n",
    );
    assert!(err.contains("line 3 has no key separator"), "{err}");
    assert!(err.contains("2 messages acknowledged"), "{err}");
    let text = ok(
        &d,
        &[
            "consume",
            "t",
            "--partition",
            "0",
            "--from-beginning",
            "--count",
            "2",
        ],
        "",
    );
    assert_eq!(text, "1\n2\n");
    let table = rows(&ok(&d, &["topic", "describe", "t"], ""));
    assert_eq!(row(&table, &["0", "0"])[3], "2", "c:3 was not sent");
    // Nothing listens: one line naming the address.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = Command::new(binary())
        .args(["topic", "list", "--bootstrap", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with(&format!("error: cannot reach broker 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn every_subcommand_help_has_an_example() {
    for args in [
        &["serve"][..],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["topic", "alter-config"],
        &["produce"],
        &["consume"],
        &["group", "list"],
        &["group", "describe"],
        &["group", "reset-offsets"],
        &["group", "delete"],
        &["user", "create"],
        &["user", "list"],
        &["user", "delete"],
        &["acl", "create"],
        &["acl", "list"],
        &["acl", "delete"],
        &["bench", "produce"],
        &["bench", "consume"],
        &["bench", "e2e"],
        &["log", "dump"],
        &["log", "check"],
    ] {
        let out = Command::new(binary())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        let examples = text.split_once("Examples:\n  ").map(|(_, e)| e);
        assert!(
            examples.is_some_and(|e| e.lines().next().is_some_and(|l| l.contains("pubsub "))),
            "pubsub {args:?} --help has no example:\n{text}"
        );
    }
}

/// A `pubsub consume --group` left running, its stdout read on a thread.
struct Follower {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    fn start(d: &Daemon, topic: &str, group: &str) -> Follower {
        let mut child = Command::new(binary())
            .args([
                "consume",
                topic,
                "--group",
                group,
                "--from-beginning",
                "--bootstrap",
                &d.addr.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines: rx }
    }

    /// SIGINT, then the exit status, stderr and every line printed.
    fn interrupt(mut self) -> (std::process::ExitStatus, String, Vec<String>) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        // The reader thread ends at the closed stdout.
        (status, stderr, self.lines.iter().collect())
    }
}

/// Waits until `group` is Stable with `members` members; its describe table.
fn wait_stable(d: &Daemon, group: &str, members: usize) -> Vec<Vec<String>> {
    let start = Instant::now();
    loop {
        let out = run(d, &["group", "describe", group], "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let table = rows(&text);
        if out.status.success()
            && table[0].get(3).map(String::as_str) == Some("Stable")
            && table[0].get(7) == Some(&members.to_string())
        {
            return table;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "group {group} never had {members} stable members: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `group` has committed all of `partitions` partitions of
/// `topic` up to their ends (LAG 0 on each); the group may not exist yet.
fn wait_lag_zero(d: &Daemon, group: &str, topic: &str, partitions: usize) {
    let start = Instant::now();
    loop {
        let out = run(d, &["group", "describe", group], "");
        let table = rows(&String::from_utf8_lossy(&out.stdout));
        let lags: Vec<&String> = table
            .iter()
            .filter(|r| r.first().map(String::as_str) == Some(topic))
            .map(|r| &r[4])
            .collect();
        if lags.len() == partitions && lags.iter().all(|l| *l == "0") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "lag never reached 0: {table:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn groups_share_partitions_commit_and_show_lag() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(&d, &["topic", "create", "orders", "--partitions", "3"], "");
    for p in 0..3 {
        let lines: String = (0..10).map(|i| format!("p{p}-{i}\n")).collect();
        ok(
            &d,
            &["produce", "orders", "--partition", &p.to_string()],
            &lines,
        );
    }

    // One member with --count: it commits exactly what it printed.
    let text = ok(
        &d,
        &[
            "consume",
            "orders",
            "--group",
            "audit",
            "--from-beginning",
            "--count",
            "4",
        ],
        "",
    );
    assert_eq!(text.lines().count(), 4);
    let table = rows(&ok(&d, &["group", "describe", "audit"], ""));
    assert_eq!(
        table[0],
        ["GROUP", "audit", "STATE", "Empty", "PROTOCOL", "-", "MEMBERS", "0"]
    );
    assert_eq!(
        row(&table, &["TOPIC"]),
        [
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER",
            "CLIENT-ID",
            "HOST"
        ]
    );
    let committed: i64 = (0..3)
        .map(|p| {
            let r = row(&table, &["orders", &p.to_string()]);
            assert_eq!(r[3], "10");
            let current: i64 = r[2].parse().unwrap();
            assert_eq!(r[4], (10 - current).to_string(), "LAG = end - committed");
            current
        })
        .sum();
    assert_eq!(committed, 4, "{table:?}");

    // A follower reads the rest; a second one joining takes over some
    // partitions; new messages are read exactly once between them.
    let a = Follower::start(&d, "orders", "audit");
    wait_lag_zero(&d, "audit", "orders", 3);
    let b = Follower::start(&d, "orders", "audit");
    let table = wait_stable(&d, "audit", 2);
    let owners: std::collections::HashSet<&String> = (0..3)
        .map(|p| &row(&table, &["orders", &p.to_string()])[5])
        .collect();
    assert_eq!(owners.len(), 2, "both members own partitions: {table:?}");
    for p in 0..3 {
        let lines: String = (10..15).map(|i| format!("p{p}-{i}\n")).collect();
        ok(
            &d,
            &["produce", "orders", "--partition", &p.to_string()],
            &lines,
        );
    }
    wait_lag_zero(&d, "audit", "orders", 3);
    // A reset is refused while members are active.
    let err = fails(
        &d,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    assert!(err.contains("2 active member(s)"), "{err}");
    let err = fails(&d, &["group", "delete", "audit"], "");
    assert!(err.contains("NON_EMPTY_GROUP"), "{err}");

    let (status_a, err_a, from_a) = a.interrupt();
    let (status_b, err_b, from_b) = b.interrupt();
    assert!(status_a.success(), "{err_a}");
    assert!(status_b.success(), "{err_b}");
    assert!(!from_b.is_empty(), "the second member printed nothing");
    let mut got: Vec<String> = from_a.into_iter().chain(from_b).collect();
    got.sort();
    // The 26 not read by the --count run and the 15 new ones, each once.
    assert_eq!(got.len(), 41, "{got:?}");
    got.dedup();
    assert_eq!(got.len(), 41, "a message was printed twice");

    let list = rows(&ok(&d, &["group", "list"], ""));
    assert_eq!(row(&list, &["audit"]), ["audit", "Empty", "consumer"]);

    // reset-offsets: a dry run changes nothing, --execute does.
    let plan = rows(&ok(
        &d,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "orders",
            "--to-offset",
            "7",
        ],
        "",
    ));
    assert_eq!(row(&plan, &["orders", "1"]), ["orders", "1", "15", "7"]);
    let table = rows(&ok(&d, &["group", "describe", "audit"], ""));
    assert_eq!(
        row(&table, &["orders", "1"])[2],
        "15",
        "the dry run committed"
    );
    ok(
        &d,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "orders",
            "--partition",
            "1",
            "--to-offset",
            "7",
            "--execute",
        ],
        "",
    );
    ok(
        &d,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "orders",
            "--partition",
            "2",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    let table = rows(&ok(&d, &["group", "describe", "audit"], ""));
    assert_eq!(&row(&table, &["orders", "0"])[2..5], ["15", "15", "0"]);
    assert_eq!(&row(&table, &["orders", "1"])[2..5], ["7", "15", "8"]);
    assert_eq!(&row(&table, &["orders", "2"])[2..5], ["0", "15", "15"]);
    // The group resumes where the reset put it.
    let text = ok(
        &d,
        &["consume", "orders", "--group", "audit", "--count", "23"],
        "",
    );
    let mut got: Vec<&str> = text.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = (7..15)
        .map(|i| format!("p1-{i}"))
        .chain((0..15).map(|i| format!("p2-{i}")))
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);

    ok(&d, &["group", "delete", "audit"], "");
    let err = fails(&d, &["group", "describe", "audit"], "");
    assert_eq!(err.trim(), "error: group \"audit\" does not exist");
}

#[test]
fn a_group_member_commits_where_it_started_even_if_it_read_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(&d, &["topic", "create", "t", "--partitions", "2"], "");
    // A member joins the empty topic and is stopped before anything arrives.
    let follower = Follower::start(&d, "t", "g");
    let start = Instant::now();
    loop {
        // Until the group exists, describe fails.
        let out = run(&d, &["group", "describe", "g"], "");
        let table = rows(&String::from_utf8_lossy(&out.stdout));
        if table
            .iter()
            .filter(|r| r.first().map(String::as_str) == Some("t") && r[2] == "0")
            .count()
            == 2
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no commits: {table:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, err, printed) = follower.interrupt();
    assert!(status.success(), "{err}");
    assert!(printed.is_empty());
    ok(&d, &["produce", "t", "--partition", "1"], "later\n");
    // No start flag: the group's commit (0), not "latest", decides.
    let text = ok(&d, &["consume", "t", "--group", "g", "--count", "1"], "");
    assert_eq!(text, "later\n");
}

#[test]
fn a_group_member_follows_its_topic_growing() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, TopicName};

    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("data"));
    ok(&d, &["topic", "create", "g1"], "");
    ok(&d, &["produce", "g1"], "a0\na1\n");
    let a = Follower::start(&d, "g1", "grp");
    wait_lag_zero(&d, "grp", "g1", 1);
    // The topic grows to 3 partitions, then a second member joins: the
    // rebalance hands out partitions the first member has never seen.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = crate::client::Client::connect(d.addr).await;
        let r = c
            .call(
                3,
                &CreatePartitionsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![CreatePartitionsTopic::default()
                        .with_name(TopicName(crate::client::s("g1")))
                        .with_count(3)]),
            )
            .await;
        assert_eq!(r.results[0].error_code, 0);
    });
    let b = Follower::start(&d, "g1", "grp");
    wait_stable(&d, "grp", 2);
    for p in 0..3 {
        ok(
            &d,
            &["produce", "g1", "--partition", &p.to_string()],
            &format!("p{p}\n"),
        );
    }
    wait_lag_zero(&d, "grp", "g1", 3);
    let (status_a, err_a, from_a) = a.interrupt();
    let (status_b, err_b, from_b) = b.interrupt();
    assert!(status_a.success(), "the first member failed: {err_a}");
    assert!(status_b.success(), "{err_b}");
    let mut got: Vec<String> = from_a.into_iter().chain(from_b).collect();
    got.sort();
    assert_eq!(got, ["a0", "a1", "p0", "p1", "p2"]);
}
