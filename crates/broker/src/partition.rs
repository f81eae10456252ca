//! One partition of a topic: its log, its leader epoch and epoch cache, its
//! idempotent and transactional producer state (open transactions, the last
//! stable offset, transaction markers and the aborted-transaction index),
//! and a notifier for waiters (long-polling fetches and consumers).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use pubsub_records::{Batch, BatchHeader, BatchMut, ControlRecord, ControlType, TimestampType};
use pubsub_storage::{AbortedTxn, FileRange, FlushPolicy, Log, RecoveryReport};
use tracing::warn;

use crate::config::TopicConfig;
use crate::error::{BrokerError, Result};
use crate::leader_epoch::{epoch_after_opens, EpochEntry, LeaderEpochs, EPOCH_BUMP_AT_OPEN};
use crate::metadata::{
    self, PartitionMeta, ProducerSnapshot, KIND_LEADER_EPOCHS, KIND_PARTITION, KIND_PRODUCERS,
    LEADER_EPOCHS_FILE, PARTITION_FILE, PRODUCERS_FILE, PRODUCER_SNAPSHOT_VERSION,
};
use crate::notify::{Notifier, Wakeup};
use crate::producer_state::{BatchMeta, EndedTxn, ProducerStates, SequenceCheck};

/// How much durability a produce waits for (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: nothing is waited for (the caller does not even answer).
    None,
    /// `acks=1`: written to the log (survives a process crash).
    Leader,
    /// `acks=all`: fsynced (survives power loss); fsyncs are shared.
    #[default]
    All,
}

impl Acks {
    /// From Kafka's numeric `acks` (0, 1, -1).
    pub fn from_kafka(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// One batch of an append request, as checked before the lock.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: usize,
    len: usize,
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    /// Part of a transaction.
    transactional: bool,
}

/// The fsync an `acks=all` append still owes
/// ([`Broker::produce_then_sync`](crate::Broker::produce_then_sync)).
#[derive(Debug, Clone)]
pub struct PendingSync {
    pub(crate) partition: Arc<Partition>,
    pub(crate) offset: u64,
}

impl PendingSync {
    /// Blocks until the appended records are fsynced (one fsync serves
    /// every waiter of the partition at that moment).
    pub fn wait(&self) -> Result<()> {
        self.partition.wait_durable(self.offset)
    }
}

/// What a produce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: u64,
    /// The batch was a retry of one already appended (nothing was written).
    pub duplicate: bool,
}

/// What went in and out of a partition since it was opened (for
/// monitoring): counted on every append and read, with relaxed atomics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionTraffic {
    /// Records appended (retried duplicates are not appended, so not counted).
    pub messages_in: u64,
    /// Bytes of record batches appended.
    pub bytes_in: u64,
    /// Records in the batches read (by fetches and embedded consumers;
    /// whole batches, so a read from the middle of a batch counts all of it).
    pub messages_out: u64,
    /// Bytes of record batches read.
    pub bytes_out: u64,
}

#[derive(Debug, Default)]
struct TrafficCounters {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// One partition.
#[derive(Debug)]
pub struct Partition {
    topic: Arc<str>,
    index: i32,
    log: Log,
    /// The epoch stamped into every batch appended while this broker has
    /// the partition open.
    leader_epoch: i32,
    /// Where each epoch started (fixed once open: only opening starts one).
    epochs: LeaderEpochs,
    producers: Mutex<ProducerStates>,
    /// Whether a transaction may be open here: set (under `producers`)
    /// before a transactional batch is appended, cleared (under it) when a
    /// marker leaves none open. Lets [`Partition::last_stable_offset`]
    /// answer without the producer lock when no transaction is open.
    txn_open: AtomicBool,
    notifier: Notifier,
    config: RwLock<Arc<TopicConfig>>,
    traffic: TrafficCounters,
    /// The log end offset the producer snapshot on disk was taken at
    /// (`u64::MAX`: none known).
    snapshot_at: AtomicU64,
    /// The epoch cache file says what `epochs` says.
    epochs_on_disk: AtomicBool,
    /// Serialises writing the epoch cache file.
    epochs_write: Mutex<()>,
}

impl Partition {
    /// Opens (creating) the partition's directory and log; `previous` is
    /// what its partition file said before (the caller read it).
    pub(crate) fn open(
        dir: PathBuf,
        meta: PartitionMeta,
        previous: Option<PartitionMeta>,
        config: Arc<TopicConfig>,
        flush: FlushPolicy,
    ) -> Result<(Partition, RecoveryReport)> {
        let (log, report) = Log::open(&dir, config.log_config(flush))
            .map_err(|e| BrokerError::storage(&meta.topic, meta.partition, e))?;
        let meta_path = dir.join(PARTITION_FILE);
        let previous = previous.filter(|old| old.same_partition(&meta));
        let storage = |e| BrokerError::storage(&meta.topic, meta.partition, e);
        let mut epochs = load_epochs(&dir, &log).map_err(storage)?;
        // Recovery may have cut the tail: epochs that started in it are gone.
        epochs.truncate_from_end(log.log_end_offset());
        // A new partition starts at epoch 0; every later open raises it by 2,
        // as Kafka's controller does when the only replica goes and comes
        // back. The epoch is derived from the broker generation (made
        // durable by the broker before this open), so nothing is written
        // here: see `PartitionMeta::generation` and docs/FORMAT.md.
        let generation = meta.generation;
        let derived = previous
            .as_ref()
            .filter(|p| p.generation > 0 && p.generation <= generation)
            .map(|p| {
                let opens = generation - p.generation;
                (epoch_after_opens(p.leader_epoch, opens), opens)
            });
        let leader_epoch = match (derived, epochs.latest()) {
            (Some((e, opens)), latest)
                if latest.is_none_or(|l| l < e || (l == e && opens == 0)) =>
            {
                e
            }
            _ => {
                // A new partition, a file from before generations, or a
                // cache ahead of it: raise past everything known and record
                // the epoch with this generation (the epoch is durable
                // before any batch carries it).
                let known = previous
                    .as_ref()
                    .map(|p| p.leader_epoch)
                    .into_iter()
                    .chain(epochs.latest())
                    .max();
                let e = match known {
                    None => 0,
                    Some(e) => e.saturating_add(EPOCH_BUMP_AT_OPEN),
                };
                let meta = PartitionMeta {
                    leader_epoch: e,
                    ..meta.clone()
                };
                metadata::write(&meta_path, KIND_PARTITION, &meta)?;
                e
            }
        };
        // The cache file learns the new epoch before the first batch
        // carries it (`persist_epochs`), not here.
        let before = epochs.clone();
        epochs.assign(leader_epoch, log.log_end_offset());
        let epochs_on_disk = before == epochs;
        // Producer state: from the snapshot if it is still valid, then the
        // batches after it; otherwise from the whole log.
        let snapshot: Option<ProducerSnapshot> =
            metadata::read(&dir.join(PRODUCERS_FILE), KIND_PRODUCERS).unwrap_or_else(|e| {
                warn!(error = %e, "ignoring an unreadable producer snapshot");
                None
            });
        let (states, snapshot_at) = load_producers(&log, snapshot).map_err(storage)?;
        Ok((
            Partition {
                topic: meta.topic.into(),
                index: meta.partition,
                log,
                leader_epoch,
                epochs,
                txn_open: AtomicBool::new(states.first_open_txn().is_some()),
                producers: Mutex::new(states),
                notifier: Notifier::default(),
                config: RwLock::new(config),
                traffic: TrafficCounters::default(),
                snapshot_at: AtomicU64::new(snapshot_at),
                epochs_on_disk: AtomicBool::new(epochs_on_disk),
                epochs_write: Mutex::new(()),
            },
            report,
        ))
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The partition's log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Where each leader epoch started.
    pub fn epochs(&self) -> &LeaderEpochs {
        &self.epochs
    }

    /// OffsetForLeaderEpoch: the end offset of `epoch` and the epoch it
    /// belongs to (`(-1, -1)` when unknown).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(
            epoch,
            self.log.log_start_offset(),
            self.log.log_end_offset(),
        )
    }

    /// The epoch of the log start offset, if known (ListOffsets earliest).
    pub fn earliest_epoch(&self) -> Option<i32> {
        self.epochs.earliest(self.log.log_start_offset())
    }

    /// Records and bytes appended and read since the partition was opened.
    pub fn traffic(&self) -> PartitionTraffic {
        let t = &self.traffic;
        PartitionTraffic {
            messages_in: t.messages_in.load(Ordering::Relaxed),
            bytes_in: t.bytes_in.load(Ordering::Relaxed),
            messages_out: t.messages_out.load(Ordering::Relaxed),
            bytes_out: t.bytes_out.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(&self.config.read())
    }

    pub(crate) fn set_config(&self, config: Arc<TopicConfig>) {
        *self.config.write() = config;
    }

    /// Wakes `w` whenever records are appended.
    pub fn subscribe(&self, w: &Arc<Wakeup>) {
        self.notifier.subscribe(w);
    }

    /// Wakes `w` whenever records are appended, reporting `tag` through
    /// [`Wakeup::take_tags`].
    pub fn subscribe_tagged(&self, w: &Arc<Wakeup>, tag: u32) {
        self.notifier.subscribe_tagged(w, tag);
    }

    /// Stops waking `w`.
    pub fn unsubscribe(&self, w: &Arc<Wakeup>) {
        self.notifier.unsubscribe(w);
    }

    /// Wakes every waiter (the partition is going away).
    pub(crate) fn notify_gone(&self) {
        self.notifier.notify();
    }

    fn storage_err(&self, e: pubsub_storage::StorageError) -> BrokerError {
        BrokerError::storage(&self.topic, self.index, e)
    }

    /// Appends the batches in `records` (as a producer sent them) and waits
    /// for `acks`. Checks size, keys on compacted topics, idempotent
    /// sequences; applies LogAppendTime. `trusted` skips the CRC check, for
    /// batches built in this process.
    pub fn append(
        &self,
        records: &mut [u8],
        acks: Acks,
        now_ms: i64,
        trusted: bool,
    ) -> Result<AppendResult> {
        let config = self.config();
        // Split into batches and check what does not need the lock: size,
        // CRC (once, before anything is decoded or rewritten), keys.
        let mut spans = Vec::new();
        let mut at = 0;
        while at < records.len() {
            let batch = Batch::parse(&records[at..])?;
            if batch.len() > config.max_message_bytes {
                return Err(BrokerError::MessageTooLarge {
                    size: batch.len(),
                    max: config.max_message_bytes,
                });
            }
            if !trusted {
                batch.validate_crc()?;
            }
            if batch.is_control() {
                // Kafka's answer (INVALID_RECORD): markers come from the
                // transaction coordinator only (`append_txn_marker`).
                return Err(BrokerError::InvalidRecord(format!(
                    "Clients are not allowed to write control records in topic partition {}-{}",
                    self.topic, self.index
                )));
            }
            if config.cleanup_policy.compacts() {
                let set = batch.records(64 << 20)?;
                for r in set.iter() {
                    if r?.key.is_none() {
                        return Err(BrokerError::InvalidRecord(
                            "compacted topics need a key on every record".into(),
                        ));
                    }
                }
            }
            spans.push(Span {
                at,
                len: batch.len(),
                producer_id: batch.producer_id(),
                epoch: batch.producer_epoch(),
                first_seq: batch.base_sequence(),
                last_seq: batch.last_sequence(),
                transactional: batch.is_transactional(),
            });
            at += batch.len();
        }
        // The broker owns partitionLeaderEpoch (outside the CRC), as Kafka's
        // leader does: whatever the producer sent becomes the current epoch.
        for span in &spans {
            BatchMut::parse(&mut records[span.at..])?.set_partition_leader_epoch(self.leader_epoch);
        }
        let log_append_time = match config.timestamp_type {
            TimestampType::LogAppendTime => {
                for span in &spans {
                    BatchMut::parse(&mut records[span.at..])?.set_log_append_time(now_ms);
                }
                now_ms
            }
            TimestampType::CreateTime => -1,
        };
        // Every batch is checked by now: storage need not check CRCs again.
        // (An empty `records` is refused there.)
        let idempotent = spans.iter().any(|s| s.producer_id >= 0);
        let (base, last, duplicate) = if idempotent {
            self.append_idempotent(records, &spans)?
        } else {
            let info = self.raw_append(records)?;
            (info.base_offset, info.last_offset, false)
        };
        // A duplicate is answered with the batch's largest timestamp as its
        // append time, as Kafka answers (the resent batch is the original,
        // so its timestamps are the original's).
        let log_append_time = match spans.last() {
            Some(span) if duplicate => Batch::parse(&records[span.at..])?.max_timestamp(),
            _ => log_append_time,
        };
        if !duplicate {
            self.notifier.notify();
        }
        if acks == Acks::All {
            self.wait_durable(last)?;
        }
        Ok(AppendResult {
            base_offset: base,
            last_offset: last,
            log_append_time,
            log_start_offset: self.log.log_start_offset(),
            duplicate,
        })
    }

    /// Waits until every offset up to `offset` is fsynced, sharing the
    /// fsync with every other waiter (group commit).
    fn wait_durable(&self, offset: u64) -> Result<()> {
        self.log
            .wait_durable(offset)
            .map_err(|e| self.storage_err(e))
    }

    /// Writes the epoch cache file if it lacks the current epoch: before
    /// the first batch of an epoch is appended, so the file always knows
    /// every epoch in the log (once per partition and broker start). The
    /// directory fsync that makes the new file durable also covers the
    /// removal of the clean-shutdown marker the first append owes
    /// ([`Log::sync_dir_unmarking`]): 2 fsyncs before that append, not 3.
    fn persist_epochs(&self) -> Result<()> {
        if self.epochs_on_disk.load(Ordering::Acquire) {
            return Ok(());
        }
        let _w = self.epochs_write.lock();
        if self.epochs_on_disk.load(Ordering::Acquire) {
            return Ok(());
        }
        let written = metadata::write_unsynced_dir(
            &self.log.dir().join(LEADER_EPOCHS_FILE),
            KIND_LEADER_EPOCHS,
            &self.epochs.entries(),
        )
        .and_then(|()| {
            self.log
                .sync_dir_unmarking()
                .map_err(|e| self.storage_err(e))
        });
        if let Err(e) = written {
            // Written before the first batch of an epoch: a full disk here
            // is the partition's own, as for the batch.
            if e.is_out_of_space() {
                self.log.note_out_of_space(&e);
            }
            return Err(e);
        }
        self.epochs_on_disk.store(true, Ordering::Release);
        Ok(())
    }

    fn raw_append(&self, records: &mut [u8]) -> Result<pubsub_storage::AppendInfo> {
        self.persist_epochs()?;
        let info = self
            .log
            .append_trusted(records)
            .map_err(|e| self.storage_err(e))?;
        let t = &self.traffic;
        t.messages_in
            .fetch_add(info.last_offset - info.base_offset + 1, Ordering::Relaxed);
        t.bytes_in.fetch_add(info.bytes as u64, Ordering::Relaxed);
        Ok(info)
    }

    /// Idempotent batches, one at a time under the producer-state lock so the
    /// check, the append and the bookkeeping cannot interleave.
    fn append_idempotent(&self, records: &mut [u8], spans: &[Span]) -> Result<(u64, u64, bool)> {
        let mut states = self.producers.lock();
        let mut first: Option<u64> = None;
        let mut last = 0;
        let mut all_duplicates = true;
        for &Span {
            at,
            len,
            producer_id: pid,
            epoch,
            first_seq,
            last_seq,
            transactional,
        } in spans
        {
            let bytes = &mut records[at..at + len];
            if pid < 0 {
                let info = self.raw_append(bytes)?;
                first.get_or_insert(info.base_offset);
                last = info.last_offset;
                all_duplicates = false;
                continue;
            }
            match states.check(pid, epoch, first_seq, last_seq)? {
                SequenceCheck::Duplicate(meta) => {
                    first.get_or_insert(meta.base_offset);
                    last = meta.last_offset;
                }
                SequenceCheck::Append => {
                    let timestamp = BatchHeader::parse(bytes)?.max_timestamp;
                    if transactional {
                        // Before the append publishes the new log end
                        // (a Release store): see `last_stable_offset`.
                        self.txn_open.store(true, Ordering::Relaxed);
                    }
                    let info = self.raw_append(bytes)?;
                    states.record(
                        pid,
                        epoch,
                        BatchMeta {
                            first_seq,
                            last_seq,
                            base_offset: info.base_offset,
                            last_offset: info.last_offset,
                            timestamp,
                        },
                    );
                    if transactional {
                        states.begin_txn(pid, info.base_offset);
                    }
                    first.get_or_insert(info.base_offset);
                    last = info.last_offset;
                    all_duplicates = false;
                }
            }
        }
        Ok((first.unwrap_or(last), last, all_duplicates))
    }

    /// The sequence the next batch of `producer_id` at `epoch` starts at
    /// (the group coordinator's transactional offset commits).
    pub(crate) fn next_sequence(&self, producer_id: i64, epoch: i16) -> i32 {
        self.producers.lock().next_sequence(producer_id, epoch)
    }

    /// Ends a transaction of `producer_id` here: appends its COMMIT or
    /// ABORT marker, waits until it is fsynced, and returns its offset. A
    /// marker whose epoch is older than the producer's is refused
    /// ([`BrokerError::InvalidProducerEpoch`]); a newer one becomes the
    /// producer's epoch. An abort is recorded in the aborted-transaction
    /// index (durably, before the marker is acknowledged).
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlRecord,
        now_ms: i64,
    ) -> Result<u64> {
        let offset =
            self.append_txn_marker_unsynced(producer_id, producer_epoch, marker, now_ms)?;
        self.wait_durable(offset)?;
        Ok(offset)
    }

    /// [`Partition::append_txn_marker`] without the wait for the fsync (the
    /// caller waits, [`PendingSync`], so the markers of one transaction
    /// are appended everywhere before their fsyncs run, in parallel). The
    /// aborted-transaction index entry is durable already.
    pub(crate) fn append_txn_marker_unsynced(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlRecord,
        now_ms: i64,
    ) -> Result<u64> {
        let mut bytes = pubsub_records::control_batch(marker, producer_id, producer_epoch, now_ms)?;
        BatchMut::parse(&mut bytes)?.set_partition_leader_epoch(self.leader_epoch);
        let offset = {
            let mut states = self.producers.lock();
            states.check_marker(producer_id, producer_epoch)?;
            let info = self.raw_append(&mut bytes)?;
            let ended = states.end_txn(producer_id, producer_epoch, info.base_offset, now_ms);
            if marker.kind == ControlType::Abort {
                self.log
                    .append_aborted_txn(aborted(&ended))
                    .map_err(|e| self.storage_err(e))?;
            }
            self.txn_open
                .store(states.first_open_txn().is_some(), Ordering::Release);
            info.base_offset
        };
        self.notifier.notify();
        crate::crash_point::after_marker_appended();
        Ok(offset)
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, or the high watermark when none is open.
    /// `read_committed` readers see only offsets below it.
    pub fn last_stable_offset(&self) -> u64 {
        // The log end first: a transactional append sets `txn_open` before
        // its Release store of the end, so an end that includes it comes
        // with the flag set (the common case, no transaction, takes no lock).
        let hw = self.log.log_end_offset();
        if !self.txn_open.load(Ordering::Acquire) {
            return hw;
        }
        let states = self.producers.lock();
        let hw = self.log.log_end_offset();
        states.first_open_txn().map_or(hw, |first| first.min(hw))
    }

    /// The open transactions here: (producer id, first offset), oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, u64)> {
        self.producers.lock().open_txns()
    }

    /// The aborted transactions whose records may lie in `[from, upper)`
    /// (what a `read_committed` fetch of that range answers).
    pub fn aborted_transactions(&self, from: u64, upper: u64) -> Result<Vec<AbortedTxn>> {
        self.log
            .aborted_txns(from, upper)
            .map_err(|e| self.storage_err(e))
    }

    /// [`Partition::aborted_transactions`] when it needs no disk read
    /// (every index it searches was read before); `None` otherwise.
    pub fn aborted_transactions_in_memory(&self, from: u64, upper: u64) -> Option<Vec<AbortedTxn>> {
        self.log.aborted_txns_in_memory(from, upper)
    }

    /// Reads whole batches from `offset` into `out`; returns (log start,
    /// high watermark).
    pub fn read(&self, offset: u64, max_bytes: usize, out: &mut Vec<u8>) -> Result<(u64, u64)> {
        self.read_below(offset, max_bytes, u64::MAX, out)
    }

    /// [`Partition::read`] of the batches below `upper` only (the last
    /// stable offset, for `read_committed`).
    pub fn read_below(
        &self,
        offset: u64,
        max_bytes: usize,
        upper: u64,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        let offsets = self
            .log
            .read_into_below(offset, max_bytes, upper, out)
            .map_err(|e| self.storage_err(e))?;
        if !out.is_empty() {
            // Only the headers are looked at: a few loads per batch.
            let mut records = 0u64;
            let mut at = 0;
            while let Some(Ok(h)) = out.get(at..).map(BatchHeader::parse) {
                records += h.record_count.max(0) as u64;
                at += h.len;
            }
            let t = &self.traffic;
            t.messages_out.fetch_add(records, Ordering::Relaxed);
            t.bytes_out.fetch_add(out.len() as u64, Ordering::Relaxed);
        }
        Ok(offsets)
    }

    /// As [`Partition::read`], without copying: the whole batches as a
    /// range of their segment file (for `sendfile`), `None` if there are
    /// none at or after `offset`. Returns (log start, high watermark) too.
    /// Messages out are counted as the offsets the range spans (its batches
    /// are not read; equal to the record count where compaction left no
    /// gaps). `min_one`: the first batch comes whole past `max_bytes` (see
    /// [`Log::read_range`]).
    pub fn read_range(
        &self,
        offset: u64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(u64, u64, Option<FileRange>)> {
        self.read_range_below(offset, max_bytes, min_one, u64::MAX)
    }

    /// [`Partition::read_range`] of the batches below `upper` only (the
    /// last stable offset, for `read_committed`).
    pub fn read_range_below(
        &self,
        offset: u64,
        max_bytes: usize,
        min_one: bool,
        upper: u64,
    ) -> Result<(u64, u64, Option<FileRange>)> {
        let (start, end, range) = self
            .log
            .read_range_below(offset, max_bytes, min_one, upper)
            .map_err(|e| self.storage_err(e))?;
        if let Some(r) = &range {
            let t = &self.traffic;
            t.messages_out.fetch_add(r.offsets(), Ordering::Relaxed);
            t.bytes_out.fetch_add(r.len(), Ordering::Relaxed);
        }
        Ok((start, end, range))
    }

    /// Forgets the producers idle here since before `cutoff_ms` (see
    /// [`crate::producer_state`]); returns how many.
    pub(crate) fn expire_producers(&self, cutoff_ms: i64) -> usize {
        self.producers.lock().expire(cutoff_ms)
    }

    /// The idempotent producers with state here whose last batch is still
    /// in the log (DescribeProducers).
    pub fn active_producers(&self) -> Vec<crate::producer_state::ActiveProducer> {
        let start = self.log.log_start_offset();
        let mut active = self.producers.lock().active();
        active.retain(|p| p.last_offset >= start);
        active
    }

    /// Saves the producer state so the next open need not replay the log.
    /// Nothing is written when the last snapshot (or the one read at open)
    /// was taken at the log end offset: the state cannot have changed since.
    pub(crate) fn snapshot_producers(&self) -> Result<()> {
        let states = self.producers.lock();
        let offset = self.log.log_end_offset();
        if self.snapshot_at.load(Ordering::Acquire) == offset {
            return Ok(());
        }
        if self.log.poisoned().is_some() {
            // A failed write may have left a marker without its index
            // entry: the next open replays from the last good snapshot.
            return Ok(());
        }
        let txn_index = self
            .log
            .aborted_txn_counts()
            .map_err(|e| self.storage_err(e))?;
        let snapshot = ProducerSnapshot {
            version: PRODUCER_SNAPSHOT_VERSION,
            offset,
            states: states.clone(),
            txn_index,
        };
        metadata::write(
            &self.log.dir().join(PRODUCERS_FILE),
            KIND_PRODUCERS,
            &snapshot,
        )?;
        self.snapshot_at.store(offset, Ordering::Release);
        Ok(())
    }

    /// Something was appended since the last checkpoint (recovery point or
    /// producer snapshot).
    pub(crate) fn needs_checkpoint(&self) -> bool {
        let end = self.log.log_end_offset();
        // A log out of space probes for it at every round.
        self.log.recovery_point() != end
            || self.snapshot_at.load(Ordering::Acquire) != end
            || self.log.out_of_space().is_some()
    }

    /// Periodic durability work: flush if the policy says so, then record
    /// the recovery point and the producer state.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.log.checkpoint().map_err(|e| self.storage_err(e))?;
        self.snapshot_producers()
    }

    /// The first half of a clean close: the producer state saved and the
    /// log flushed (under deferred syncs: written, for the caller's
    /// filesystem sync).
    pub(crate) fn prepare_close(&self) -> Result<()> {
        self.snapshot_producers()?;
        self.log.flush().map_err(|e| self.storage_err(e))
    }

    /// Closes the log cleanly (after [`Partition::prepare_close`] and a
    /// filesystem sync, when syncs are deferred).
    pub(crate) fn close(&self) -> Result<()> {
        self.snapshot_producers()?;
        self.log.close().map_err(|e| self.storage_err(e))
    }
}

/// The aborted-index entry of an ended transaction.
fn aborted(t: &EndedTxn) -> AbortedTxn {
    AbortedTxn {
        producer_id: t.producer_id,
        first_offset: t.first_offset,
        last_offset: t.marker_offset,
        last_stable_offset: t.last_stable_offset,
    }
}

/// Producer state at open: from the snapshot if it is still valid and the
/// aborted-transaction index it describes is intact, then the batches
/// after it; otherwise from the whole log. The index entries of the markers
/// replayed are rebuilt (after an unclean shutdown the index may lack the
/// last ones, or hold entries of markers recovery cut off). Returns the
/// state and the offset the snapshot on disk was taken at, if it is the
/// log end offset (`u64::MAX` otherwise).
fn load_producers(
    log: &Log,
    snapshot: Option<ProducerSnapshot>,
) -> pubsub_storage::Result<(ProducerStates, u64)> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let usable = match snapshot {
        Some(s) if s.version > PRODUCER_SNAPSHOT_VERSION => {
            warn!(
                version = s.version,
                "ignoring a producer snapshot of a newer version"
            );
            None
        }
        Some(s) if s.offset <= end && s.offset >= start => {
            let mismatched = log.aborted_txns_mismatched(&s.txn_index, s.offset)?;
            for segment in &mismatched {
                warn!(
                    segment,
                    "rebuilding the aborted-transaction index from the log"
                );
            }
            let intact = mismatched.is_empty();
            // Version 1 snapshots knew no index: trust files that exist.
            intact.then_some(s)
        }
        _ => None,
    };
    let mut snapshot_at = u64::MAX;
    let (mut states, from) = match usable {
        Some(s) => {
            if s.offset == end {
                snapshot_at = s.offset;
            }
            (s.states, s.offset)
        }
        None => (ProducerStates::default(), start),
    };
    let mut ended = Vec::new();
    log.for_each_batch_header(from, |h| {
        if let Some(t) = states.replay(h) {
            ended.push(t);
        }
    })?;
    // Which markers were aborts: their one control record says.
    let mut aborts = Vec::new();
    let mut buf = Vec::new();
    for t in &ended {
        log.read_into(t.marker_offset, 1, &mut buf)?;
        let kind = Batch::parse(&buf).ok().and_then(|b| {
            let records = b.records(1 << 20).ok()?;
            let r = records.iter().next()?.ok()?;
            ControlRecord::parse(r.key, r.value).ok()
        });
        match kind {
            Some(m) if m.kind == ControlType::Abort => aborts.push(aborted(t)),
            Some(_) => {}
            None => warn!(
                offset = t.marker_offset,
                "ignoring an unreadable transaction marker"
            ),
        }
    }
    // Unless the snapshot was taken at the log end (then nothing was
    // replayed and its index is intact).
    if snapshot_at == u64::MAX {
        log.reset_aborted_txns(from, &aborts)?;
    }
    Ok((states, snapshot_at))
}

/// The leader epoch [`Partition::open`] gives the partition in `dir` (of
/// topic id `topic_id`) at broker generation `generation`, told without
/// opening its log, so without recovering it after a kill: `None` when its
/// files do not settle it (then only the open can tell).
///
/// The open derives the epoch from the partition file (`leader_epoch + 2 *
/// opens since its generation`) whenever that file has a generation in
/// `1..generation` and the epoch cache holds no epoch at or above the
/// derived one. A kill cannot make either stale here: the partition file
/// is replaced atomically and made durable before any batch carries an
/// epoch it derives, and every epoch in the cache or in a batch header is
/// one the broker gave the partition in an earlier generation, which the
/// derivation exceeds by 2 per open since. Recovery only truncates the
/// cache (epochs starting past the recovered end), so its latest epoch can
/// only fall. The cache is still read, and an epoch at or above the
/// derived one (a file this rule did not write) leaves the answer to the
/// open; so does a missing or unreadable partition file, another topic id,
/// or a generation outside the range (a file from before generations, or
/// one rewritten in this generation). docs/FORMAT.md 9.3 and 9.5.
pub(crate) fn epoch_without_recovery(
    dir: &std::path::Path,
    topic_id: uuid::Uuid,
    generation: u64,
) -> Option<i32> {
    let meta =
        metadata::read::<PartitionMeta>(&dir.join(PARTITION_FILE), KIND_PARTITION).ok()??;
    if meta.topic_id != topic_id || meta.generation == 0 || meta.generation >= generation {
        return None;
    }
    let derived = epoch_after_opens(meta.leader_epoch, generation - meta.generation);
    let cached = match metadata::read::<Vec<EpochEntry>>(
        &dir.join(LEADER_EPOCHS_FILE),
        KIND_LEADER_EPOCHS,
    ) {
        // Absent: no batch was written since the partition was created, or
        // the cache is rebuilt from batch headers (earlier epochs only).
        Ok(None) => None,
        Ok(Some(entries)) => LeaderEpochs::from_entries(entries)?.latest(),
        Err(_) => return None,
    };
    cached.is_none_or(|l| l < derived).then_some(derived)
}

/// The epoch cache from its file, or rebuilt from the log's batch headers
/// when the file is missing or cannot be trusted (it is derived data).
fn load_epochs(dir: &std::path::Path, log: &Log) -> pubsub_storage::Result<LeaderEpochs> {
    let path = dir.join(LEADER_EPOCHS_FILE);
    let loaded = match metadata::read::<Vec<EpochEntry>>(&path, KIND_LEADER_EPOCHS) {
        Ok(Some(entries)) => LeaderEpochs::from_entries(entries),
        Ok(None) => None,
        Err(e) => {
            warn!(error = %e, "rebuilding the leader epoch cache from the log");
            None
        }
    };
    if let Some(epochs) = loaded {
        return Ok(epochs);
    }
    let mut epochs = LeaderEpochs::default();
    log.for_each_batch_header(log.log_start_offset(), |h| {
        epochs.assign(h.partition_leader_epoch, h.base_offset.max(0) as u64);
    })?;
    Ok(epochs)
}
