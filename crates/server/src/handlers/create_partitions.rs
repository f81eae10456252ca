//! CreatePartitions (37): grows a topic to a new partition count.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};
use pubsub_broker::{BrokerError, MAX_PARTITIONS};

use super::sb;
use crate::authorize::{Access, CREATE_PARTITIONS};
use crate::codes::error_code;
use crate::config::NODE_ID;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: CreatePartitionsRequest,
    _v: i16,
) -> CreatePartitionsResponse {
    let access = Access::of(ctx);
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            if !access.allows(&CREATE_PARTITIONS, &t.name) {
                return CreatePartitionsTopicResult::default().with_name(t.name).with_error_code(CREATE_PARTITIONS.error);
            }
            let local = t
                .assignments
                .as_ref()
                .is_none_or(|a| a.iter().all(|a| a.broker_ids.len() == 1 && *a.broker_ids[0] == NODE_ID));
            let current = ctx.broker.partition_count(&t.name);
            let result: Result<(), super::Refusal> = if !local {
                Err((ResponseError::InvalidReplicaAssignment.code(), format!("every partition lives on broker {NODE_ID}")))
            } else if t.count <= 0 {
                Err((ResponseError::InvalidPartitions.code(), format!("{} partitions: must be at least 1", t.count)))
            } else if req.validate_only {
                match current {
                    None => Err((ResponseError::UnknownTopicOrPartition.code(), format!("no topic {}", &*t.name))),
                    Some(n) if t.count as u32 <= n => {
                        let refusal = BrokerError::PartitionsNotIncreased { topic: t.name.to_string(), current: n, requested: t.count as u32 };
                        Err((ResponseError::InvalidPartitions.code(), refusal.to_string()))
                    }
                    Some(n) if t.count as u32 > MAX_PARTITIONS => Err((
                        ResponseError::InvalidPartitions.code(),
                        format!("topic has {n} partitions; the new count must be at most {MAX_PARTITIONS}"),
                    )),
                    Some(_) => Ok(()),
                }
            } else {
                blocking(|| ctx.broker.add_partitions(&t.name, t.count as u32)).map_err(|e| (error_code(&e), e.to_string()))
            };
            let base = CreatePartitionsTopicResult::default().with_name(t.name);
            match result {
                Ok(()) => base,
                Err((error, message)) => base.with_error_code(error).with_error_message(Some(sb(&message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
