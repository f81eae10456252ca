//! Counters kept for monitoring, cheap enough for hot paths: a
//! [`Histogram`] of durations in fixed buckets, updated with two relaxed
//! atomic additions and read as a [`HistogramSnapshot`].
//!
//! Each [`Log`](crate::Log) times its group-commit fsync rounds in one
//! ([`Log::flush_stats`](crate::Log::flush_stats)); the server uses the same
//! type for request latencies, so every latency pubsub exports has the same
//! buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (50 µs to 10 s); a last,
/// unbounded bucket follows.
pub const BUCKET_BOUNDS_MICROS: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets, the unbounded one included.
pub const BUCKETS: usize = BUCKET_BOUNDS_MICROS.len() + 1;

/// Durations counted into fixed buckets, with their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Counts one duration.
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_BOUNDS_MICROS
            .iter()
            .position(|&b| nanos <= b * 1_000)
            .unwrap_or(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts so far. Updates racing with this call may be half in
    /// (counted but not yet summed); the count is the sum of the buckets.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        for (out, b) in s.buckets.iter_mut().zip(&self.buckets) {
            *out = b.load(Ordering::Relaxed);
        }
        s.sum_nanos = self.sum_nanos.load(Ordering::Relaxed);
        s
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative), bounds as in
    /// [`BUCKET_BOUNDS_MICROS`], the last one unbounded.
    pub buckets: [u64; BUCKETS],
    /// Sum of every observation, in nanoseconds.
    pub sum_nanos: u64,
}

impl HistogramSnapshot {
    /// Observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another snapshot's counts to this one.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50)); // on the bound: first bucket
        h.observe(Duration::from_nanos(50_001)); // just above: second
        h.observe(Duration::from_millis(3)); // 5 ms bucket (index 6)
        h.observe(Duration::from_secs(11)); // past the last bound
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[6], 1);
        assert_eq!(s.buckets[BUCKETS - 1], 1);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_nanos, 50_000 + 50_001 + 3_000_000 + 11_000_000_000);
        let mut twice = s;
        twice.merge(&s);
        assert_eq!(twice.count(), 8);
        assert_eq!(twice.sum_nanos, 2 * s.sum_nanos);
    }
}
