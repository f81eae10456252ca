//! Produce (0): append each partition's batches and answer with offsets
//! (nothing at all for acks=0).

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use pubsub_broker::Acks;

use super::sb;
use crate::codes::{code, error_code};
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = Acks::from_kafka(req.acks);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name: &str = &topic.name;
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let base = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let resp = match (acks, p.records) {
                (None, _) => base
                    .with_error_code(code::INVALID_REQUIRED_ACKS)
                    .with_error_message(message(version, "acks must be 0, 1 or -1")),
                (_, None) => base
                    .with_error_code(code::CORRUPT_MESSAGE)
                    .with_error_message(message(version, "no records")),
                (Some(acks), Some(records)) => {
                    let mut bytes = records.to_vec();
                    match blocking(|| ctx.broker.produce(name, p.index, &mut bytes, acks)) {
                        Ok(r) => base
                            .with_base_offset(r.base_offset as i64)
                            .with_log_append_time_ms(r.log_append_time)
                            .with_log_start_offset(if version >= 5 {
                                r.log_start_offset as i64
                            } else {
                                -1
                            }),
                        Err(e) => {
                            tracing::debug!(topic = name, partition = p.index, error = %e, "produce refused");
                            base.with_error_code(error_code(&e))
                                .with_error_message(message(version, &e.to_string()))
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
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Error messages are part of the answer from v8 on.
fn message(version: i16, text: &str) -> Option<kafka_protocol::protocol::StrBytes> {
    (version >= 8).then(|| sb(text))
}
