//! OffsetDelete (47): removes a group's committed offsets for partitions
//! (`kafka-consumer-groups --delete-offsets`), as tombstones in
//! `__consumer_offsets`. Refused per partition while the group's members
//! consume the topic (GROUP_SUBSCRIBED_TO_TOPIC); partitions that do not exist
//! answer UNKNOWN_TOPIC_OR_PARTITION; an unknown group
//! GROUP_ID_NOT_FOUND for the whole request.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use super::topic_name;
use crate::authorize::{Access, OFFSET_DELETE_GROUP, OFFSET_DELETE_TOPIC};
use crate::codes::{group_error_code, NONE};
use crate::context::{blocking, Ctx};

fn topic_result(name: &str, partitions: Vec<(i32, i16)>) -> OffsetDeleteResponseTopic {
    OffsetDeleteResponseTopic::default()
        .with_name(topic_name(name))
        .with_partitions(
            partitions
                .into_iter()
                .map(|(p, error)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(error)
                })
                .collect(),
        )
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: OffsetDeleteRequest,
    _v: i16,
) -> OffsetDeleteResponse {
    let access = Access::of(ctx);
    if !access.allows(&OFFSET_DELETE_GROUP, &req.group_id) {
        return OffsetDeleteResponse::default().with_error_code(OFFSET_DELETE_GROUP.error);
    }
    let mut asked = Vec::new();
    let mut unknown = Vec::new();
    let code = ResponseError::UnknownTopicOrPartition.code();
    for t in &req.topics {
        if !access.allows(&OFFSET_DELETE_TOPIC, &t.name) {
            let refused = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, OFFSET_DELETE_TOPIC.error));
            unknown.push(topic_result(&t.name, refused.collect()));
            continue;
        }
        let count = ctx.broker.partition_count(&t.name).map_or(0, |c| c as i32);
        let (known, missing): (Vec<i32>, Vec<i32>) = t
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .partition(|p| (0..count).contains(p));
        asked.extend(known.into_iter().map(|p| (t.name.to_string(), p)));
        if !missing.is_empty() {
            unknown.push(topic_result(
                &t.name,
                missing.into_iter().map(|p| (p, code)).collect(),
            ));
        }
    }
    let deleted = blocking(|| {
        ctx.broker
            .coordinator()
            .delete_offsets(ctx.broker.offsets_store(), &req.group_id, &asked)
    });
    let results = match deleted {
        Ok(results) => results,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(group_error_code(&e)),
    };
    // Per topic, in the order asked, then the unknown topics (as Kafka).
    let mut topics: Vec<(String, Vec<(i32, i16)>)> = Vec::new();
    for ((topic, partition), result) in results {
        let code = match result {
            Ok(()) => NONE,
            Err(e) => group_error_code(&e),
        };
        match topics.last_mut() {
            Some((t, ps)) if *t == topic => ps.push((partition, code)),
            _ => topics.push((topic, vec![(partition, code)])),
        }
    }
    let mut out: Vec<OffsetDeleteResponseTopic> = topics
        .into_iter()
        .map(|(t, ps)| topic_result(&t, ps))
        .collect();
    out.extend(unknown);
    OffsetDeleteResponse::default().with_topics(out)
}
