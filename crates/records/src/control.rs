//! Transaction markers: the control records that end a transaction in each
//! partition it wrote to.
//!
//! A marker is a batch with the control and transactional attribute bits set,
//! the producer id and epoch of the transaction, no sequence (-1), and exactly
//! one record whose key says which marker it is and whose value carries the
//! transaction coordinator's epoch. Byte layout (big-endian, docs/FORMAT.md):
//!
//! ```text
//! key:   version i16 (0) | type i16 (0 = ABORT, 1 = COMMIT)
//! value: version i16 (0) | coordinator_epoch i32
//! ```
//!
//! Readers must accept a key version above 0 (the type is still the second
//! field) and ignore trailing bytes of a value, as Kafka does.

use crate::builder::{BatchBuilder, NewRecord};
use crate::error::{RecordsError, Result};

/// Which way a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// The transaction's records are dropped for read_committed readers.
    Abort,
    /// The transaction's records become visible to read_committed readers.
    Commit,
}

impl ControlType {
    /// The type's code in the control record key.
    pub fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }

    /// The type for a key code; `None` for codes Kafka does not define for
    /// transactions (leader-change and KRaft records use others).
    pub fn from_code(code: i16) -> Option<ControlType> {
        match code {
            0 => Some(ControlType::Abort),
            1 => Some(ControlType::Commit),
            _ => None,
        }
    }
}

/// A decoded transaction marker record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Commit or abort.
    pub kind: ControlType,
    /// The coordinator epoch that wrote the marker.
    pub coordinator_epoch: i32,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

impl ControlRecord {
    /// The record key: version and type.
    pub fn key(&self) -> [u8; 4] {
        let mut k = [0u8; 4];
        k[..2].copy_from_slice(&KEY_VERSION.to_be_bytes());
        k[2..].copy_from_slice(&self.kind.code().to_be_bytes());
        k
    }

    /// The record value: version and coordinator epoch.
    pub fn value(&self) -> [u8; 6] {
        let mut v = [0u8; 6];
        v[..2].copy_from_slice(&VALUE_VERSION.to_be_bytes());
        v[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// Decodes a marker from a control record's key and value. Fails on a
    /// key or value too short, a negative version, or a type that is not a
    /// transaction marker.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ControlRecord> {
        let key = key.ok_or(RecordsError::InvalidControlRecord(
            "control record without a key",
        ))?;
        let value = value.ok_or(RecordsError::InvalidControlRecord(
            "control record without a value",
        ))?;
        let (Some(kv), Some(kt)) = (key.get(..2), key.get(2..4)) else {
            return Err(RecordsError::InvalidControlRecord(
                "control record key too short",
            ));
        };
        let (Some(vv), Some(ve)) = (value.get(..2), value.get(2..6)) else {
            return Err(RecordsError::InvalidControlRecord(
                "control record value too short",
            ));
        };
        let be16 = |b: &[u8]| i16::from_be_bytes([b[0], b[1]]);
        if be16(kv) < 0 || be16(vv) < 0 {
            return Err(RecordsError::InvalidControlRecord(
                "control record with a negative version",
            ));
        }
        let kind = ControlType::from_code(be16(kt)).ok_or(RecordsError::InvalidControlRecord(
            "control record is not a transaction marker",
        ))?;
        let coordinator_epoch = i32::from_be_bytes([ve[0], ve[1], ve[2], ve[3]]);
        Ok(ControlRecord {
            kind,
            coordinator_epoch,
        })
    }
}

/// Encodes the marker batch that ends a transaction of `producer_id` at
/// `producer_epoch` in one partition: base offset 0 (the log assigns the real
/// one), one record stamped `timestamp`.
pub fn control_batch(
    marker: ControlRecord,
    producer_id: i64,
    producer_epoch: i16,
    timestamp: i64,
) -> Result<Vec<u8>> {
    let mut b = BatchBuilder::new()
        .producer(producer_id, producer_epoch, -1)
        .transactional(true)
        .control(true);
    b.push(&NewRecord {
        timestamp,
        key: Some(&marker.key()),
        value: Some(&marker.value()),
        headers: &[],
    })?;
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;

    #[test]
    fn a_marker_batch_round_trips_and_carries_kafkas_attributes() -> Result<()> {
        for kind in [ControlType::Commit, ControlType::Abort] {
            let marker = ControlRecord {
                kind,
                coordinator_epoch: 7,
            };
            let bytes = control_batch(marker, 42, 3, 1_700_000_000_000)?;
            let batch = Batch::parse(&bytes)?;
            batch.validate()?;
            assert!(batch.is_control());
            assert!(batch.is_transactional());
            assert_eq!(batch.producer_id(), 42);
            assert_eq!(batch.producer_epoch(), 3);
            assert_eq!(batch.base_sequence(), -1);
            let records = batch.records(1 << 20)?;
            let mut it = records.iter();
            let r = it
                .next()
                .ok_or(RecordsError::InvalidControlRecord("no record"))??;
            assert!(it.next().is_none());
            assert_eq!(ControlRecord::parse(r.key, r.value)?, marker);
        }
        Ok(())
    }

    #[test]
    fn the_key_and_value_bytes_are_kafkas() {
        let m = ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 0x0102_0304,
        };
        assert_eq!(m.key(), [0, 0, 0, 1]);
        assert_eq!(m.value(), [0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn malformed_markers_are_refused_without_panicking() {
        let ok_value = [0u8, 0, 0, 0, 0, 1];
        for key in [
            &[][..],
            &[0],
            &[0, 0, 0],
            &[0, 0, 0, 5],
            &[0xff, 0xff, 0, 1],
        ] {
            assert!(ControlRecord::parse(Some(key), Some(&ok_value)).is_err());
        }
        assert!(ControlRecord::parse(Some(&[0, 0, 0, 1]), Some(&[0, 0, 1])).is_err());
        assert!(ControlRecord::parse(None, Some(&ok_value)).is_err());
        assert!(ControlRecord::parse(Some(&[0, 0, 0, 1]), None).is_err());
        // A newer version with trailing bytes still reads.
        let m = ControlRecord::parse(Some(&[0, 1, 0, 0, 9]), Some(&[0, 1, 0, 0, 0, 2, 9, 9]));
        assert_eq!(
            m.ok(),
            Some(ControlRecord {
                kind: ControlType::Abort,
                coordinator_epoch: 2
            })
        );
    }
}
