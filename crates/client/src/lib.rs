//! A small Kafka-protocol client for the `pubsub` command line, its load
//! generator and the server's tests. It speaks to any Kafka-protocol broker
//! (pubsub, Kafka, Redpanda): versions are negotiated with ApiVersions (or
//! named by the caller), requests can be pipelined on one connection, and
//! answers are matched by correlation id. Connections may use TLS and SASL
//! (PLAIN, SCRAM-SHA-256/512) as Kafka's `security.protocol` says.
//!
//! It depends on the record format and the codec only, never on the broker
//! or the server.

pub mod acls;
pub mod admin;
pub mod cluster;
pub mod connection;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod low_water;
pub mod member;
pub mod produce;
pub mod scram;
pub mod security;
pub mod users;

pub use cluster::{Cluster, TopicInfo};
pub use connection::{Connection, Receiver, Sender};
pub use error::{ClientError, Result};
pub use pubsub_records::ConsumerRecord;
pub use security::{SaslLogin, SaslMechanism, Secret, Security, SecurityProtocol, TlsFiles};
