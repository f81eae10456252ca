//! Fetch (1): whole batches from each partition's fetch offset; waits up to
//! `max_wait_ms` for `min_bytes` (a long poll woken by appends).
//!
//! Fetch sessions (KIP-227, v7+; the rules are in [`crate::fetch_session`]):
//! a full fetch (epoch 0) opens a session when the cache has room, and the
//! answer carries its id; incremental fetches then name only the partitions
//! whose position changed (plus `forgotten_topics_data`) and are answered
//! with only the partitions that have records, a new high watermark or log
//! start offset, an error or a diverging epoch. Epoch -1 fetches without a
//! session (librdkafka always does); an unknown session is
//! FETCH_SESSION_ID_NOT_FOUND (70), a wrong epoch INVALID_FETCH_SESSION_EPOCH
//! (71), each answered with no partition and session id 0. Topic ids in
//! Fetch (v13+, FETCH_SESSION_TOPIC_ID_ERROR) do not arise: v12 is the
//! highest served.
//!
//! Cost and fairness: partitions are read in the session's order, in which
//! every partition an answer carried moved to the end, so a partition that
//! fills `max_bytes` cannot starve the others. A partition whose fetch
//! offset is its log end is answered from two atomic loads, without a read.
//! A waiting fetch is told which partitions were appended to (tagged
//! wakeups) and reads only those again.
//!
//! Budgets as Kafka's `ReplicaManager.readFromLocalLog`: each partition
//! reads at most its `partition_max_bytes` and what is left of `max_bytes`,
//! in whole batches; only the first partition with records may exceed that
//! with its whole first batch (`minOneMessage`). A later partition whose
//! first batch does not fit gets no records (Kafka answers an incomplete
//! first entry as empty) and is read first by a later fetch.
//!
//! Leader epochs as Kafka's leader checks them: a `current_leader_epoch`
//! (v9+) older than the partition's is FENCED_LEADER_EPOCH, newer is
//! UNKNOWN_LEADER_EPOCH; a `last_fetched_epoch` (v12+) whose end offset
//! (OffsetForLeaderEpoch's answer) is below the fetch offset, or whose epoch
//! is not known as such, comes back at once as `diverging_epoch` with no
//! records: the client's log diverged (it read a tail since truncated).
//!
//! Records are not read here: each partition's answer names a range of its
//! segment file ([`FetchFiles`]), sent from there by the connection writer
//! (see [`crate::fetch_response`]).
//!
//! A range holds its segment file's descriptor until the answer is sent,
//! which the descriptor budget ([`pubsub_broker::Handles`]) cannot close:
//! with many connections, each up to its queue of answers, each of many
//! partitions, held ranges could take the budget's room for the appends'
//! reopens (an EMFILE there). So a range read while the budget is already
//! exceeded (more segment descriptors open than its limit) is copied into
//! memory at once and its descriptor let go ([`hold_or_copy`]): past the
//! budget, answers cost memory (at most their `max_bytes`, as the copying
//! path always did) instead of descriptors, and the ranges held are at
//! most what fits in the budget plus the reads in flight.

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, RequestHeader};
use pubsub_broker::notify::Wakeup;
use pubsub_broker::{BrokerError, FileRange, Handles, Partition};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::authorize::{Access, FETCH};
use crate::codes::{epoch_error, error_code};
use crate::context::{blocking, Ctx};
use crate::fetch_response::FetchFiles;
use crate::fetch_session::{
    FetchParams, FetchRequestSession, PartitionKey, Plan, ReadSummary, Sent, SessionCache, ToRead,
    NO_SESSION,
};

/// The longest a fetch may wait, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Fetch sessions came with v7.
const FIRST_SESSION_VERSION: i16 = 7;

/// One partition's part of the answer.
struct Read {
    /// `None`: a session's partition with nothing the client does not
    /// know (not carried, so not built).
    part: Option<Box<PartitionData>>,
    /// Where `part`'s records are: a range of a segment file, sent from
    /// there by the connection writer.
    range: Option<FileRange>,
    /// Record bytes in `range`.
    bytes: usize,
    /// An error or a diverging epoch: the fetch is answered at once.
    answer_now: bool,
    summary: ReadSummary,
}

impl Read {
    /// What a session's partition that did not change reads as.
    fn unchanged(sent: &Sent) -> Read {
        Read {
            part: None,
            range: None,
            bytes: 0,
            answer_now: false,
            summary: ReadSummary {
                has_records: false,
                high_watermark: sent.high_watermark,
                log_start_offset: sent.log_start_offset,
                error_code: 0,
                diverging: false,
            },
        }
    }
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: FetchRequest,
    version: i16,
) -> (FetchResponse, FetchFiles) {
    let wanted: Vec<(PartitionKey, FetchParams)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    PartitionKey {
                        topic: t.topic.clone(),
                        partition: p.partition,
                    },
                    FetchParams {
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes,
                        current_leader_epoch: p.current_leader_epoch,
                        last_fetched_epoch: p.last_fetched_epoch,
                    },
                )
            })
        })
        .collect();
    let wanted = dedupe(wanted);
    let session = FetchRequestSession {
        session_id: req.session_id,
        epoch: req.session_epoch,
        privileged: req.replica_id.0 >= 0,
    };
    let plan = if version < FIRST_SESSION_VERSION {
        Plan::Sessionless(
            wanted
                .into_iter()
                .map(|(key, params)| ToRead {
                    key,
                    params,
                    sent: Sent::NOTHING,
                })
                .collect(),
        )
    } else {
        let forgotten: Vec<PartitionKey> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|&partition| PartitionKey {
                    topic: t.topic.clone(),
                    partition,
                })
            })
            .collect();
        let mut cache = sessions(ctx);
        let plan = cache.begin(&session, wanted, &forgotten, std::time::Instant::now());
        ctx.metrics
            .fetch_sessions_now(cache.len(), cache.evictions());
        plan
    };
    let to_read = match &plan {
        Plan::Refuse(code) => return (refused(*code, NO_SESSION), FetchFiles::new()),
        Plan::Sessionless(r) | Plan::Full(r) => r,
        Plan::Incremental { partitions, .. } => partitions,
    };
    let reads = read_when_ready(ctx, &req, version, to_read).await;
    let (session_id, carried) = match &plan {
        Plan::Refuse(code) => return (refused(*code, NO_SESSION), FetchFiles::new()),
        Plan::Sessionless(_) => (NO_SESSION, None),
        Plan::Full(r) => {
            let summaries: Vec<ReadSummary> = reads.iter().map(|x| x.summary).collect();
            let mut cache = sessions(ctx);
            let id = cache.create(session.privileged, r, &summaries, std::time::Instant::now());
            ctx.metrics
                .fetch_sessions_now(cache.len(), cache.evictions());
            (id, None)
        }
        Plan::Incremental {
            session_id,
            epoch,
            partitions,
        } => {
            let summaries: Vec<ReadSummary> = reads.iter().map(|x| x.summary).collect();
            match sessions(ctx).complete(*session_id, *epoch, partitions, &summaries) {
                Ok(carried) => (*session_id, Some(carried)),
                Err(code) => return (refused(code, *session_id), FetchFiles::new()),
            }
        }
    };
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut files = FetchFiles::new();
    for (i, (r, read)) in to_read.iter().zip(reads).enumerate() {
        if carried
            .as_ref()
            .is_some_and(|c| !c.get(i).copied().unwrap_or(true))
        {
            continue;
        }
        // Only a partition an incremental answer leaves out is not built.
        let Some(part) = read.part.map(|p| *p) else {
            continue;
        };
        if let Some(range) = read.range {
            files.insert((r.key.topic.clone(), r.key.partition), range);
        }
        match topics.last_mut() {
            Some(t) if t.topic == r.key.topic => t.partitions.push(part),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(r.key.topic.clone())
                    .with_partitions(vec![part]),
            ),
        }
    }
    let resp = FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics);
    (resp, files)
}

/// One entry per partition, in the order first named, with the last
/// parameters given for it: Kafka reads a request's partitions into a
/// `LinkedHashMap`, where a partition named again keeps its place and takes
/// the later values, and answers it once.
fn dedupe(wanted: Vec<(PartitionKey, FetchParams)>) -> Vec<(PartitionKey, FetchParams)> {
    let mut at: std::collections::HashMap<PartitionKey, usize> =
        std::collections::HashMap::with_capacity(wanted.len());
    let mut out: Vec<(PartitionKey, FetchParams)> = Vec::with_capacity(wanted.len());
    for (key, params) in wanted {
        match at.get(&key).and_then(|&i| out.get_mut(i)) {
            Some(slot) => slot.1 = params,
            None => {
                at.insert(key.clone(), out.len());
                out.push((key, params));
            }
        }
    }
    out
}

/// The fetch session cache (a poisoned lock is taken over: the cache is
/// left consistent between calls).
fn sessions(ctx: &Ctx) -> MutexGuard<'_, SessionCache> {
    ctx.fetch_sessions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A session error: no partition.
fn refused(code: i16, session_id: i32) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(code)
        .with_session_id(session_id)
}

/// Reads `to_read` in order until the answer holds `min_bytes`, an error, or
/// `max_wait_ms` passed; while waiting, rereads only the partitions
/// appended to. One [`Read`] per partition, in order.
async fn read_when_ready(
    ctx: &Ctx,
    req: &FetchRequest,
    version: i16,
    to_read: &[ToRead],
) -> Vec<Read> {
    let access = Access::of(ctx);
    let allowed: Vec<bool> = to_read
        .iter()
        .map(|r| access.allows(&FETCH, &r.key.topic))
        .collect();
    let logs: Vec<Option<Arc<Partition>>> = to_read
        .iter()
        .zip(&allowed)
        .map(|(r, ok)| ok.then(|| ctx.broker.partition(&r.key.topic, r.key.partition).ok())?)
        .collect();
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let read_committed = req.isolation_level == 1;
    let mut shutdown = ctx.shutdown.clone();
    let mut total = 0usize;
    let mut answer_now = false;
    let mut reads: Vec<Read> = Vec::with_capacity(to_read.len());
    let mut first_pass = |i: usize, place: Place| {
        let (Some(r), Some(log), Some(&allowed)) = (to_read.get(i), logs.get(i), allowed.get(i))
        else {
            return true;
        };
        let room = max_bytes.saturating_sub(total);
        let Some(mut read) = read_partition(
            r,
            log.as_deref(),
            room,
            total == 0,
            read_committed,
            version,
            place,
        ) else {
            return false;
        };
        if let (false, Some(part)) = (allowed, read.part.as_mut()) {
            part.error_code = FETCH.error;
        }
        total += read.bytes;
        answer_now |= read.answer_now;
        reads.push(read);
        true
    };
    on_worker_until_disk(ctx, 0..to_read.len(), &mut first_pass);
    let ready = |total: usize, answer_now: bool, shutdown: &watch::Receiver<bool>| {
        total >= min_bytes.max(1) || answer_now || Instant::now() >= deadline || *shutdown.borrow()
    };
    if ready(total, answer_now, &shutdown) {
        return reads;
    }
    // About to wait: each partition rings with its index, and one that
    // grew since it was read (before it could ring) counts as rung.
    let wakeup = Wakeup::new();
    let mut woken = Vec::new();
    for (i, (log, read)) in logs.iter().zip(&reads).enumerate() {
        let (Some(log), Ok(tag)) = (log, u32::try_from(i)) else {
            continue;
        };
        log.subscribe_tagged(&wakeup, tag);
        if log.log().log_end_offset() as i64 != read.summary.high_watermark {
            woken.push(tag);
        }
    }
    loop {
        woken.sort_unstable();
        woken.dedup();
        let rung = std::mem::take(&mut woken);
        let mut reread = |i: usize, place: Place| {
            let (Some(r), Some(log), Some(slot)) = (to_read.get(i), logs.get(i), reads.get_mut(i))
            else {
                return true;
            };
            let room = max_bytes.saturating_sub(total - slot.bytes);
            let first = total == slot.bytes;
            let Some(read) = read_partition(
                r,
                log.as_deref(),
                room,
                first,
                read_committed,
                version,
                place,
            ) else {
                return false;
            };
            total = total - slot.bytes + read.bytes;
            answer_now |= read.answer_now;
            *slot = read;
            true
        };
        on_worker_until_disk(ctx, rung.iter().map(|&i| i as usize), &mut reread);
        if ready(total, answer_now, &shutdown) {
            break;
        }
        tokio::select! {
            _ = wakeup.wait_async() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
        woken = wakeup.take_tags();
    }
    for log in logs.iter().flatten() {
        log.unsubscribe(&wakeup);
    }
    reads
}

/// Where a partition's log read (index lookups and a few batch-header
/// reads) may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the runtime's worker, from the page cache only: a header read
    /// that would wait for the disk fails at once, having done nothing.
    Worker,
    /// Where a read may wait for the disk (under [`blocking`]).
    Anywhere,
}

/// Runs `read` (one partition's read, by index; `false`: it would have
/// waited for the disk at [`Place::Worker`] and did nothing) for each of
/// `partitions` in order: on the worker while their batch headers are in
/// the page cache, the usual case for consumers near the tail, and from
/// the first that is not, that one and every later one in one [`blocking`]
/// section. `block_in_place` hands the worker's core to another thread and
/// back (an eventfd wake, futexes, context switches) on the fetch's path,
/// which a consumer with one fetch in flight (librdkafka) waits through; a
/// request reading many partitions from disk pays one hand-off, not one
/// per partition.
fn on_worker_until_disk(
    ctx: &Ctx,
    partitions: impl Iterator<Item = usize>,
    read: &mut dyn FnMut(usize, Place) -> bool,
) {
    let mut partitions = partitions.peekable();
    while let Some(&i) = partitions.peek() {
        if !read(i, Place::Worker) {
            ctx.metrics.fetch_read_off_worker();
            blocking(|| {
                for i in partitions {
                    read(i, Place::Anywhere);
                }
            });
            return;
        }
        partitions.next();
    }
}

/// Reads one partition: at most `room` bytes of the response's budget left.
/// `first`: the answer holds no records yet, so the first batch comes whole
/// even past the budget (Kafka's `minOneMessage`, which
/// `ReplicaManager.readFromLocalLog` gives only until a partition answered
/// records); otherwise a first batch that does not fit the room gives no
/// records (Kafka's incomplete first entry answered as empty), and the next
/// fetch, whose first partition with records it may then be, gets it.
/// `None`: at [`Place::Worker`], a batch header was not in the page cache
/// (nothing was done; read it again at [`Place::Anywhere`]).
fn read_partition(
    r: &ToRead,
    log: Option<&Partition>,
    room: usize,
    first: bool,
    read_committed: bool,
    version: i16,
    place: Place,
) -> Option<Read> {
    // The log start offset is part of the answer from v5 on.
    let start_of = |s: u64| if version >= 5 { s as i64 } else { -1 };
    let w = &r.params;
    if let Some(log) = log {
        if unchanged(r, log, start_of) {
            return Some(Read::unchanged(&r.sent));
        }
    }
    let mut part = PartitionData::default()
        .with_partition_index(r.key.partition)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
        .with_aborted_transactions(read_committed.then(Vec::new))
        .with_records(Some(Bytes::new()));
    let mut range = None;
    // Record bytes copied into `part.records` instead (over the budget).
    let mut memory = 0;
    let mut answer_now = false;
    let mut diverging = false;
    match log {
        None => {
            // Kafka's answer for a partition it does not know carries an
            // empty (not null) list of aborted transactions.
            part.aborted_transactions = Some(Vec::new());
            part.error_code = ResponseError::UnknownTopicOrPartition.code();
            answer_now = true;
        }
        Some(log) => match check_epochs(log, w) {
            EpochCheck::Refuse(code) => {
                answer_now = true;
                part.error_code = code;
            }
            EpochCheck::Diverge(at) => {
                // Answered at once, like an error, but it is not one.
                answer_now = true;
                diverging = true;
                let l = log.log();
                part = part
                    .with_diverging_epoch(at)
                    .with_high_watermark(l.log_end_offset() as i64)
                    .with_last_stable_offset(log.last_stable_offset() as i64)
                    .with_log_start_offset(start_of(l.log_start_offset()));
            }
            EpochCheck::Read => {
                let budget = (w.max_bytes.max(0) as usize).min(room);
                // Taken first: it never passes the log end read after it.
                let lso = log.last_stable_offset();
                // read_committed reads only below the last stable offset.
                let upper = if read_committed { lso } else { u64::MAX };
                let (start, end) = (log.log().log_start_offset(), log.log().log_end_offset());
                let result = if w.fetch_offset < 0 {
                    Err(BrokerError::OffsetOutOfRange {
                        topic: r.key.topic.to_string(),
                        partition: r.key.partition,
                        offset: 0,
                        start,
                        end,
                    })
                } else if (budget == 0 && !first)
                    || (w.fetch_offset as u64 == end && start <= end)
                    || (read_committed
                        && (upper..end).contains(&(w.fetch_offset as u64))
                        && start <= w.fetch_offset as u64)
                {
                    // The response is full, or there is nothing to read
                    // (caught up; read_committed: between the LSO and the
                    // log end): no records, but no error. Past the log end
                    // the read answers OFFSET_OUT_OF_RANGE whatever the
                    // isolation, as Kafka's LocalLog.read checks the log end
                    // before the isolation's bound.
                    Ok((start, end, None))
                } else {
                    let read = || log.read_range_below(w.fetch_offset as u64, budget, first, upper);
                    match place {
                        Place::Worker => match pubsub_storage::fs::from_page_cache_only(read) {
                            Err(e) if e.is_would_block() => return None,
                            result => result,
                        },
                        Place::Anywhere => read(),
                    }
                };
                // The aborted transactions of the range read (Kafka's
                // upper bound: the offset after its last batch). A segment's
                // index is read from disk at its first use: that read leaves
                // the worker, as the range read does; once read, the answer
                // comes from memory on the worker.
                let result = result.and_then(|(start, end, read)| {
                    let aborted = match &read {
                        Some(r) if read_committed => {
                            let (from, upper) = (w.fetch_offset as u64, r.next_offset());
                            match log.aborted_transactions_in_memory(from, upper) {
                                Some(aborted) => aborted,
                                None => blocking(|| log.aborted_transactions(from, upper))?,
                            }
                        }
                        _ => Vec::new(),
                    };
                    Ok((start, end, read, aborted))
                });
                match result {
                    Ok((start, end, read, aborted)) => {
                        part = part
                            .with_high_watermark(end as i64)
                            .with_last_stable_offset(lso.min(end) as i64)
                            .with_log_start_offset(start_of(start));
                        if read_committed {
                            part.aborted_transactions = Some(
                                aborted
                                    .iter()
                                    .map(|t| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(t.producer_id))
                                            .with_first_offset(t.first_offset as i64)
                                    })
                                    .collect(),
                            );
                        }
                        let handles = log.log().handles();
                        match read.map(|read| hold_or_copy(read, handles)) {
                            Some(Ok(Records::File(read))) => range = Some(read),
                            Some(Ok(Records::Memory(b))) => {
                                memory = b.len();
                                part.records = Some(b);
                            }
                            Some(Err(e)) => {
                                // As any failed read: a storage error, the
                                // offsets unknown (-1).
                                tracing::warn!(
                                    topic = %r.key.topic.as_str(),
                                    partition = r.key.partition,
                                    error = %e,
                                    "could not copy a fetch range"
                                );
                                answer_now = true;
                                part = part
                                    .with_error_code(ResponseError::KafkaStorageError.code())
                                    .with_high_watermark(-1)
                                    .with_last_stable_offset(-1)
                                    .with_log_start_offset(-1);
                            }
                            None => {}
                        }
                    }
                    Err(e) => {
                        // As Kafka: an error leaves the offsets unknown (-1).
                        answer_now = true;
                        part = part.with_error_code(error_code(&e));
                    }
                }
            }
        },
    }
    let bytes = range.as_ref().map_or(memory, |r| r.len() as usize);
    let summary = ReadSummary {
        has_records: bytes > 0,
        high_watermark: part.high_watermark,
        log_start_offset: part.log_start_offset,
        error_code: part.error_code,
        diverging,
    };
    Some(Read {
        part: Some(Box::new(part)),
        range,
        bytes,
        answer_now,
        summary,
    })
}

/// A partition's records in an answer.
enum Records {
    /// Sent from the segment file (the range holds its descriptor).
    File(FileRange),
    /// Copied into memory.
    Memory(Bytes),
}

/// Keeps `range` as a file range while the descriptor budget of `handles`
/// holds, else copies it into memory and lets its descriptor go (see the
/// module doc). Only the copy reads the disk, so only it leaves the
/// worker (`block_in_place` costs thread hand-offs: not for the common case).
fn hold_or_copy(range: FileRange, handles: &Handles) -> std::io::Result<Records> {
    let stats = handles.stats();
    if stats.descriptors <= stats.limits.descriptors {
        return Ok(Records::File(range));
    }
    let mut out = Vec::new();
    blocking(|| range.read_into(&mut out))?;
    Ok(Records::Memory(Bytes::from(out)))
}

/// Whether a session's partition has nothing its client does not know: no
/// records past its (caught up) fetch offset, the high watermark and log
/// start offset last sent, epochs that pass. Two atomic loads and the epoch
/// check, no read and no answer built.
fn unchanged(r: &ToRead, log: &Partition, start_of: impl Fn(u64) -> i64) -> bool {
    let l = log.log();
    let (start, end) = (l.log_start_offset(), l.log_end_offset());
    r.sent.high_watermark >= 0
        && r.params.fetch_offset >= 0
        && r.params.fetch_offset as u64 == end
        && start <= end
        && end as i64 == r.sent.high_watermark
        && start_of(start) == r.sent.log_start_offset
        && matches!(check_epochs(log, &r.params), EpochCheck::Read)
}

/// What a partition's epochs say before any read.
enum EpochCheck {
    /// Read from the fetch offset.
    Read,
    /// Answer this error: a leader epoch other than the partition's, or a
    /// last fetched epoch the log cannot place (as Kafka:
    /// OFFSET_OUT_OF_RANGE), or a fetch below the log start offset while
    /// checking a last fetched epoch.
    Refuse(i16),
    /// The client's log diverges from this one: the end of its last
    /// fetched epoch here is below its fetch offset, or that epoch is not
    /// one this log knows (the largest before it is answered).
    Diverge(EpochEndOffset),
}

/// The epoch checks of one partition, from one look at its epochs.
fn check_epochs(log: &Partition, w: &FetchParams) -> EpochCheck {
    if let Some(code) = epoch_error(log.leader_epoch(), w.current_leader_epoch) {
        return EpochCheck::Refuse(code);
    }
    if w.last_fetched_epoch < 0 {
        return EpochCheck::Read;
    }
    let (epoch, end) = log.end_offset_for_epoch(w.last_fetched_epoch);
    let start = log.log().log_start_offset() as i64;
    if epoch < 0 || end < 0 || w.fetch_offset < start {
        EpochCheck::Refuse(ResponseError::OffsetOutOfRange.code())
    } else if epoch < w.last_fetched_epoch || end < w.fetch_offset {
        EpochCheck::Diverge(
            EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end),
        )
    } else {
        EpochCheck::Read
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pubsub_records::{BatchBuilder, NewRecord};
    use pubsub_storage::fs::RealFs;
    use pubsub_storage::{HandleLimits, Log, LogConfig};

    use super::*;

    fn batch(value: &str) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
        b.build().expect("build")
    }

    /// Within the descriptor budget a range stays in its file; past it, the
    /// same bytes come copied into memory and the range is let go.
    #[test]
    fn a_range_read_past_the_descriptor_budget_is_copied_into_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let handles = Handles::new(HandleLimits {
            descriptors: 1000,
            maps: 1000,
        });
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let (log, _) = Log::open_budgeted(dir.path(), config, Arc::new(RealFs), handles.clone())
            .expect("open");
        let value = "v".repeat(700);
        for _ in 0..3 {
            log.append(&mut batch(&value)).expect("append");
        }
        // One range per segment, each holding its file open.
        let ranges: Vec<FileRange> = (0..3)
            .map(|o| log.read_range(o, 1, true).expect("read").2.expect("range"))
            .collect();
        let bytes_of = |r: &FileRange| {
            let mut out = Vec::new();
            r.read_into(&mut out).expect("read range");
            out
        };
        assert!(matches!(
            hold_or_copy(ranges[0].clone(), &handles),
            Ok(Records::File(_))
        ));
        handles.set_limits(HandleLimits {
            descriptors: 1,
            maps: 1000,
        });
        let stats = handles.stats();
        assert!(
            stats.descriptors > 1,
            "held ranges keep their files open: {stats:?}"
        );
        for r in &ranges {
            match hold_or_copy(r.clone(), &handles).expect("copy") {
                Records::Memory(b) => assert_eq!(b.to_vec(), bytes_of(r)),
                Records::File(_) => panic!("a range held past the budget"),
            }
        }
    }
}
