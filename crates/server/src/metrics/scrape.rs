//! Builds the `/metrics` page: the server's counters plus what the broker
//! holds at this moment (topics, partitions, log sizes, fsyncs, groups and
//! their lag), and the `/health` verdict. Reads take the broker's short
//! locks (a group's lock may be held across an fsync), so callers run this
//! on a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use pubsub_broker::stats::HistogramSnapshot;
use pubsub_broker::{Broker, Partition, PartitionTraffic};

use super::exposition::{Exposition, Kind};
use super::{Metrics, OTHER_CODE};

/// The whole page, in the text exposition format.
pub fn render(broker: &Broker, metrics: &Metrics) -> String {
    let mut e = Exposition::new();
    server(&mut e, metrics);
    let partitions = broker.partitions();
    storage(&mut e, &partitions);
    groups(&mut e, broker, &partitions);
    e.finish()
}

fn server(e: &mut Exposition, m: &Metrics) {
    for (name, kind, help, value) in [
        (
            "pubsub_connections_accepted_total",
            Kind::Counter,
            "Kafka client connections accepted.",
            m.connections_accepted(),
        ),
        (
            "pubsub_connections_refused_total",
            Kind::Counter,
            "Kafka client connections closed on accept because server.max_connections were open.",
            m.connections_refused(),
        ),
        (
            "pubsub_connections_open",
            Kind::Gauge,
            "Kafka client connections being served.",
            m.connections_open(),
        ),
        (
            "pubsub_protocol_errors_total",
            Kind::Counter,
            "Connections closed because of what the client sent: a malformed request, an unknown API or version, an oversized frame.",
            m.protocol_errors(),
        ),
    ] {
        e.family(name, kind, help);
        e.sample(name, &[], value);
    }
    let apis = m.apis();
    let names: Vec<String> = apis.iter().map(|a| format!("{:?}", a.key)).collect();
    e.family(
        "pubsub_requests_total",
        Kind::Counter,
        "Requests handled, per Kafka API.",
    );
    for (a, name) in apis.iter().zip(&names) {
        e.sample("pubsub_requests_total", &[("api", name)], a.requests);
    }
    e.family(
        "pubsub_request_duration_seconds",
        Kind::Histogram,
        "Time from a request being read to its answer being ready to send (acks=all produce: after the fsync), per Kafka API. APIs not used yet are left out.",
    );
    for (a, name) in apis.iter().zip(&names) {
        if a.latency.count() > 0 {
            e.histogram(
                "pubsub_request_duration_seconds",
                &[("api", name)],
                &a.latency,
            );
        }
    }
    e.family(
        "pubsub_errors_total",
        Kind::Counter,
        "Non-zero error codes answered, per Kafka API and code (top-level and per-topic, -partition, -group or -member codes alike).",
    );
    for (a, name) in apis.iter().zip(&names) {
        for &(code, n) in &a.errors {
            let (code_label, error) = match code {
                Some(c) => (
                    c.to_string(),
                    ResponseError::try_from_code(c).map_or_else(String::new, |r| r.to_string()),
                ),
                None => (OTHER_CODE.to_string(), String::new()),
            };
            e.sample(
                "pubsub_errors_total",
                &[("api", name), ("code", &code_label), ("error", &error)],
                n,
            );
        }
    }
}

fn storage(e: &mut Exposition, partitions: &[Arc<Partition>]) {
    let mut traffic: BTreeMap<&str, PartitionTraffic> = BTreeMap::new();
    let mut fsyncs = HistogramSnapshot::default();
    let mut poisoned = 0u64;
    for p in partitions {
        let t = p.traffic();
        let sum = traffic.entry(p.topic()).or_default();
        sum.messages_in += t.messages_in;
        sum.bytes_in += t.bytes_in;
        sum.messages_out += t.messages_out;
        sum.bytes_out += t.bytes_out;
        fsyncs.merge(&p.log().flush_stats());
        if p.log().poisoned().is_some() {
            poisoned += 1;
        }
    }
    e.family(
        "pubsub_topics",
        Kind::Gauge,
        "Topics, internal ones included.",
    );
    e.sample("pubsub_topics", &[], traffic.len());
    e.family(
        "pubsub_partitions",
        Kind::Gauge,
        "Partitions of all topics, internal ones included.",
    );
    e.sample("pubsub_partitions", &[], partitions.len());
    e.family(
        "pubsub_partitions_poisoned",
        Kind::Gauge,
        "Partitions whose log refuses writes after a failed write or fsync, until the broker restarts.",
    );
    e.sample("pubsub_partitions_poisoned", &[], poisoned);
    type Field = fn(&PartitionTraffic) -> u64;
    let per_topic: [(&str, &str, Field); 4] = [
        (
            "pubsub_topic_messages_in_total",
            "Records appended to the topic since the broker started.",
            |t| t.messages_in,
        ),
        (
            "pubsub_topic_bytes_in_total",
            "Bytes of record batches appended to the topic since the broker started.",
            |t| t.bytes_in,
        ),
        (
            "pubsub_topic_messages_out_total",
            "Records in the batches read from the topic (fetches, embedded consumers) since the broker started; whole batches are counted.",
            |t| t.messages_out,
        ),
        (
            "pubsub_topic_bytes_out_total",
            "Bytes of record batches read from the topic since the broker started.",
            |t| t.bytes_out,
        ),
    ];
    for (name, help, field) in per_topic {
        e.family(name, Kind::Counter, help);
        for (topic, t) in &traffic {
            e.sample(name, &[("topic", topic)], field(t));
        }
    }
    let index: Vec<String> = partitions.iter().map(|p| p.index().to_string()).collect();
    type LogField = fn(&Partition) -> u64;
    let per_partition: [(&str, &str, LogField); 4] = [
        (
            "pubsub_log_size_bytes",
            "Bytes of the partition's segment files.",
            |p| p.log().size_bytes(),
        ),
        ("pubsub_log_segments", "Segments of the partition.", |p| {
            p.log().segment_count() as u64
        }),
        (
            "pubsub_log_start_offset",
            "First offset of the partition.",
            |p| p.log().log_start_offset(),
        ),
        (
            "pubsub_log_end_offset",
            "Offset the partition's next record gets (the high watermark).",
            |p| p.log().log_end_offset(),
        ),
    ];
    for (name, help, field) in per_partition {
        e.family(name, Kind::Gauge, help);
        for (p, i) in partitions.iter().zip(&index) {
            e.sample(name, &[("topic", p.topic()), ("partition", i)], field(p));
        }
    }
    e.family(
        "pubsub_fsync_duration_seconds",
        Kind::Histogram,
        "Group-commit fsync rounds of partition logs open now, and how long each took. A round fdatasyncs the active segment (plus sealed segments and the directory when they changed) and serves every producer waiting at that moment.",
    );
    e.histogram("pubsub_fsync_duration_seconds", &[], &fsyncs);
}

fn groups(e: &mut Exposition, broker: &Broker, partitions: &[Arc<Partition>]) {
    let groups = broker.list_groups();
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    for g in &groups {
        *states.entry(g.state.kafka_name()).or_default() += 1;
    }
    e.family(
        "pubsub_groups",
        Kind::Gauge,
        "Consumer groups, per state (groups with only committed offsets are Empty).",
    );
    for (state, n) in &states {
        e.sample("pubsub_groups", &[("state", state)], n);
    }
    let ends: HashMap<(&str, i32), u64> = partitions
        .iter()
        .map(|p| ((p.topic(), p.index()), p.log().log_end_offset()))
        .collect();
    // (group, topic, partition, committed, lag), for partitions that exist.
    let mut rows = Vec::new();
    for g in &groups {
        for ((topic, partition), committed) in broker.fetch_offsets(&g.group_id, None) {
            let (Some(c), Some(&end)) = (committed, ends.get(&(topic.as_str(), partition))) else {
                continue;
            };
            let lag = (end as i64).saturating_sub(c.offset).max(0);
            rows.push((
                g.group_id.as_str(),
                topic,
                partition.to_string(),
                c.offset,
                lag,
            ));
        }
    }
    e.family(
        "pubsub_group_committed_offset",
        Kind::Gauge,
        "The offset a consumer group committed for a partition (the next record it will read).",
    );
    for (group, topic, partition, committed, _) in &rows {
        e.sample(
            "pubsub_group_committed_offset",
            &[("group", group), ("topic", topic), ("partition", partition)],
            committed,
        );
    }
    e.family(
        "pubsub_group_lag",
        Kind::Gauge,
        "Records a consumer group has yet to consume in a partition: the log end offset minus the committed offset (0 if the commit is past the end).",
    );
    for (group, topic, partition, _, lag) in &rows {
        e.sample(
            "pubsub_group_lag",
            &[("group", group), ("topic", topic), ("partition", partition)],
            lag,
        );
    }
}

/// `/health`: healthy while the broker is open and no partition refuses
/// writes; otherwise why not.
pub fn health(broker: &Broker) -> Result<(), String> {
    if broker.is_closed() {
        return Err("the broker is closed".into());
    }
    let poisoned: Vec<String> = broker
        .partitions()
        .iter()
        .filter_map(|p| {
            p.log()
                .poisoned()
                .map(|why| format!("{}-{}: {why}", p.topic(), p.index()))
        })
        .collect();
    if poisoned.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} partition(s) refuse writes until the broker restarts:\n{}",
            poisoned.len(),
            poisoned.join("\n")
        ))
    }
}
