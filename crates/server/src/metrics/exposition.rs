//! How the page is written: the Prometheus text exposition format (version
//! 0.0.4) through prometheus-client's encoder, one family at a time from
//! values read at scrape time. The encoder writes the `# HELP` and `# TYPE`
//! lines, escapes label values and help texts, and lays histograms out as
//! cumulative `_bucket{le="..."}` series ending in `le="+Inf"`, then `_sum`
//! (seconds) and `_count`.
//!
//! Names here are the exported names: a counter's ends in `_total`, which
//! the encoder adds itself, so it is taken off before the name is handed
//! over.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use pubsub_broker::stats::{HistogramSnapshot, BUCKETS, BUCKET_BOUNDS_MICROS};

/// The Content-Type of this format.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A counter family: `name` (ending in `_total`) with one sample per label
/// set.
pub fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    debug_assert!(
        name.ends_with("_total"),
        "{name}: a counter's name ends in _total"
    );
    let base = name.strip_suffix("_total").unwrap_or(name);
    let mut family = e.encode_descriptor(base, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

/// A gauge family with one sample per label set.
pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// A histogram family of durations with one histogram per label set: the
/// buckets of [`pubsub_broker::stats::Histogram`] in seconds.
pub fn histograms<'h, L: EncodeLabelSet>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, &'h HistogramSnapshot)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in samples {
        let mut buckets = [(f64::INFINITY, 0u64); BUCKETS];
        for (i, (bucket, &n)) in buckets.iter_mut().zip(&h.buckets).enumerate() {
            if let Some(&micros) = BUCKET_BOUNDS_MICROS.get(i) {
                bucket.0 = micros as f64 / 1e6;
            }
            bucket.1 = n;
        }
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_nanos as f64 / 1e9, h.count(), &buckets, None)?;
    }
    Ok(())
}

/// No labels.
pub const NO_LABELS: [(&str, &str); 0] = [];

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;
    use pubsub_broker::stats::Histogram;
    use std::time::Duration;

    /// Writes what `f` writes, as the page would.
    fn page(f: fn(&mut DescriptorEncoder<'_>) -> fmt::Result) -> String {
        #[derive(Debug)]
        struct Families(fn(&mut DescriptorEncoder<'_>) -> fmt::Result);
        impl Collector for Families {
            fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
                (self.0)(&mut e)
            }
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families(f)));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encode");
        out
    }

    #[test]
    fn label_values_and_help_are_escaped_and_counters_keep_their_names() {
        let text = page(|e| {
            counters(
                e,
                "pubsub_x_total",
                "A help text with a \\ and a\nnewline \"quoted\"",
                [([("topic", "a\"b\\c\nd"), ("partition", "0")], 7u64)],
            )?;
            counters(e, "pubsub_y_total", "Plain.", [(NO_LABELS, 0u64)])
        });
        assert_eq!(
            text,
            "# HELP pubsub_x_total A help text with a \\\\ and a\\nnewline \"quoted\"\n\
             # TYPE pubsub_x_total counter\n\
             pubsub_x_total{topic=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 7\n\
             # HELP pubsub_y_total Plain.\n\
             # TYPE pubsub_y_total counter\n\
             pubsub_y_total 0\n"
        );
        let text = page(|e| gauges(e, "pubsub_g", "A gauge.", [([("state", "Empty")], 3u64)]));
        assert_eq!(
            text,
            "# HELP pubsub_g A gauge.\n# TYPE pubsub_g gauge\npubsub_g{state=\"Empty\"} 3\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_seconds_bounds_sum_and_count() {
        let text = page(|e| {
            let h = Histogram::new();
            h.observe(Duration::from_micros(40)); // le 0.00005
            h.observe(Duration::from_micros(700)); // le 0.001
            h.observe(Duration::from_millis(2)); // le 0.0025
            h.observe(Duration::from_secs(20)); // +Inf only
            histograms(
                e,
                "pubsub_d_seconds",
                "Durations.",
                [([("api", "Produce")], &h.snapshot())],
            )
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP pubsub_d_seconds Durations.");
        assert_eq!(lines[1], "# TYPE pubsub_d_seconds histogram");
        // Bounds are written as Go clients write them: 0.00005 as 5e-05.
        let expected_buckets = [
            ("5e-05", 1),
            ("0.0001", 1),
            ("0.00025", 1),
            ("0.0005", 1),
            ("0.001", 2),
            ("0.0025", 3),
            ("0.005", 3),
            ("0.01", 3),
            ("0.025", 3),
            ("0.05", 3),
            ("0.1", 3),
            ("0.25", 3),
            ("0.5", 3),
            ("1", 3),
            ("2.5", 3),
            ("5", 3),
            ("10", 3),
            ("+Inf", 4),
        ];
        assert_eq!(expected_buckets.len(), BUCKETS);
        for (i, (le, n)) in expected_buckets.iter().enumerate() {
            assert_eq!(
                lines[2 + i],
                format!("pubsub_d_seconds_bucket{{api=\"Produce\",le=\"{le}\"}} {n}")
            );
        }
        assert_eq!(
            lines[2 + BUCKETS],
            "pubsub_d_seconds_sum{api=\"Produce\"} 20.00274"
        );
        assert_eq!(
            lines[3 + BUCKETS],
            "pubsub_d_seconds_count{api=\"Produce\"} 4"
        );
        assert_eq!(lines.len(), 4 + BUCKETS);
    }

    #[test]
    fn an_unlabelled_histogram_has_only_le() {
        let text = page(|e| histograms(e, "h", "H.", [(NO_LABELS, &HistogramSnapshot::default())]));
        assert!(text.contains("\nh_bucket{le=\"5e-05\"} 0\n"), "{text}");
        assert!(
            text.contains("h_bucket{le=\"+Inf\"} 0\nh_sum 0.0\nh_count 0\n"),
            "{text}"
        );
    }
}
