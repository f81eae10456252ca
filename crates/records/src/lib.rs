//! Kafka's RecordBatch v2, the unit pubsub stores on disk and sends on the
//! wire: a zero-copy header view ([`Batch`]), in-place rewrites of the fields a
//! broker owns ([`BatchMut`]), a [`BatchBuilder`], an iterator over the
//! records of plain and compressed batches ([`RecordSet`]), and the owned
//! [`ConsumerRecord`] that consumers hand out; and Kafka's security vocabulary
//! ([`security`]: ACL resource types, operations, security protocols) that
//! the broker, the server and the client share.
//!
//! Pure bytes: nothing here does I/O, so the storage engine, the broker, the
//! client and the fuzzers all share one implementation.
//!
//! ```
//! use pubsub_records::{Batch, BatchBuilder, NewRecord};
//!
//! let mut builder = BatchBuilder::new();
//! builder.push(&NewRecord { timestamp: 1_700_000_000_000, key: Some(b"k"), value: Some(b"v"), headers: &[] })?;
//! let bytes = builder.build()?;
//! let batch = Batch::parse(&bytes)?;
//! batch.validate()?;
//! let records = batch.records(1 << 20)?;
//! let first = records.iter().next().expect("one record")?;
//! assert_eq!(first.value, Some(&b"v"[..]));
//! # Ok::<(), pubsub_records::RecordsError>(())
//! ```

pub mod batch;
pub mod builder;
pub mod compression;
pub mod consumed;
pub mod control;
mod error;
mod error_name;
pub mod partitioner;
pub mod record;
pub mod security;
pub mod varint;

pub use batch::{
    batch_len, Batch, BatchHeader, BatchMut, Batches, TimestampType, HEADER_LEN, LOG_OVERHEAD,
};
pub use builder::{BatchBuilder, NewRecord};
pub use compression::Compression;
pub use consumed::ConsumerRecord;
pub use control::{control_batch, ControlRecord, ControlType};
pub use error::{RecordsError, Result};
pub use error_name::kafka_error_name;
pub use record::{Header, HeaderIter, Record, RecordIter, RecordSet};
