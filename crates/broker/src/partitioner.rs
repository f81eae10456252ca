//! Choosing a partition: explicit, by key, or spread.
//!
//! Keyed records use Kafka's murmur2 mapping, the one Kafka's Java client and
//! librdkafka's `murmur2_random` partitioner use, so a key lands on the same
//! partition whichever client wrote it:
//! `partition = (murmur2(key) & 0x7fffffff) % partitions`.

use std::sync::atomic::{AtomicU32, Ordering};

pub use pubsub_records::partitioner::{murmur2, partition_for_key};

/// Spreads keyless records: each call moves to the next partition, so
/// consecutive batches go round the partitions.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU32,
}

impl RoundRobin {
    /// The next partition among `partitions`.
    pub fn next(&self, partitions: u32) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed) % partitions.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles() {
        let rr = RoundRobin::default();
        let seen: Vec<u32> = (0..6).map(|_| rr.next(3)).collect();
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
    }
}
