//! Kafka's system-test clients across a broker crash: the verifiable
//! producer (`org.apache.kafka.tools.VerifiableProducer`, acks=all,
//! idempotent, retrying) sends while the broker is SIGKILLed and started
//! again on the same data dir and port; then the verifiable consumer
//! (`VerifiableConsumer`, in a group, from the earliest offset) reads the
//! topic. Against pubsub and against Apache Kafka (its JVM killed and
//! restarted the same way), each asserting what Kafka promises:
//!
//! - the producer gets every record acknowledged (the outage is shorter than
//!   `delivery.timeout.ms`, and retries are unbounded within it);
//! - every acknowledged record is consumed, at the partition and offset the
//!   acknowledgement gave;
//! - nothing is written twice: an idempotent producer's retry of a batch the
//!   broker had already appended before the crash is recognized (by its
//!   producer id and sequence numbers, rebuilt from the log on restart) and
//!   not appended again, so the topic holds exactly the records acked.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
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

/// What the scenario observed on one broker.
struct Outcome {
    acked: BTreeSet<Event>,
    errors: Vec<String>,
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
    // Idempotence is the default with acks=all; said anyway. The outage
    // (Kafka's restart takes a while on a busy machine) stays within the
    // delivery timeout.
    std::fs::write(
        &config,
        "enable.idempotence=true\nretries=2147483647\nmax.in.flight.requests.per.connection=5\ndelivery.timeout.ms=600000\nlinger.ms=5\n",
    )
    .unwrap();

    let mut command = kafka.command(PRODUCER);
    command
        .args(["--bootstrap-server", &b, "--topic", TOPIC])
        .args(["--max-messages", &MESSAGES.to_string()])
        .args(["--throughput", "1000", "--acks", "-1"])
        .arg("--producer.config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut producer = command.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = producer.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = producer.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all += &line;
            all.push('\n');
        }
        all
    });

    let mut acked = BTreeSet::new();
    let mut errors = Vec::new();
    let mut crashed = false;
    let record = |line: &str, acked: &mut BTreeSet<Event>, errors: &mut Vec<String>| {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match v["name"].as_str() {
            Some("producer_send_success") => {
                acked.insert(event(&v));
            }
            Some("producer_send_error") => errors.push(line.to_string()),
            _ => {}
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_secs(900)) {
            Ok(line) => record(&line, &mut acked, &mut errors),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = producer.kill();
                panic!("the verifiable producer went silent; acked {}", acked.len());
            }
        }
        if !crashed && acked.len() >= CRASH_AFTER {
            crashed = true;
            broker.crash_and_restart();
        }
    }
    let status = producer.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        crashed,
        "the producer finished before the crash, {} acked:\n{stderr}",
        acked.len()
    );
    assert!(
        status.success(),
        "the verifiable producer failed:\n{stderr}"
    );

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
        consumed,
        records_in_topic,
    }
}

/// What Kafka promises, asserted on one broker's outcome.
fn check(broker: &str, o: &Outcome) {
    eprintln!(
        "{broker}: {} acked, {} send errors, {} records in the topic, {} consumed",
        o.acked.len(),
        o.errors.len(),
        o.records_in_topic,
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
