//! The broker as the transaction coordinator's store: its records go to
//! the transactional id's `__transaction_state` partition (the topic is
//! created at first use), its markers to the partitions' logs, fsynced
//! before either is reported done (an AddPartitionsToTxn record's fsync
//! is owed instead, see `TxnStore::persist_txn_owed`, and so are the
//! markers EndTxn answers before, see `TxnStore::append_markers`: their
//! fsyncs start on the broker's transaction fsync threads, and its
//! completer logs the completion once they are durable, see
//! [`super::txn_background`]); producer ids come from the same counter as
//! idempotent producers'.

use std::sync::Arc;

use pubsub_records::{ControlRecord, ControlType};

use super::{wall_clock_ms, Inner};
use crate::error::{BrokerError, Result};
use crate::group::records::partition_for_group;
use crate::names::CONSUMER_OFFSETS;
use crate::partition::{Acks, Partition, PendingSync};
use crate::txn::{records, Durable, OwedSync, TxnStore, TRANSACTION_STATE};

/// A COMMIT (`commit`) or ABORT marker of the coordinator.
fn marker(commit: bool) -> ControlRecord {
    ControlRecord {
        kind: if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        },
        // One coordinator, never moved: epoch 0.
        coordinator_epoch: 0,
    }
}

impl Inner {
    /// Appends a COMMIT or ABORT control batch of a producer to a
    /// partition, fsynced; returns its offset.
    pub(super) fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlRecord,
    ) -> Result<u64> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let commit = marker.kind == ControlType::Commit;
        let offset = self.partition(topic, partition)?.append_txn_marker(
            producer_id,
            producer_epoch,
            marker,
            wall_clock_ms(),
        )?;
        self.marker_landed(topic, partition, producer_id, commit);
        Ok(offset)
    }

    /// After a producer's marker is durable in a partition: on
    /// `__consumer_offsets`, the group coordinator applies (COMMIT) or drops
    /// (ABORT) the producer's pending transactional offsets there.
    fn marker_landed(&self, topic: &str, partition: i32, producer_id: i64, commit: bool) {
        if topic == CONSUMER_OFFSETS {
            self.coordinator
                .complete_txn(partition, producer_id, commit);
        }
    }
}

impl Inner {
    /// Appends a record of `transactional_id` to its `__transaction_state`
    /// partition, waiting for `acks`; returns the partition.
    fn append_txn_record(
        &self,
        transactional_id: &str,
        value: Option<Vec<u8>>,
        acks: Acks,
    ) -> Result<Arc<Partition>> {
        if self.topic(TRANSACTION_STATE).is_none() {
            self.create_transaction_state_topic()?;
        }
        let topic = self.existing_topic(TRANSACTION_STATE)?;
        let n = u32::try_from(topic.partitions.len()).unwrap_or(u32::MAX);
        let partition =
            self.partition(TRANSACTION_STATE, partition_for_group(transactional_id, n))?;
        super::traffic::append_keyed_acks(
            &partition,
            &[(records::encode_key(transactional_id), value)],
            acks,
        )?;
        Ok(partition)
    }

    /// Appends a marker to each of `partitions`, in order, without an
    /// fsync: each result names the partition and the offset to sync to.
    fn append_markers_unsynced(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<PendingSync>> {
        let marker = marker(commit);
        let now = wall_clock_ms();
        partitions
            .iter()
            .map(|(topic, p)| {
                if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                    return Err(BrokerError::Closed);
                }
                let partition = self.partition(topic, *p)?;
                let offset = partition.append_txn_marker_unsynced(
                    producer_id,
                    producer_epoch,
                    marker,
                    now,
                )?;
                Ok(PendingSync { partition, offset })
            })
            .collect()
    }
}

impl TxnStore for Inner {
    fn persist_txn(&self, transactional_id: &str, value: Option<Vec<u8>>) -> Result<()> {
        self.append_txn_record(transactional_id, value, Acks::All)
            .map(|_| ())
    }

    /// Written, not waited for (see the trait): the fsync a commit or abort
    /// still owed after its markers.
    fn persist_txn_completion(&self, transactional_id: &str, value: Vec<u8>) -> Result<()> {
        self.append_txn_record(transactional_id, Some(value), Acks::Leader)
            .map(|_| ())
    }

    /// Written, its fsync started on a transaction fsync thread so that it
    /// runs while the producer is answered and sends its records; the
    /// handle waits for that same fsync (group commit). The handle's offset
    /// is the log end read after the append: this record's or a later
    /// one's, so waiting for it waits for at least this record.
    fn persist_txn_owed(
        &self,
        transactional_id: &str,
        value: Vec<u8>,
    ) -> Result<Box<dyn OwedSync>> {
        let partition = self.append_txn_record(transactional_id, Some(value), Acks::Leader)?;
        let offset = partition.log().log_end_offset().saturating_sub(1);
        let sync = PendingSync { partition, offset };
        self.txn_background.start_sync(sync.clone());
        Ok(Box::new(sync))
    }

    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<()> {
        self.append_marker(
            topic,
            partition,
            producer_id,
            producer_epoch,
            marker(commit),
        )
        .map(|_| ())
    }

    /// Every marker appended first, then their fsyncs run in parallel
    /// (one per partition file, each shared with that partition's other
    /// waiters; all but the first started on the transaction fsync
    /// threads): a transaction over n partitions waits about one fsync,
    /// not n in a row.
    fn write_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<()>> {
        let appended =
            self.append_markers_unsynced(partitions, producer_id, producer_epoch, commit);
        for sync in appended.iter().filter_map(|a| a.as_ref().ok()).skip(1) {
            self.txn_background.start_sync(sync.clone());
        }
        partitions
            .iter()
            .zip(appended)
            .map(|((topic, p), a)| {
                a.and_then(|sync| sync.wait())?;
                self.marker_landed(topic, *p, producer_id, commit);
                Ok(())
            })
            .collect()
    }

    /// Every marker appended, their fsyncs started on the transaction
    /// fsync threads (in parallel, as [`TxnStore::write_markers`]) while
    /// the coordinator answers; each handle waits for its marker's fsync.
    /// A marker of `__consumer_offsets` is written durable first (the
    /// group coordinator applies or drops the transaction's offsets once it
    /// is, `marker_landed`); the coordinator completes such transactions
    /// before answering anyway.
    fn append_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Vec<Result<Box<dyn OwedSync>>> {
        if partitions.iter().any(|(t, _)| t == CONSUMER_OFFSETS) {
            return Durable::all(self.write_markers(
                partitions,
                producer_id,
                producer_epoch,
                commit,
            ));
        }
        let appended =
            self.append_markers_unsynced(partitions, producer_id, producer_epoch, commit);
        for sync in appended.iter().filter_map(|a| a.as_ref().ok()) {
            self.txn_background.start_sync(sync.clone());
        }
        appended
            .into_iter()
            .map(|a| a.map(|sync| Box::new(sync) as Box<dyn OwedSync>))
            .collect()
    }

    /// The broker's completer logs the completion as soon as the markers
    /// are durable.
    fn complete_in_background(&self, transactional_id: &str) {
        self.txn_background.complete(transactional_id);
    }

    fn new_producer_id(&self) -> Result<i64> {
        self.next_producer_id()
    }
}

impl OwedSync for PendingSync {
    fn wait(&self) -> Result<()> {
        PendingSync::wait(self)
    }
}
