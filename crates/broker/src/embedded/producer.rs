//! The embedded producer: records are batched per partition and appended
//! when a batch is full, when it is `linger` old, or on `flush`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use pubsub_records::{BatchBuilder, Compression, Header, NewRecord};

use crate::broker::{wall_clock_ms, Broker};
use crate::error::{BrokerError, Result};
use crate::notify::Outcome;
use crate::partition::Acks;
use crate::partitioner::partition_for_key;

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
    /// (default true).
    pub idempotent: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_bytes: 256 << 10,
            compression: Compression::None,
            idempotent: true,
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

#[derive(Debug)]
struct Shared {
    broker: Broker,
    config: ProducerConfig,
    producer_id: Option<(i64, i16)>,
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
            builder = builder.producer(pid, epoch, q.next_sequence);
        }
        let result = builder
            .build()
            .map_err(BrokerError::from)
            .and_then(|mut bytes| {
                self.broker
                    .produce_built(&q.topic, partition, &mut bytes, self.config.acks)
            });
        match result {
            Ok(info) => {
                if self.producer_id.is_some() {
                    q.next_sequence = q.next_sequence.wrapping_add(count) & i32::MAX;
                }
                outcome.set(Ok((info.base_offset as i64, info.log_append_time)));
            }
            Err(e) => outcome.set(Err(Arc::new(e))),
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
        let producer_id = if config.idempotent {
            Some(self.init_producer_id()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            broker: self.clone(),
            config,
            producer_id,
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
    /// stored. Records to one partition are stored in the order sent.
    pub fn send(&self, record: &ProducerRecord<'_>) -> Result<Delivery> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let (partition, count) = self.choose_partition(record)?;
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
        Ok(delivery)
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
