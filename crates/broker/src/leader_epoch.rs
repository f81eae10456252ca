//! Leader epochs of a partition, as Kafka keeps them: the partition's
//! current epoch (0 when it is created, raised by 2 each time the broker
//! opens it again, as a single-node KRaft Kafka does: its leader goes
//! offline, then comes back), stamped into every batch appended as its
//! partitionLeaderEpoch, and a cache of where each epoch started
//! (`leader-epoch.checkpoint`, Kafka's `leader-epoch-checkpoint`).
//!
//! The cache answers OffsetForLeaderEpoch: a client that read up to some
//! offset in epoch E asks where E ended; if that is below its position, the
//! log was truncated under it (after a crash lost an unsynced tail) and the
//! client resets instead of silently skipping records.
//!
//! The cache is derived data: when its file is missing or unreadable it is
//! rebuilt from the batch headers of the log.

use serde::{Deserialize, Serialize};

/// No epoch (Kafka's UNDEFINED_EPOCH).
pub const UNDEFINED_EPOCH: i32 = -1;
/// No offset (Kafka's UNDEFINED_EPOCH_OFFSET).
pub const UNDEFINED_OFFSET: i64 = -1;
/// How much a partition's epoch rises each time the broker opens it.
pub const EPOCH_BUMP_AT_OPEN: i32 = 2;

/// The leader epoch a partition at `epoch` has after `opens` more broker
/// opens ([`EPOCH_BUMP_AT_OPEN`] each), saturating at `i32::MAX`: the one
/// rule for the epoch derived from the broker generation, whether the
/// partition is opened or only described from the closed-partitions file.
pub fn epoch_after_opens(epoch: i32, opens: u64) -> i32 {
    let opens = i64::try_from(opens).unwrap_or(i64::MAX / 4);
    let bumped =
        i64::from(epoch).saturating_add(i64::from(EPOCH_BUMP_AT_OPEN).saturating_mul(opens));
    i32::try_from(bumped).unwrap_or(i32::MAX)
}

/// Where one epoch started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset written in it.
    pub start_offset: u64,
}

/// The epoch cache of one partition: entries with increasing epochs and
/// non-decreasing start offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderEpochs {
    entries: Vec<EpochEntry>,
}

/// How a partition's current epoch compares with the one a client names
/// (`current_leader_epoch` in Fetch, ListOffsets, OffsetForLeaderEpoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    /// The same, or the client named none (-1).
    Current,
    /// The client's is older: FENCED_LEADER_EPOCH.
    Fenced,
    /// The client's is newer: UNKNOWN_LEADER_EPOCH.
    Unknown,
}

/// Compares the partition's `current` epoch with a client's (`-1`: none).
pub fn check_current(current: i32, client: i32) -> EpochCheck {
    if client < 0 {
        EpochCheck::Current
    } else if client < current {
        EpochCheck::Fenced
    } else if client > current {
        EpochCheck::Unknown
    } else {
        EpochCheck::Current
    }
}

impl LeaderEpochs {
    /// The cache as loaded from its file, if its entries are in order.
    pub fn from_entries(entries: Vec<EpochEntry>) -> Option<LeaderEpochs> {
        let ordered = entries.windows(2).all(|w| {
            w[0].epoch < w[1].epoch && w[0].start_offset <= w[1].start_offset && w[0].epoch >= 0
        }) && entries.iter().all(|e| e.epoch >= 0);
        ordered.then_some(LeaderEpochs { entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// Records that `epoch` starts at `start_offset` (at open, or for each
    /// batch while rebuilding from the log). As Kafka: a later offset for
    /// the latest epoch changes nothing; otherwise every entry with an epoch
    /// at or above `epoch`, or a start at or above `start_offset`, gives way.
    pub fn assign(&mut self, epoch: i32, start_offset: u64) {
        if epoch < 0 {
            return;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && start_offset >= last.start_offset {
                return;
            }
        }
        while let Some(last) = self.entries.last() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }

    /// Forgets epochs that started at or after `end` (the log was truncated
    /// there, by recovery).
    pub fn truncate_from_end(&mut self, end: u64) {
        self.entries.retain(|e| e.start_offset < end);
    }

    /// The entries as Kafka holds them once the log start offset moved to
    /// `log_start`: the last epoch started at or below it now starts there,
    /// earlier ones are gone.
    fn view(&self, log_start: u64) -> Vec<EpochEntry> {
        let below = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= log_start);
        match below {
            None => self.entries.clone(),
            Some(i) => {
                let mut out = Vec::with_capacity(self.entries.len() - i);
                out.push(EpochEntry {
                    epoch: self.entries[i].epoch,
                    start_offset: log_start,
                });
                out.extend_from_slice(&self.entries[i + 1..]);
                out
            }
        }
    }

    /// The latest epoch, if any.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The epoch of the log start offset (ListOffsets earliest): the first
    /// entry's, when it starts at or below `log_start`.
    pub fn earliest(&self, log_start: u64) -> Option<i32> {
        self.view(log_start)
            .first()
            .filter(|e| e.start_offset <= log_start)
            .map(|e| e.epoch)
    }

    /// OffsetForLeaderEpoch: the end offset of `requested` and the epoch it
    /// belongs to, as Kafka's leader answers: the latest epoch ends at the
    /// log end offset; an older one where the next known epoch starts (with
    /// the largest known epoch not above it); an epoch older than every
    /// known one ends where the first known one starts. `(-1, -1)` when
    /// nothing is known (or -1 is asked).
    pub fn end_offset_for(&self, requested: i32, log_start: u64, log_end: u64) -> (i32, i64) {
        let undefined = (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return undefined;
        }
        let entries = self.view(log_start);
        if entries.last().is_some_and(|e| e.epoch == requested) {
            return (requested, log_end as i64);
        }
        let Some(higher) = entries.iter().find(|e| e.epoch > requested) else {
            return undefined;
        };
        match entries.iter().rev().find(|e| e.epoch <= requested) {
            None => (requested, higher.start_offset as i64),
            Some(floor) => (floor.epoch, higher.start_offset as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, u64)]) -> LeaderEpochs {
        let mut c = LeaderEpochs::default();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        c
    }

    #[test]
    fn end_offsets_as_kafka_answers_them() {
        let c = cache(&[(0, 0), (2, 5), (4, 9)]);
        assert_eq!(c.end_offset_for(4, 0, 12), (4, 12));
        assert_eq!(c.end_offset_for(2, 0, 12), (2, 9));
        assert_eq!(c.end_offset_for(3, 0, 12), (2, 9));
        assert_eq!(c.end_offset_for(1, 0, 12), (0, 5));
        assert_eq!(c.end_offset_for(0, 0, 12), (0, 5));
        assert_eq!(c.end_offset_for(7, 0, 12), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 0, 12), (-1, -1));
        // Once the log start passed epoch 2's start, epoch 0 is forgotten.
        assert_eq!(c.end_offset_for(0, 6, 12), (0, 6));
        assert_eq!(c.earliest(6), Some(2));
        assert_eq!(c.earliest(0), Some(0));
        assert_eq!(LeaderEpochs::default().end_offset_for(0, 0, 0), (-1, -1));
    }

    #[test]
    fn assign_and_truncate() {
        let mut c = cache(&[(0, 0), (0, 3), (2, 5)]);
        assert_eq!(c.entries().len(), 2);
        // An epoch that wrote nothing gives way to the next at the same offset.
        c.assign(4, 5);
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 0,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 4,
                    start_offset: 5
                }
            ]
        );
        c.truncate_from_end(5);
        assert_eq!(c.latest(), Some(0));
        assert!(LeaderEpochs::from_entries(vec![
            EpochEntry {
                epoch: 2,
                start_offset: 0
            },
            EpochEntry {
                epoch: 1,
                start_offset: 4
            }
        ])
        .is_none());
        assert_eq!(check_current(4, -1), EpochCheck::Current);
        assert_eq!(check_current(4, 2), EpochCheck::Fenced);
        assert_eq!(check_current(4, 6), EpochCheck::Unknown);
    }
}
