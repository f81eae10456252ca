//! DescribeTopicPartitions (75): Metadata's partition answer for named
//! topics (or every topic), paginated as Kafka does: topics in name order,
//! at most `response_partition_limit` partitions (capped at Kafka's 2000)
//! per answer, and a `next_cursor` naming the first partition left out.
//! Kafka 4.x `kafka-topics --describe` and `AdminClient.describeTopics` use
//! it.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, RequestHeader,
};
use pubsub_broker::names::{is_internal, validate_topic_name};
use pubsub_broker::security::acl::ResourceType;

use super::topic_name;
use crate::authorize::{Access, DESCRIBE_TOPIC_PARTITIONS};
use crate::config::NODE_ID;
use crate::context::Ctx;

/// Kafka's `max.request.partition.size.limit` default: the most partitions
/// one answer carries, whatever the request asks.
const MAX_PARTITIONS_PER_ANSWER: i32 = 2000;

fn partition(index: i32, leader_epoch: i32) -> DescribeTopicPartitionsResponsePartition {
    let me = vec![BrokerId(NODE_ID)];
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(index)
        .with_leader_id(BrokerId(NODE_ID))
        .with_leader_epoch(leader_epoch)
        .with_replica_nodes(me.clone())
        .with_isr_nodes(me)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
}

/// Kafka's answer to a request it refuses as a whole: every named topic
/// with the error.
fn refused(req: &DescribeTopicPartitionsRequest, error: i16) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(t.name.clone()))
                    .with_error_code(error)
            })
            .collect(),
    )
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeTopicPartitionsRequest,
    _v: i16,
) -> DescribeTopicPartitionsResponse {
    let broker = &ctx.broker;
    let access = Access::of(ctx);
    let all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    let after_cursor = |name: &str| cursor.as_ref().is_none_or(|(c, _)| name >= c.as_str());
    // Sorted and without duplicates, from the cursor's topic on.
    let names: BTreeSet<String> = if all {
        broker
            .topics(false)
            .into_iter()
            .filter(|n| after_cursor(n))
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| after_cursor(n))
            .collect()
    };
    if let (false, Some((c, _))) = (all, &cursor) {
        if !names.contains(c) {
            return refused(&req, ResponseError::InvalidRequest.code());
        }
    }
    // At least one partition per answer, whatever is asked.
    let mut remaining = req
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_ANSWER);
    let mut out = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            out.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(0),
            );
            break;
        }
        let topic = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(topic_name(&name)))
            .with_is_internal(is_internal(&name));
        // Listing all: left out; named: refused.
        if !access.filters(&DESCRIBE_TOPIC_PARTITIONS, &name) {
            if !all {
                access.log_denial(&DESCRIBE_TOPIC_PARTITIONS, &name);
                let refused = topic.with_error_code(DESCRIBE_TOPIC_PARTITIONS.error);
                out.topics.push(refused.with_is_internal(false));
            }
            continue;
        }
        let operations = access.operations(ResourceType::Topic, &name);
        let Some(count) = broker.partition_count(&name).map(|c| c as i32) else {
            if !all {
                let error = match validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                out.topics.push(
                    topic
                        .with_error_code(error.code())
                        .with_topic_authorized_operations(operations),
                );
            }
            continue;
        };
        let start = match &cursor {
            Some((c, p)) if *c == name => *p,
            _ => 0,
        };
        let upper = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start.max(0)..upper)
            .map(|p| {
                let epoch = broker.leader_epoch(&name, p).unwrap_or(0);
                partition(p, epoch)
            })
            .collect();
        let taken = partitions.len() as i32;
        out.topics.push(
            topic
                .with_topic_id(broker.topic_id(&name).unwrap_or_default())
                .with_partitions(partitions)
                .with_topic_authorized_operations(operations),
        );
        if upper < count {
            out.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(upper),
            );
            break;
        }
        remaining -= taken;
    }
    out
}
