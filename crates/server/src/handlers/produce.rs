//! Produce (0): append each partition's batches and answer with offsets
//! (nothing at all for acks=0).
//!
//! Appends happen at once, in request order. For `acks=all` the answer
//! then waits for the fsync of every partition written ([`Durable`]), off
//! the connection's reader, so the next requests are appended meanwhile
//! and share that fsync.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use pubsub_broker::{Acks, BrokerError, ListedOffset, OffsetSpec, PendingSync};

use super::sb;
use crate::codes::error_code;
use crate::context::{blocking, Ctx};
use crate::dispatch::{encode_response, Reply};
use crate::error::ServerError;

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
/// answer is final.
pub fn reply(
    ctx: &Ctx,
    h: &RequestHeader,
    req: ProduceRequest,
    version: i16,
    slot: usize,
) -> Result<Reply, ServerError> {
    let acks = req.acks;
    let (resp, waits) = blocking(|| append(ctx, req, version));
    if acks == 0 {
        ctx.metrics.errors_in(slot, &resp);
        return Ok(Reply::Nothing);
    }
    let id = h.correlation_id;
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

/// Appends every partition's batches, in request order; acks=all appends
/// return the fsync they still owe.
#[allow(clippy::type_complexity)]
fn append(
    ctx: &Ctx,
    req: ProduceRequest,
    version: i16,
) -> (ProduceResponse, Vec<(usize, usize, PendingSync)>) {
    let acks = Acks::from_kafka(req.acks);
    let mut waits = Vec::new();
    // Storage rewrites offsets in place: each partition's records are
    // copied once into this buffer, reused across partitions.
    let mut bytes = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (t, topic) in req.topic_data.into_iter().enumerate() {
        let name: &str = &topic.name;
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let resp = match (acks, data.records) {
                (None, _) => base(data.index)
                    .with_error_code(ResponseError::InvalidRequiredAcks.code())
                    .with_error_message(message(version, "acks must be 0, 1 or -1")),
                (_, None) => base(data.index)
                    .with_error_code(ResponseError::CorruptMessage.code())
                    .with_error_message(message(version, "no records")),
                (Some(acks), Some(records)) => {
                    bytes.clear();
                    bytes.extend_from_slice(&records);
                    let appended = match acks {
                        Acks::All => ctx
                            .broker
                            .produce_then_sync(name, data.index, &mut bytes)
                            .map(|(r, sync)| (r, Some(sync))),
                        _ => ctx
                            .broker
                            .produce(name, data.index, &mut bytes, acks)
                            .map(|r| (r, None)),
                    };
                    match appended {
                        Ok((r, sync)) => {
                            if let Some(sync) = sync {
                                waits.push((t, p, sync));
                            }
                            base(data.index)
                                .with_base_offset(r.base_offset as i64)
                                .with_log_append_time_ms(r.log_append_time)
                                .with_log_start_offset(if version >= 5 {
                                    r.log_start_offset as i64
                                } else {
                                    -1
                                })
                        }
                        Err(e) => {
                            tracing::debug!(topic = name, partition = data.index, error = %e, "produce refused");
                            let resp = refused(data.index, version, &e);
                            // Kafka tells the log start offset with every
                            // refusal except those where the partition or the
                            // batch itself is the problem.
                            let unknown_partition_info = [
                                ResponseError::UnknownTopicOrPartition,
                                ResponseError::NotLeaderOrFollower,
                                ResponseError::MessageTooLarge,
                                ResponseError::RecordListTooLarge,
                                ResponseError::CorruptMessage,
                                ResponseError::KafkaStorageError,
                            ]
                            .iter()
                            .any(|c| c.code() == resp.error_code);
                            match ctx
                                .broker
                                .list_offset(name, data.index, OffsetSpec::Earliest)
                            {
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
    let code = error_code(e);
    // Kafka sends no message with MESSAGE_TOO_LARGE, so clients show the
    // error's own description ("The request included a message larger than
    // the max message size the server will accept.").
    let text = (code != ResponseError::MessageTooLarge.code()).then(|| e.to_string());
    base(index)
        .with_error_code(code)
        .with_error_message(text.and_then(|t| message(version, &t)))
}

/// Error messages are part of the answer from v8 on.
fn message(version: i16, text: &str) -> Option<kafka_protocol::protocol::StrBytes> {
    (version >= 8).then(|| sb(text))
}
