//! The embedded producer: records are batched per partition and appended
//! when a batch is full, when it is `linger` old, or on `flush`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pubsub_records::{BatchBuilder, Compression, Header, NewRecord};

use crate::broker::{wall_clock_ms, Broker};
use crate::error::{BrokerError, Result};
use crate::notify::Promise;
use crate::partition::Acks;
use crate::partitioner::partition_for_key;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

/// A pending send: wait for it, blocking or async.
#[derive(Debug, Clone)]
pub struct Delivery {
    promise: Arc<Promise<DeliveryResult>>,
}

impl Delivery {
    /// Blocks until the record is stored (per the producer's acks) or failed.
    pub fn wait(self) -> DeliveryResult {
        loop {
            if let Some(r) = self.promise.wait(Duration::from_secs(3600)) {
                return r;
            }
        }
    }

    /// Waits asynchronously.
    pub async fn wait_async(self) -> DeliveryResult {
        self.promise.wait_async().await
    }
}

#[derive(Debug, Default)]
struct Queue {
    builder: Option<BatchBuilder>,
    waiting: Vec<(Arc<Promise<DeliveryResult>>, i64)>,
    opened: Option<Instant>,
    next_sequence: i32,
}

/// One batch queue per (topic, partition).
type Queues = HashMap<(String, i32), Arc<Mutex<Queue>>>;

#[derive(Debug)]
struct Shared {
    broker: Broker,
    config: ProducerConfig,
    producer_id: Option<(i64, i16)>,
    queues: Mutex<Queues>,
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
    fn queue(&self, topic: &str, partition: i32) -> Arc<Mutex<Queue>> {
        Arc::clone(
            lock(&self.queues)
                .entry((topic.to_string(), partition))
                .or_default(),
        )
    }

    /// Appends the queue's batch; fails its waiters on error.
    fn flush_queue(&self, topic: &str, partition: i32, q: &mut Queue) {
        let Some(mut builder) = q.builder.take() else {
            return;
        };
        q.opened = None;
        let waiting = std::mem::take(&mut q.waiting);
        let count = builder.record_count() as i32;
        if let Some((pid, epoch)) = self.producer_id {
            builder = builder.producer(pid, epoch, q.next_sequence);
        }
        let result = builder
            .build()
            .map_err(BrokerError::from)
            .and_then(|mut bytes| {
                self.broker
                    .produce_built(topic, partition, &mut bytes, self.config.acks)
            });
        match result {
            Ok(info) => {
                if self.producer_id.is_some() {
                    q.next_sequence = q.next_sequence.wrapping_add(count) & i32::MAX;
                }
                for (i, (promise, ts)) in waiting.into_iter().enumerate() {
                    promise.fulfil(Ok(RecordMetadata {
                        topic: topic.to_string(),
                        partition,
                        offset: info.base_offset as i64 + i as i64,
                        timestamp: if info.log_append_time >= 0 {
                            info.log_append_time
                        } else {
                            ts
                        },
                    }));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for (promise, _) in waiting {
                    promise.fulfil(Err(Arc::clone(&e)));
                }
            }
        }
    }

    fn flush_all(&self, only_older_than: Option<Duration>) {
        let queues: Vec<(_, Arc<Mutex<Queue>>)> = lock(&self.queues)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        for ((topic, partition), q) in queues {
            let mut q = lock(&q);
            let due = match (only_older_than, q.opened) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(age), Some(opened)) => opened.elapsed() >= age,
            };
            if due {
                self.flush_queue(&topic, partition, &mut q);
            }
        }
    }
}

fn linger_loop(shared: Arc<Shared>) {
    let step = (shared.config.linger / 2).max(Duration::from_millis(1));
    loop {
        {
            let stop = lock(&shared.wake.0);
            let (stop, _) = shared
                .wake
                .1
                .wait_timeout(stop, step)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            queues: Mutex::new(HashMap::new()),
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
    fn choose_partition(&self, record: &ProducerRecord<'_>) -> Result<i32> {
        let broker = &self.shared.broker;
        let count = broker.ensure_topic(record.topic)?;
        match (record.partition, record.key) {
            (Some(p), _) if p >= 0 && (p as u32) < count => Ok(p),
            (Some(p), _) => Err(BrokerError::UnknownTopicOrPartition {
                topic: record.topic.to_string(),
                partition: Some(p),
            }),
            (None, Some(key)) => Ok(partition_for_key(key, count) as i32),
            (None, None) => Ok(broker.spread(count) as i32),
        }
    }

    /// Queues a record; the returned [`Delivery`] completes when it is
    /// stored. Records to one partition are stored in the order sent.
    pub fn send(&self, record: &ProducerRecord<'_>) -> Result<Delivery> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let partition = self.choose_partition(record)?;
        let timestamp = record.timestamp.unwrap_or_else(wall_clock_ms);
        let promise = Promise::new();
        let queue = self.shared.queue(record.topic, partition);
        let mut q = lock(&queue);
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
        let full = builder.uncompressed_len() >= self.shared.config.batch_bytes;
        q.waiting.push((Arc::clone(&promise), timestamp));
        q.opened.get_or_insert_with(Instant::now);
        if full || self.linger.is_none() {
            self.shared.flush_queue(record.topic, partition, &mut q);
        }
        Ok(Delivery { promise })
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
        *lock(&self.shared.wake.0) = true;
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
