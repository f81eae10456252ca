//! DescribeCluster (60): the cluster id and controller Metadata gives, this
//! broker as the one (never fenced) broker, and the operations the client
//! may do on the cluster (all of them without an authorizer; none without
//! Describe on it, as Kafka answers).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};

use pubsub_broker::security::acl::{ResourceType, CLUSTER_NAME};

use super::sb;
use crate::authorize::{Access, DESCRIBE_CLUSTER_OPERATIONS};
use crate::config::NODE_ID;
use crate::context::Ctx;

/// `endpoint_type` of a broker listener (v1+); 2 is a controller's.
const ENDPOINT_BROKERS: i8 = 1;

/// Kafka's "not asked for" value of an authorized-operations field.
pub(crate) const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeClusterRequest,
    _v: i16,
) -> DescribeClusterResponse {
    let access = Access::of(ctx);
    let operations = if req.include_cluster_authorized_operations {
        // Describe on the cluster shows the operations; without it, none.
        if access.filters(&DESCRIBE_CLUSTER_OPERATIONS, "") {
            access.operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            0
        }
    } else {
        OPERATIONS_NOT_ASKED
    };
    // Kafka answers with its own endpoint type, whatever was asked.
    let base = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_authorized_operations(operations);
    if req.endpoint_type != ENDPOINT_BROKERS {
        return base
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(sb(&format!(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type {}",
                endpoint_name(req.endpoint_type)
            ))))
            .with_cluster_id(sb(""))
            .with_controller_id(BrokerId(-1));
    }
    base.with_cluster_id(sb(ctx.broker.cluster_id()))
        .with_controller_id(BrokerId(NODE_ID))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(NODE_ID))
            .with_host(sb(&ctx.listener.advertised_host))
            .with_port(i32::from(ctx.listener.advertised_port))])
}

fn endpoint_name(t: i8) -> &'static str {
    match t {
        1 => "BROKER",
        2 => "CONTROLLER",
        _ => "UNKNOWN",
    }
}
