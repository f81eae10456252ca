//! Fetch (1): whole batches from each partition's fetch offset; waits up to
//! `max_wait_ms` for `min_bytes` (a long poll woken by appends). Fetch
//! sessions are declined (session id 0): every fetch is a full fetch.
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

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, RequestHeader, TopicName};
use pubsub_broker::notify::Wakeup;
use pubsub_broker::{BrokerError, Partition};
use tokio::time::Instant;

use crate::codes::{epoch_error, error_code};
use crate::context::{blocking, Ctx};
use crate::fetch_response::FetchFiles;

/// The longest a fetch may wait, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

struct Wanted {
    topic: TopicName,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// -1: none named.
    current_leader_epoch: i32,
    /// -1: none named.
    last_fetched_epoch: i32,
    log: Option<Arc<Partition>>,
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: FetchRequest,
    version: i16,
) -> (FetchResponse, FetchFiles) {
    let wakeup = Wakeup::new();
    let mut wanted = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let log = ctx.broker.partition(&t.topic, p.partition).ok();
            if let Some(log) = &log {
                log.subscribe(&wakeup);
            }
            wanted.push(Wanted {
                topic: t.topic.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
                log,
            });
        }
    }
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
    let (responses, files) = loop {
        let mut files = FetchFiles::new();
        let (responses, total, errors) =
            read_all(&wanted, max_bytes, read_committed, version, &mut files);
        if total >= min_bytes.max(1) || errors || Instant::now() >= deadline || *shutdown.borrow() {
            break (responses, files);
        }
        tokio::select! {
            _ = wakeup.wait_async() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    };
    for w in &wanted {
        if let Some(log) = &w.log {
            log.unsubscribe(&wakeup);
        }
    }
    let resp = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    (resp, files)
}

/// Reads every partition once (the ranges of their records go in `files`);
/// returns the response, the record bytes and whether any partition had an
/// error (answered at once, like Kafka).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    version: i16,
    files: &mut FetchFiles,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    // The log start offset is part of the answer from v5 on.
    let start_of = |s: u64| if version >= 5 { s as i64 } else { -1 };
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut total = 0usize;
    let mut errors = false;
    for w in wanted {
        let mut part = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
            .with_aborted_transactions(read_committed.then(Vec::new))
            .with_records(Some(Bytes::new()));
        match &w.log {
            None => {
                // Kafka's answer for a partition it does not know carries an
                // empty (not null) list of aborted transactions.
                part.aborted_transactions = Some(Vec::new());
                part.error_code = ResponseError::UnknownTopicOrPartition.code();
                errors = true;
            }
            Some(log) => match check_epochs(log, w) {
                EpochCheck::Refuse(code) => {
                    errors = true;
                    part.error_code = code;
                }
                EpochCheck::Diverge(at) => {
                    // Answered at once, like an error, but it is not one.
                    errors = true;
                    let l = log.log();
                    part = part
                        .with_diverging_epoch(at)
                        .with_high_watermark(l.log_end_offset() as i64)
                        .with_last_stable_offset(l.log_end_offset() as i64)
                        .with_log_start_offset(start_of(l.log_start_offset()));
                }
                EpochCheck::Read => {
                    let budget = w.max_bytes.min(max_bytes.saturating_sub(total));
                    let result = if w.offset < 0 {
                        Err(BrokerError::OffsetOutOfRange {
                            topic: w.topic.to_string(),
                            partition: w.partition,
                            offset: 0,
                            start: log.log().log_start_offset(),
                            end: log.log().log_end_offset(),
                        })
                    } else if budget == 0 && total > 0 {
                        // The response is full: nothing more, but no error.
                        let l = log.log();
                        Ok((l.log_start_offset(), l.log_end_offset(), None))
                    } else {
                        // The first batch always comes whole, even past the budget.
                        blocking(|| log.read_range(w.offset as u64, budget.max(1)))
                    };
                    match result {
                        Ok((start, end, range)) => {
                            if let Some(range) = range {
                                total += range.len() as usize;
                                files.insert((w.topic.clone(), w.partition), range);
                            }
                            part = part
                                .with_high_watermark(end as i64)
                                .with_last_stable_offset(end as i64)
                                .with_log_start_offset(start_of(start));
                        }
                        Err(e) => {
                            // As Kafka: an error leaves the offsets unknown (-1).
                            errors = true;
                            part = part.with_error_code(error_code(&e));
                        }
                    }
                }
            },
        }
        match topics.last_mut() {
            Some(t) if t.topic == w.topic => t.partitions.push(part),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(w.topic.clone())
                    .with_partitions(vec![part]),
            ),
        }
    }
    (topics, total, errors)
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
fn check_epochs(log: &Partition, w: &Wanted) -> EpochCheck {
    if let Some(code) = epoch_error(log.leader_epoch(), w.current_leader_epoch) {
        return EpochCheck::Refuse(code);
    }
    if w.last_fetched_epoch < 0 {
        return EpochCheck::Read;
    }
    let (epoch, end) = log.end_offset_for_epoch(w.last_fetched_epoch);
    let start = log.log().log_start_offset() as i64;
    if epoch < 0 || end < 0 || w.offset < start {
        EpochCheck::Refuse(ResponseError::OffsetOutOfRange.code())
    } else if epoch < w.last_fetched_epoch || end < w.offset {
        EpochCheck::Diverge(
            EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end),
        )
    } else {
        EpochCheck::Read
    }
}
