//! Builds the `/metrics` page: the server's counters plus what the broker
//! holds at this moment (topics, partitions, log sizes, fsyncs, groups and
//! their lag), read by a prometheus-client [`Collector`] on each scrape, and
//! the `/health` verdict. Reads take the broker's short locks (a group's lock
//! may be held across an fsync), so callers run this on a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use pubsub_broker::stats::HistogramSnapshot;
use pubsub_broker::{Broker, Partition, PartitionDescription, PartitionTraffic};

use super::exposition::{counters, gauges, histograms, NO_LABELS};
use super::{Metrics, OTHER_CODE};

/// Everything the page shows, read when scraped.
#[derive(Debug)]
pub struct Page {
    broker: Broker,
    metrics: Arc<Metrics>,
}

impl Page {
    /// The page of `broker` and the server counting into `metrics`.
    pub fn new(broker: Broker, metrics: Arc<Metrics>) -> Page {
        Page { broker, metrics }
    }
}

impl Collector for Page {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        server(&mut e, &self.metrics)?;
        // Traffic, fsyncs and errors from the partitions opened; offsets
        // and sizes of every partition, opened or not (without opening).
        let partitions = self.broker.partitions();
        let described = self.broker.partition_descriptions();
        let unrecovered = self.broker.pending_recovery();
        storage(&mut e, &partitions, &described, unrecovered)?;
        groups(&mut e, &self.broker, &described)
    }
}

/// A registry holding the page, ready for scraping.
pub fn registry(broker: Broker, metrics: Arc<Metrics>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Page::new(broker, metrics)));
    registry
}

/// The whole page, in the text exposition format.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

fn server(e: &mut DescriptorEncoder<'_>, m: &Metrics) -> fmt::Result {
    for (kind, name, help, value) in [
        (
            MetricType::Counter,
            "pubsub_connections_accepted_total",
            "Kafka client connections accepted.",
            m.connections_accepted(),
        ),
        (
            MetricType::Counter,
            "pubsub_connections_refused_total",
            "Kafka client connections closed on accept because server.max_connections were open.",
            m.connections_refused(),
        ),
        (
            MetricType::Gauge,
            "pubsub_connections_open",
            "Kafka client connections being served.",
            m.connections_open(),
        ),
        (
            MetricType::Counter,
            "pubsub_protocol_errors_total",
            "Connections closed because of what the client sent: a malformed request, an unknown API or version, an oversized frame.",
            m.protocol_errors(),
        ),
        (
            MetricType::Counter,
            "pubsub_tls_handshake_failures_total",
            "TLS connections closed because the handshake failed or timed out: an untrusted or expired certificate, a missing client certificate, a plaintext client.",
            m.tls_handshake_failures(),
        ),
        (
            MetricType::Gauge,
            "pubsub_fetch_sessions",
            "Incremental fetch sessions (KIP-227) in the cache (server.fetch_session_slots at most).",
            m.fetch_sessions(),
        ),
        (
            MetricType::Counter,
            "pubsub_fetch_session_evictions_total",
            "Fetch sessions evicted from a full cache to make room for another.",
            m.fetch_session_evictions(),
        ),
        (
            MetricType::Counter,
            "pubsub_fetch_reads_off_worker_total",
            "Fetch read passes that left the network worker (block_in_place) because a batch header they needed was not in the page cache.",
            m.fetch_reads_off_worker(),
        ),
        (
            MetricType::Counter,
            "pubsub_fetch_sendfile_fallbacks_total",
            "Fetch file ranges sent with sendfile instead of splice because every pooled pipe was in use (or none could be made).",
            sendfile_fallbacks(),
        ),
    ] {
        match kind {
            MetricType::Counter => counters(e, name, help, [(NO_LABELS, value)])?,
            _ => gauges(e, name, help, [(NO_LABELS, value)])?,
        }
    }
    {
        let outcomes = m.sasl_outcomes();
        counters(
            e,
            "pubsub_sasl_authentications_total",
            "SASL authentications on SASL listeners by mechanism and outcome: ok, invalid_credentials (a wrong password or an unknown user, not told apart), malformed.",
            outcomes
                .iter()
                .map(|(m, o, n)| ([("mechanism", *m), ("outcome", *o)], *n)),
        )?;
    }
    let apis = m.apis();
    let names: Vec<String> = apis.iter().map(|a| format!("{:?}", a.key)).collect();
    counters(
        e,
        "pubsub_requests_total",
        "Requests handled, per Kafka API.",
        apis.iter()
            .zip(&names)
            .map(|(a, name)| ([("api", name.as_str())], a.requests)),
    )?;
    histograms(
        e,
        "pubsub_request_duration_seconds",
        "Time from a request being read to its answer being ready to send (acks=all produce: after the fsync), per Kafka API. APIs not used yet are left out.",
        apis.iter()
            .zip(&names)
            .filter(|(a, _)| a.latency.count() > 0)
            .map(|(a, name)| ([("api", name.as_str())], &a.latency)),
    )?;
    let mut errors = Vec::new();
    for (a, name) in apis.iter().zip(&names) {
        for &(code, n) in &a.errors {
            let (code_label, error) = match code {
                Some(c) => (c.to_string(), pubsub_records::kafka_error_name(c)),
                None => (OTHER_CODE.to_string(), String::new()),
            };
            errors.push((name.as_str(), code_label, error, n));
        }
    }
    counters(
        e,
        "pubsub_errors_total",
        "Non-zero error codes answered, per Kafka API and code (top-level and per-topic, -partition, -group or -member codes alike).",
        errors.iter().map(|(api, code, error, n)| {
            (
                [("api", *api), ("code", code.as_str()), ("error", error.as_str())],
                *n,
            )
        }),
    )
}

fn storage(
    e: &mut DescriptorEncoder<'_>,
    partitions: &[Arc<Partition>],
    described: &[(String, PartitionDescription)],
    unrecovered: usize,
) -> fmt::Result {
    let mut traffic: BTreeMap<&str, PartitionTraffic> = BTreeMap::new();
    for (topic, _) in described {
        traffic.entry(topic.as_str()).or_default();
    }
    let mut fsyncs = HistogramSnapshot::default();
    let mut poisoned = 0u64;
    let mut out_of_space = Vec::new();
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
        if p.log().out_of_space().is_some() {
            out_of_space.push((p.topic(), p.index().to_string()));
        }
    }
    gauges(
        e,
        "pubsub_topics",
        "Topics, internal ones included.",
        [(NO_LABELS, traffic.len())],
    )?;
    gauges(
        e,
        "pubsub_partitions",
        "Partitions of all topics, internal ones included.",
        [(NO_LABELS, described.len() + unrecovered)],
    )?;
    gauges(
        e,
        "pubsub_partitions_unrecovered",
        "Partitions a kill left unclean and not recovered yet (at their first use or by the background pass): a scrape does not recover them, so their offsets and sizes are missing from the per-topic log gauges and lag until then.",
        [(NO_LABELS, unrecovered)],
    )?;
    let handles = pubsub_broker::Handles::process().stats();
    for (name, help, value) in [
        (
            "pubsub_storage_open_descriptors",
            "Segment file descriptors open now: cached ones (at most pubsub_storage_descriptor_budget) plus those held by reads in flight.",
            handles.descriptors,
        ),
        (
            "pubsub_storage_index_maps",
            "Index memory maps now (two per segment whose indexes are mapped): cached ones plus those in use.",
            handles.maps,
        ),
        (
            "pubsub_storage_descriptor_budget",
            "Segment file descriptors storage keeps open at most (the open-files limit minus the connection reserve).",
            handles.limits.descriptors,
        ),
        (
            "pubsub_storage_map_budget",
            "Index memory maps storage keeps at most (vm.max_map_count minus a margin).",
            handles.limits.maps,
        ),
    ] {
        gauges(e, name, help, [(NO_LABELS, value as u64)])?;
    }
    counters(
        e,
        "pubsub_storage_evictions_total",
        "Segment files closed and index maps unmapped, least recently used first, to stay within the budgets.",
        [(NO_LABELS, handles.evictions)],
    )?;
    gauges(
        e,
        "pubsub_partitions_poisoned",
        "Partitions whose log refuses writes after a failed fsync (or another failed write than one out of space), until the broker restarts.",
        [(NO_LABELS, poisoned)],
    )?;
    gauges(
        e,
        "pubsub_partitions_out_of_space",
        "Partitions whose last write found the disk full (ENOSPC) or the quota used up (EDQUOT): their writes fail until space returns, then work again without a restart.",
        [(NO_LABELS, out_of_space.len())],
    )?;
    gauges(
        e,
        "pubsub_partition_out_of_space",
        "1 for each partition out of space now (see pubsub_partitions_out_of_space); partitions with space are left out.",
        out_of_space
            .iter()
            .map(|(topic, i)| ([("topic", *topic), ("partition", i.as_str())], 1u64)),
    )?;
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
            "Records in the batches read from the topic (fetches, embedded consumers) since the broker started; whole batches are counted, and a fetch counts the offsets its batches span (an upper bound where compaction removed records).",
            |t| t.messages_out,
        ),
        (
            "pubsub_topic_bytes_out_total",
            "Bytes of record batches read from the topic since the broker started.",
            |t| t.bytes_out,
        ),
    ];
    for (name, help, field) in per_topic {
        counters(
            e,
            name,
            help,
            traffic
                .iter()
                .map(|(topic, t)| ([("topic", *topic)], field(t))),
        )?;
    }
    let index: Vec<String> = described
        .iter()
        .map(|(_, p)| p.partition.to_string())
        .collect();
    type LogField = fn(&PartitionDescription) -> u64;
    let per_partition: [(&str, &str, LogField); 4] = [
        (
            "pubsub_log_size_bytes",
            "Bytes of the partition's segment files.",
            |p| p.size_bytes,
        ),
        ("pubsub_log_segments", "Segments of the partition.", |p| {
            p.segments as u64
        }),
        (
            "pubsub_log_start_offset",
            "First offset of the partition.",
            |p| p.log_start_offset,
        ),
        (
            "pubsub_log_end_offset",
            "Offset the partition's next record gets (the high watermark).",
            |p| p.log_end_offset,
        ),
    ];
    for (name, help, field) in per_partition {
        gauges(
            e,
            name,
            help,
            described
                .iter()
                .zip(&index)
                .map(|((t, p), i)| ([("topic", t.as_str()), ("partition", i.as_str())], field(p))),
        )?;
    }
    histograms(
        e,
        "pubsub_fsync_duration_seconds",
        "Group-commit fsync rounds of partition logs open now, and how long each took. A round fdatasyncs the active segment (plus sealed segments and the directory when they changed) and serves every producer waiting at that moment.",
        [(NO_LABELS, &fsyncs)],
    )
}

fn groups(
    e: &mut DescriptorEncoder<'_>,
    broker: &Broker,
    described: &[(String, PartitionDescription)],
) -> fmt::Result {
    let groups = broker.coordinator().list();
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    for g in &groups {
        *states.entry(g.state.kafka_name()).or_default() += 1;
    }
    gauges(
        e,
        "pubsub_groups",
        "Consumer groups, per state (groups with only committed offsets are Empty).",
        states.iter().map(|(state, n)| ([("state", *state)], *n)),
    )?;
    let ends: HashMap<(&str, i32), u64> = described
        .iter()
        .map(|(t, p)| ((t.as_str(), p.partition), p.log_end_offset))
        .collect();
    // (group, topic, partition, committed, lag), for partitions that exist.
    let mut rows = Vec::new();
    for g in &groups {
        for ((topic, partition), committed) in broker.coordinator().fetch_offsets(&g.group_id, None)
        {
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
    fn labels<'a>(group: &'a str, topic: &'a str, partition: &'a str) -> [(&'a str, &'a str); 3] {
        [("group", group), ("topic", topic), ("partition", partition)]
    }
    gauges(
        e,
        "pubsub_group_committed_offset",
        "The offset a consumer group committed for a partition (the next record it will read).",
        rows.iter()
            .map(|(g, t, p, committed, _)| (labels(g, t, p), *committed)),
    )?;
    gauges(
        e,
        "pubsub_group_lag",
        "Records a consumer group has yet to consume in a partition: the log end offset minus the committed offset (0 if the commit is past the end).",
        rows.iter().map(|(g, t, p, _, lag)| (labels(g, t, p), *lag)),
    )
}

/// `/health`: healthy while the broker is open and every partition takes
/// writes; otherwise why not: the partitions that refuse writes until a
/// restart, and those out of space (which heal when space returns).
pub fn health(broker: &Broker) -> Result<(), String> {
    if broker.is_closed() {
        return Err("the broker is closed".into());
    }
    let mut poisoned = Vec::new();
    let mut full = Vec::new();
    for p in broker.partitions() {
        let log = p.log();
        if let Some(why) = log.poisoned() {
            poisoned.push(format!("{}-{}: {why}", p.topic(), p.index()));
        } else if let Some(why) = log.out_of_space() {
            full.push(format!("{}-{}: {why}", p.topic(), p.index()));
        }
    }
    let mut problems = Vec::new();
    if !poisoned.is_empty() {
        problems.push(format!(
            "{} partition(s) refuse writes until the broker restarts:\n{}",
            poisoned.len(),
            poisoned.join("\n")
        ));
    }
    if !full.is_empty() {
        problems.push(format!(
            "{} partition(s) out of space: writes fail until space is freed:\n{}",
            full.len(),
            full.join("\n")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Sends that found no pooled pipe ([`crate::pipe::fallbacks`]; none off
/// Linux, where every range is copied).
fn sendfile_fallbacks() -> u64 {
    #[cfg(target_os = "linux")]
    {
        u64::try_from(crate::pipe::fallbacks()).unwrap_or(u64::MAX)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}
