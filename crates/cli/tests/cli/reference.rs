//! Apache Kafka as the reference: the CLI tour of the README, step by step,
//! against a fresh pubsub daemon and a real single-node Apache Kafka (KRaft,
//! started by `compat/kafka` from Maven Central jars), and what each step
//! prints compared. Where the two differ, the test fails and shows both.
//!
//! Needs Java 17+ and Maven. Without them the test says so and passes,
//! unless CI (`COMPAT_REQUIRE_KAFKA=1`, which `.ci/run` sets, or `CI=true`)
//! makes that a failure; the same rule for every external tool a test
//! needs ([`tools_found`]).

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{binary, Daemon};

/// The launcher script at the repository's top.
fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka")
}

/// Whether a missing external tool fails the test rather than skips it:
/// under CI (`COMPAT_REQUIRE_KAFKA=1`, which `.ci/run` sets, or `CI=true`).
fn tools_required() -> bool {
    std::env::var("COMPAT_REQUIRE_KAFKA").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What a test does without `missing`: fails under CI ([`tools_required`]),
/// elsewhere says that `without` follows and returns false.
fn missing(missing: &str, without: &str) -> bool {
    assert!(
        !tools_required(),
        "{missing} is missing, and CI (COMPAT_REQUIRE_KAFKA=1 or CI=true) requires it"
    );
    eprintln!("skipped: {missing} is missing, so {without}");
    false
}

/// Whether each `(tool, version flag)` runs here. Without one: a message
/// saying that `without` follows, or a failure under CI
/// ([`tools_required`]).
pub fn tools_found(tools: &[(&str, &str)], without: &str) -> bool {
    for (tool, version_flag) in tools {
        let found = Command::new(tool)
            .arg(version_flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return missing(tool, without);
        }
    }
    true
}

/// Whether `python3` runs here and imports each of `modules`; otherwise
/// as [`tools_found`].
pub fn python_modules_found(modules: &[&str], without: &str) -> bool {
    if !tools_found(&[("python3", "--version")], without) {
        return false;
    }
    for module in modules {
        let found = Command::new("python3")
            .arg("-c")
            .arg(format!("import {module}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return missing(&format!("the Python module {module}"), without);
        }
    }
    true
}

/// Whether `java` and `mvn` run here ([`tools_found`]).
pub fn java_and_maven(without: &str) -> bool {
    tools_found(&[("java", "-version"), ("mvn", "-version")], without)
}

/// A Kafka started by `compat/kafka start`, stopped on drop.
pub struct Kafka {
    dir: tempfile::TempDir,
    pub bootstrap: String,
}

impl Kafka {
    /// Starts one, or `None` (with a message) where Java or Maven is
    /// missing and `COMPAT_REQUIRE_KAFKA` is not set.
    pub fn start() -> Option<Kafka> {
        Self::start_with(&[])
    }

    /// [`Kafka::start`] with `K=V` lines added to its server.properties.
    pub fn start_with(properties: &[&str]) -> Option<Kafka> {
        if !java_and_maven("no Apache Kafka to compare with") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(launcher())
            .arg("start")
            .arg(dir.path())
            .args(properties)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compat/kafka start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let bootstrap = stdout
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| panic!("no `listening on` line: {stdout:?}"))
            .to_string();
        Some(Kafka { dir, bootstrap })
    }

    /// Kafka's `log.dirs`: `<topic>-<n>` directories.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILLs it (an unclean stop, as a crash), waiting until it is gone.
    pub fn kill9(&self) {
        self.launcher_step("kill9");
    }

    /// Starts it again on the same data and port (stopping it first if it
    /// runs).
    pub fn restart(&self) {
        self.launcher_step("restart");
    }

    fn launcher_step(&self, step: &str) {
        let out = Command::new(launcher())
            .arg(step)
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compat/kafka {step} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs one of Kafka's tools (`CLASS ARGS...`, e.g.
    /// `org.apache.kafka.tools.TopicCommand`) from the same jars, with
    /// `stdin`, against whatever bootstrap `args` name: (success, stdout,
    /// stderr).
    pub fn tool(&self, class: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut command = self.command(class);
        command.args(args);
        output_of(command, stdin)
    }

    /// The command that runs `class` (a Kafka tool, or one compiled from
    /// compat/java/src by [`Kafka::compile`]) with Kafka's jars; its logs go
    /// to the Kafka dir's `tools/logs/server.log`.
    pub fn command(&self, class: &str) -> Command {
        let mut command = Command::new(launcher());
        command
            .arg("run")
            .arg(self.dir.path().join("tools"))
            .arg(class);
        command
    }

    /// Where the broker logs.
    pub fn server_log(&self) -> PathBuf {
        self.dir.path().join("logs/server.log")
    }

    /// Where [`Kafka::command`]'s JVMs log.
    pub fn tool_log(&self) -> PathBuf {
        self.dir.path().join("tools/logs/server.log")
    }

    /// Compiles the Java under compat/java/src (`compat/kafka compile`).
    pub fn compile(&self) {
        let out = Command::new(launcher()).arg("compile").output().unwrap();
        assert!(
            out.status.success(),
            "compat/kafka compile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = Command::new(launcher())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Runs `pubsub ARGS --bootstrap ADDR` with `stdin`: (success, stdout,
/// stderr).
fn cli(bootstrap: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut command = Command::new(binary());
    command.args(args).arg("--bootstrap").arg(bootstrap);
    output_of(command, stdin)
}

/// Runs `command` with `stdin`: (success, stdout, stderr).
pub fn output_of(command: Command, stdin: &str) -> (bool, String, String) {
    lossy(spawn_with(command, stdin).wait_with_output().unwrap())
}

/// [`output_of`], but a command still running after `limit` is killed and
/// fails the test (with its stderr) instead of hanging it.
pub fn output_within(command: Command, stdin: &str, limit: Duration) -> (bool, String, String) {
    let what = format!("{command:?}");
    lossy(wait_output(spawn_with(command, stdin), &what, limit))
}

/// Waits for `child` (named `what` in the failure) for at most `limit`;
/// past it, kills it and fails the test with its stderr.
pub fn wait_output(mut child: Child, what: &str, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} did not finish within {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Starts `command` with piped output and `stdin` written to it.
fn spawn_with(mut command: Command, stdin: &str) -> Child {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// (success, stdout, stderr) of an output, read lossily.
fn lossy(out: Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each step whose output differs between the two runs, with both outputs;
/// empty when they agree.
pub fn differences<S: AsRef<str>>(ours: &[(S, String)], theirs: &[(S, String)]) -> String {
    assert_eq!(ours.len(), theirs.len(), "both runs take the same steps");
    let mut out = String::new();
    for ((step, a), (_, b)) in ours.iter().zip(theirs) {
        if a != b {
            out += &format!("--- {}\npubsub:\n{a}\nApache Kafka:\n{b}\n", step.as_ref());
        }
    }
    out
}

/// Stdout of a command that must succeed.
fn ok(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let (success, stdout, stderr) = cli(bootstrap, args, stdin);
    assert!(
        success,
        "pubsub {args:?} against {bootstrap} failed: {stderr}"
    );
    stdout
}

/// The first line of stderr of a command that must fail.
fn error(bootstrap: &str, args: &[&str]) -> String {
    let (success, _, stderr) = cli(bootstrap, args, "");
    assert!(!success, "pubsub {args:?} against {bootstrap} succeeded");
    stderr.lines().next().unwrap_or_default().to_string()
}

/// JSON lines with their timestamps (set by each broker's clock) blanked.
fn without_timestamps(json_lines: &str) -> String {
    json_lines
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["timestamp"] = serde_json::Value::Null;
            v.to_string() + "\n"
        })
        .collect()
}

/// `topic describe`'s partition table (the part before the configs),
/// without its SIZE column: how a producer's records fall into batches
/// depends on timing, so bytes on disk may differ between two runs of the
/// same tour; whether a partition holds any is kept.
fn partition_table(describe: &str) -> String {
    let table = describe.split("\n\nCONFIG").next().unwrap_or_default();
    let mut rows = false;
    let mut out = String::new();
    for line in table.lines() {
        match line.rsplit_once(char::is_whitespace) {
            Some((rest, "SIZE")) => {
                rows = true;
                out += &format!("{} HOLDS-BYTES\n", rest.trim_end());
            }
            Some((rest, size)) if rows => out += &format!("{} {}\n", rest.trim_end(), size != "0"),
            _ => out += &format!("{line}\n"),
        }
    }
    out
}

/// `topic describe`'s configs: name -> (value, source).
fn configs(describe: &str) -> BTreeMap<String, (String, String)> {
    let Some((_, table)) = describe.split_once("\n\nCONFIG") else {
        return BTreeMap::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            match cols[..] {
                [name, value, source] => Some((name.into(), (value.into(), source.into()))),
                [name, source] => Some((name.into(), (String::new(), source.into()))),
                _ => None,
            }
        })
        .collect()
}

/// The README's tour, as (step, what it printed) pairs. `configs_of` keeps
/// only the configs pubsub describes, so Kafka's many extra settings (tiered
/// storage, replication throttles) do not count as differences.
fn tour(bootstrap: &str, configs_of: Option<&BTreeMap<String, (String, String)>>) -> Steps {
    let mut s = Steps::default();
    let b = bootstrap;
    s.add(
        "topic create",
        ok(b, &["topic", "create", "orders", "--partitions", "3"], ""),
    );
    s.add(
        "produce keyed, --verbose",
        ok(
            b,
            &["produce", "orders", "--key-separator", ":", "--verbose"],
            "AAPL:buy 100\nMSFT:sell 20\nAAPL:buy 5\nTSLA:buy 1\n",
        ),
    );
    s.add(
        "consume --group from the beginning, json",
        without_timestamps(&ok(
            b,
            &[
                "consume",
                "orders",
                "--group",
                "audit",
                "--from-beginning",
                "--count",
                "4",
                "--format",
                "json",
            ],
            "",
        )),
    );
    s.add(
        "produce more",
        ok(
            b,
            &["produce", "orders", "-K", ":", "--verbose"],
            "AAPL:sell 50\nIBM:buy 7\n",
        ),
    );
    s.add(
        "group describe (lag 2)",
        ok(b, &["group", "describe", "audit"], ""),
    );
    s.add("group list", ok(b, &["group", "list"], ""));
    s.add(
        "consume --group catches up",
        ok(
            b,
            &["consume", "orders", "--group", "audit", "--count", "2"],
            "",
        ),
    );
    s.add(
        "reset-offsets dry run",
        ok(
            b,
            &[
                "group",
                "reset-offsets",
                "audit",
                "--topic",
                "orders",
                "--to-earliest",
            ],
            "",
        ),
    );
    s.add(
        "reset-offsets --execute",
        ok(
            b,
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
        ),
    );
    s.add(
        "group describe after reset",
        ok(b, &["group", "describe", "audit"], ""),
    );
    s.add(
        "consume --offset on one partition",
        ok(
            b,
            &[
                "consume",
                "orders",
                "--partition",
                "0",
                "--offset",
                "1",
                "--count",
                "2",
            ],
            "",
        ),
    );
    let describe = ok(b, &["topic", "describe", "orders"], "");
    s.add("topic describe: partitions", partition_table(&describe));
    ok(
        b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=86400000",
            "--set",
            "max.message.bytes=2048",
        ],
        "",
    );
    let altered = ok(b, &["topic", "describe", "orders"], "");
    for (name, table) in [
        ("topic describe: configs", &describe),
        ("configs after alter-config", &altered),
    ] {
        let all = configs(table);
        let shown: String = all
            .iter()
            .filter(|(k, _)| configs_of.is_none_or(|keep| keep.contains_key(*k)))
            .map(|(k, (v, source))| format!("{k}={v} ({source})\n"))
            .collect();
        s.add(name, shown);
    }
    s.add(
        "error: unknown topic",
        error(b, &["consume", "nope", "--count", "1"]),
    );
    s.add(
        "error: topic exists",
        error(b, &["topic", "create", "orders"]),
    );
    s.add("group delete", ok(b, &["group", "delete", "audit"], ""));
    s.add("topic delete", ok(b, &["topic", "delete", "orders"], ""));
    s.add("topic list", ok(b, &["topic", "list"], ""));
    // Right after a deletion Kafka's metadata lags its controller: `create`
    // must wait for the new topic rather than report it missing.
    s.add(
        "topic create after a delete",
        ok(b, &["topic", "create", "orders-8", "--partitions", "8"], ""),
    );
    s.describe = configs(&describe);
    s
}

#[derive(Default)]
struct Steps {
    steps: Vec<(&'static str, String)>,
    describe: BTreeMap<String, (String, String)>,
}

impl Steps {
    fn add(&mut self, step: &'static str, output: String) {
        self.steps.push((step, output));
    }
}

#[test]
fn the_cli_tour_prints_the_same_against_pubsub_and_apache_kafka() {
    let Some(kafka) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let ours = tour(&daemon.addr.to_string(), None);
    let theirs = tour(&kafka.bootstrap, Some(&ours.describe));
    let differences = differences(&ours.steps, &theirs.steps);
    assert!(
        differences.is_empty(),
        "the CLI saw differences:\n{differences}"
    );
}
