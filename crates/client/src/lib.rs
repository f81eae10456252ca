//! A small Kafka-protocol client for the `pubsub` command line, its load
//! generator and the server's tests. It speaks to any Kafka-protocol broker
//! (pubsub, Kafka, Redpanda): versions are negotiated with ApiVersions (or
//! named by the caller), requests can be pipelined on one connection, and
//! answers are matched by correlation id.
//!
//! It depends on the record format and the codec only, never on the broker
//! or the server.

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod member;
pub mod produce;

pub use cluster::{Cluster, TopicInfo};
pub use connection::{Connection, Receiver, Sender};
pub use error::{ClientError, Result};
pub use pubsub_records::ConsumerRecord;
