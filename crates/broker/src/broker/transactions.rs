//! The broker as the transaction coordinator's store: its records go to
//! the transactional id's `__transaction_state` partition (the topic is
//! created at first use), its markers to the partitions' logs, fsynced
//! before either is reported done; producer ids come from the same
//! counter as idempotent producers'.

use pubsub_records::{ControlRecord, ControlType};

use super::{wall_clock_ms, Inner};
use crate::error::{BrokerError, Result};
use crate::group::records::partition_for_group;
use crate::names::CONSUMER_OFFSETS;
use crate::txn::{records, TxnStore, TRANSACTION_STATE};

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
        if topic == CONSUMER_OFFSETS {
            // The group coordinator's pending transactional commits there.
            self.coordinator
                .complete_txn(partition, producer_id, commit);
        }
        Ok(offset)
    }
}

impl TxnStore for Inner {
    fn persist_txn(&self, transactional_id: &str, value: Option<Vec<u8>>) -> Result<()> {
        if self.topic(TRANSACTION_STATE).is_none() {
            self.create_transaction_state_topic()?;
        }
        let topic = self.existing_topic(TRANSACTION_STATE)?;
        let n = u32::try_from(topic.partitions.len()).unwrap_or(u32::MAX);
        let partition =
            self.partition(TRANSACTION_STATE, partition_for_group(transactional_id, n))?;
        super::traffic::append_keyed(
            &partition,
            &[(records::encode_key(transactional_id), value)],
        )
    }

    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<()> {
        let marker = ControlRecord {
            kind: if commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
            // One coordinator, never moved: epoch 0.
            coordinator_epoch: 0,
        };
        self.append_marker(topic, partition, producer_id, producer_epoch, marker)
            .map(|_| ())
    }

    fn new_producer_id(&self) -> Result<i64> {
        self.next_producer_id()
    }
}
