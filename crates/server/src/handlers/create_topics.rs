//! CreateTopics (19): creates topics (or only checks, with `validate_only`).
//! A single node: the replication factor must be 1 or -1, and explicit
//! replica assignments may only name this broker.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use pubsub_broker::NewTopic;

use super::sb;
use crate::authorize::{Access, CREATE_TOPICS_CLUSTER, CREATE_TOPICS_CONFIGS, CREATE_TOPICS_TOPIC};
use crate::codes::{error_code, CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_TOPIC};
use crate::config::NODE_ID;
use crate::context::{blocking, Ctx};

/// What a creation request asks for, or why it cannot be served.
fn requested(
    t: &CreatableTopic,
) -> Result<(Option<u32>, BTreeMap<String, String>), super::Refusal> {
    if t.replication_factor != -1 && t.replication_factor != 1 {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "replication factor {} is not possible on a single broker",
                t.replication_factor
            ),
        ));
    }
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest.code(),
                "give either replica assignments or a partition count and replication factor"
                    .into(),
            ));
        }
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        let contiguous = indexes.iter().enumerate().all(|(i, p)| *p == i as i32);
        let local = t
            .assignments
            .iter()
            .all(|a| a.broker_ids.len() == 1 && *a.broker_ids[0] == NODE_ID);
        if !contiguous || !local {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                format!("assignments must cover partitions 0..n, each on broker {NODE_ID} alone"),
            ));
        }
        Some(indexes.len() as u32)
    } else if t.num_partitions == -1 {
        None
    } else if t.num_partitions <= 0 {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!("{} partitions: must be at least 1", t.num_partitions),
        ));
    } else {
        Some(t.num_partitions as u32)
    };
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        match &c.value {
            Some(v) => {
                configs.insert(c.name.to_string(), v.to_string());
            }
            None => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("{}: a null value", &*c.name),
                ));
            }
        }
    }
    Ok((partitions, configs))
}

fn described(entries: Vec<(String, String, bool)>) -> Vec<CreatableTopicConfigs> {
    entries
        .into_iter()
        .map(|(k, v, set)| {
            CreatableTopicConfigs::default()
                .with_name(sb(&k))
                .with_value(Some(sb(&v)))
                .with_config_source(if set {
                    CONFIG_SOURCE_TOPIC
                } else {
                    CONFIG_SOURCE_DEFAULT
                })
        })
        .collect()
}

type Outcome = Result<(u32, Vec<CreatableTopicConfigs>, Option<uuid::Uuid>), super::Refusal>;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut named: HashMap<&str, usize> = HashMap::with_capacity(req.topics.len());
    for t in &req.topics {
        *named.entry(&t.name).or_default() += 1;
    }
    // Checked one by one; the creations then go to the broker together, so
    // a request of a thousand topics costs a few filesystem syncs.
    let access = Access::of(ctx);
    let cluster_create = access.filters(&CREATE_TOPICS_CLUSTER, "");
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(req.topics.len());
    let mut to_create = Vec::new();
    for (i, t) in req.topics.iter().enumerate() {
        let outcome = if named.get(&**t.name).copied().unwrap_or(0) > 1 {
            Some(Err((
                ResponseError::InvalidRequest.code(),
                "the topic is named more than once in this request".to_string(),
            )))
        } else if !cluster_create && !access.allows(&CREATE_TOPICS_TOPIC, &t.name) {
            Some(Err((
                CREATE_TOPICS_TOPIC.error,
                "Authorization failed.".to_string(),
            )))
        } else {
            match requested(t) {
                Err(e) => Some(Err(e)),
                Ok((partitions, configs)) if req.validate_only => Some(
                    ctx.broker
                        .validate_new_topic(&t.name, partitions, &configs)
                        // Kafka answers a validated topic with a fresh id
                        // too, though it names no topic that exists.
                        .map(|(count, config)| {
                            (
                                count,
                                described(config.described(&configs)),
                                Some(uuid::Uuid::new_v4()),
                            )
                        })
                        .map_err(|e| (error_code(&e), e.to_string())),
                ),
                Ok((partitions, configs)) => {
                    to_create.push((
                        i,
                        NewTopic {
                            name: t.name.to_string(),
                            partitions,
                            configs,
                        },
                    ));
                    None
                }
            }
        };
        outcomes.push(outcome);
    }
    if !to_create.is_empty() {
        let (at, topics): (Vec<usize>, Vec<NewTopic>) = to_create.into_iter().unzip();
        let created = blocking(|| ctx.broker.create_topics(topics));
        for (i, r) in at.into_iter().zip(created) {
            outcomes[i] = Some(
                r.map(|d| (d.partitions.len() as u32, described(d.configs), Some(d.id)))
                    .map_err(|e| (error_code(&e), e.to_string())),
            );
        }
    }
    let mut results = Vec::with_capacity(req.topics.len());
    for (t, outcome) in req.topics.iter().zip(outcomes) {
        // No message on success: null, as Kafka answers.
        let base = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        let result = outcome.unwrap_or_else(|| {
            Err((
                ResponseError::UnknownServerError.code(),
                "the topic was not created".to_string(),
            ))
        });
        results.push(match result {
            // Partitions, replication and settings are answered from v5,
            // the topic id from v7; as Kafka's controller, only to a
            // principal that may DescribeConfigs the topic (else none, and
            // topic_config_error_code TOPIC_AUTHORIZATION_FAILED).
            Ok((count, configs, id)) if version >= 5 => {
                let base = base.with_topic_id(if version >= 7 {
                    id.unwrap_or_default()
                } else {
                    Default::default()
                });
                if access.filters(&CREATE_TOPICS_CONFIGS, &t.name) {
                    base.with_num_partitions(count as i32)
                        .with_replication_factor(1)
                        .with_configs(Some(configs))
                } else {
                    base.with_num_partitions(-1)
                        .with_replication_factor(-1)
                        .with_configs(Some(Vec::new()))
                        .with_topic_config_error_code(CREATE_TOPICS_CONFIGS.error)
                }
            }
            Ok(_) => base,
            Err((error, message)) if version >= 5 => base
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_error_code(error)
                .with_error_message(Some(sb(&message))),
            Err((error, message)) => base
                .with_error_code(error)
                .with_error_message(Some(sb(&message))),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}
