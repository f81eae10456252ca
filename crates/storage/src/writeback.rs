//! Early writeback: as each 8 MiB of a segment fills, one process-wide
//! thread asks the kernel to start writing it to disk.
//!
//! Left alone, Linux lets dirty pages pile up and then throttles every
//! writer at once, which shows up as appends stalling for hundreds of
//! milliseconds. Starting writeback as data arrives keeps the disk busy
//! steadily and the page cache's dirty share small. The request itself can
//! block while the device queue is full, so appends hand it to this thread
//! instead of waiting; when the thread falls behind, requests are dropped
//! (they are hints: fsync still makes data durable).

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use crate::fs::FileHandle;

/// Requests waiting for the thread; more are dropped.
const QUEUE: usize = 256;

type Request = (Arc<dyn FileHandle>, u64, u64);

fn queue() -> Option<&'static SyncSender<Request>> {
    static QUEUE_TX: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    QUEUE_TX
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Request>(QUEUE);
            std::thread::Builder::new()
                .name("pubsub-writeback".into())
                .spawn(move || {
                    for (file, pos, len) in rx {
                        file.start_writeback(pos, len);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Asks for writeback of `len` bytes at `pos` of `file` to start soon.
pub(crate) fn request(file: &Arc<dyn FileHandle>, pos: u64, len: u64) {
    if let Some(tx) = queue() {
        match tx.try_send((Arc::clone(file), pos, len)) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
