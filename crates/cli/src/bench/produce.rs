//! `pubsub bench produce`: producers against any Kafka-protocol broker
//! (one node: every request goes to the bootstrap broker).
//!
//! Each producer is one connection with up to `--in-flight` produce
//! requests pipelined, one batch of `--batch` messages per request, cycling
//! over the partitions. With `--rate` the load is open-loop: batch k of a
//! producer is due at `start + k * interval`, and a message's latency runs
//! from when its batch was due to when its answer arrived, so a stalled
//! broker shows up in the percentiles instead of merely slowing the sender
//! (no coordinated omission). Without `--rate` producers send as fast as
//! the in-flight window lets them and latency runs from the send.
//!
//! A producer owns `--in-flight` batch buffers and no more: a batch is
//! built in a free one (each value copied in once, the CRC computed in
//! place), written to the socket around the request's head and tail
//! without another copy ([`produce::send_batch`]), and its buffer comes
//! back for the next batch once the answer is read (or the request was
//! sent, with acks=0). The buffers are the in-flight window, and after the
//! first few batches nothing is allocated per batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ProduceRequest;
use pubsub_client::{admin, produce, ClientError, Cluster, TopicInfo};
use pubsub_records::{BatchBuilder, NewRecord};
use tokio::sync::mpsc;

use super::report::Report;
use crate::error::CliError;

/// Settings of a produce run.
#[derive(Debug, Clone)]
pub struct ProduceRun {
    /// The broker and how to reach it.
    pub bootstrap: super::Endpoint,
    /// Topic (created with `partitions` if missing).
    pub topic: String,
    /// Messages in total (ignored when `duration` is set).
    pub messages: u64,
    /// Run for this long instead of a message count.
    pub duration: Option<Duration>,
    /// Value size in bytes.
    pub size: usize,
    /// Messages per batch (one batch per request).
    pub batch: usize,
    /// Partitions of a topic created by the run.
    pub partitions: i32,
    /// Connections producing concurrently.
    pub producers: usize,
    /// 0, 1 or -1.
    pub acks: i16,
    /// Messages per second over all producers; `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Requests in flight per connection.
    pub in_flight: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// For end-to-end runs: each value starts with the nanoseconds from
    /// this instant to when its batch was due (8 bytes, little-endian).
    pub stamp_epoch: Option<Instant>,
}

/// A batch on its way: when it was due, how many messages, and what to
/// resend if the broker answers that it is not (yet) the leader.
struct InFlight {
    id: i32,
    due: Instant,
    count: u64,
    partition: i32,
    batch: Lent,
}

/// One of a producer's batch buffers, out of its pool: it goes back when
/// dropped (answered, sent with acks=0, or abandoned on an error), so a
/// producer waiting for a free buffer always gets one back.
struct Lent {
    buf: Vec<u8>,
    home: mpsc::UnboundedSender<Vec<u8>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Fails only once the producer is gone, which no longer needs it.
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

/// Runs the load and measures it.
pub async fn produce(run: ProduceRun) -> Result<Report, CliError> {
    if run.batch == 0 || run.producers == 0 || run.in_flight == 0 || run.rate == Some(0) {
        return Err(CliError::Usage(
            "--batch, --producers, --in-flight and --rate must be at least 1".into(),
        ));
    }
    let mut cluster = run.bootstrap.cluster().await?;
    let topic = admin::ensure_topic(&mut cluster, &run.topic, run.partitions).await?;
    let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    drop(cluster);
    let topic = Arc::new(topic);

    let bar = super::progress_bar(run.progress, run.duration.is_none().then_some(run.messages));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..run.producers {
        // Messages of this producer: an even share of the total.
        let share = run.messages / run.producers as u64
            + u64::from((p as u64) < run.messages % run.producers as u64);
        tasks.spawn(producer(
            run.clone(),
            topic.clone(),
            p,
            share,
            partitions,
            start,
            bar.clone(),
        ));
    }
    let mut report = Report::empty("produced", "latency");
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(part)) => report.merge(part),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(ClientError::Other(format!("producer task: {e}")))),
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}

/// Reads a producer's answers in order and measures them. A batch refused
/// because the broker is not (yet) the partition's leader, as a Kafka
/// answers for a moment after creating a topic, was not appended: it is
/// resent as a Kafka producer would (`produce::to_leader`, on a connection
/// of its own) and its latency includes the wait.
async fn read_answers(
    mut receiver: pubsub_client::Receiver,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
    version: i16,
    (run, topic): (ProduceRun, Arc<TopicInfo>),
    bar: indicatif::ProgressBar,
) -> Result<Report, ClientError> {
    let size = run.size as u64;
    let mut part = Report::empty("produced", "latency");
    let mut resender: Option<Cluster> = None;
    while let Some(f) = rx.recv().await {
        let resp = receiver.receive::<ProduceRequest>(f.id, version).await?;
        let refused = resp
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != 0)
            .map(|p| p.error_code);
        let not_leader = refused.is_some_and(|code| {
            code == ResponseError::NotLeaderOrFollower.code()
                || code == ResponseError::LeaderNotAvailable.code()
        });
        let failed = if not_leader {
            let cluster = match resender.as_mut() {
                Some(cluster) => cluster,
                None => resender.insert(run.bootstrap.cluster().await?),
            };
            let records = bytes::Bytes::copy_from_slice(&f.batch.buf);
            produce::to_leader(cluster, &topic, f.partition, run.acks, records)
                .await
                .err()
                .map(|e| e.to_string())
        } else {
            refused.and_then(|code| {
                pubsub_client::error::check(code, || format!("partition {}", f.partition), None)
                    .err()
                    .map(|e| e.to_string())
            })
        };
        let now = Instant::now();
        match failed {
            Some(e) => {
                part.errors += f.count;
                part.first_error.get_or_insert(e);
            }
            None => {
                part.messages += f.count;
                part.bytes += f.count * size;
                let micros = now.saturating_duration_since(f.due).as_micros().max(1);
                part.latency
                    .saturating_record_n(u64::try_from(micros).unwrap_or(u64::MAX), f.count);
            }
        }
        bar.inc(f.count);
    }
    Ok(part)
}

/// Sends the instants at which batches are due, `every` apart from
/// `first`. tokio's timers tick in milliseconds, too coarse for batches due
/// every few hundred microseconds: a thread sleeps precisely instead. The
/// channel is bounded, so a sender running late makes the thread wait.
fn pace(first: Instant, every: Duration) -> mpsc::Receiver<Instant> {
    let (tick, ticks) = mpsc::channel::<Instant>(16);
    std::thread::spawn(move || {
        for k in 0u64.. {
            let due = first + every.mul_f64(k as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tick.blocking_send(due).is_err() {
                return;
            }
        }
    });
    ticks
}

/// One connection's share of the load.
async fn producer(
    run: ProduceRun,
    topic: Arc<TopicInfo>,
    index: usize,
    messages: u64,
    partitions: i32,
    start: Instant,
    bar: indicatif::ProgressBar,
) -> Result<Report, ClientError> {
    let conn = run.bootstrap.connection().await?;
    let version = conn
        .versions()
        .pick::<ProduceRequest>(pubsub_client::produce::VERSIONS)?;
    let (mut sender, receiver) = conn.into_split();
    // The window: `in_flight` buffers, each back in `free` once its batch
    // is answered.
    let (home, mut free) = mpsc::unbounded_channel::<Vec<u8>>();
    for _ in 0..run.in_flight {
        let _ = home.send(Vec::new());
    }
    // What a record takes besides its value: length, attributes, deltas,
    // key and value lengths, header count (varints; 24 bytes is ample).
    let per_record = run.size + 24;
    let (tx, rx) = mpsc::unbounded_channel::<InFlight>();
    let size = run.size as u64;
    let reader = tokio::spawn(read_answers(
        receiver,
        rx,
        version,
        (run.clone(), topic),
        bar.clone(),
    ));

    // Values: slices of one pseudo-random buffer, so batches differ.
    let mut noise = vec![0u8; run.size + 4096];
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ index as u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    // Producers' schedules are staggered so their batches do not line up.
    let mut ticks = run.rate.map(|rate| {
        let every = Duration::from_secs_f64(run.batch as f64 * run.producers as f64 / rate as f64);
        pace(
            start + every.mul_f64(index as f64 / run.producers as f64),
            every,
        )
    });
    let deadline = run.duration.map(|d| start + d);
    let mut stamped = Vec::with_capacity(run.size);
    let mut sent = 0u64;
    let mut unanswered = 0u64;
    for k in 0u64.. {
        let count = match deadline {
            Some(d) if Instant::now() >= d => break,
            Some(_) => run.batch as u64,
            None if sent == messages => break,
            None => (messages - sent).min(run.batch as u64),
        };
        // Paced: due when the pacing thread says; else when it can be sent.
        let due = match ticks.as_mut() {
            Some(ticks) => match ticks.recv().await {
                Some(due) => Some(due),
                None => break,
            },
            None => None,
        };
        let buf = free
            .recv()
            .await
            .ok_or_else(|| ClientError::Other("the batch buffers were lost".into()))?;
        let due = due.unwrap_or_else(Instant::now);
        let partition = ((index as u64 + k) % partitions.max(1) as u64) as i32;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut b = BatchBuilder::reusing(buf);
        b.reserve(count as usize * per_record);
        // End to end: one value per batch, stamped with when it was due.
        if let Some(epoch) = run.stamp_epoch {
            let nanos =
                u64::try_from(due.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
            stamped.clear();
            stamped.extend_from_slice(&noise[..run.size]);
            stamped[..8].copy_from_slice(&nanos.to_le_bytes());
        }
        for i in 0..count {
            let at = ((k * 31 + i * 7) % 4096) as usize;
            let value = if run.stamp_epoch.is_some() {
                &stamped[..]
            } else {
                &noise[at..at + run.size]
            };
            b.push(&NewRecord {
                timestamp: now_ms,
                key: None,
                value: Some(value),
                headers: &[],
            })
            .map_err(|e| ClientError::Other(format!("building a batch: {e}")))?;
        }
        let batch = Lent {
            buf: b
                .build()
                .map_err(|e| ClientError::Other(format!("building a batch: {e}")))?,
            home: home.clone(),
        };
        let to = produce::Target {
            topic: &run.topic,
            partition,
            acks: run.acks,
        };
        let id = produce::send_batch(&mut sender, version, to, &batch.buf).await?;
        sent += count;
        if run.acks == 0 {
            // No answer will come: counted as sent (the buffer is free).
            unanswered += count;
            bar.inc(count);
            continue;
        }
        let in_flight = InFlight {
            id,
            due,
            count,
            partition,
            batch,
        };
        if tx.send(in_flight).is_err() {
            // The reader stopped on an error; it is reported below.
            break;
        }
    }
    drop(tx);
    let mut part = reader
        .await
        .map_err(|e| ClientError::Other(format!("reader task: {e}")))??;
    part.messages += unanswered;
    part.bytes += unanswered * size;
    Ok(part)
}
