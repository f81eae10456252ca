//! The embedded producer: records are batched per partition and appended
//! when a batch is full, when it is `linger` old, or on `flush`.
//!
//! With a transactional id it is a transactional producer, through the
//! broker's transaction coordinator as a network client would be:
//! InitProducerId at creation (fencing an older producer of the id), each
//! partition added to the transaction before its first batch, each batch
//! appended only while its partition is in the ongoing transaction (the
//! check Produce makes, KIP-890 part 1), a consumer group's offsets sent
//! into the transaction as AddOffsetsToTxn and TxnOffsetCommit do
//! ([`Producer::send_offsets_to_transaction`]), EndTxn at commit or abort.
//! The refusals are the coordinator's (PRODUCER_FENCED, INVALID_TXN_STATE,
//! ...) as [`BrokerError::Transaction`]; a fenced producer stays fenced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_records::{BatchBuilder, Compression, Header, NewRecord};

use super::ConsumerGroupMetadata;
use crate::broker::{wall_clock_ms, Broker};
use crate::error::{BrokerError, Result};
use crate::group::records::partition_for_group;
use crate::group::{CommitEntry, TxnCommitRequest};
use crate::names::CONSUMER_OFFSETS;
use crate::notify::Outcome;
use crate::partition::Acks;
use crate::partitioner::partition_for_key;
use crate::txn::TxnRefusal;

/// Producer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// What a delivery waits for. Default `Acks::All` (fsynced; fsyncs are
    /// shared between batches).
    pub acks: Acks,
    /// How long a batch may wait for more records (5 ms, librdkafka's default).
    pub linger: Duration,
    /// A batch is sent once it reaches this size (256 KiB).
    pub batch_bytes: usize,
    /// Codec for batches.
    pub compression: Compression,
    /// Idempotent: batches carry a producer id and sequence numbers
    /// (default true; implied by `transactional_id`).
    pub idempotent: bool,
    /// Kafka's `transactional.id`: records are sent in transactions
    /// ([`Producer::begin_transaction`]). Default none.
    pub transactional_id: Option<String>,
    /// Kafka's `transaction.timeout.ms`: the coordinator aborts (and fences)
    /// a transaction open longer (60 s; at most the broker's maximum).
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_bytes: 256 << 10,
            compression: Compression::None,
            idempotent: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerRecord<'a> {
    /// Topic (created with defaults if unknown and auto-creation is on).
    pub topic: &'a str,
    /// Partition; chosen by key hash, or spread, when `None`.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (`None`: a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [Header<'a>],
    /// Timestamp (ms since the epoch); now when `None`.
    pub timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A record with a value for `topic`.
    pub fn new(topic: &'a str, value: &'a [u8]) -> Self {
        ProducerRecord {
            topic,
            value: Some(value),
            ..ProducerRecord::default()
        }
    }

    /// With a key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// To a given partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// With headers.
    pub fn headers(mut self, headers: &'a [Header<'a>]) -> Self {
        self.headers = headers;
        self
    }

    /// With a timestamp.
    pub fn timestamp(mut self, ts: i64) -> Self {
        self.timestamp = Some(ts);
        self
    }
}

/// Where a record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp as stored.
    pub timestamp: i64,
}

/// The outcome of one send (errors are shared by a whole batch).
pub type DeliveryResult = std::result::Result<RecordMetadata, Arc<BrokerError>>;

/// What happened to a batch: its base offset and append time, or an error.
type BatchResult = std::result::Result<(i64, i64), Arc<BrokerError>>;

/// A pending send: wait for it, blocking or async. Records of one batch
/// share one outcome.
#[derive(Debug, Clone)]
pub struct Delivery {
    batch: Arc<Outcome<BatchResult>>,
    topic: Arc<str>,
    partition: i32,
    index: i64,
    timestamp: i64,
}

impl Delivery {
    fn result(&self, batch: &BatchResult) -> DeliveryResult {
        match batch {
            Ok((base, append_time)) => Ok(RecordMetadata {
                topic: self.topic.to_string(),
                partition: self.partition,
                offset: base + self.index,
                timestamp: if *append_time >= 0 {
                    *append_time
                } else {
                    self.timestamp
                },
            }),
            Err(e) => Err(Arc::clone(e)),
        }
    }

    /// Blocks until the record is stored (per the producer's acks) or failed.
    pub fn wait(self) -> DeliveryResult {
        loop {
            if let Some(r) = self.batch.wait(Duration::from_secs(3600)) {
                return self.result(r);
            }
        }
    }

    /// Waits asynchronously.
    pub async fn wait_async(self) -> DeliveryResult {
        self.batch.wait_async().await;
        match self.batch.get() {
            Some(r) => self.result(r),
            None => Err(Arc::new(BrokerError::Closed)),
        }
    }
}

#[derive(Debug)]
struct Queue {
    topic: Arc<str>,
    builder: Option<BatchBuilder>,
    outcome: Arc<Outcome<BatchResult>>,
    opened: Option<Instant>,
    next_sequence: i32,
}

/// Batch queues of one topic, by partition.
type TopicQueues = Vec<Arc<Mutex<Queue>>>;

/// A transactional producer's transaction, as the coordinator knows it.
#[derive(Debug, Default)]
struct TxnSession {
    /// Between `begin_transaction` and its commit or abort.
    active: bool,
    /// Partitions added to the coordinator's transaction.
    partitions: std::collections::HashSet<(String, i32)>,
    /// Fenced by a newer producer of the id (or a timeout's abort): every
    /// later call fails.
    fenced: bool,
}

/// The transactional side of a producer. Lock order: `session`, then a
/// queue, then `failed`; `send` holds `session` while it queues, commit and
/// abort while they flush and end, so no record slips past a marker.
#[derive(Debug)]
struct Txn {
    id: String,
    session: Mutex<TxnSession>,
    /// The first append of the transaction that failed: commit refuses.
    failed: Mutex<Option<Arc<BrokerError>>>,
}

#[derive(Debug)]
struct Shared {
    broker: Broker,
    config: ProducerConfig,
    producer_id: Option<(i64, i16)>,
    txn: Option<Txn>,
    queues: RwLock<HashMap<String, TopicQueues>>,
    closed: AtomicBool,
    wake: (Mutex<bool>, Condvar),
}

/// Sends records to a broker in the same process.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    linger: Option<JoinHandle<()>>,
}

impl Shared {
    /// The queue of (topic, partition); `partitions` is the topic's count.
    fn queue(&self, topic: &str, partition: i32, partitions: u32) -> Arc<Mutex<Queue>> {
        let p = partition as usize;
        if let Some(q) = self.queues.read().get(topic).and_then(|qs| qs.get(p)) {
            return Arc::clone(q);
        }
        let mut all = self.queues.write();
        let qs = all.entry(topic.to_string()).or_default();
        let name: Arc<str> = Arc::from(topic);
        while qs.len() < (partitions as usize).max(p + 1) {
            qs.push(Arc::new(Mutex::new(Queue {
                topic: Arc::clone(&name),
                builder: None,
                outcome: Outcome::new(),
                opened: None,
                next_sequence: 0,
            })));
        }
        Arc::clone(&qs[p])
    }

    /// Appends the queue's batch and settles its outcome.
    fn flush_queue(&self, partition: i32, q: &mut Queue) {
        let Some(mut builder) = q.builder.take() else {
            return;
        };
        q.opened = None;
        let outcome = std::mem::replace(&mut q.outcome, Outcome::new());
        let count = builder.record_count() as i32;
        if let Some((pid, epoch)) = self.producer_id {
            builder = builder
                .producer(pid, epoch, q.next_sequence)
                .transactional(self.txn.is_some());
        }
        let result = builder
            .build()
            .map_err(BrokerError::from)
            .and_then(|mut bytes| {
                let mut append = || {
                    self.broker
                        .produce_built(&q.topic, partition, &mut bytes, self.config.acks)
                };
                match (&self.txn, self.producer_id) {
                    // As Produce over the wire (KIP-890 part 1): appended
                    // only while the partition is in the ongoing
                    // transaction, under the transaction's lock.
                    (Some(txn), Some((pid, epoch))) => self.broker.transactions().verified(
                        &txn.id,
                        pid,
                        epoch,
                        (&q.topic, partition),
                        append,
                    ),
                    _ => append(),
                }
            });
        match result {
            Ok(info) => {
                if self.producer_id.is_some() {
                    q.next_sequence = q.next_sequence.wrapping_add(count) & i32::MAX;
                }
                outcome.set(Ok((info.base_offset as i64, info.log_append_time)));
            }
            Err(e) => {
                let e = Arc::new(self.fenced_if_stale(e));
                if let Some(txn) = &self.txn {
                    txn.failed.lock().get_or_insert_with(|| Arc::clone(&e));
                }
                outcome.set(Err(e))
            }
        }
    }

    /// A transactional append refused for an old epoch: the producer was
    /// fenced (what Kafka's clients make of INVALID_PRODUCER_EPOCH).
    fn fenced_if_stale(&self, e: BrokerError) -> BrokerError {
        match (&self.txn, e) {
            (Some(txn), BrokerError::InvalidProducerEpoch { .. }) => BrokerError::Transaction {
                transactional_id: txn.id.clone(),
                refusal: TxnRefusal::ProducerFenced,
            },
            (_, e) => e,
        }
    }

    fn flush_all(&self, only_older_than: Option<Duration>) {
        let queues: Vec<(i32, Arc<Mutex<Queue>>)> = self
            .queues
            .read()
            .values()
            .flat_map(|qs| {
                qs.iter()
                    .enumerate()
                    .map(|(p, q)| (p as i32, Arc::clone(q)))
            })
            .collect();
        for (partition, q) in queues {
            let mut q = q.lock();
            let due = match (only_older_than, q.opened) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(age), Some(opened)) => opened.elapsed() >= age,
            };
            if due {
                self.flush_queue(partition, &mut q);
            }
        }
    }
}

impl Shared {
    /// Drops every queued batch (an aborted transaction's), failing its
    /// deliveries.
    fn discard_all(&self, id: &str) {
        let queues: Vec<Arc<Mutex<Queue>>> =
            self.queues.read().values().flatten().cloned().collect();
        for q in queues {
            let mut q = q.lock();
            if q.builder.take().is_some() {
                q.opened = None;
                let outcome = std::mem::replace(&mut q.outcome, Outcome::new());
                outcome.set(Err(Arc::new(BrokerError::Transaction {
                    transactional_id: id.to_string(),
                    refusal: TxnRefusal::InvalidTxnState,
                })));
            }
        }
    }
}

fn txn_refused(txn: &Txn, refusal: TxnRefusal) -> BrokerError {
    BrokerError::Transaction {
        transactional_id: txn.id.clone(),
        refusal,
    }
}

/// Runs a coordinator request again while it answers
/// CONCURRENT_TRANSACTIONS (the previous transaction's markers are still
/// being completed by the broker's clock), as Kafka's clients retry it.
fn retry_concurrent<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut pause = Duration::from_millis(5);
    for _ in 0..RETRIES {
        match f() {
            Err(BrokerError::Transaction {
                refusal: TxnRefusal::ConcurrentTransactions,
                ..
            }) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            r => return r,
        }
    }
    f()
}

/// CONCURRENT_TRANSACTIONS retries before the refusal is returned (about
/// 10 s of pauses).
const RETRIES: usize = 55;

fn linger_loop(shared: Arc<Shared>) {
    let step = (shared.config.linger / 2).max(Duration::from_millis(1));
    loop {
        {
            let mut stop = shared.wake.0.lock();
            shared.wake.1.wait_for(&mut stop, step);
            if *stop {
                return;
            }
        }
        shared.flush_all(Some(shared.config.linger));
    }
}

impl Broker {
    /// A producer for this broker.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        let (producer_id, txn) = match &config.transactional_id {
            Some(id) => {
                let timeout =
                    i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
                let pid = retry_concurrent(|| {
                    self.transactions().init_producer_id(
                        self.txn_store(),
                        id,
                        timeout,
                        None,
                        wall_clock_ms(),
                    )
                })?;
                let txn = Txn {
                    id: id.clone(),
                    session: Mutex::new(TxnSession::default()),
                    failed: Mutex::new(None),
                };
                (Some(pid), Some(txn))
            }
            None if config.idempotent => (Some(self.init_producer_id()?), None),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            broker: self.clone(),
            config,
            producer_id,
            txn,
            queues: RwLock::new(HashMap::new()),
            closed: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
        });
        let linger = if shared.config.linger.is_zero() {
            None
        } else {
            let s = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("pubsub-producer".into())
                    .spawn(move || linger_loop(s))
                    .map_err(|e| BrokerError::io("spawn producer thread", self.dir(), e))?,
            )
        };
        Ok(Producer { shared, linger })
    }
}

impl Producer {
    /// The partition for `record` and the topic's partition count.
    fn choose_partition(&self, record: &ProducerRecord<'_>) -> Result<(i32, u32)> {
        let broker = &self.shared.broker;
        let count = broker.ensure_topic(record.topic)?;
        let p = match (record.partition, record.key) {
            (Some(p), _) if p >= 0 && (p as u32) < count => p,
            (Some(p), _) => return Err(BrokerError::unknown_topic(record.topic, Some(p))),
            (None, Some(key)) => partition_for_key(key, count) as i32,
            (None, None) => broker.spread(count) as i32,
        };
        Ok((p, count))
    }

    /// Queues a record; the returned [`Delivery`] completes when it is
    /// stored. Records to one partition are stored in the order sent. A
    /// transactional producer sends inside a transaction only (its first
    /// record to a partition adds the partition to the transaction).
    pub fn send(&self, record: &ProducerRecord<'_>) -> Result<Delivery> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let (partition, count) = self.choose_partition(record)?;
        let mut session = match &self.shared.txn {
            Some(txn) => {
                let mut session = txn.session.lock();
                self.check_session(txn, &session)?;
                if !session.active {
                    return Err(txn_refused(txn, TxnRefusal::InvalidTxnState));
                }
                let key = (record.topic.to_string(), partition);
                if !session.partitions.contains(&key) {
                    self.add_partition(txn, &mut session, key)?;
                }
                Some(session)
            }
            None => None,
        };
        let timestamp = record.timestamp.unwrap_or_else(wall_clock_ms);
        let queue = self.shared.queue(record.topic, partition, count);
        let mut q = queue.lock();
        let compression = self.shared.config.compression;
        let builder = q
            .builder
            .get_or_insert_with(|| BatchBuilder::new().compression(compression));
        builder.push(&NewRecord {
            timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        })?;
        let index = builder.record_count() as i64 - 1;
        let full = builder.uncompressed_len() >= self.shared.config.batch_bytes;
        let delivery = Delivery {
            batch: Arc::clone(&q.outcome),
            topic: Arc::clone(&q.topic),
            partition,
            index,
            timestamp,
        };
        q.opened.get_or_insert_with(Instant::now);
        if full || self.linger.is_none() {
            self.shared.flush_queue(partition, &mut q);
        }
        drop(q);
        session.take();
        Ok(delivery)
    }

    fn check_session(&self, txn: &Txn, session: &TxnSession) -> Result<()> {
        if session.fenced {
            return Err(txn_refused(txn, TxnRefusal::ProducerFenced));
        }
        Ok(())
    }

    /// AddPartitionsToTxn for one partition, durable at the coordinator.
    fn add_partition(&self, txn: &Txn, session: &mut TxnSession, key: (String, i32)) -> Result<()> {
        let broker = &self.shared.broker;
        let (pid, epoch) = self.transactional_producer(txn)?;
        let added = retry_concurrent(|| {
            broker.transactions().add_partitions(
                broker.txn_store(),
                &txn.id,
                pid,
                epoch,
                std::slice::from_ref(&key),
                wall_clock_ms(),
            )
        });
        self.note_fenced(session, &added);
        added?;
        session.partitions.insert(key);
        Ok(())
    }

    fn transactional_producer(&self, txn: &Txn) -> Result<(i64, i16)> {
        self.shared
            .producer_id
            .ok_or_else(|| txn_refused(txn, TxnRefusal::InvalidProducerIdMapping))
    }

    fn note_fenced<T>(&self, session: &mut TxnSession, r: &Result<T>) {
        if let Err(BrokerError::Transaction {
            refusal: TxnRefusal::ProducerFenced,
            ..
        }) = r
        {
            session.fenced = true;
        }
    }

    fn txn(&self) -> Result<&Txn> {
        self.shared
            .txn
            .as_ref()
            .ok_or_else(|| BrokerError::Transaction {
                transactional_id: String::new(),
                refusal: TxnRefusal::InvalidTxnState,
            })
    }

    /// Starts a transaction (Kafka's `beginTransaction`): nothing is sent to
    /// the coordinator until the first record. INVALID_TXN_STATE when one
    /// is open or the producer has no transactional id.
    pub fn begin_transaction(&self) -> Result<()> {
        let txn = self.txn()?;
        let mut session = txn.session.lock();
        self.check_session(txn, &session)?;
        if session.active {
            return Err(txn_refused(txn, TxnRefusal::InvalidTxnState));
        }
        session.active = true;
        session.partitions.clear();
        *txn.failed.lock() = None;
        Ok(())
    }

    /// Kafka's `sendOffsetsToTransaction`: commits `offsets` (topic,
    /// partition, next offset to consume) for the consumer group of
    /// `group` inside the open transaction. The group's `__consumer_offsets`
    /// partition joins the transaction (AddOffsetsToTxn), then the offsets
    /// are written there as the transaction's records (TxnOffsetCommit,
    /// under the same KIP-890 check as a record): they become the group's
    /// committed offsets when the transaction commits and are dropped if
    /// it aborts. The group coordinator checks `group`'s member and
    /// generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, ...; a
    /// [`ConsumerGroupMetadata::new`] outside the group's membership skips
    /// them). An unknown topic or partition is refused before anything is
    /// sent.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(&str, i32, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.txn()?;
        let mut session = txn.session.lock();
        self.check_session(txn, &session)?;
        if !session.active {
            return Err(txn_refused(txn, TxnRefusal::InvalidTxnState));
        }
        let broker = &self.shared.broker;
        crate::names::validate_group_id(&group.group_id)?;
        let mut entries = Vec::with_capacity(offsets.len());
        for &(topic, partition, offset) in offsets {
            let known = broker
                .partition_count(topic)
                .is_some_and(|n| partition >= 0 && (partition as u32) < n);
            if !known {
                return Err(BrokerError::unknown_topic(topic, Some(partition)));
            }
            entries.push(CommitEntry {
                topic: topic.to_string(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            });
        }
        let offsets_partition = (
            CONSUMER_OFFSETS.to_string(),
            partition_for_group(
                &group.group_id,
                broker.config().group.offsets_topic_partitions,
            ),
        );
        if !session.partitions.contains(&offsets_partition) {
            self.add_partition(txn, &mut session, offsets_partition.clone())?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let (pid, epoch) = self.transactional_producer(txn)?;
        let written = retry_concurrent(|| {
            broker.transactions().verified(
                &txn.id,
                pid,
                epoch,
                (offsets_partition.0.as_str(), offsets_partition.1),
                || {
                    broker.coordinator().txn_commit(
                        broker.offsets_store(),
                        TxnCommitRequest {
                            group_id: group.group_id.clone(),
                            producer_id: pid,
                            producer_epoch: epoch,
                            generation_id: group.generation_id,
                            member_id: group.member_id.clone(),
                            group_instance_id: group.group_instance_id.clone(),
                            entries: entries.clone(),
                        },
                        broker.now_ms(),
                        wall_clock_ms(),
                    )
                },
            )
        });
        let written = written.map_err(|e| self.shared.fenced_if_stale(e));
        self.note_fenced(&mut session, &written);
        written
    }

    /// Commits the open transaction: appends every queued record, then
    /// EndTxn. Returns once the commit is decided (durable); its markers
    /// are written before this returns when they can be (else the broker
    /// completes them). When a record of the transaction failed the commit
    /// is refused with that error and the transaction stays open, to be
    /// aborted.
    pub fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true)
    }

    /// Aborts the open transaction: records still queued are dropped (their
    /// deliveries fail with INVALID_TXN_STATE), then EndTxn; what was
    /// appended is never visible to read_committed consumers.
    pub fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false)
    }

    fn end_transaction(&self, commit: bool) -> Result<()> {
        let txn = self.txn()?;
        let mut session = txn.session.lock();
        self.check_session(txn, &session)?;
        if !session.active {
            return Err(txn_refused(txn, TxnRefusal::InvalidTxnState));
        }
        if commit {
            self.shared.flush_all(None);
            if let Some(e) = txn.failed.lock().clone() {
                if let BrokerError::Transaction {
                    refusal: TxnRefusal::ProducerFenced,
                    ..
                } = *e
                {
                    session.fenced = true;
                    return Err(txn_refused(txn, TxnRefusal::ProducerFenced));
                }
                return Err(BrokerError::Delivery(e));
            }
        } else {
            self.shared.discard_all(&txn.id);
        }
        if !session.partitions.is_empty() {
            let (pid, epoch) = self.transactional_producer(txn)?;
            let broker = &self.shared.broker;
            let ended = retry_concurrent(|| {
                broker.transactions().end_txn(
                    broker.txn_store(),
                    &txn.id,
                    pid,
                    epoch,
                    commit,
                    wall_clock_ms(),
                )
            });
            self.note_fenced(&mut session, &ended);
            ended?;
        }
        session.active = false;
        session.partitions.clear();
        *txn.failed.lock() = None;
        Ok(())
    }

    /// Sends one record and waits for it to be stored.
    pub fn send_and_wait(&self, record: &ProducerRecord<'_>) -> Result<RecordMetadata> {
        let delivery = self.send(record)?;
        self.shared.flush_all(None);
        delivery.wait().map_err(BrokerError::Delivery)
    }

    /// Appends every queued batch now.
    pub fn flush(&self) {
        self.shared.flush_all(None);
    }

    /// Flushes and stops the producer's linger thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.flush_all(None);
        *self.shared.wake.0.lock() = true;
        self.shared.wake.1.notify_all();
        if let Some(h) = self.linger.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
