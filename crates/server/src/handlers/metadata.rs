//! Metadata (3): this broker, and topics with their partitions (creating
//! requested topics when allowed).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, RequestHeader};
use pubsub_broker::security::acl::{ResourceType, CLUSTER_NAME};
use uuid::Uuid;

use super::{sb, topic_name};
use crate::authorize::{
    Access, METADATA, METADATA_CLUSTER_OPERATIONS, METADATA_CREATE_CLUSTER, METADATA_CREATE_TOPIC,
};
use crate::codes::error_code;
use crate::config::NODE_ID;
use crate::context::{blocking, Ctx};

fn topic(ctx: &Ctx, name: &str, create: bool, version: i16) -> MetadataResponseTopic {
    let broker = &ctx.broker;
    let found = if create {
        blocking(|| broker.ensure_topic(name)).map(Some)
    } else {
        match broker.partition_count(name) {
            Some(n) => Ok(Some(n)),
            None => pubsub_broker::names::validate_topic_name(name).map(|()| None),
        }
    };
    let base = MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_is_internal(version >= 1 && pubsub_broker::names::is_internal(name))
        .with_topic_authorized_operations(i32::MIN);
    match found {
        Ok(Some(count)) => base
            .with_topic_id(if version >= 10 {
                broker.topic_id(name).unwrap_or_default()
            } else {
                Default::default()
            })
            .with_partitions(
                (0..count as i32)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(NODE_ID))
                            .with_leader_epoch(if version >= 7 {
                                broker.leader_epoch(name, p).unwrap_or(0)
                            } else {
                                -1
                            })
                            .with_replica_nodes(vec![BrokerId(NODE_ID)])
                            .with_isr_nodes(vec![BrokerId(NODE_ID)])
                    })
                    .collect(),
            ),
        Ok(None) => base.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
        Err(e) => base.with_error_code(error_code(&e)),
    }
}

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // Versions 0-3 always allowed auto-creation; later ones ask for it.
    let allow_create =
        ctx.broker.config().auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let access = Access::of(ctx);
    // Create on the cluster, or else on each missing topic.
    let create_any = allow_create && access.filters(&METADATA_CREATE_CLUSTER, "");
    let mut topics: Vec<MetadataResponseTopic> = match &req.topics {
        // v0: an empty list means all topics; v1+: null means all.
        None => all(ctx, &access, version),
        Some(list) if list.is_empty() && version == 0 => all(ctx, &access, version),
        Some(list) => list
            .iter()
            .map(|t| match &t.name {
                Some(n) if !n.is_empty() || t.topic_id.is_nil() => {
                    if !access.allows(&METADATA, n) {
                        return refused(Some(n), Uuid::nil());
                    }
                    let missing = allow_create && ctx.broker.partition_count(n).is_none();
                    if missing && !create_any && !access.allows(&METADATA_CREATE_TOPIC, n) {
                        return refused(Some(n), Uuid::nil());
                    }
                    topic(ctx, n, allow_create, version)
                }
                _ => by_id(ctx, &access, t.topic_id, version),
            })
            .collect(),
    };
    if req.include_topic_authorized_operations {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = access.operations(ResourceType::Topic, name);
            }
        }
    }
    let cluster_operations = match req.include_cluster_authorized_operations {
        false => i32::MIN,
        true if access.filters(&METADATA_CLUSTER_OPERATIONS, "") => {
            access.operations(ResourceType::Cluster, CLUSTER_NAME)
        }
        true => 0,
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(sb(&ctx.listener.advertised_host))
            .with_port(i32::from(ctx.listener.advertised_port))])
        .with_cluster_id((version >= 2).then(|| sb(ctx.broker.cluster_id())))
        .with_controller_id(BrokerId(if version >= 1 { NODE_ID } else { -1 }))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

/// A topic the client may not Describe (or create): named as asked (topic
/// ids are not secret, Kafka answers them too).
fn refused(name: Option<&str>, id: Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_error_code(METADATA.error)
        .with_topic_authorized_operations(i32::MIN)
}

/// A topic asked for by id (v10+, name null): described under its name, or
/// UNKNOWN_TOPIC_ID with the id and no name, as Kafka answers.
fn by_id(ctx: &Ctx, access: &Access, id: Uuid, version: i16) -> MetadataResponseTopic {
    match ctx.broker.topic_by_id(id) {
        Some(name) if !access.allows(&METADATA, &name) => refused(None, id),
        Some(name) => topic(ctx, &name, false, version),
        None => MetadataResponseTopic::default()
            .with_name(None)
            .with_topic_id(id)
            .with_error_code(ResponseError::UnknownTopicId.code())
            .with_topic_authorized_operations(i32::MIN),
    }
}

/// Every topic the client may Describe.
fn all(ctx: &Ctx, access: &Access, version: i16) -> Vec<MetadataResponseTopic> {
    ctx.broker
        .topics(false)
        .iter()
        .filter(|n| access.filters(&METADATA, n))
        .map(|n| topic(ctx, n, false, version))
        .collect()
}
