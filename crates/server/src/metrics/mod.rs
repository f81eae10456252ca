//! Monitoring: the server's own counters ([`Metrics`]), the Prometheus text
//! page built from them and the broker's state at scrape time ([`scrape`],
//! written by prometheus-client through [`exposition`]), and the axum
//! listener serving `/metrics` and `/health` ([`http::serve`]).
//!
//! Counting costs a few relaxed atomic additions per request: requests and
//! latencies per API live in a fixed array indexed through a table built
//! from [`SUPPORTED`], error codes in a fixed (API, code) array, and
//! per-topic traffic in the broker's partitions. Everything else (log
//! sizes, segments, group lag) is read from the broker only when scraped.
//! docs/ARCHITECTURE.md lists every metric.

pub mod errors;
pub mod exposition;
pub mod http;
pub mod scrape;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use pubsub_broker::stats::{Histogram, HistogramSnapshot};

use crate::dispatch::SUPPORTED;
use crate::sasl::KNOWN_MECHANISMS;
use errors::ErrorCodes;
use pubsub_broker::security::AuthFailure;

/// Error codes counted individually: -1 (UNKNOWN_SERVER_ERROR) up to this.
/// Anything outside is counted as [`OTHER_CODE`].
const MAX_CODE: i16 = 127;
/// Error-code slots per API: -1..=MAX_CODE, then one for anything else.
const CODE_SLOTS: usize = MAX_CODE as usize + 3;
const OTHER_SLOT: usize = CODE_SLOTS - 1;
/// The label value of codes outside -1..=127.
pub const OTHER_CODE: &str = "other";

/// Position in [`SUPPORTED`] of each API key below 128 (`u8::MAX`: not served).
const SLOTS: [u8; 128] = {
    let mut table = [u8::MAX; 128];
    let mut i = 0;
    while i < SUPPORTED.len() {
        table[SUPPORTED[i].0 as i16 as usize] = i as u8;
        i += 1;
    }
    table
};

/// The slot of an API key this server serves.
pub fn api_slot(api: i16) -> Option<usize> {
    let slot = *SLOTS.get(usize::try_from(api).ok()?)?;
    (slot != u8::MAX).then_some(slot as usize)
}

/// Per API.
#[derive(Debug, Default)]
struct ApiCounters {
    requests: AtomicU64,
    latency: Histogram,
}

/// The server's counters, shared by every connection (and read by the
/// metrics endpoint).
pub struct Metrics {
    apis: Vec<ApiCounters>,
    /// `SUPPORTED.len() * CODE_SLOTS` counters.
    errors: Vec<AtomicU64>,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_open: AtomicU64,
    protocol_errors: AtomicU64,
    tls_handshake_failures: AtomicU64,
    fetch_sessions: AtomicU64,
    fetch_session_evictions: AtomicU64,
    fetch_reads_off_worker: AtomicU64,
    /// SASL outcomes: per mechanism of [`KNOWN_MECHANISMS`], one per
    /// [`SASL_OUTCOMES`].
    sasl: [[AtomicU64; 3]; 3],
}

/// The `outcome` of a SASL authentication: success, then each
/// [`AuthFailure`] reason.
pub const SASL_OUTCOMES: [&str; 3] = ["ok", "invalid_credentials", "malformed"];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("connections_open", &self.connections_open())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts an open connection until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one API did, as read at scrape time.
#[derive(Debug, Clone)]
pub struct ApiSnapshot {
    /// The API.
    pub key: ApiKey,
    /// Requests dispatched (decoded and handled).
    pub requests: u64,
    /// Time from a request's frame being read to its answer being ready to send.
    pub latency: HistogramSnapshot,
    /// (error code, times answered), non-zero counts only; `None` is a
    /// code outside -1..=127.
    pub errors: Vec<(Option<i16>, u64)>,
}

impl Metrics {
    /// Every counter at zero.
    pub fn new() -> Metrics {
        Metrics {
            apis: (0..SUPPORTED.len())
                .map(|_| ApiCounters::default())
                .collect(),
            errors: (0..SUPPORTED.len() * CODE_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            fetch_sessions: AtomicU64::new(0),
            fetch_session_evictions: AtomicU64::new(0),
            fetch_reads_off_worker: AtomicU64::new(0),
            sasl: Default::default(),
        }
    }

    /// A connection was accepted.
    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed on accept (over the limit).
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection is being served; it counts as open until the guard drops.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// A connection was closed because of what the client sent (a
    /// malformed request, an unknown API or version, an oversized frame).
    pub fn protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A TLS handshake failed or timed out (the connection was closed).
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// TLS handshakes failed since start.
    pub fn tls_handshake_failures(&self) -> u64 {
        self.tls_handshake_failures.load(Ordering::Relaxed)
    }

    /// A request of API `slot` is being handled.
    pub fn request(&self, slot: usize) {
        if let Some(a) = self.apis.get(slot) {
            a.requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request of API `slot` was answered (or, for acks=0, handled) `took`
    /// after its frame was read.
    pub fn answered(&self, slot: usize, took: Duration) {
        if let Some(a) = self.apis.get(slot) {
            a.latency.observe(took);
        }
    }

    /// Counts one answer of `code` (non-zero) for API `slot`.
    pub fn error(&self, slot: usize, code: i16) {
        if code == 0 {
            return;
        }
        let c = if (-1..=MAX_CODE).contains(&code) {
            (code + 1) as usize
        } else {
            OTHER_SLOT
        };
        if let Some(n) = self.errors.get(slot * CODE_SLOTS + c) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts every non-zero error code of a response of API `slot`.
    pub fn errors_in(&self, slot: usize, resp: &impl ErrorCodes) {
        resp.error_codes(&mut |code| self.error(slot, code));
    }

    /// Connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::Relaxed)
    }

    /// Connections closed on accept since start.
    pub fn connections_refused(&self) -> u64 {
        self.connections_refused.load(Ordering::Relaxed)
    }

    /// Connections being served.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Connections closed for a protocol error since start.
    pub fn protocol_errors(&self) -> u64 {
        self.protocol_errors.load(Ordering::Relaxed)
    }

    /// The fetch session cache holds `sessions` and has evicted
    /// `evictions` since start.
    pub fn fetch_sessions_now(&self, sessions: usize, evictions: u64) {
        self.fetch_sessions
            .store(sessions as u64, Ordering::Relaxed);
        self.fetch_session_evictions
            .store(evictions, Ordering::Relaxed);
    }

    /// A SASL authentication with `mechanism` ended: `None` authenticated,
    /// else failed for that reason.
    pub fn sasl_outcome(&self, mechanism: &str, failure: Option<AuthFailure>) {
        let outcome = match failure {
            None => 0,
            Some(AuthFailure::InvalidCredentials) => 1,
            Some(AuthFailure::Malformed) => 2,
        };
        if let Some(m) = KNOWN_MECHANISMS.iter().position(|k| *k == mechanism) {
            self.sasl[m][outcome].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (mechanism, outcome, count) of every SASL authentication since start.
    pub fn sasl_outcomes(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (m, mechanism) in KNOWN_MECHANISMS.iter().enumerate() {
            for (o, outcome) in SASL_OUTCOMES.iter().enumerate() {
                out.push((
                    *mechanism,
                    *outcome,
                    self.sasl[m][o].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }

    /// Fetch sessions in the cache.
    pub fn fetch_sessions(&self) -> u64 {
        self.fetch_sessions.load(Ordering::Relaxed)
    }

    /// Fetch sessions evicted to make room for others since start.
    pub fn fetch_session_evictions(&self) -> u64 {
        self.fetch_session_evictions.load(Ordering::Relaxed)
    }

    /// A fetch's partition reads left the runtime's worker
    /// (`block_in_place`): a batch header was not in the page cache.
    pub fn fetch_read_off_worker(&self) {
        self.fetch_reads_off_worker.fetch_add(1, Ordering::Relaxed);
    }

    /// Fetch read passes that left the worker, since start.
    pub fn fetch_reads_off_worker(&self) -> u64 {
        self.fetch_reads_off_worker.load(Ordering::Relaxed)
    }

    /// Every served API's counters, in [`SUPPORTED`] order.
    pub fn apis(&self) -> Vec<ApiSnapshot> {
        SUPPORTED
            .iter()
            .zip(&self.apis)
            .enumerate()
            .map(|(slot, ((key, _, _), a))| {
                let codes = &self.errors[slot * CODE_SLOTS..(slot + 1) * CODE_SLOTS];
                let errors = codes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        let n = n.load(Ordering::Relaxed);
                        let code = (i != OTHER_SLOT).then(|| i as i16 - 1);
                        (n > 0).then_some((code, n))
                    })
                    .collect();
                ApiSnapshot {
                    key: *key,
                    requests: a.requests.load(Ordering::Relaxed),
                    latency: a.latency.snapshot(),
                    errors,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_api_has_its_own_slot() {
        for (i, (key, _, _)) in SUPPORTED.iter().enumerate() {
            assert_eq!(api_slot(*key as i16), Some(i), "{key:?}");
        }
        assert_eq!(api_slot(-1), None);
        assert_eq!(api_slot(i16::MAX), None);
        assert_eq!(api_slot(ApiKey::DescribeClientQuotas as i16), None);
    }

    #[test]
    fn sasl_outcomes_are_counted_by_mechanism_and_outcome() {
        let m = Metrics::new();
        m.sasl_outcome("SCRAM-SHA-256", None);
        m.sasl_outcome("PLAIN", Some(AuthFailure::InvalidCredentials));
        m.sasl_outcome("PLAIN", Some(AuthFailure::InvalidCredentials));
        m.sasl_outcome("SCRAM-SHA-512", Some(AuthFailure::Malformed));
        // Not a mechanism served: not counted.
        m.sasl_outcome("GSSAPI", None);
        let all = m.sasl_outcomes();
        assert_eq!(all.len(), 9, "every mechanism and outcome, zeros too");
        assert!(all.contains(&("SCRAM-SHA-256", "ok", 1)));
        assert!(all.contains(&("PLAIN", "invalid_credentials", 2)));
        assert!(all.contains(&("SCRAM-SHA-512", "malformed", 1)));
        assert_eq!(all.iter().map(|(_, _, n)| n).sum::<u64>(), 4);
    }

    #[test]
    fn errors_are_counted_per_api_and_code() {
        let m = Metrics::new();
        let fetch = api_slot(ApiKey::Fetch as i16).expect("fetch");
        m.error(fetch, 0);
        m.error(fetch, 3);
        m.error(fetch, 3);
        m.error(fetch, -1);
        m.error(fetch, 500);
        m.request(fetch);
        m.answered(fetch, Duration::from_millis(1));
        let apis = m.apis();
        let f = &apis[fetch];
        assert_eq!(f.key, ApiKey::Fetch);
        assert_eq!(f.requests, 1);
        assert_eq!(f.latency.count(), 1);
        assert_eq!(f.errors, vec![(Some(-1), 1), (Some(3), 2), (None, 1)]);
        assert!(apis
            .iter()
            .enumerate()
            .all(|(i, a)| i == fetch || (a.errors.is_empty() && a.requests == 0)));
        {
            let _open = m.connection_opened();
            assert_eq!(m.connections_open(), 1);
        }
        assert_eq!(m.connections_open(), 0);
    }
}
