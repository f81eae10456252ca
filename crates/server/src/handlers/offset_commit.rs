//! OffsetCommit (8): stores committed offsets (with their metadata); answered
//! once they are durable.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};
use pubsub_broker::group::{CommitEntry, CommitRequest};
use pubsub_broker::wall_clock_ms;

use crate::authorize::{Access, OFFSET_COMMIT_GROUP, OFFSET_COMMIT_TOPIC};
use crate::codes::{group_error_code, NONE};
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: OffsetCommitRequest,
    _v: i16,
) -> OffsetCommitResponse {
    let access = Access::of(ctx);
    let group_allowed = access.allows(&OFFSET_COMMIT_GROUP, &req.group_id);
    let mut entries = Vec::new();
    // Per topic, per partition: does it exist (decided once, answered so).
    let mut exists: Vec<Vec<bool>> = Vec::with_capacity(req.topics.len());
    // Per topic: the refusal of an unauthorized one.
    let mut refused: Vec<Option<i16>> = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let refusal = if !group_allowed {
            Some(OFFSET_COMMIT_GROUP.error)
        } else if !access.allows(&OFFSET_COMMIT_TOPIC, &t.name) {
            Some(OFFSET_COMMIT_TOPIC.error)
        } else {
            None
        };
        refused.push(refusal);
        let known = ctx
            .broker
            .partition_count(&t.name)
            .filter(|_| refusal.is_none());
        let mut here = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let found =
                known.is_some_and(|n| p.partition_index >= 0 && (p.partition_index as u32) < n);
            here.push(found);
            if found {
                entries.push(CommitEntry {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                });
            }
        }
        exists.push(here);
    }
    let commit = CommitRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        entries,
    };
    let group_error = match blocking(|| {
        if !group_allowed {
            return Ok(());
        }
        ctx.broker.coordinator().commit(
            ctx.broker.offsets_store(),
            commit,
            ctx.broker.now_ms(),
            wall_clock_ms(),
        )
    }) {
        Ok(()) => NONE,
        Err(e) => group_error_code(&e),
    };
    let topics = req
        .topics
        .iter()
        .zip(exists)
        .zip(refused)
        .map(|((t, exists), refused)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(exists)
                        .map(|(p, exists)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(if let Some(code) = refused {
                                    code
                                } else if exists {
                                    group_error
                                } else {
                                    ResponseError::UnknownTopicOrPartition.code()
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
