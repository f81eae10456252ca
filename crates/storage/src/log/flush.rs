//! Durability: group commit (concurrent waiters share one fsync round),
//! the recovery-point checkpoint, and poisoning after a failed write or
//! fsync (a write that ran out of space is undone instead: see `space`).

use std::sync::Arc;
use std::time::Instant;

use tracing::error;

use crate::checkpoint::{Checkpoint, RecoveryCheckpoint};
use crate::config::FlushPolicy;
use crate::error::{Result, StorageError};
use crate::log::Log;

pub(super) struct FlushState {
    /// Every offset below this is on disk.
    pub(super) durable: u64,
    /// Every offset below this was flushed by a round under deferred
    /// syncs ([`crate::fs::defer_syncs`]): on disk only once its caller's
    /// filesystem sync has succeeded, which [`Log::record_recovery_point`]
    /// marks. Until then it counts for that caller only, never for a
    /// producer waiting for durability.
    pub(super) deferred: u64,
    pub(super) in_progress: bool,
    pub(super) last_flush: Instant,
}

impl Log {
    /// `Poisoned` once a write or fsync has failed.
    pub(super) fn check_not_poisoned(&self) -> Result<()> {
        self.check_close_errors()?;
        match self.poison.get() {
            Some(reason) => Err(StorageError::Poisoned {
                dir: self.ctx.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Poisons the log if closing one of its files reported a failure (a
    /// writeback that may have lost data written through that descriptor;
    /// see `handles`).
    fn check_close_errors(&self) -> Result<()> {
        match self.ctx.close_errors.get() {
            Some((path, e)) => {
                let e = StorageError::io("close", path, e);
                self.poison(&e);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Refuses all further writes until the log is reopened.
    pub(crate) fn poison(&self, cause: &StorageError) {
        if self.poison.set(cause.to_string()).is_ok() {
            error!(dir = %self.ctx.dir.display(), error = %cause, "log poisoned: refusing writes until reopened");
        }
        self.flushed.notify_all();
    }

    /// Runs `f`; if it fails with a storage failure, poisons the log (not
    /// for an open or map that found no descriptor or memory: it changed
    /// nothing, see [`StorageError::is_out_of_handles`]).
    pub(crate) fn poison_on_err<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_storage_failure() && !e.is_out_of_handles() {
                self.poison(e);
            }
        }
        r
    }

    /// Like [`Log::poison_on_err`], for operations that leave nothing
    /// behind when they run out of space (or whose caller undoes it): such a
    /// failure marks the log out of space instead of poisoning it.
    pub(crate) fn heal_or_poison<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_out_of_space() {
                self.space.ran_out(&self.ctx.dir, e);
            } else if e.is_storage_failure() && !e.is_out_of_handles() {
                self.poison(e);
            }
        }
        r
    }

    /// fsyncs everything appended so far.
    pub fn flush(&self) -> Result<()> {
        self.flush_until(self.log_end_offset())
    }

    /// Returns once every offset up to and including `offset` is on disk
    /// (fsyncing if needed; concurrent callers share one fsync).
    pub fn wait_durable(&self, offset: u64) -> Result<()> {
        self.flush_until(offset.saturating_add(1))
    }

    /// For [`FlushPolicy::Interval`]: flushes if the interval has passed.
    /// A broker calls this from a timer so idle logs get flushed too.
    pub fn flush_if_due(&self) -> Result<()> {
        if let FlushPolicy::Interval(every) = self.config().flush {
            let due = self.flush.lock().last_flush.elapsed() >= every;
            if due && self.durable_offset() < self.log_end_offset() {
                return self.flush();
            }
        }
        Ok(())
    }

    /// Group commit: makes every offset below `target` durable. The first
    /// caller to find no flush running runs one covering everything written
    /// at that moment; the others wait for it and rarely need another.
    ///
    /// Under deferred syncs the round fsyncs nothing: it counts in
    /// [`FlushState::deferred`], not as durable, so a producer waiting for
    /// durability meanwhile runs a round of its own.
    pub(crate) fn flush_until(&self, target: u64) -> Result<()> {
        let target = target.min(self.log_end_offset());
        let deferred = crate::fs::syncs_deferred();
        let mut st = self.flush.lock();
        loop {
            let flushed = if deferred {
                st.durable.max(st.deferred)
            } else {
                st.durable
            };
            if flushed >= target {
                return Ok(());
            }
            self.check_not_poisoned()?;
            if st.in_progress {
                self.flushed.wait(&mut st);
                continue;
            }
            st.in_progress = true;
            drop(st);
            let started = Instant::now();
            let result = self.run_flush();
            self.flush_stats.observe(started.elapsed());
            st = self.flush.lock();
            st.in_progress = false;
            st.last_flush = Instant::now();
            match result {
                Ok(end) if deferred => st.deferred = st.deferred.max(end),
                Ok(end) => st.durable = st.durable.max(end),
                Err(e) => {
                    drop(st);
                    // A round that could not reopen a file (no descriptor
                    // or memory) synced less, not badly: its segments wait
                    // for the next round; nothing counts as durable.
                    if e.is_out_of_handles() {
                        self.flushed.notify_all();
                    } else {
                        self.poison(&e);
                    }
                    return Err(e);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// One fsync round: sealed segments waiting for it, the active segment,
    /// the directory if files came or went; then the recovery point if a
    /// segment was sealed. Returns the offset now durable.
    fn run_flush(&self) -> Result<u64> {
        let (end, active, sealed, dir_dirty) = {
            let mut w = self.writer.lock();
            (
                w.next_offset,
                Arc::clone(&w.active),
                std::mem::take(&mut w.unflushed),
                std::mem::take(&mut w.dir_dirty),
            )
        };
        let synced: Result<()> = (|| {
            for seg in &sealed {
                seg.sync(true)?;
            }
            active.sync(false)?;
            if dir_dirty {
                self.ctx
                    .fs
                    .sync_dir(&self.ctx.dir)
                    .map_err(|e| StorageError::io("fsync directory", &self.ctx.dir, e))?;
            }
            Ok(())
        })();
        if let Err(e) = synced {
            if e.is_out_of_handles() {
                // Not synced: the next round does it (any other failure
                // poisons the log, and no round follows).
                let mut w = self.writer.lock();
                w.unflushed.extend(sealed);
                w.dir_dirty |= dir_dirty;
            }
            return Err(e);
        }
        // A descriptor closed by the budget before this round may have
        // reported a failed writeback of data this round counts as durable.
        self.check_close_errors()?;
        // Under deferred syncs nothing above is durable yet: the caller
        // records the recovery point after its filesystem sync, and the
        // sealed segments and the directory stay owed to the next round
        // that fsyncs (one that comes before that filesystem sync must not
        // count them durable unsynced).
        if crate::fs::syncs_deferred() {
            let mut w = self.writer.lock();
            w.unflushed.extend(sealed);
            w.dir_dirty |= dir_dirty;
            return Ok(end);
        }
        if !sealed.is_empty() {
            match self.write_checkpoint(end) {
                // The data is on disk; only the recovery point stays behind
                // (recovery would scan a little more) until a later
                // checkpoint finds space, or a descriptor to write it with.
                Err(e) if e.is_out_of_space() || e.is_out_of_handles() => {}
                other => other?,
            }
        }
        Ok(end)
    }

    /// Writes the recovery-point checkpoint (if it changed).
    pub(crate) fn write_checkpoint(&self, recovery_point: u64) -> Result<()> {
        let mut last = self.checkpointed.lock();
        let cp = RecoveryCheckpoint {
            recovery_point,
            log_start_offset: self.log_start_offset(),
        };
        // While out of space, write it even if unchanged: the probe that
        // clears `/health` for a partition nobody writes to (see `space`).
        if last.is_some_and(|l| l == cp) && !self.space.is_short() {
            return Ok(());
        }
        let written = cp.write_to(self.ctx.fs.as_ref(), &self.ctx.dir);
        self.heal_or_poison(written)?;
        *last = Some(cp);
        if self.space.is_short() {
            self.space.probe_fitted(&self.ctx.dir);
        }
        Ok(())
    }

    /// Flushes, then records the recovery point, so recovery after a crash
    /// scans only what was written after this call. A broker calls it
    /// periodically (Kafka: every 60 s).
    pub fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        let end = self.log_end_offset();
        self.flush_until(end)?;
        self.write_checkpoint(end)
    }
}
