//! The differential runner: the same scenarios, request by request, against
//! a pubsub daemon and a real Apache Kafka 4.1.1 (one JVM for the whole
//! suite), and what a client can observe in every answer compared field by
//! field: error codes and messages, offsets, high watermarks and log start
//! offsets, timestamps, ListOffsets answers, group states, members and
//! assignments, committed offsets and their metadata, topic configs with
//! their sources and flags, record bytes, keys and headers, Metadata.
//!
//! Requests go at the highest version both brokers (and the codec) speak.
//! What legitimately differs (ports, cluster and topic ids, generated member
//! and producer ids, the brokers' clocks) is normalised in one place,
//! [`normalise`]; known differences are listed there and in
//! docs/COMPATIBILITY.md. Scenarios are short async functions in
//! [`scenarios`]; add one there and to [`scenarios::ALL`].
//!
//! Needs Java 17+ and Maven (see `reference.rs`). `DIFFERENTIAL_ONLY=<name>`
//! plays one scenario alone.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

mod normalise;
mod scenarios;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::{Message, Request, StrBytes};

use crate::client::Client;
use crate::daemon::{Daemon, Options};
use crate::reference::Kafka;
use normalise::{Clock, Names};
use tree::Node;

/// Scenarios that need an API pubsub does not serve yet, with its key: they
/// run against Kafka alone (so they stay correct), and the suite fails once
/// pubsub advertises the API, until the scenario is taken off this list.
pub const AWAITING_PUBSUB_API: &[(&str, i16)] = &[];

/// One scenario: a name and the steps it plays through a [`Probe`].
pub struct Scenario {
    pub name: &'static str,
    pub play: for<'a> fn(&'a mut Probe) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
}

/// Highest version of each API both sides speak, by key.
type Versions = BTreeMap<i16, i16>;

/// One scenario's connection to one broker, recording every answer.
pub struct Probe {
    pub client: Client,
    addr: std::net::SocketAddr,
    versions: Versions,
    pub names: Names,
    steps: Vec<(String, Node)>,
}

impl Probe {
    /// The version this run sends `R` at.
    pub fn version<R: Request>(&self) -> i16 {
        let api = ApiKey::try_from(R::KEY).unwrap();
        *self
            .versions
            .get(&R::KEY)
            .unwrap_or_else(|| panic!("{api:?} is not served by both brokers"))
    }

    /// Sends `req`, records the answer as step `step`, returns it.
    pub async fn call<R>(&mut self, step: &str, req: R) -> R::Response
    where
        R: Request + Debug,
        R::Response: Debug,
    {
        let version = self.version::<R>();
        self.call_at(step, version, req).await
    }

    /// [`Probe::call`] at a version the scenario names.
    pub async fn call_at<R>(&mut self, step: &str, version: i16, req: R) -> R::Response
    where
        R: Request + Debug,
        R::Response: Debug,
    {
        let resp = self.client.call(version, &req).await;
        self.record::<R>(step, version, &resp);
        resp
    }

    /// Records `resp`, an answer to an `R` at `version` that arrived on
    /// another connection ([`Probe::another_client`]).
    pub fn record<R>(&mut self, step: &str, version: i16, resp: &R::Response)
    where
        R: Request,
        R::Response: Debug,
    {
        let api = ApiKey::try_from(R::KEY).unwrap();
        self.observe(&format!("{step} ({api:?} v{version})"), Node::of(resp));
    }

    /// A second connection to the same broker (a second group member).
    pub async fn another_client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Sends `req` without recording the answer (waiting for a topic or a
    /// coordinator, which Kafka creates in the background).
    pub async fn quiet<R: Request>(&mut self, req: R) -> R::Response {
        let version = self.version::<R>();
        self.client.call(version, &req).await
    }

    /// Records an observation derived from answers (decoded records).
    pub fn observe(&mut self, step: &str, node: Node) {
        self.steps.push((step.to_string(), node));
    }
}

/// API key -> highest version the broker at `addr` advertises.
async fn advertised(addr: std::net::SocketAddr) -> Versions {
    let mut client = Client::connect(addr).await;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("pubsub-differential"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let resp = client.call(3, &req).await;
    assert_eq!(resp.error_code, 0, "ApiVersions at {addr}");
    resp.api_keys
        .iter()
        .map(|k| (k.api_key, k.max_version))
        .collect()
}

/// The highest versions both sides speak, capped by what the codec knows.
fn agreed(a: &Versions, b: &Versions) -> Versions {
    a.iter()
        .filter_map(|(key, &va)| Some((*key, va.min(*b.get(key)?).min(codec_max(*key)?))))
        .collect()
}

/// The highest version of API `key` the `kafka-protocol` crate encodes.
fn codec_max(key: i16) -> Option<i16> {
    use kafka_protocol::messages::*;
    fn max<M: Message>() -> Option<i16> {
        Some(M::VERSIONS.max)
    }
    match ApiKey::try_from(key).ok()? {
        ApiKey::Produce => max::<ProduceRequest>(),
        ApiKey::Fetch => max::<FetchRequest>(),
        ApiKey::ListOffsets => max::<ListOffsetsRequest>(),
        ApiKey::Metadata => max::<MetadataRequest>(),
        ApiKey::OffsetCommit => max::<OffsetCommitRequest>(),
        ApiKey::OffsetFetch => max::<OffsetFetchRequest>(),
        ApiKey::FindCoordinator => max::<FindCoordinatorRequest>(),
        ApiKey::JoinGroup => max::<JoinGroupRequest>(),
        ApiKey::Heartbeat => max::<HeartbeatRequest>(),
        ApiKey::LeaveGroup => max::<LeaveGroupRequest>(),
        ApiKey::SyncGroup => max::<SyncGroupRequest>(),
        ApiKey::DescribeGroups => max::<DescribeGroupsRequest>(),
        ApiKey::ListGroups => max::<ListGroupsRequest>(),
        ApiKey::CreateTopics => max::<CreateTopicsRequest>(),
        ApiKey::DeleteTopics => max::<DeleteTopicsRequest>(),
        ApiKey::DeleteRecords => max::<DeleteRecordsRequest>(),
        ApiKey::InitProducerId => max::<InitProducerIdRequest>(),
        ApiKey::DescribeConfigs => max::<DescribeConfigsRequest>(),
        ApiKey::AlterConfigs => max::<AlterConfigsRequest>(),
        ApiKey::CreatePartitions => max::<CreatePartitionsRequest>(),
        ApiKey::DeleteGroups => max::<DeleteGroupsRequest>(),
        ApiKey::IncrementalAlterConfigs => max::<IncrementalAlterConfigsRequest>(),
        ApiKey::OffsetDelete => max::<OffsetDeleteRequest>(),
        ApiKey::AddPartitionsToTxn => max::<AddPartitionsToTxnRequest>(),
        ApiKey::AddOffsetsToTxn => max::<AddOffsetsToTxnRequest>(),
        ApiKey::EndTxn => max::<EndTxnRequest>(),
        ApiKey::TxnOffsetCommit => max::<TxnOffsetCommitRequest>(),
        ApiKey::DescribeTransactions => max::<DescribeTransactionsRequest>(),
        _ => None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Plays `scenario` against `addr`: its steps, normalised.
async fn play(
    scenario: &Scenario,
    addr: std::net::SocketAddr,
    versions: &Versions,
) -> Vec<(String, BTreeMap<String, String>)> {
    let from = now_ms();
    let mut probe = Probe {
        client: Client::connect(addr).await,
        addr,
        versions: versions.clone(),
        names: Names::default(),
        steps: Vec::new(),
    };
    (scenario.play)(&mut probe).await;
    let clock = Clock {
        from,
        to: now_ms() + 1000,
    };
    probe
        .steps
        .into_iter()
        .map(|(step, mut node)| {
            normalise::normalise(&mut node, &probe.names, clock);
            let mut flat = BTreeMap::new();
            node.flatten("", "", &mut flat);
            (step, flat)
        })
        .collect()
}

/// Each field that differs between the two runs of one scenario, as
/// `scenario / step: path: pubsub X, Kafka Y` lines.
fn compare(
    scenario: &str,
    ours: &[(String, BTreeMap<String, String>)],
    theirs: &[(String, BTreeMap<String, String>)],
) -> Vec<String> {
    let mut out = Vec::new();
    let steps = |s: &[(String, BTreeMap<String, String>)]| -> Vec<String> {
        s.iter().map(|(n, _)| n.clone()).collect()
    };
    if steps(ours) != steps(theirs) {
        out.push(format!(
            "{scenario}: the runs took different steps:\n  pubsub {:?}\n  Kafka  {:?}",
            steps(ours),
            steps(theirs)
        ));
        return out;
    }
    for ((step, a), (_, b)) in ours.iter().zip(theirs) {
        let (elements_a, elements_b) = (elements(a), elements(b));
        let mut reported = BTreeSet::new();
        let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for path in paths {
            let (x, y) = (a.get(path), b.get(path));
            // An element one side lacks altogether: one line, not one per field.
            let lone =
                element_prefixes(path).find(|p| elements_a.contains(p) != elements_b.contains(p));
            if let Some(element) = lone {
                if reported.insert(element) {
                    let side = if elements_a.contains(element) {
                        "pubsub"
                    } else {
                        "Kafka"
                    };
                    out.push(format!(
                        "{scenario} / {step}: {element}: only {side} answers it"
                    ));
                }
                continue;
            }
            if x != y {
                let show = |v: Option<&String>| v.map_or("(absent)".to_string(), Clone::clone);
                out.push(format!(
                    "{scenario} / {step}: {path}: pubsub {}, Kafka {}",
                    show(x),
                    show(y)
                ));
            }
        }
    }
    out
}

/// Every `...]` prefix of a flattened path: the list elements it is in.
fn element_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices(']').map(move |(i, _)| &path[..=i])
}

/// The list elements present in one step's answer.
fn elements(flat: &BTreeMap<String, String>) -> BTreeSet<&str> {
    flat.keys().flat_map(|k| element_prefixes(k)).collect()
}

/// How often Kafka and pubsub look for expired segments in this suite
/// (their defaults are minutes), so the retention scenario sees it happen.
const RETENTION_CHECK_MS: u64 = 500;

/// How often Kafka looks for transactions past their timeout in this suite
/// (its default is 10 s; pubsub looks at every tick, 100 ms), so the
/// transaction timeout scenario does not wait for it.
const TXN_TIMEOUT_CHECK_MS: u64 = 500;

#[test]
fn pubsub_and_apache_kafka_answer_the_same_scenarios_alike() {
    let Some(kafka) = Kafka::start_with(&[
        &format!("log.retention.check.interval.ms={RETENTION_CHECK_MS}"),
        &format!(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms={TXN_TIMEOUT_CHECK_MS}"
        ),
    ]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        &dir.path().join("data"),
        Options {
            env: vec![(
                "PUBSUB_STORAGE_RETENTION_CHECK_INTERVAL".into(),
                format!("{RETENTION_CHECK_MS}ms"),
            )],
            ..Options::default()
        },
    );
    let kafka_addr: std::net::SocketAddr = kafka.bootstrap.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let report = runtime.block_on(async {
        let ours = advertised(daemon.addr).await;
        let theirs = advertised(kafka_addr).await;
        let both = agreed(&ours, &theirs);
        let kafka_alone = agreed(&theirs, &theirs);
        let mut report = Vec::new();
        // DIFFERENTIAL_ONLY=name[,name...] plays those scenarios alone
        // (while writing one).
        let only = std::env::var("DIFFERENTIAL_ONLY").ok();
        for scenario in scenarios::ALL {
            if only
                .as_deref()
                .is_some_and(|o| !o.split(',').any(|n| n == scenario.name))
            {
                continue;
            }
            if let Some(&(_, api)) = AWAITING_PUBSUB_API
                .iter()
                .find(|(n, _)| *n == scenario.name)
            {
                assert!(
                    !ours.contains_key(&api),
                    "pubsub now serves API {api}: take `{}` off AWAITING_PUBSUB_API",
                    scenario.name
                );
                play(scenario, kafka_addr, &kafka_alone).await;
                eprintln!(
                    "{}: Kafka only, awaiting API {api} in pubsub",
                    scenario.name
                );
                continue;
            }
            let clock = Instant::now();
            let a = play(scenario, daemon.addr, &both).await;
            let ours_took = clock.elapsed();
            let b = play(scenario, kafka_addr, &both).await;
            let diffs = compare(scenario.name, &a, &b);
            eprintln!(
                "{}: {} steps, {} differences (pubsub {ours_took:.1?}, Kafka {:.1?})",
                scenario.name,
                a.len(),
                diffs.len(),
                clock.elapsed() - ours_took
            );
            report.extend(diffs);
        }
        report
    });
    eprintln!("scenarios took {:?}", started.elapsed());
    for (what, why) in normalise::KNOWN_DIFFERENCES {
        eprintln!("known difference, normalised: {what}: {why}");
    }
    assert!(
        report.is_empty(),
        "pubsub and Apache Kafka answered differently ({} fields):\n{}",
        report.len(),
        report.join("\n")
    );
}
