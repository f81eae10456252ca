//! OffsetFetch (9): committed offsets (-1 where none) with their metadata.
//! Offsets committed in a transaction not yet ended are not returned; with
//! `require_stable` (v7+) their partitions answer UNSTABLE_OFFSET_COMMIT,
//! as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader};

use super::{sb, topic_name};
use crate::authorize::{Access, OFFSET_FETCH_GROUP, OFFSET_FETCH_TOPIC};
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let access = Access::of(ctx);
    let group_allowed = access.allows(&OFFSET_FETCH_GROUP, &req.group_id);
    let asked: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| (t.name.to_string(), *p))
            })
            .collect()
    });
    let found = if group_allowed {
        ctx.broker
            .coordinator()
            .fetch_offsets(&req.group_id, asked.as_deref())
    } else {
        Vec::new()
    };
    let unstable = if group_allowed && req.require_stable {
        ctx.broker.coordinator().pending_offsets(&req.group_id)
    } else {
        Default::default()
    };
    let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
    for ((topic, partition), committed) in found {
        let pending = unstable.contains(&(topic.clone(), partition));
        // Asked for: refused by name; all topics: left out.
        let topic_allowed = access.allows(&OFFSET_FETCH_TOPIC, &topic);
        if !topic_allowed && asked.is_none() {
            continue;
        }
        let committed = committed.filter(|_| topic_allowed && !pending);
        let part = OffsetFetchResponsePartition::default()
            .with_error_code(if !topic_allowed {
                OFFSET_FETCH_TOPIC.error
            } else if pending {
                ResponseError::UnstableOffsetCommit.code()
            } else {
                0
            })
            .with_partition_index(partition)
            .with_committed_offset(committed.as_ref().map_or(-1, |c| c.offset))
            .with_committed_leader_epoch(match &committed {
                Some(c) if version >= 5 => c.leader_epoch,
                _ => -1,
            })
            .with_metadata(Some(sb(committed
                .as_ref()
                .map_or("", |c| c.metadata.as_str()))));
        match topics.iter_mut().find(|t| *t.name == *topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(vec![part]),
            ),
        }
    }
    if !group_allowed {
        return OffsetFetchResponse::default().with_error_code(OFFSET_FETCH_GROUP.error);
    }
    OffsetFetchResponse::default().with_topics(topics)
}
