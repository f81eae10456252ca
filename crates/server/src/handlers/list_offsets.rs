//! ListOffsets (2): earliest (-2), latest (-1), max timestamp (-3) or the
//! first offset at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use pubsub_broker::OffsetSpec;

use crate::codes::error_code;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name: &str = &t.name;
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let spec = match p.timestamp {
                        -2 => OffsetSpec::Earliest,
                        -1 => OffsetSpec::Latest,
                        -3 => OffsetSpec::MaxTimestamp,
                        ts => OffsetSpec::Timestamp(ts),
                    };
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    // The epoch comes with an offset found; -1 without, as
                    // Kafka answers.
                    match blocking(|| ctx.broker.list_offset(name, p.partition_index, spec)) {
                        Ok(Some((offset, ts))) => base
                            .with_offset(offset)
                            .with_timestamp(ts)
                            .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
                        Ok(None) => base,
                        Err(e) => base.with_error_code(error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
