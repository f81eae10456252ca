//! Produce (0): append each partition's batches and answer with offsets
//! (nothing at all for acks=0).
//!
//! Appends happen at once, in request order. For `acks=all` the answer
//! then waits for the fsync of every partition written ([`Durable`]), off
//! the connection's reader, so the next requests are appended meanwhile
//! and share that fsync.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use pubsub_broker::{Acks, BrokerError, Partition};

use super::sb;
use crate::codes::{code, error_code};
use crate::context::{blocking, Ctx};

/// The outcome of the append phase.
#[derive(Debug)]
pub enum Produced {
    /// The answer (acks=1, or acks=all with nothing to wait for).
    Now(ProduceResponse),
    /// Appended; answer once [`Durable::wait`] returns.
    AfterFsync(Durable),
    /// acks=0: no answer at all.
    Nothing,
}

/// An `acks=all` answer waiting for fsyncs.
#[derive(Debug)]
pub struct Durable {
    resp: ProduceResponse,
    version: i16,
    /// (topic index, partition index in the answer, partition, last offset).
    waits: Vec<(usize, usize, Arc<Partition>, u64)>,
}

impl Durable {
    /// Blocks until every appended partition is fsynced; a partition whose
    /// fsync fails is answered with its error (KAFKA_STORAGE_ERROR) instead
    /// of offsets.
    pub fn wait(mut self) -> ProduceResponse {
        for (t, p, partition, last) in self.waits {
            if let Err(e) = partition.wait_durable(last) {
                let slot = &mut self.resp.responses[t].partition_responses[p];
                *slot = refused(slot.index, self.version, &e);
            }
        }
        self.resp
    }
}

pub fn handle(ctx: &Ctx, _h: &RequestHeader, req: ProduceRequest, version: i16) -> Produced {
    let acks = Acks::from_kafka(req.acks);
    // acks=all is appended like acks=1, then waited for.
    let append_acks = match acks {
        Some(Acks::All) => Acks::Leader,
        Some(a) => a,
        None => Acks::Leader,
    };
    let mut waits = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (t, topic) in req.topic_data.into_iter().enumerate() {
        let name: &str = &topic.name;
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let resp = match (acks, data.records) {
                (None, _) => base(data.index)
                    .with_error_code(code::INVALID_REQUIRED_ACKS)
                    .with_error_message(message(version, "acks must be 0, 1 or -1")),
                (_, None) => base(data.index)
                    .with_error_code(code::CORRUPT_MESSAGE)
                    .with_error_message(message(version, "no records")),
                (Some(acks), Some(records)) => {
                    let mut bytes = records.to_vec();
                    let appended = blocking(|| {
                        ctx.broker
                            .produce(name, data.index, &mut bytes, append_acks)
                    })
                    .and_then(|r| {
                        let wait = match acks {
                            Acks::All => Some(ctx.broker.partition(name, data.index)?),
                            _ => None,
                        };
                        Ok((r, wait))
                    });
                    match appended {
                        Ok((r, wait)) => {
                            if let Some(part) = wait {
                                waits.push((t, p, part, r.last_offset));
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
                            refused(data.index, version, &e)
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
    if req.acks == 0 {
        return Produced::Nothing;
    }
    let resp = ProduceResponse::default().with_responses(responses);
    if waits.is_empty() {
        Produced::Now(resp)
    } else {
        Produced::AfterFsync(Durable {
            resp,
            version,
            waits,
        })
    }
}

fn base(index: i32) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

fn refused(index: i32, version: i16, e: &BrokerError) -> PartitionProduceResponse {
    base(index)
        .with_error_code(error_code(e))
        .with_error_message(message(version, &e.to_string()))
}

/// Error messages are part of the answer from v8 on.
fn message(version: i16, text: &str) -> Option<kafka_protocol::protocol::StrBytes> {
    (version >= 8).then(|| sb(text))
}
