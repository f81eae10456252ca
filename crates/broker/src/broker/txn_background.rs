//! The transaction coordinator's background threads on a broker, a fixed
//! few for the broker's life, whatever the number of transactions:
//!
//! - fsync threads (up to [`SYNC_THREADS`], started as work needs them),
//!   which start the fsyncs of what the coordinator appended without
//!   waiting (a transaction's markers, an AddPartitionsToTxn record), so
//!   they run while the request is answered. Work is kept one entry per
//!   partition (the highest offset asked for): the markers of several
//!   transactions pending in one partition take one fsync. Whoever needs
//!   one of those appends durable waits for it itself
//!   ([`PendingSync::wait`], a group commit: it joins the fsync running or
//!   runs one), so these threads only make fsyncs start early and run in
//!   parallel; their failure poisons the log, which every waiter reports.
//! - one completer, which completes each decided transaction whose markers
//!   EndTxn left landing as soon as they are durable: it waits for them and
//!   logs CompleteCommit (CompleteAbort) in `__transaction_state`
//!   ([`TransactionCoordinator::complete_landed`]), so the log is current
//!   without waiting for the id's next request or the clock's tick.
//!
//! [`TxnBackground::stop`] (at the broker's close) lets the completer
//! complete what is queued, then joins every thread.
//!
//! [`TransactionCoordinator::complete_landed`]: crate::txn::TransactionCoordinator::complete_landed

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tracing::debug;

use super::{wall_clock_ms, Inner};
use crate::partition::PendingSync;

/// Most fsync threads (the completer aside): as many partitions' fsyncs
/// run at once.
pub(crate) const SYNC_THREADS: usize = 8;

/// What is queued for the threads.
#[derive(Debug, Default)]
struct Work {
    /// Fsyncs to start, one per partition.
    syncs: VecDeque<PendingSync>,
    /// Transactional ids whose markers are landing, in EndTxn order.
    completions: VecDeque<String>,
    /// Fsync threads started, and how many of them wait for work.
    sync_threads: usize,
    idle_sync_threads: usize,
    completer_started: bool,
    stopping: bool,
}

#[derive(Debug, Default)]
struct Shared {
    work: Mutex<Work>,
    /// Wakes the fsync threads: a sync queued, or stop.
    syncs_queued: Condvar,
    /// Wakes the completer: an id queued, or stop.
    completions_queued: Condvar,
}

/// The threads (see the module doc) and their queues.
#[derive(Debug)]
pub(super) struct TxnBackground {
    shared: Arc<Shared>,
    /// The broker, for the completer (never kept alive by it).
    broker: Weak<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl TxnBackground {
    pub(super) fn new(broker: Weak<Inner>) -> Self {
        TxnBackground {
            shared: Arc::default(),
            broker,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Starts `sync`'s fsync in the background (merged into the partition's
    /// fsync already queued, if there is one). Without a thread to run it
    /// (stopping, or none could start) it is left to its waiter.
    pub(super) fn start_sync(&self, sync: PendingSync) {
        let mut work = self.shared.work.lock();
        if work.stopping {
            return;
        }
        let queued = work
            .syncs
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.partition, &sync.partition));
        match queued {
            Some(q) => q.offset = q.offset.max(sync.offset),
            None => work.syncs.push_back(sync),
        }
        if work.idle_sync_threads == 0 && work.sync_threads < SYNC_THREADS {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("txn-sync".into())
                .spawn(move || sync_loop(&shared));
            match spawned {
                Ok(handle) => {
                    work.sync_threads += 1;
                    self.threads.lock().push(handle);
                }
                Err(e) => debug!(error = %e, "starting a transaction fsync thread failed"),
            }
        }
        drop(work);
        self.shared.syncs_queued.notify_one();
    }

    /// Completes `transactional_id`'s decision once its landing markers
    /// are durable, on the completer. Without it (stopping, or it could
    /// not start) the id's next request or the tick completes it.
    pub(super) fn complete(&self, transactional_id: &str) {
        let mut work = self.shared.work.lock();
        if work.stopping {
            return;
        }
        if !work.completer_started {
            let (shared, broker) = (Arc::clone(&self.shared), Weak::clone(&self.broker));
            let spawned = std::thread::Builder::new()
                .name("txn-complete".into())
                .spawn(move || complete_loop(&shared, &broker));
            match spawned {
                Ok(handle) => {
                    work.completer_started = true;
                    self.threads.lock().push(handle);
                }
                Err(e) => {
                    debug!(error = %e, "starting the transaction completer failed");
                    return;
                }
            }
        }
        // An id already queued is completed once: the completer reads its
        // state when it gets to it, whatever landed since.
        if work
            .completions
            .iter()
            .any(|queued| queued == transactional_id)
        {
            return;
        }
        work.completions.push_back(transactional_id.to_string());
        drop(work);
        self.shared.completions_queued.notify_one();
    }

    /// Stops the threads once the completer has completed what is queued,
    /// and waits for them (but for the calling thread, when the last
    /// handle of the broker is dropped on one of them). When the broker is
    /// dropped without `close`, the completer can no longer reach it and
    /// leaves what is queued: those transactions stay prepared in
    /// `__transaction_state` and the next open completes them.
    pub(super) fn stop(&self) {
        self.shared.work.lock().stopping = true;
        self.shared.syncs_queued.notify_all();
        self.shared.completions_queued.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for handle in threads {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// An fsync thread: runs the queued fsyncs until stopped.
fn sync_loop(shared: &Shared) {
    loop {
        let sync = {
            let mut work = shared.work.lock();
            loop {
                if let Some(sync) = work.syncs.pop_front() {
                    break sync;
                }
                if work.stopping {
                    return;
                }
                work.idle_sync_threads += 1;
                shared.syncs_queued.wait(&mut work);
                work.idle_sync_threads -= 1;
            }
        };
        if let Err(e) = sync.wait() {
            // The log is poisoned: its waiters report it.
            debug!(topic = sync.partition.topic(), partition = sync.partition.index(), error = %e, "a background transaction fsync failed");
        }
    }
}

/// The completer: completes the queued transactions until stopped, and
/// those queued when it is.
fn complete_loop(shared: &Shared, broker: &Weak<Inner>) {
    loop {
        let id = {
            let mut work = shared.work.lock();
            loop {
                if let Some(id) = work.completions.pop_front() {
                    break id;
                }
                if work.stopping {
                    return;
                }
                shared.completions_queued.wait(&mut work);
            }
        };
        let Some(inner) = broker.upgrade() else {
            return;
        };
        inner
            .transactions
            .complete_landed(inner.as_ref(), &id, wall_clock_ms());
    }
}
