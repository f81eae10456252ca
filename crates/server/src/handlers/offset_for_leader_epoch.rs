//! OffsetForLeaderEpoch (23): where a leader epoch ended in a partition's
//! log, so a consumer can tell whether the log was truncated under its
//! position (after a crash lost an unsynced tail). Answered from the
//! partition's epoch cache as Kafka's leader answers; `current_leader_epoch`
//! is checked first (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH
//! when newer).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader,
};

use crate::authorize::{Access, OFFSET_FOR_LEADER_EPOCH};
use crate::codes::{epoch_error, error_code};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let access = Access::of(ctx);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = access.allows(&OFFSET_FOR_LEADER_EPOCH, &t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        return base.with_error_code(OFFSET_FOR_LEADER_EPOCH.error);
                    }
                    match ctx.broker.partition(&t.topic, p.partition) {
                        Err(e) => base.with_error_code(error_code(&e)),
                        Ok(part) => {
                            match epoch_error(part.leader_epoch(), p.current_leader_epoch) {
                                Some(code) => base.with_error_code(code),
                                None => {
                                    let (epoch, end) = part.end_offset_for_epoch(p.leader_epoch);
                                    base.with_leader_epoch(epoch).with_end_offset(end)
                                }
                            }
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
