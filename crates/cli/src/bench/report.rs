//! What a bench run measured: counts, throughput and a latency histogram,
//! printed as text or JSON.

use hdrhistogram::Histogram;

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// What was counted: `produced`, `consumed`, `delivered`.
    pub what: &'static str,
    /// What the latency measures.
    pub latency_of: &'static str,
    /// Messages acknowledged (sent, for acks=0).
    pub messages: u64,
    /// Value bytes of those messages.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Messages refused by the broker.
    pub errors: u64,
    /// First error seen, if any.
    pub first_error: Option<String>,
    /// Per-message latency in microseconds (empty for acks=0).
    pub latency: Histogram<u64>,
}

impl Report {
    /// Nothing measured yet.
    pub fn empty(what: &'static str, latency_of: &'static str) -> Report {
        Report {
            what,
            latency_of,
            messages: 0,
            bytes: 0,
            seconds: 0.0,
            errors: 0,
            first_error: None,
            // 1 µs to 10 minutes, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Adds another producer's counts and latencies.
    pub fn merge(&mut self, other: Report) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency
            .add(&other.latency)
            .expect("histograms of one run share their bounds");
    }

    /// Messages per second.
    pub fn msg_per_s(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    /// Value megabytes (10^6) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    /// Latency quantile in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Human-readable summary (several lines).
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} {} messages ({:.1} MB) in {:.2} s: {:.0} msg/s, {:.1} MB/s",
            self.what,
            self.messages,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.msg_per_s(),
            self.mb_per_s()
        );
        if !self.latency.is_empty() {
            s.push_str(&format!(
                "\n{} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                self.latency_of,
                self.latency_ms(0.5),
                self.latency_ms(0.9),
                self.latency_ms(0.99),
                self.latency_ms(0.999),
                self.latency.max() as f64 / 1000.0
            ));
        }
        if self.errors > 0 {
            s.push_str(&format!(
                "\n{} messages refused; first error: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        s
    }

    /// Machine-readable summary.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.what,
            "latency_of": self.latency_of,
            "messages": self.messages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "msg_per_s": self.msg_per_s(),
            "mb_per_s": self.mb_per_s(),
            "errors": self.errors,
            "first_error": self.first_error,
            "latency_ms": if self.latency.is_empty() { serde_json::Value::Null } else {
                serde_json::json!({
                    "p50": self.latency_ms(0.5),
                    "p90": self.latency_ms(0.9),
                    "p99": self.latency_ms(0.99),
                    "p99.9": self.latency_ms(0.999),
                    "max": self.latency.max() as f64 / 1000.0,
                })
            },
        })
    }
}
