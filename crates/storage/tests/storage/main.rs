//! Integration tests of the partition log, on real files in temporary
//! directories. One test binary with a module per area.

mod common;

mod basic;
mod budget;
mod compaction;
mod crash;
mod faults;
mod fixtures;
mod log_start;
mod model;
mod recovery;
mod retention;
