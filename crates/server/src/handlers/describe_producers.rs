//! DescribeProducers (61): the idempotent and transactional producers with
//! state in each partition (id, epoch, last sequence, last batch timestamp,
//! the first offset of the open transaction, the coordinator epoch of the
//! last marker), as Kafka's `kafka-transactions describe-producers` and
//! AdminClient show them. -1 where there is none: no open transaction, no
//! marker written yet (markers here carry coordinator epoch 0: one
//! coordinator that never moves).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader,
};

use crate::authorize::{Access, DESCRIBE_PRODUCERS};
use crate::codes::error_code;
use crate::context::Ctx;

/// The coordinator epoch every marker of this broker carries.
const MARKER_COORDINATOR_EPOCH: i32 = 0;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeProducersRequest,
    _version: i16,
) -> DescribeProducersResponse {
    let access = Access::of(ctx);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = access.allows(&DESCRIBE_PRODUCERS, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let base = PartitionResponse::default().with_partition_index(index);
                    if !allowed {
                        return base.with_error_code(DESCRIBE_PRODUCERS.error);
                    }
                    match ctx.broker.partition(&t.name, index) {
                        Err(e) => base.with_error_code(error_code(&e)),
                        Ok(part) => base.with_active_producers(
                            part.active_producers()
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(if p.marked {
                                            MARKER_COORDINATOR_EPOCH
                                        } else {
                                            -1
                                        })
                                        .with_current_txn_start_offset(
                                            p.txn_first
                                                .and_then(|o| i64::try_from(o).ok())
                                                .unwrap_or(-1),
                                        )
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
