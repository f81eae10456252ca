//! The Prometheus text exposition format (version 0.0.4): `# HELP` and
//! `# TYPE` lines, then samples `name{label="value"} number`, one family at
//! a time. Label values escape `\`, `"` and newlines; help texts escape `\`
//! and newlines. Histograms are written as cumulative `_bucket{le="..."}`
//! series ending in `le="+Inf"`, then `_sum` (seconds) and `_count`.

use std::fmt::Write;

use pubsub_broker::stats::{HistogramSnapshot, BUCKET_BOUNDS_MICROS};

/// The Content-Type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A text page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its help and type lines. Write all its samples
    /// before the next family.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.name());
        self.out.push('\n');
    }

    /// One sample of a counter or gauge.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// One histogram: cumulative buckets (bounds in seconds), the sum in
    /// seconds and the count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0u64;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let le = match BUCKET_BOUNDS_MICROS.get(i) {
                Some(&micros) => seconds(micros),
                None => "+Inf".to_string(),
            };
            self.out.push_str(name);
            self.out.push_str("_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.out.push_str(name);
        self.out.push_str("_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.sum_nanos as f64 / 1e9);
        self.out.push_str(name);
        self.out.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {cumulative}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_value(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Appends `v` escaped as a label value.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Microseconds as a decimal number of seconds, without float noise:
/// 50 -> "0.00005", 2_500_000 -> "2.5", 1_000_000 -> "1".
fn seconds(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pubsub_broker::stats::{Histogram, BUCKETS};
    use std::time::Duration;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.family(
            "pubsub_x_total",
            Kind::Counter,
            "A help text with a \\ and a\nnewline \"quoted\"",
        );
        e.sample(
            "pubsub_x_total",
            &[("topic", "a\"b\\c\nd"), ("partition", "0")],
            7u64,
        );
        e.sample("pubsub_x_total", &[], 0u64);
        assert_eq!(
            e.finish(),
            "# HELP pubsub_x_total A help text with a \\\\ and a\\nnewline \"quoted\"\n\
             # TYPE pubsub_x_total counter\n\
             pubsub_x_total{topic=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 7\n\
             pubsub_x_total 0\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_seconds_bounds_sum_and_count() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(40)); // le 0.00005
        h.observe(Duration::from_micros(700)); // le 0.001
        h.observe(Duration::from_millis(2)); // le 0.0025
        h.observe(Duration::from_secs(20)); // +Inf only
        let mut e = Exposition::new();
        e.family("pubsub_d_seconds", Kind::Histogram, "Durations.");
        e.histogram("pubsub_d_seconds", &[("api", "Produce")], &h.snapshot());
        let text = e.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP pubsub_d_seconds Durations.");
        assert_eq!(lines[1], "# TYPE pubsub_d_seconds histogram");
        let expected_buckets = [
            ("0.00005", 1),
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
        let mut e = Exposition::new();
        e.histogram("h", &[], &HistogramSnapshot::default());
        let text = e.finish();
        assert!(text.starts_with("h_bucket{le=\"0.00005\"} 0\n"), "{text}");
        assert!(text.contains("h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"));
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(50), "0.00005");
        assert_eq!(seconds(250_000), "0.25");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(10_000_000), "10");
    }
}
