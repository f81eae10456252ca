//! Running out of space. A write that fails with ENOSPC or EDQUOT lost
//! nothing the kernel had accepted (unlike a failed fsync), so the log undoes
//! what the failed operation left behind (the partial batch, a half-grown
//! index, the files of a segment it could not start) and keeps taking
//! writes: each fails with the storage error until space returns, then
//! succeeds, without a reopen. This records that the log is in that state,
//! for `/health` and metrics, and says so in the log once when it starts and
//! once when it ends, not once per refused write.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tracing::{info, warn};

use crate::error::StorageError;

/// Whether the log's last write ran out of space, and how.
#[derive(Debug, Default)]
pub(super) struct SpaceState {
    /// Fast check for the append path: set while `reason` is.
    short: AtomicBool,
    /// The failure, as the operator should read it.
    reason: Mutex<Option<String>>,
    /// Times the log ran out (warnings logged).
    episodes: AtomicU64,
}

impl SpaceState {
    /// True while the last write ran out of space.
    pub(super) fn is_short(&self) -> bool {
        self.short.load(Ordering::Acquire)
    }

    /// The failed write that put the log in this state, if it is.
    pub(super) fn reason(&self) -> Option<String> {
        if !self.is_short() {
            return None;
        }
        self.reason.lock().clone()
    }

    /// Times the log ran out of space so far (each logged once).
    pub(super) fn episodes(&self) -> u64 {
        self.episodes.load(Ordering::Relaxed)
    }

    /// A write ran out of space (logged only if the log was not already
    /// out of space).
    pub(super) fn ran_out(&self, dir: &Path, cause: &StorageError) {
        let mut reason = self.reason.lock();
        if reason.is_none() {
            warn!(
                dir = %dir.display(),
                error = %cause,
                "out of space: writes to this partition fail (KAFKA_STORAGE_ERROR) until space is freed; nothing acknowledged is lost"
            );
            self.episodes.fetch_add(1, Ordering::Relaxed);
        }
        *reason = Some(cause.to_string());
        self.short.store(true, Ordering::Release);
    }

    /// A write succeeded: if the log was out of space, it no longer is.
    #[cold]
    pub(super) fn returned(&self, dir: &Path) {
        let mut reason = self.reason.lock();
        if reason.take().is_some() {
            info!(dir = %dir.display(), "space available again: the partition takes writes");
        }
        self.short.store(false, Ordering::Release);
    }
}
