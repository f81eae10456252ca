//! DeleteRecords (21): moves partitions' log start offsets forward
//! (`offset` -1: the high watermark) and answers each partition's low
//! watermark, the log start offset afterwards, once it is durable.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};

use crate::authorize::{Access, DELETE_RECORDS};
use crate::codes::error_code;
use crate::context::{blocking, Ctx};

/// The low watermark Kafka answers with an error.
const INVALID_LOW_WATERMARK: i64 = -1;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DeleteRecordsRequest,
    _v: i16,
) -> DeleteRecordsResponse {
    let access = Access::of(ctx);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = access.allows(&DELETE_RECORDS, &t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match blocking(|| {
                        if !allowed {
                            return Err(None);
                        }
                        ctx.broker
                            .delete_records(&t.name, p.partition_index, p.offset)
                            .map_err(Some)
                    }) {
                        Ok(low) => base.with_low_watermark(low as i64),
                        Err(e) => base
                            .with_low_watermark(INVALID_LOW_WATERMARK)
                            .with_error_code(e.as_ref().map_or(DELETE_RECORDS.error, error_code)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
