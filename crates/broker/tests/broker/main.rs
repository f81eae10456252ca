//! Integration tests of the broker core and the embedded API, on real
//! files; one test binary with a module per area.

mod common;

mod assignment;
mod consumers;
mod coordinator;
mod crash;
mod epochs;
mod example;
mod lazy_open;
mod offsets;
mod produce;
mod smoke;
mod topics;
mod transactions;
mod txn_coordinator;
mod txn_offsets;
