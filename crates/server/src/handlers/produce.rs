//! Produce (0): append each partition's batches and answer with offsets
//! (nothing at all for acks=0).
//!
//! Appends happen at once, in request order, on the connection's runtime
//! worker while they are page-cache writes (see [`on_worker_or_blocking`]).
//! For `acks=all` the answer
//! then waits for the fsync of every partition written ([`Durable`]), off
//! the connection's reader, so the next requests are appended meanwhile
//! and share that fsync.
//!
//! Storage rewrites offsets (and the broker the leader epoch) in the
//! batches it is given. When the request frame owns its buffer alone (the
//! frame reader arranges that for large frames), the records are rewritten
//! and written where they are in the frame; otherwise each partition's
//! records are copied once into a reused buffer first.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use pubsub_broker::{wall_clock_ms, Acks, BrokerError, ListedOffset, OffsetSpec, PendingSync};
use pubsub_storage::FlushPolicy;

use super::sb;
use crate::authorize::{Access, PRODUCE, PRODUCE_TXN};
use crate::codes::error_code;
use crate::context::{blocking, Ctx};
use crate::dispatch::{encode_response, Reply};
use crate::error::ServerError;

/// The first Produce version of transaction version 2 clients: their
/// transactional writes add the partition to the transaction.
const IMPLICIT_ADD_SINCE: i16 = 12;

/// An `acks=all` answer waiting for fsyncs.
#[derive(Debug)]
struct Durable {
    resp: ProduceResponse,
    version: i16,
    /// (topic index, partition index in the answer, the fsync owed).
    waits: Vec<(usize, usize, PendingSync)>,
}

impl Durable {
    /// Blocks until every appended partition is fsynced; a partition whose
    /// fsync fails is answered with its error (KAFKA_STORAGE_ERROR) instead
    /// of offsets.
    fn wait(mut self) -> ProduceResponse {
        for (t, p, sync) in self.waits {
            if let Err(e) = sync.wait() {
                let slot = &mut self.resp.responses[t].partition_responses[p];
                *slot = refused(slot.index, self.version, &e);
            }
        }
        self.resp
    }
}

/// Appends the request's batches and says what to answer: nothing for
/// acks=0, the offsets now for acks=1, the offsets once fsynced for
/// acks=all (the wait starts now, on a blocking thread, so waits of
/// pipelined requests overlap and share fsyncs).
/// Error codes are counted into `ctx.metrics` under API `slot`, once the
/// answer is final. `frame` is the whole request frame `req` was decoded
/// from; nothing else may hold a part of it for the records to be written
/// in place.
pub fn reply(
    ctx: &Ctx,
    id: i32,
    frame: Bytes,
    req: ProduceRequest,
    version: i16,
    slot: usize,
) -> Result<Reply, ServerError> {
    let acks = req.acks;
    let flush_never = ctx.broker.config().flush == FlushPolicy::Never;
    let (resp, waits) = on_worker_or_blocking(flush_never, || append(ctx, frame, req, version));
    if acks == 0 {
        ctx.metrics.errors_in(slot, &resp);
        return Ok(Reply::Nothing);
    }
    if waits.is_empty() {
        ctx.metrics.errors_in(slot, &resp);
        return Ok(Reply::Frame(encode_response(
            ApiKey::Produce,
            version,
            id,
            &resp,
        )?));
    }
    let durable = Durable {
        resp,
        version,
        waits,
    };
    let metrics = Arc::clone(&ctx.metrics);
    Ok(Reply::Later(tokio::task::spawn_blocking(move || {
        let resp = durable.wait();
        metrics.errors_in(slot, &resp);
        encode_response(ApiKey::Produce, version, id, &resp)
    })))
}

/// An append that took at least this long slept in the kernel (dirty-page
/// throttling, a disk-bound fsync or open): appends then leave the worker
/// for a while.
const SLOW_APPEND: Duration = Duration::from_millis(2);
/// How long after a slow append every append leaves the worker.
const CAUTIOUS_FOR: Duration = Duration::from_secs(1);

/// Microseconds since [`since`] until which appends run under
/// [`blocking`]; 0 at first.
static CAUTIOUS_UNTIL: AtomicU64 = AtomicU64::new(0);

/// The process's reference instant for [`CAUTIOUS_UNTIL`].
fn since() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Microseconds from [`since`] to `at`.
fn micros(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(since()).as_micros()).unwrap_or(u64::MAX)
}

/// Runs a request's appends. With the flush policy `never`
/// (`flush_never`) an append is a write into the page cache that returns in
/// microseconds, so it runs on the runtime's worker: [`blocking`]
/// (`block_in_place`) would hand the worker's core to a pool thread and
/// back for every request, which costs more than the write on a busy
/// machine. A write can still sleep (dirty-page throttling; the first
/// append's fsync of the epoch cache; a segment roll's fsync): an append
/// that took [`SLOW_APPEND`] or longer and slept in the kernel makes every
/// append of the next [`CAUTIOUS_FOR`] run under [`blocking`], so a
/// throttled disk stalls a worker at most about once a second. Other flush
/// policies fsync inside the append: always under [`blocking`].
fn on_worker_or_blocking<T>(flush_never: bool, f: impl FnOnce() -> T) -> T {
    appended_with(&CAUTIOUS_UNTIL, flush_never, f)
}

/// [`on_worker_or_blocking`] with its state (`cautious_until`, microseconds
/// since [`since`]) given.
///
/// Slow alone is not enough: on a loaded machine the scheduler preempts the
/// worker in the middle of a page-cache write for milliseconds, which says
/// nothing about the disk, and every such preemption then sent a second of
/// appends through `block_in_place`. What throttling, an fsync or a disk
/// read have in common is that the thread sleeps: the thread's voluntary
/// context switches grow ([`voluntary_switches`]). Where they cannot be
/// read, a slow append counts as one that slept.
fn appended_with<T>(cautious_until: &AtomicU64, flush_never: bool, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    if !flush_never || micros(start) < cautious_until.load(Ordering::Relaxed) {
        return blocking(f);
    }
    let switches = voluntary_switches();
    let out = f();
    let end = Instant::now();
    if end.saturating_duration_since(start) >= SLOW_APPEND {
        let slept = match (switches, voluntary_switches()) {
            (Some(before), Some(after)) => after > before,
            _ => true,
        };
        if slept {
            cautious_until.store(micros(end + CAUTIOUS_FOR), Ordering::Relaxed);
        }
    }
    out
}

/// The calling thread's voluntary context switches so far (it slept: I/O,
/// a lock, throttling), as `getrusage(RUSAGE_THREAD)` counts them; `None`
/// where that is not available.
#[cfg(target_os = "linux")]
fn voluntary_switches() -> Option<i64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` is a valid place for one `rusage`, which the call
    // fills on success (return 0) and leaves alone otherwise.
    let done = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if done != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so it filled `usage`.
    let usage = unsafe { usage.assume_init() };
    Some(usage.ru_nvcsw)
}

/// Not available off Linux: every slow append counts as one that slept.
#[cfg(not(target_os = "linux"))]
fn voluntary_switches() -> Option<i64> {
    None
}

/// Where a partition's records are.
enum Records {
    /// This range of the request frame.
    InFrame(Range<usize>),
    /// Elsewhere (the decoder may give an empty slice its own).
    Apart(Bytes),
}

/// One topic of the request, its partitions' records located (with their
/// first batch's transactional producer).
struct Topic {
    name: TopicName,
    partitions: Vec<(i32, Option<Located>)>,
}

/// A partition's records and their first batch's transactional producer.
type Located = (Records, Option<TxnBatch>);

/// The producer of a partition's first batch when it is transactional:
/// its id and epoch, and whether it is a control batch.
#[derive(Clone, Copy)]
struct TxnBatch {
    producer_id: i64,
    producer_epoch: i16,
    control: bool,
}

/// [`TxnBatch`] of the first batch of `records`, parsed once per request.
fn txn_batch(frame: &Bytes, records: &Records) -> Option<TxnBatch> {
    let bytes = match records {
        Records::InFrame(r) => frame.get(r.clone()),
        Records::Apart(b) => Some(&b[..]),
    };
    bytes
        .and_then(|b| pubsub_records::BatchHeader::parse(b).ok())
        .filter(|h| h.is_transactional())
        .map(|h| TxnBatch {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            control: h.is_control(),
        })
}

/// The request's transactional id, and where each partition's records lie
/// in `frame`; the decoded request (whose byte slices hold the frame) is
/// consumed, and nothing returned holds a part of the frame, so that the
/// records can be written in place.
fn locate(frame: &Bytes, req: ProduceRequest) -> (Option<String>, Vec<Topic>) {
    let start = frame.as_ptr() as usize;
    let range = |b: &Bytes| {
        let from = (b.as_ptr() as usize).checked_sub(start)?;
        let to = from.checked_add(b.len())?;
        (to <= frame.len()).then_some(from..to)
    };
    // A copy of its own, as the topic names below: a clone of the request's
    // string would share the frame's buffer, and every transactional
    // request's records were copied once more.
    let transactional_id = req.transactional_id.as_deref().map(|s| (**s).to_string());
    let topics = req
        .topic_data
        .into_iter()
        .map(|topic| Topic {
            // A copy of its own: the name in the request is part of the frame.
            name: TopicName(sb(&topic.name)),
            partitions: topic
                .partition_data
                .into_iter()
                .map(|data| {
                    let records = data.records.map(|b| {
                        let records = match range(&b) {
                            Some(r) => Records::InFrame(r),
                            None => Records::Apart(b),
                        };
                        let txn = txn_batch(frame, &records);
                        (records, txn)
                    });
                    (data.index, records)
                })
                .collect(),
        })
        .collect();
    (transactional_id, topics)
}

/// Appends every partition's batches, in request order; acks=all appends
/// return the fsync they still owe.
#[allow(clippy::type_complexity)]
fn append(
    ctx: &Ctx,
    frame: Bytes,
    req: ProduceRequest,
    version: i16,
) -> (ProduceResponse, Vec<(usize, usize, PendingSync)>) {
    let acks = Acks::from_kafka(req.acks);
    let access = Access::of(ctx);
    let (transactional_id, topics) = locate(&frame, req);
    // Transactional batches need Write on their transactional id (none
    // named: refused too, as Kafka does); refused, every partition fails.
    let txn_refused = topics
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|(_, r)| r.as_ref().is_some_and(|(_, txn)| txn.is_some()))
        && !transactional_id
            .as_ref()
            .is_some_and(|id| access.allows(&PRODUCE_TXN, id));
    // With the request gone, the frame is writable if it owns its buffer
    // alone; if not, each partition's records are copied once into
    // `scratch`, reused across partitions.
    let mut frame: Result<BytesMut, Bytes> = frame.try_into_mut();
    let mut scratch = Vec::new();
    let mut waits = Vec::new();
    let mut responses = Vec::with_capacity(topics.len());
    for (t, topic) in topics.into_iter().enumerate() {
        let name: &str = &topic.name;
        let allowed = access.allows(&PRODUCE, name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (p, (index, records)) in topic.partitions.into_iter().enumerate() {
            let resp = match (acks, records) {
                _ if txn_refused => base(index).with_error_code(PRODUCE_TXN.error),
                _ if !allowed => base(index).with_error_code(PRODUCE.error),
                (None, _) => base(index)
                    .with_error_code(ResponseError::InvalidRequiredAcks.code())
                    .with_error_message(message(version, "acks must be 0, 1 or -1")),
                (_, None) => base(index)
                    .with_error_code(ResponseError::CorruptMessage.code())
                    .with_error_message(message(version, "no records")),
                (Some(acks), Some((records, txn))) => {
                    let bytes: &mut [u8] = match (&mut frame, records) {
                        (Ok(own), Records::InFrame(r)) => &mut own[r],
                        (Err(shared), Records::InFrame(r)) => {
                            scratch.clear();
                            scratch.extend_from_slice(&shared[r]);
                            &mut scratch
                        }
                        (_, Records::Apart(b)) => {
                            scratch.clear();
                            scratch.extend_from_slice(&b);
                            &mut scratch
                        }
                    };
                    // A transactional batch is appended only inside its
                    // producer's ongoing transaction (KIP-890 part 1); a
                    // control batch is refused by the append itself.
                    let txn = txn
                        .filter(|b| !b.control)
                        .map(|b| (b.producer_id, b.producer_epoch));
                    let mut write = || match acks {
                        Acks::All => ctx
                            .broker
                            .produce_then_sync(name, index, bytes)
                            .map(|(r, sync)| (r, Some(sync))),
                        _ => ctx
                            .broker
                            .produce(name, index, bytes, acks)
                            .map(|r| (r, None)),
                    };
                    let appended = match (txn, transactional_id.as_deref()) {
                        (Some((pid, epoch)), Some(id)) => {
                            // Version 12 is transaction version 2's: the
                            // write adds its partition (KIP-890 part 2).
                            let implicit =
                                (version >= IMPLICIT_ADD_SINCE).then(|| ctx.broker.txn_store());
                            ctx.broker.transactions().verified_or_added(
                                implicit,
                                id,
                                pid,
                                epoch,
                                (name, index),
                                wall_clock_ms(),
                                write,
                            )
                        }
                        _ => write(),
                    };
                    match appended {
                        Ok((r, sync)) => {
                            if let Some(sync) = sync {
                                waits.push((t, p, sync));
                            }
                            base(index)
                                .with_base_offset(r.base_offset as i64)
                                .with_log_append_time_ms(r.log_append_time)
                                .with_log_start_offset(if version >= 5 {
                                    r.log_start_offset as i64
                                } else {
                                    -1
                                })
                        }
                        Err(e) => {
                            tracing::debug!(topic = name, partition = index, error = %e, "produce refused");
                            let resp = refused(index, version, &e);
                            // Kafka tells the log start offset with every
                            // refusal except those where the partition or the
                            // batch itself is the problem, and those of the
                            // transaction coordinator's verification, made
                            // before the log is looked at (the differential
                            // scenario "transactional produce versions").
                            let unknown_partition_info =
                                matches!(e, BrokerError::Transaction { .. })
                                    || [
                                        ResponseError::UnknownTopicOrPartition,
                                        ResponseError::NotLeaderOrFollower,
                                        ResponseError::MessageTooLarge,
                                        ResponseError::RecordListTooLarge,
                                        ResponseError::CorruptMessage,
                                        ResponseError::KafkaStorageError,
                                    ]
                                    .iter()
                                    .any(|c| c.code() == resp.error_code);
                            match ctx.broker.list_offset(name, index, OffsetSpec::Earliest) {
                                Ok(Some(ListedOffset { offset: start, .. }))
                                    if version >= 5 && !unknown_partition_info =>
                                {
                                    resp.with_log_start_offset(start)
                                }
                                _ => resp,
                            }
                        }
                    }
                }
            };
            partitions.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    (ProduceResponse::default().with_responses(responses), waits)
}

fn base(index: i32) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

fn refused(index: i32, version: i16, e: &BrokerError) -> PartitionProduceResponse {
    let code = produce_error_code(e, version);
    // Kafka sends no message with MESSAGE_TOO_LARGE, so clients show the
    // error's own description ("The request included a message larger than
    // the max message size the server will accept.").
    let text = (code != ResponseError::MessageTooLarge.code()).then(|| e.to_string());
    base(index)
        .with_error_code(code)
        .with_error_message(text.and_then(|t| message(version, &t)))
}

/// The error code of a refused append. A transactional write the
/// coordinator did not verify is answered as Kafka's produce path answers
/// it: a fenced epoch is INVALID_PRODUCER_EPOCH, a transaction still
/// writing its markers the retriable NOT_ENOUGH_REPLICAS, a partition
/// outside the ongoing transaction INVALID_TXN_STATE, TRANSACTION_ABORTABLE
/// from version 11 (the shared rule, [`crate::codes::abortable`]).
fn produce_error_code(e: &BrokerError, version: i16) -> i16 {
    use pubsub_broker::txn::TxnRefusal;
    match e {
        BrokerError::Transaction { refusal, .. } => match refusal {
            TxnRefusal::ProducerFenced => ResponseError::InvalidProducerEpoch.code(),
            TxnRefusal::ConcurrentTransactions => ResponseError::NotEnoughReplicas.code(),
            r => crate::codes::abortable(
                crate::codes::txn_error(*r).code(),
                ApiKey::Produce,
                version,
            ),
        },
        e => error_code(e),
    }
}

/// Error messages are part of the answer from v8 on.
fn message(version: i16, text: &str) -> Option<kafka_protocol::protocol::StrBytes> {
    (version >= 8).then(|| sb(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_append_sends_the_next_appends_off_the_worker_for_a_while() {
        let cautious = AtomicU64::new(0);
        let before = Instant::now();
        // Slower than SLOW_APPEND, asleep: a sleep lasts at least as long as
        // asked.
        let out = appended_with(&cautious, true, || {
            std::thread::sleep(SLOW_APPEND + Duration::from_millis(1));
            7
        });
        assert_eq!(out, 7);
        // Until at least CAUTIOUS_FOR after the slow append ended.
        assert!(cautious.load(Ordering::Relaxed) >= micros(before + CAUTIOUS_FOR));
        // Other flush policies run the closure too (under `blocking`).
        assert_eq!(appended_with(&cautious, false, || 8), 8);
        // The process-wide state is used the same way.
        assert_eq!(on_worker_or_blocking(false, || 9), 9);
    }

    /// An append that is slow without sleeping (the thread computed, or was
    /// preempted, for longer than SLOW_APPEND) leaves appends on the worker.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_slow_append_that_never_slept_keeps_appends_on_the_worker() {
        let cautious = AtomicU64::new(0);
        let out = appended_with(&cautious, true, || {
            let start = Instant::now();
            let mut spins = 0u64;
            while start.elapsed() < SLOW_APPEND + Duration::from_millis(1) {
                spins = std::hint::black_box(spins + 1);
            }
            spins
        });
        assert!(out > 0);
        assert_eq!(cautious.load(Ordering::Relaxed), 0);
        // A thread that sleeps is seen to.
        let before = voluntary_switches();
        std::thread::sleep(Duration::from_millis(1));
        assert!(voluntary_switches() > before);
    }

    /// A transactional request's records are written where they arrived:
    /// once located, nothing (its transactional id included) holds a part
    /// of the frame, so the frame's buffer is the handler's alone.
    #[test]
    fn a_transactional_requests_frame_is_writable_once_located() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::TransactionalId;
        use kafka_protocol::protocol::{Decodable, Encodable};

        let version = 9;
        let records = Bytes::from(vec![7u8; 300]);
        let req = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(sb("tx-writes-in-place"))))
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(sb("t")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).expect("a valid test value");
        let frame = buf.freeze();
        let mut body = frame.clone();
        let decoded = ProduceRequest::decode(&mut body, version).expect("a valid test value");
        drop(body);
        let (id, topics) = locate(&frame, decoded);
        assert_eq!(id.as_deref(), Some("tx-writes-in-place"));
        let located = topics[0].partitions[0].1.as_ref().map(|(r, _)| match r {
            Records::InFrame(r) => frame[r.clone()].to_vec(),
            Records::Apart(_) => Vec::new(),
        });
        assert_eq!(located, Some(vec![7u8; 300]));
        assert!(
            frame.try_into_mut().is_ok(),
            "a part of the frame is still held: the records would be copied"
        );
    }
}
