//! Tests of the `pubsub` binary as a process: real sockets, real signals,
//! real files, and real Kafka clients (the Python suite under `compat/`).

mod admin_apis;
mod api_table;
mod bad_input;
mod bench;
#[path = "../../../server/tests/server/client.rs"]
mod client;
mod commands;
mod compat;
mod daemon;
mod differential;
mod epochs;
mod go_clients;
mod java_clients;
mod kafka;
mod kafka_tools;
mod limits;
mod log_tools;
mod metrics;
mod readme;
mod reference;
mod security;
mod serve;
mod storage_errors;
mod streams;
mod tls;
mod torn_txn;
mod txn_checker;
mod txn_clients;
mod verifiable;
