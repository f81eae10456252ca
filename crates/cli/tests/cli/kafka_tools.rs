//! Kafka's own command-line tools (`kafka-topics`, `kafka-configs`, the
//! console producer and consumer, `kafka-consumer-groups`,
//! `kafka-get-offsets`, `kafka-log-dirs` and the system-test verifiable
//! producer and consumer), run from the pinned Apache Kafka 4.1.1 jars
//! against a pubsub daemon and against a real Kafka, the same scenario on
//! each, and what they print compared once what legitimately differs
//! (topic ids, log dir paths, the brokers' addresses) is normalized.
//!
//! `kafka-configs --entity-type users` (AlterUserScramCredentials, 51),
//! `kafka-delete-records` (DeleteRecords, 21), `kafka-consumer-groups
//! --delete-offsets` (OffsetDelete, 47) and `kafka-get-offsets --time -4/-5`
//! (ListOffsets v8+) run too.
//!
//! `kafka-transactions` (TransactionsCommand) runs against a transaction
//! left open by a producer killed mid-transaction (`pubsub.compat.tools.
//! OpenTransaction`, SIGKILLed once its records are in the log): `list`,
//! `describe --transactional-id`, `describe-producers`, `find-hanging`
//! (none: the coordinator still tracks the transaction and its partition),
//! `abort --start-offset` (WriteTxnMarkers, 27: an ABORT marker written into
//! the partition), after which a read_committed consumer reads past it.
//! The normalizations that hide a known difference say so where they are.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::daemon::Daemon;
use crate::reference::Kafka;

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const CONFIGS: &str = "kafka.admin.ConfigCommand";
const PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
const CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const GET_OFFSETS: &str = "org.apache.kafka.tools.GetOffsetShell";
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";
const LOG_DIRS: &str = "org.apache.kafka.tools.LogDirsCommand";
const VERIFIABLE_PRODUCER: &str = "org.apache.kafka.tools.VerifiableProducer";
const VERIFIABLE_CONSUMER: &str = "org.apache.kafka.tools.VerifiableConsumer";
const TRANSACTIONS: &str = "org.apache.kafka.tools.TransactionsCommand";
const OPEN_TRANSACTION: &str = "pubsub.compat.tools.OpenTransaction";

/// The tools against one broker, each step's (normalized) output recorded.
struct Run<'a> {
    kafka: &'a Kafka,
    bootstrap: String,
    steps: Vec<(String, String)>,
}

impl Run<'_> {
    /// Runs `class --bootstrap-server B args...`; its stdout with the
    /// bootstrap address replaced by `BOOTSTRAP`. Fails the test where the
    /// tool's exit status is not `success`.
    fn tool(&self, class: &str, args: &[&str], stdin: &str, success: bool) -> String {
        let mut all = vec!["--bootstrap-server", &self.bootstrap];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.kafka.tool(class, &all, stdin);
        assert_eq!(
            ok, success,
            "{class} {all:?} exited with success={ok}:\n{stdout}\n{stderr}"
        );
        stdout.replace(&self.bootstrap, "BOOTSTRAP")
    }

    /// Runs a tool that must fail and reports its exception to stderr: the
    /// cause's line (`Caused by: ...`), with Kafka's error message.
    fn cause(&self, class: &str, args: &[&str]) -> String {
        let mut all = vec!["--bootstrap-server", &self.bootstrap];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.kafka.tool(class, &all, "");
        assert!(!ok, "{class} {all:?} succeeded:\n{stdout}");
        stderr
            .lines()
            .find(|l| l.starts_with("Caused by: "))
            .unwrap_or_else(|| panic!("{class} {all:?}: no cause in\n{stderr}"))
            .to_string()
    }

    fn step(&mut self, name: &str, output: String) {
        self.steps.push((name.to_string(), output));
    }
}

/// `kafka-topics --describe` with the topic id blanked. One known
/// difference is normalized: Kafka 4.1 formats its storage with a
/// cluster-wide dynamic `min.insync.replicas=1` (for eligible leader
/// replicas), which the tool lists among each topic's `Configs:`.
fn describe_topic(out: &str) -> String {
    out.lines()
        .map(|line| {
            line.split('\t')
                .map(|field| {
                    if field.starts_with("TopicId: ") {
                        "TopicId: -".to_string()
                    } else if let Some(configs) = field.strip_prefix("Configs: ") {
                        let kept: Vec<&str> = configs
                            .split(',')
                            .filter(|c| !c.is_empty() && *c != "min.insync.replicas=1")
                            .collect();
                        format!("Configs: {}", kept.join(","))
                    } else {
                        field.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\t")
                + "\n"
        })
        .collect()
}

/// `kafka-configs --describe` without each entry's synonyms, which pubsub
/// does not send (a known difference: Kafka lists the topic's override and
/// the broker default it shadows, pubsub sends none).
fn describe_configs(out: &str) -> String {
    out.lines()
        .map(|line| match line.split_once(" synonyms={") {
            Some((entry, _)) => format!("{entry}\n"),
            None => format!("{line}\n"),
        })
        .collect()
}

/// Lines sorted: a consumer reading several partitions may interleave them
/// in any order.
fn sorted(out: &str) -> String {
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `kafka-log-dirs --describe`'s JSON reduced to partition -> whether it
/// holds bytes (the log dir path differs by nature, and the exact size with
/// timing: the console producer's batching and the varint timestamp deltas
/// inside a batch vary from run to run, on either broker).
fn log_dir_sizes(out: &str) -> String {
    let json = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from kafka-log-dirs: {out}"));
    let v: Value = serde_json::from_str(json).unwrap();
    let mut sizes = BTreeMap::new();
    for broker in v["brokers"].as_array().unwrap() {
        for dir in broker["logDirs"].as_array().unwrap() {
            assert_eq!(dir["error"], Value::Null, "{json}");
            for p in dir["partitions"].as_array().unwrap() {
                sizes.insert(
                    format!("broker {} {}", broker["broker"], p["partition"]),
                    if p["size"].as_u64().unwrap() > 0 {
                        "holds bytes"
                    } else {
                        "empty"
                    },
                );
            }
        }
    }
    assert!(!sizes.is_empty(), "no partitions in {json}");
    format!("{sizes:?}")
}

/// The JSON events named `name` that a verifiable client printed, each as
/// (partition, offset, key, value).
fn events(out: &str, name: &str) -> BTreeSet<(u64, u64, String, String)> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["name"] == name)
        .map(|v| {
            (
                v["partition"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
                v["key"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The scenario, about 25 tool runs.
fn scenario(run: &mut Run<'_>) {
    run.step(
        "topics --create",
        run.tool(
            TOPICS,
            &["--create", "--topic", "orders", "--partitions", "3"],
            "",
            true,
        ),
    );
    run.step(
        "topics --create an existing topic",
        run.tool(TOPICS, &["--create", "--topic", "orders"], "", false),
    );
    run.step(
        "topics --list",
        run.tool(TOPICS, &["--list", "--exclude-internal"], "", true),
    );
    let keyed = [
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
    ];
    run.step(
        "console-producer, keyed",
        run.tool(
            PRODUCER,
            &[&["--topic", "orders"][..], &keyed].concat(),
            "AAPL:buy 100\nMSFT:sell 20\nAAPL:buy 5\nTSLA:buy 1\nIBM:buy 7\n",
            true,
        ),
    );
    run.step(
        "console-consumer --from-beginning --group",
        sorted(&run.tool(
            CONSUMER,
            &[
                "--topic",
                "orders",
                "--from-beginning",
                "--max-messages",
                "5",
                "--group",
                "g",
                "--property",
                "print.key=true",
                "--property",
                "print.partition=true",
                "--property",
                "print.offset=true",
            ],
            "",
            true,
        )),
    );
    // Every record produced from here on has a timestamp at or after this.
    let between = now_ms().to_string();
    run.step(
        "console-producer, more",
        run.tool(
            PRODUCER,
            &[&["--topic", "orders"][..], &keyed].concat(),
            "AAPL:sell 50\nZZ:buy 2\n",
            true,
        ),
    );
    run.step(
        "consumer-groups --list",
        run.tool(GROUPS, &["--list"], "", true),
    );
    run.step(
        "consumer-groups --list --type",
        run.tool(GROUPS, &["--list", "--type"], "", true),
    );
    run.step(
        "consumer-groups --describe (lag)",
        run.tool(GROUPS, &["--describe", "--group", "g"], "", true),
    );
    run.step(
        "consumer-groups --describe --state",
        run.tool(GROUPS, &["--describe", "--group", "g", "--state"], "", true),
    );
    run.step(
        "consumer-groups --reset-offsets --to-earliest --execute",
        run.tool(
            GROUPS,
            &[
                "--reset-offsets",
                "--group",
                "g",
                "--topic",
                "orders",
                "--to-earliest",
                "--execute",
            ],
            "",
            true,
        ),
    );
    run.step(
        "consumer-groups --describe after the reset",
        run.tool(GROUPS, &["--describe", "--group", "g"], "", true),
    );
    run.step(
        "consumer-groups --delete-offsets",
        run.tool(
            GROUPS,
            &["--delete-offsets", "--group", "g", "--topic", "orders:0"],
            "",
            true,
        ),
    );
    run.step(
        "consumer-groups --delete-offsets of an unknown group",
        run.tool(
            GROUPS,
            &["--delete-offsets", "--group", "nobody", "--topic", "orders"],
            "",
            // The tool prints the error per partition and exits 0.
            true,
        ),
    );
    run.step(
        "consumer-groups --describe after --delete-offsets",
        run.tool(GROUPS, &["--describe", "--group", "g"], "", true),
    );
    run.step(
        "consumer-groups --delete",
        run.tool(GROUPS, &["--delete", "--group", "g"], "", true),
    );
    run.step(
        "consumer-groups --list after the delete",
        run.tool(GROUPS, &["--list"], "", true),
    );
    for (name, time) in [
        ("get-offsets latest", "-1"),
        ("get-offsets earliest", "-2"),
        ("get-offsets earliest local", "-4"),
        ("get-offsets latest tiered", "-5"),
        ("get-offsets by time", between.as_str()),
    ] {
        run.step(
            name,
            run.tool(
                GET_OFFSETS,
                &["--topic", "orders", "--time", time],
                "",
                true,
            ),
        );
    }
    // kafka-delete-records: partition 0 up to its high watermark, 1 to
    // offset 0 (nothing to delete), 7 does not exist.
    let json = tempfile::tempdir().unwrap();
    let offsets = json.path().join("offsets.json");
    std::fs::write(
        &offsets,
        r#"{"version":1,"partitions":[{"topic":"orders","partition":0,"offset":-1},{"topic":"orders","partition":1,"offset":0}]}"#,
    )
    .unwrap();
    // (Sorted: the tool prints the partitions in hash-map order.)
    run.step(
        "delete-records",
        sorted(&run.tool(
            DELETE_RECORDS,
            &["--offset-json-file", offsets.to_str().unwrap()],
            "",
            true,
        )),
    );
    run.step(
        "get-offsets earliest after delete-records",
        run.tool(
            GET_OFFSETS,
            &["--topic", "orders", "--time", "-2"],
            "",
            true,
        ),
    );
    run.step(
        "log-dirs --describe: partition sizes",
        log_dir_sizes(&run.tool(
            LOG_DIRS,
            &["--describe", "--topic-list", "orders"],
            "",
            true,
        )),
    );
    let topic = ["--entity-type", "topics", "--entity-name", "orders"];
    run.step(
        "configs --alter --add-config",
        run.tool(
            CONFIGS,
            &[
                &topic[..],
                &[
                    "--alter",
                    "--add-config",
                    "retention.ms=86400000,max.message.bytes=2048",
                ],
            ]
            .concat(),
            "",
            true,
        ),
    );
    run.step(
        "configs --alter --add-config of an unknown name",
        run.cause(
            CONFIGS,
            &[&topic[..], &["--alter", "--add-config", "bogus.x=1"]].concat(),
        ),
    );
    run.step(
        "configs --describe",
        describe_configs(&run.tool(CONFIGS, &[&topic[..], &["--describe"]].concat(), "", true)),
    );
    run.step(
        "configs --alter --delete-config",
        run.tool(
            CONFIGS,
            &[&topic[..], &["--alter", "--delete-config", "retention.ms"]].concat(),
            "",
            true,
        ),
    );
    run.step(
        "configs --describe after the delete",
        describe_configs(&run.tool(CONFIGS, &[&topic[..], &["--describe"]].concat(), "", true)),
    );
    run.step(
        "topics --alter --partitions",
        run.tool(
            TOPICS,
            &["--alter", "--topic", "orders", "--partitions", "4"],
            "",
            true,
        ),
    );
    for (name, count) in [
        ("topics --alter --partitions: fewer", "2"),
        ("topics --alter --partitions: as many", "4"),
    ] {
        run.step(
            name,
            run.tool(
                TOPICS,
                &["--alter", "--topic", "orders", "--partitions", count],
                "",
                false,
            ),
        );
    }
    run.step(
        "topics --describe",
        describe_topic(&run.tool(TOPICS, &["--describe", "--topic", "orders"], "", true)),
    );

    // Kafka's system-test clients: every acknowledged record is consumed.
    run.tool(
        TOPICS,
        &["--create", "--topic", "verifiable", "--partitions", "3"],
        "",
        true,
    );
    let produced = run.tool(
        VERIFIABLE_PRODUCER,
        &[
            "--topic",
            "verifiable",
            "--max-messages",
            "60",
            "--acks",
            "-1",
            "--repeating-keys",
            "7",
        ],
        "",
        true,
    );
    let acked = events(&produced, "producer_send_success");
    assert_eq!(acked.len(), 60, "not every record acked:\n{produced}");
    let consumed = run.tool(
        VERIFIABLE_CONSUMER,
        &[
            "--topic",
            "verifiable",
            "--group-id",
            "verifiers",
            "--max-messages",
            "60",
            "--reset-policy",
            "earliest",
            "--verbose",
        ],
        "",
        true,
    );
    assert_eq!(
        events(&consumed, "record_data"),
        acked,
        "the verifiable consumer did not consume exactly what was acked:\n{consumed}"
    );
    run.step("verifiable producer: acked records", format!("{acked:?}"));

    // SCRAM users through AlterUserScramCredentials (51): created, then
    // Kafka's refusals (both mechanisms in one request is the same user
    // twice; deleting a credential that does not exist).
    let user = [
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        "tool-user",
    ];
    run.step(
        "configs --alter users --add-config SCRAM-SHA-256",
        run.tool(
            CONFIGS,
            &[
                &user[..],
                &[
                    "--add-config",
                    "SCRAM-SHA-256=[iterations=8192,password=tool-pw]",
                ],
            ]
            .concat(),
            "",
            true,
        ),
    );
    run.step(
        "configs --alter users, both SCRAM mechanisms at once",
        run.cause(
            CONFIGS,
            &[
                &user[..],
                &[
                    "--add-config",
                    "SCRAM-SHA-256=[password=a],SCRAM-SHA-512=[password=b]",
                ],
            ]
            .concat(),
        ),
    );
    run.step(
        "configs --alter users --delete-config of a missing credential",
        run.cause(
            CONFIGS,
            &[&user[..], &["--delete-config", "SCRAM-SHA-512"]].concat(),
        ),
    );

    run.step(
        "topics --delete",
        run.tool(TOPICS, &["--delete", "--topic", "orders"], "", true),
    );
    run.step(
        "topics --list after the delete",
        run.tool(TOPICS, &["--list", "--exclude-internal"], "", true),
    );
}

/// A `kafka-transactions` table (columns padded, tab-separated) with the
/// columns named in `blank` replaced by `-` (producer ids, clocks), its
/// fields joined by single spaces and its rows sorted.
fn txn_table(out: &str, blank: &[&str]) -> String {
    let split = |l: &str| -> Vec<String> { l.split('\t').map(|f| f.trim().to_string()).collect() };
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = split(
        lines
            .next()
            .unwrap_or_else(|| panic!("no table in {out:?}")),
    );
    let mut rows: Vec<String> = lines
        .map(|l| {
            split(l)
                .into_iter()
                .zip(&header)
                .map(|(f, h)| {
                    if blank.contains(&h.as_str()) {
                        "-".into()
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.sort();
    format!("{}\n{}", header.join(" "), rows.join("\n"))
}

/// A transactional producer that sends `records` records to `topic`'s
/// partition 0 as `id` and is SIGKILLed once they are acknowledged: its
/// transaction stays open (15-minute timeout).
fn leave_transaction_open(kafka: &Kafka, bootstrap: &str, topic: &str, id: &str, records: u32) {
    use std::io::{BufRead, BufReader};
    let mut command = kafka.command(OPEN_TRANSACTION);
    command
        .args([bootstrap, topic, "0", id, &records.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let open = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "open");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        open,
        "the transactional producer did not open its transaction"
    );
}

/// `kafka-transactions` against a transaction left open by a killed
/// producer, then aborted with the tool.
fn transactions_scenario(run: &mut Run<'_>) {
    const TOPIC: &str = "txn-tools";
    const ID: &str = "tools-txn";
    run.tool(
        TOPICS,
        &["--create", "--topic", TOPIC, "--partitions", "1"],
        "",
        true,
    );
    leave_transaction_open(run.kafka, &run.bootstrap, TOPIC, ID, 3);
    let tx = |run: &Run<'_>, args: &[&str], blank: &[&str]| {
        txn_table(&run.tool(TRANSACTIONS, args, "", true), blank)
    };
    let producers = ["describe-producers", "--topic", TOPIC, "--partition", "0"];
    let producer_clocks = ["ProducerId", "LastTimestamp"];
    let describe = ["describe", "--transactional-id", ID];
    let describe_clocks = [
        "ProducerId",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
    ];
    run.step("transactions list", tx(run, &["list"], &["ProducerId"]));
    run.step(
        "transactions describe",
        tx(run, &describe, &describe_clocks),
    );
    run.step(
        "transactions describe-producers",
        tx(run, &producers, &producer_clocks),
    );
    run.step(
        "transactions find-hanging",
        tx(
            run,
            &[
                "find-hanging",
                "--topic",
                TOPIC,
                "--max-transaction-timeout",
                "0",
            ],
            &["ProducerId", "LastTimestamp", "Duration(min)"],
        ),
    );
    run.step(
        "transactions abort",
        run.tool(
            TRANSACTIONS,
            &[
                "abort",
                "--topic",
                TOPIC,
                "--partition",
                "0",
                "--start-offset",
                "0",
            ],
            "",
            true,
        ),
    );
    run.step(
        "transactions describe-producers after the abort",
        tx(run, &producers, &producer_clocks),
    );
    run.step(
        "transactions describe after the abort",
        tx(run, &describe, &describe_clocks),
    );
    // The partition's last stable offset moved past the aborted records: a
    // record written after them is read_committed at once.
    run.tool(PRODUCER, &["--topic", TOPIC], "after the abort\n", true);
    run.step(
        "read_committed after the abort",
        run.tool(
            CONSUMER,
            &[
                "--topic",
                TOPIC,
                "--from-beginning",
                "--isolation-level",
                "read_committed",
                "--max-messages",
                "1",
                "--timeout-ms",
                "60000",
            ],
            "",
            true,
        ),
    );
}

#[test]
fn kafka_tools_print_the_same_against_pubsub_and_apache_kafka() {
    let Some(kafka) = Kafka::start() else { return };
    kafka.compile();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let mut ours = Run {
        kafka: &kafka,
        bootstrap: daemon.addr.to_string(),
        steps: Vec::new(),
    };
    scenario(&mut ours);
    transactions_scenario(&mut ours);
    let mut theirs = Run {
        kafka: &kafka,
        bootstrap: kafka.bootstrap.clone(),
        steps: Vec::new(),
    };
    scenario(&mut theirs);
    transactions_scenario(&mut theirs);
    let differences = crate::reference::differences(&ours.steps, &theirs.steps);
    assert!(
        differences.is_empty(),
        "Kafka's tools saw differences:\n{differences}"
    );
}

/// `kafka-producer-perf-test` with a transactional id (Kafka's Java
/// producer 4.1.1, transaction version 1 here: AddPartitionsToTxn before
/// its writes, which the broker verifies against the coordinator) commits
/// a transaction every 50 ms; a read_committed console consumer then reads
/// every record, and the end offset counts records plus one COMMIT marker
/// per transaction. The same on Apache Kafka.
fn transactional_perf(kafka: &Kafka, bootstrap: &str) -> (usize, u64) {
    let servers = format!("bootstrap.servers={bootstrap}");
    let (ok, out, err) = kafka.tool(
        "org.apache.kafka.tools.ProducerPerformance",
        &[
            "--topic",
            "perf-txn",
            "--num-records",
            "2000",
            "--record-size",
            "50",
            "--throughput",
            "-1",
            "--transactional-id",
            "perf-txn-1",
            "--transaction-duration-ms",
            "50",
            "--producer-props",
            &servers,
        ],
        "",
    );
    assert!(ok, "perf test failed:\n{out}\n{err}");
    let (ok, out, err) = kafka.tool(
        CONSUMER,
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            "perf-txn",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--max-messages",
            "2000",
            "--timeout-ms",
            "60000",
        ],
        "",
    );
    assert!(ok, "console consumer failed:\n{out}\n{err}");
    let (ok, offsets, err) = kafka.tool(
        GET_OFFSETS,
        &["--bootstrap-server", bootstrap, "--topic", "perf-txn"],
        "",
    );
    assert!(ok, "get offsets failed:\n{err}");
    let end: u64 = offsets
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum();
    (out.lines().count(), end)
}

#[test]
fn a_java_transactional_producer_commits_through_verification_as_on_kafka() {
    let Some(kafka) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    for bootstrap in [daemon.addr.to_string(), kafka.bootstrap.clone()] {
        let (read, end) = transactional_perf(&kafka, &bootstrap);
        assert_eq!(read, 2000, "read_committed records on {bootstrap}");
        assert!(
            end > 2000,
            "{end}: records and COMMIT markers on {bootstrap}"
        );
    }
}
