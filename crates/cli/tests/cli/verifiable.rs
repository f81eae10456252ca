//! Kafka's system-test clients across a broker crash: the verifiable
//! producer (`org.apache.kafka.tools.VerifiableProducer`, acks=all,
//! idempotent, retrying) sends while the broker is SIGKILLed and started
//! again on the same data dir and port; then the verifiable consumer
//! (`VerifiableConsumer`, in a group, from the earliest offset) reads the
//! topic in a fresh group, while another verifiable consumer, started
//! before the producer, reads and commits across the crash. Against pubsub
//! and against Apache Kafka (its JVM killed and restarted the same way),
//! each asserting what Kafka promises:
//!
//! - the producer gets every record acknowledged (the outage is shorter than
//!   `delivery.timeout.ms`, and retries are unbounded within it);
//! - every acknowledged record is consumed, at the partition and offset the
//!   acknowledgement gave, by both consumers (the one across the crash may
//!   see again what it had not committed: at least once);
//! - nothing is written twice: an idempotent producer's retry of a batch the
//!   broker had already appended before the crash is recognized (by its
//!   producer id and sequence numbers, rebuilt from the log on restart) and
//!   not appended again, so the topic holds exactly the records acked.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, Options};
use crate::reference::Kafka;

const PRODUCER: &str = "org.apache.kafka.tools.VerifiableProducer";
const CONSUMER: &str = "org.apache.kafka.tools.VerifiableConsumer";
const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const TOPIC: &str = "verified";
const MESSAGES: usize = 4000;
/// Acknowledged records seen before the crash.
const CRASH_AFTER: usize = 1000;
/// Longest silence of a client before the test gives up (a bound against
/// hanging, not a timed assertion).
const PATIENCE: Duration = Duration::from_secs(300);

/// The broker under test, crashed and restarted in place.
enum Broker<'a> {
    Pubsub {
        daemon: Option<Daemon>,
        data: std::path::PathBuf,
    },
    Reference(&'a Kafka),
}

impl Broker<'_> {
    fn bootstrap(&self) -> String {
        match self {
            Broker::Pubsub { daemon, .. } => daemon.as_ref().unwrap().addr.to_string(),
            Broker::Reference(kafka) => kafka.bootstrap.clone(),
        }
    }

    fn crash_and_restart(&mut self) {
        match self {
            Broker::Pubsub { daemon, data } => {
                let old = daemon.take().unwrap();
                let addr = old.addr;
                old.kill9();
                *daemon = Some(Daemon::start_with(
                    data,
                    Options {
                        listen: Some(addr),
                        ..Options::default()
                    },
                ));
            }
            Broker::Reference(kafka) => {
                kafka.kill9();
                kafka.restart();
            }
        }
    }
}

/// A record a verifiable client reported: (partition, offset, value).
type Event = (u64, u64, String);

fn event(v: &Value) -> Event {
    (
        v["partition"].as_u64().unwrap(),
        v["offset"].as_u64().unwrap(),
        v["value"].as_str().unwrap().to_string(),
    )
}

/// A verifiable client running in the background: its JSON events as they
/// come, its stderr at the end; killed on drop.
struct Client {
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Client {
    fn start(kafka: &Kafka, class: &str, args: &[&str]) -> Client {
        let mut command = kafka.command(class);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all += &line;
                all.push('\n');
            }
            all
        });
        Client {
            child,
            events,
            stderr: Some(stderr),
        }
    }

    /// The next event; `None` once the client has exited. Panics if it
    /// goes silent for `PATIENCE`.
    fn next(&mut self) -> Option<Value> {
        match self.events.recv_timeout(PATIENCE) {
            Ok(v) => Some(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!("a verifiable client went silent for {PATIENCE:?}");
            }
        }
    }

    /// Waits for the exit: (success, stderr).
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        (
            status.success(),
            self.stderr.take().unwrap().join().unwrap(),
        )
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the scenario observed on one broker.
struct Outcome {
    acked: BTreeSet<Event>,
    errors: Vec<String>,
    /// By the consumer that ran across the crash, in a group, committing.
    consumed_live: Vec<Event>,
    /// By a consumer in a fresh group afterwards.
    consumed: Vec<Event>,
    records_in_topic: u64,
}

fn scenario(kafka: &Kafka, broker: &mut Broker<'_>) -> Outcome {
    let b = broker.bootstrap();
    let (ok, out, err) = kafka.tool(
        TOPICS,
        &[
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            TOPIC,
            "--partitions",
            "3",
        ],
        "",
    );
    assert!(ok, "creating {TOPIC}: {out}{err}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("producer.properties");
    // The tool sets retries=0 unless told otherwise, which idempotence
    // refuses. The outage (Kafka's restart takes a while on a busy machine)
    // stays within the delivery timeout.
    std::fs::write(
        &config,
        "enable.idempotence=true\nretries=2147483647\nmax.in.flight.requests.per.connection=5\ndelivery.timeout.ms=600000\nlinger.ms=5\n",
    )
    .unwrap();

    // A consumer that reads (and commits) while the broker crashes.
    let mut live = Client::start(
        kafka,
        CONSUMER,
        &[
            "--bootstrap-server",
            &b,
            "--topic",
            TOPIC,
            "--group-id",
            "live",
            "--reset-policy",
            "earliest",
            "--verbose",
        ],
    );
    let max = MESSAGES.to_string();
    let config = config.to_str().unwrap();
    let mut producer = Client::start(
        kafka,
        PRODUCER,
        &[
            "--bootstrap-server",
            &b,
            "--topic",
            TOPIC,
            "--max-messages",
            &max,
            "--throughput",
            "1000",
            "--acks",
            "-1",
            "--producer.config",
            config,
        ],
    );
    let mut acked = BTreeSet::new();
    let mut errors = Vec::new();
    let mut crashed = false;
    while let Some(v) = producer.next() {
        match v["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(event(&v));
            }
            Some("producer_send_error") => errors.push(v.to_string()),
            _ => {}
        }
        if !crashed && acked.len() >= CRASH_AFTER {
            crashed = true;
            broker.crash_and_restart();
        }
    }
    let (ok, stderr) = producer.finish();
    assert!(
        crashed,
        "the producer finished before the crash, {} acked:\n{stderr}",
        acked.len()
    );
    assert!(ok, "the verifiable producer failed:\n{stderr}");

    // The live consumer, until it has seen every acknowledged record (or
    // goes silent, which fails the test).
    let mut consumed_live = Vec::new();
    let mut missing = acked.clone();
    while !missing.is_empty() {
        let Some(v) = live.next() else {
            let (_, stderr) = live.finish();
            panic!("the live verifiable consumer exited:\n{stderr}");
        };
        if v["name"] == "record_data" {
            let e = event(&v);
            missing.remove(&e);
            consumed_live.push(e);
        }
    }
    drop(live);

    // Nothing was deleted, so the latest offsets add up to the records.
    let (ok, out, err) = kafka.tool(
        "org.apache.kafka.tools.GetOffsetShell",
        &["--bootstrap-server", &b, "--topic", TOPIC, "--time", "-1"],
        "",
    );
    assert!(ok, "kafka-get-offsets failed:\n{err}");
    let records_in_topic: u64 = out
        .lines()
        .map(|l| l.rsplit(':').next().unwrap().parse::<u64>().unwrap())
        .sum();

    let (ok, out, err) = kafka.tool(
        CONSUMER,
        &[
            "--bootstrap-server",
            &b,
            "--topic",
            TOPIC,
            "--group-id",
            "verifiers",
            "--max-messages",
            &records_in_topic.to_string(),
            "--reset-policy",
            "earliest",
            "--verbose",
        ],
        "",
    );
    assert!(ok, "the verifiable consumer failed:\n{err}");
    let consumed = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["name"] == "record_data")
        .map(|v| event(&v))
        .collect();
    Outcome {
        acked,
        errors,
        consumed_live,
        consumed,
        records_in_topic,
    }
}

/// What Kafka promises, asserted on one broker's outcome.
fn check(broker: &str, o: &Outcome) {
    eprintln!(
        "{broker}: {} acked, {} send errors, {} records in the topic, {} consumed across the crash, {} consumed after",
        o.acked.len(),
        o.errors.len(),
        o.records_in_topic,
        o.consumed_live.len(),
        o.consumed.len()
    );
    assert!(
        o.errors.is_empty(),
        "{broker}: sends failed across the crash: {:?}",
        &o.errors[..o.errors.len().min(5)]
    );
    assert_eq!(o.acked.len(), MESSAGES, "{broker}: not every record acked");
    let consumed: BTreeSet<Event> = o.consumed.iter().cloned().collect();
    let lost: Vec<&Event> = o.acked.difference(&consumed).take(10).collect();
    assert!(
        lost.is_empty(),
        "{broker}: acknowledged records not consumed (first ten): {lost:?}"
    );
    // The live consumer saw every acked record (the scenario waited for
    // that), each where the topic holds it; records it had not committed
    // before the crash it may have seen twice.
    let strays: Vec<&Event> = o
        .consumed_live
        .iter()
        .filter(|e| !consumed.contains(*e))
        .take(10)
        .collect();
    assert!(
        strays.is_empty(),
        "{broker}: the live consumer saw records the topic does not hold: {strays:?}"
    );
    let values: BTreeSet<&String> = o.consumed.iter().map(|(_, _, v)| v).collect();
    assert_eq!(
        (o.records_in_topic, o.consumed.len(), values.len()),
        (MESSAGES as u64, MESSAGES, MESSAGES),
        "{broker}: (records in the topic, consumed, distinct values): records written twice"
    );
}

#[test]
fn verifiable_producer_and_consumer_lose_nothing_across_a_broker_sigkill() {
    let Some(kafka) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut pubsub = Broker::Pubsub {
        daemon: Some(Daemon::start(&data)),
        data,
    };
    let ours = scenario(&kafka, &mut pubsub);
    let theirs = scenario(&kafka, &mut Broker::Reference(&kafka));
    check("Apache Kafka", &theirs);
    check("pubsub", &ours);
}
