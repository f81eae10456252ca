//! Integration tests of the protocol server: a real broker on a temporary
//! directory, served on a loopback port, driven by a Kafka-protocol client.

mod acls;
mod captured;
mod client;
mod common;
mod configs;
mod fetch;
mod fetch_sessions;
mod first_use;
mod frames;
mod groups;
mod java_client;
mod limits;
mod produce;
mod read_committed;
mod sasl;
mod sasl_out_of_turn;
mod storage_errors;
mod tls;
mod transactions;
mod txn_anomalies;
mod txn_offsets;
mod versions;
mod zero_copy;

/// As in the `pubsub` binary: hostile array counts must not abort the
/// process that decodes them.
#[global_allocator]
static ALLOCATOR: pubsub_server::alloc::GuardedAllocator = pubsub_server::alloc::GuardedAllocator;
