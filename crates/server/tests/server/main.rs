//! Integration tests of the protocol server: a real broker on a temporary
//! directory, served on a loopback port, driven by a Kafka-protocol client.

mod client;
mod common;
mod versions;
