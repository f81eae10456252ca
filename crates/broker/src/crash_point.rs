//! A crash point for tests of the real `pubsub serve` process (debug builds
//! only): with `PUBSUB_TEST_HALT_AFTER_MARKERS=N` in its environment, the
//! thread appending the Nth transaction marker since the start (counted
//! over every partition) prints `halted after transaction marker N` on
//! stderr and sleeps for good, so that a test can SIGKILL the process
//! between a transaction's markers: its decision durable, some partitions
//! marked and others not. Release builds read nothing and never halt.

#[cfg(debug_assertions)]
mod halt {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// The environment variable naming the marker to halt after.
    pub const VAR: &str = "PUBSUB_TEST_HALT_AFTER_MARKERS";

    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static APPENDED: AtomicU64 = AtomicU64::new(0);

    pub fn after_marker_appended() {
        let at = AT.get_or_init(|| std::env::var(VAR).ok().and_then(|v| v.parse().ok()));
        let Some(at) = *at else {
            return;
        };
        let n = APPENDED.fetch_add(1, Ordering::AcqRel) + 1;
        if n == at {
            eprintln!("halted after transaction marker {n} ({VAR})");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

/// Called once a transaction marker is appended to a partition's log (not
/// necessarily fsynced: a SIGKILL keeps what was written); halts the
/// calling thread at the marker the environment names (see the module doc).
pub(crate) fn after_marker_appended() {
    #[cfg(debug_assertions)]
    halt::after_marker_appended();
}
