//! WriteTxnMarkers (27): COMMIT or ABORT markers of producers' transactions
//! written straight into partitions. On Kafka the transaction coordinator
//! sends it to partition leaders; here the coordinator writes its markers
//! in process, so the request comes from operators: `kafka-transactions
//! abort` (AdminClient `abortTransaction`) ends a hanging transaction of a
//! partition with an ABORT marker, which moves its last stable offset on.
//! Each marker is durable before it is answered. Needs ClusterAction on the
//! cluster, as on Kafka.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{RequestHeader, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use pubsub_broker::security::acl::CLUSTER_NAME;
use pubsub_records::{ControlRecord, ControlType};

use crate::authorize::{Access, WRITE_TXN_MARKERS};
use crate::codes::error_code;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: WriteTxnMarkersRequest,
    _version: i16,
) -> WriteTxnMarkersResponse {
    let allowed = Access::of(ctx).allows(&WRITE_TXN_MARKERS, CLUSTER_NAME);
    let markers = req
        .markers
        .into_iter()
        .map(|m| {
            let marker = ControlRecord {
                kind: if m.transaction_result {
                    ControlType::Commit
                } else {
                    ControlType::Abort
                },
                coordinator_epoch: m.coordinator_epoch,
            };
            let topics = m
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&index| {
                            let code = if !allowed {
                                WRITE_TXN_MARKERS.error
                            } else {
                                match blocking(|| {
                                    ctx.broker.write_txn_marker(
                                        &t.name,
                                        index,
                                        m.producer_id.0,
                                        m.producer_epoch,
                                        marker,
                                    )
                                }) {
                                    Ok(_) => 0,
                                    Err(e) => {
                                        tracing::debug!(error = %e, "WriteTxnMarkers refused");
                                        error_code(&e)
                                    }
                                }
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
