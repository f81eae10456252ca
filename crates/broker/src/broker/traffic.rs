//! Produce and fetch: appending batches to a partition (from clients, from
//! the embedded producer, and the coordinator's `__consumer_offsets`
//! records), reading them back, and ListOffsets.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pubsub_records::{BatchBuilder, NewRecord};

use super::{wall_clock_ms, Broker, Inner};
use crate::error::{BrokerError, Result};
use crate::group::records::partition_for_group;
use crate::group::{OffsetsRecord, OffsetsStore};
use crate::names::CONSUMER_OFFSETS;
use crate::partition::{Acks, AppendResult, Partition, PendingSync};
use crate::topic::PartitionDescription;

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (Kafka timestamp -2).
    Earliest,
    /// The log end offset (-1).
    Latest,
    /// The record with the largest timestamp (-3).
    MaxTimestamp,
    /// The first record at or after this time.
    Timestamp(i64),
}

impl OffsetsStore for Inner {
    fn persist(&self, group: &str, records: Vec<OffsetsRecord>) -> Result<()> {
        let n = self.config.group.offsets_topic_partitions;
        let partition = self.partition(CONSUMER_OFFSETS, partition_for_group(group, n))?;
        append_keyed(&partition, &records)
    }

    fn persist_transactional(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<OffsetsRecord>,
    ) -> Result<()> {
        let n = self.config.group.offsets_topic_partitions;
        let partition = self.partition(CONSUMER_OFFSETS, partition_for_group(group, n))?;
        // The transaction coordinator holds the producer's transaction
        // while this runs: no other batch of the producer reaches this
        // partition between the sequence read and the append.
        let sequence = partition.next_sequence(producer_id, producer_epoch);
        let builder = BatchBuilder::new()
            .producer(producer_id, producer_epoch, sequence)
            .transactional(true);
        append_keyed_batch(&partition, builder, &records, Acks::All)
    }
}

/// Appends keyed records (a `None` value is a tombstone) to a partition of
/// an internal topic as one batch stamped now, and returns once fsynced:
/// how the group and transaction coordinators log their state.
pub(super) fn append_keyed(partition: &Partition, records: &[OffsetsRecord]) -> Result<()> {
    append_keyed_acks(partition, records, Acks::All)
}

/// [`append_keyed`], waiting for `acks` only.
pub(super) fn append_keyed_acks(
    partition: &Partition,
    records: &[OffsetsRecord],
    acks: Acks,
) -> Result<()> {
    append_keyed_batch(partition, BatchBuilder::new(), records, acks)
}

/// Builds `records` into one batch from `builder` (plain, or a producer's
/// transactional batch), stamped now, and appends it waiting for `acks`.
fn append_keyed_batch(
    partition: &Partition,
    mut builder: BatchBuilder,
    records: &[OffsetsRecord],
    acks: Acks,
) -> Result<()> {
    let now = wall_clock_ms();
    for (key, value) in records {
        builder.push(&NewRecord {
            timestamp: now,
            key: Some(key),
            value: value.as_deref(),
            headers: &[],
        })?;
    }
    let mut bytes = builder.build()?;
    partition.append(&mut bytes, acks, now, true)?;
    Ok(())
}

impl Broker {
    /// Every partition opened since the broker opened (internal ones
    /// included), by topic name then index: for monitoring. A partition
    /// not used since (left closed at start, opened on first use) is left
    /// out: it has no traffic, no fsyncs and no errors; its offsets and
    /// size are in [`Broker::partition_descriptions`].
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.inner.all_partitions()
    }

    /// One partition, opened if it was not yet.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        self.inner.partition(topic, partition)
    }

    /// Offsets, size and segments of every partition of every topic,
    /// opened or not, without opening any, by topic name then index; the
    /// partitions a kill left unrecovered are left out (nothing true is
    /// known about them before their recovery; see
    /// [`Broker::pending_recovery`]).
    pub fn partition_descriptions(&self) -> Vec<(String, PartitionDescription)> {
        self.inner
            .topics
            .read()
            .iter()
            .flat_map(|(name, t)| {
                // One whose recovery failed has nothing true to say.
                t.partitions
                    .iter()
                    .filter(|e| !e.needs_recovery())
                    .map(|e| (name.clone(), e.describe()))
            })
            .collect()
    }

    /// Offsets, size and segments of one partition, without opening it
    /// (unless a kill left it unrecovered: recovered first).
    pub fn describe_partition(&self, topic: &str, partition: i32) -> Result<PartitionDescription> {
        let (t, e) = self.inner.partition_entry(topic, partition)?;
        self.inner.settle(&t, &e)?;
        Ok(e.describe())
    }

    /// A partition's current leader epoch, without opening it (Metadata;
    /// one a kill left unrecovered is not recovered for it either when its
    /// files tell the epoch its recovery will give it, else recovered
    /// first).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Result<i32> {
        let (t, e) = self.inner.partition_entry(topic, partition)?;
        self.inner.answered_epoch(&t, &e)
    }

    /// Appends batches a client sent (their CRC is checked) to a partition.
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.append_to(topic, partition, records, acks, false)
            .map(|(r, _)| r)
    }

    /// `acks=all` in two steps: appends client batches now (as acks=1) and
    /// returns the fsync still owed, so a server can go on appending
    /// pipelined requests (which then share that fsync) before answering.
    pub fn produce_then_sync(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
    ) -> Result<(AppendResult, PendingSync)> {
        let (r, p) = self.append_to(topic, partition, records, Acks::Leader, false)?;
        Ok((
            r,
            PendingSync {
                partition: p,
                offset: r.last_offset,
            },
        ))
    }

    /// Ends a transaction of `producer_id` in one partition: appends its
    /// COMMIT or ABORT marker (a control batch, `pubsub_records::control`)
    /// and waits until it is fsynced, since the coordinator treats a written
    /// marker as final. Returns the marker's offset. The one way markers
    /// reach a log; clients cannot produce control batches.
    pub fn write_txn_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: pubsub_records::ControlRecord,
    ) -> Result<u64> {
        self.inner
            .append_marker(topic, partition, producer_id, producer_epoch, marker)
    }

    /// Appends batches built in this process (no second CRC pass).
    pub(crate) fn produce_built(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.append_to(topic, partition, records, acks, true)
            .map(|(r, _)| r)
    }

    fn append_to(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: Acks,
        trusted: bool,
    ) -> Result<(AppendResult, Arc<Partition>)> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let p = self.inner.partition(topic, partition)?;
        let r = p.append(records, acks, wall_clock_ms(), trusted)?;
        Ok((r, p))
    }

    /// Picks a partition for a keyless record (round-robin).
    pub(crate) fn spread(&self, partitions: u32) -> u32 {
        self.inner.spread.next(partitions)
    }

    /// Reads whole batches from `offset` into `out` (cleared first); returns
    /// (log start offset, high watermark).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: u64,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        self.inner
            .partition(topic, partition)?
            .read(offset, max_bytes, out)
    }

    /// ListOffsets: the offset, its timestamp (-1 for earliest and latest)
    /// and its leader epoch (-1: unknown), as Kafka answers each; `None`
    /// when no record matches a timestamp (Kafka answers -1).
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<Option<ListedOffset>> {
        let p = self.inner.partition(topic, partition)?;
        let log = p.log();
        let err = |e| BrokerError::storage(topic, partition, e);
        let stamped = |t: pubsub_storage::TimestampOffset| ListedOffset {
            offset: t.offset as i64,
            timestamp: t.timestamp,
            leader_epoch: t.leader_epoch.max(-1),
        };
        Ok(match spec {
            OffsetSpec::Earliest => Some(ListedOffset {
                offset: log.log_start_offset() as i64,
                timestamp: -1,
                leader_epoch: p.earliest_epoch().unwrap_or(-1),
            }),
            OffsetSpec::Latest => Some(ListedOffset {
                offset: log.log_end_offset() as i64,
                timestamp: -1,
                leader_epoch: p.epochs().latest().unwrap_or(-1),
            }),
            OffsetSpec::MaxTimestamp => log.max_timestamp().map_err(err)?.map(stamped),
            OffsetSpec::Timestamp(ts) => log.offset_for_timestamp(ts).map_err(err)?.map(stamped),
        })
    }
}

/// One ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset.
    pub offset: i64,
    /// The record's timestamp, or -1.
    pub timestamp: i64,
    /// The leader epoch of the offset, or -1.
    pub leader_epoch: i32,
}
