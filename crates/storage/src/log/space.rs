//! Running out of space. A write that fails with ENOSPC or EDQUOT lost
//! nothing the kernel had accepted (unlike a failed fsync), so the log undoes
//! what the failed operation left behind (the partial batch, a half-grown
//! index, the files of a segment it could not start) and keeps taking
//! writes: each fails with the storage error until space returns, then
//! succeeds, without a reopen. This records that the log is in that state,
//! for `/health` and metrics, and says so in the log once when an episode
//! starts and once when it ends, not once per refused write.
//!
//! An episode ends with the first append that succeeds (written, indexed and
//! published). The periodic checkpoint probes in between: a checkpoint that
//! fits clears `/health` quietly (an idle partition should not stay "out of
//! space" for ever), but says little about a batch fitting, so the episode
//! goes on: an append failing afterwards marks the log out of space again
//! without a second warning, and "space available again" waits for an
//! append that succeeds.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;
use tracing::{debug, info, warn};

/// `state` bit: the log is out of space now (`/health`, metrics).
const SHORT: u8 = 1;
/// `state` bit: the log warned that it ran out and has not yet said that it
/// takes writes again.
const ANNOUNCED: u8 = 2;

/// Whether the log's last write ran out of space, and how.
#[derive(Debug, Default)]
pub(super) struct SpaceState {
    /// `SHORT | ANNOUNCED` bits; changed under `reason`'s lock, read without
    /// it (0 on the append path's fast check).
    state: AtomicU8,
    /// The failure, as the operator should read it, while `SHORT`.
    reason: Mutex<Option<String>>,
    /// Episodes so far (warnings logged).
    episodes: AtomicU64,
}

impl SpaceState {
    /// True while neither out of space nor in an episode: nothing to clear.
    #[inline]
    pub(super) fn is_clear(&self) -> bool {
        self.state.load(Ordering::Acquire) == 0
    }

    /// True while the last write (or checkpoint) ran out of space.
    pub(super) fn is_short(&self) -> bool {
        self.state.load(Ordering::Acquire) & SHORT != 0
    }

    /// The failed write that put the log in this state, if it is.
    pub(super) fn reason(&self) -> Option<String> {
        if !self.is_short() {
            return None;
        }
        self.reason.lock().clone()
    }

    /// Episodes so far: times the log warned that it ran out of space.
    pub(super) fn episodes(&self) -> u64 {
        self.episodes.load(Ordering::Relaxed)
    }

    /// A write ran out of space (logged only if no episode is under way).
    pub(super) fn ran_out(&self, dir: &Path, cause: &dyn std::fmt::Display) {
        let mut reason = self.reason.lock();
        if self.state.load(Ordering::Acquire) & ANNOUNCED == 0 {
            warn!(
                dir = %dir.display(),
                error = %cause,
                "out of space: writes to this partition fail (KAFKA_STORAGE_ERROR) until space is freed; nothing acknowledged is lost"
            );
            self.episodes.fetch_add(1, Ordering::Relaxed);
        }
        *reason = Some(cause.to_string());
        self.state.store(SHORT | ANNOUNCED, Ordering::Release);
    }

    /// A checkpoint fitted while out of space: `/health` clears, quietly;
    /// the episode ends with the next append that succeeds.
    #[cold]
    pub(super) fn probe_fitted(&self, dir: &Path) {
        let mut reason = self.reason.lock();
        let state = self.state.load(Ordering::Acquire);
        if state & SHORT != 0 {
            debug!(dir = %dir.display(), "a checkpoint fits again");
            *reason = None;
            self.state.store(state & !SHORT, Ordering::Release);
        }
    }

    /// An append succeeded: the episode, if any, is over.
    #[cold]
    pub(super) fn returned(&self, dir: &Path) {
        let mut reason = self.reason.lock();
        if self.state.load(Ordering::Acquire) & ANNOUNCED != 0 {
            info!(dir = %dir.display(), "space available again: the partition takes writes");
        }
        *reason = None;
        self.state.store(0, Ordering::Release);
    }
}
