//! Where the error codes are in each response this server sends: the
//! top-level code and every per-topic, per-partition, per-group or
//! per-member code. [`Metrics`](super::Metrics) counts every non-zero one.

use kafka_protocol::messages::{
    AlterConfigsResponse, ApiVersionsResponse, CreateAclsResponse, CreatePartitionsResponse,
    CreateTopicsResponse, DeleteAclsResponse, DeleteGroupsResponse, DeleteRecordsResponse,
    DeleteTopicsResponse, DescribeAclsResponse, DescribeClusterResponse, DescribeConfigsResponse,
    DescribeGroupsResponse, DescribeLogDirsResponse, DescribeProducersResponse,
    DescribeTopicPartitionsResponse, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    IncrementalAlterConfigsResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, ListOffsetsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse, ProduceResponse,
    SyncGroupResponse,
};
use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};

/// A response whose error codes can be listed.
pub trait ErrorCodes {
    /// Calls `f` with every error code in the response (zeros included).
    fn error_codes(&self, f: &mut dyn FnMut(i16));
}

impl ErrorCodes for ProduceResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.responses {
            for p in &t.partition_responses {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for FetchResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for t in &self.responses {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for ListOffsetsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for t in &self.topics {
            f(t.error_code);
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for OffsetCommitResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for t in &self.topics {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
        for g in &self.groups {
            f(g.error_code);
            for t in &g.topics {
                for p in &t.partitions {
                    f(p.error_code);
                }
            }
        }
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for c in &self.coordinators {
            f(c.error_code);
        }
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for m in &self.members {
            f(m.error_code);
        }
    }
}

impl ErrorCodes for DescribeGroupsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for g in &self.groups {
            f(g.error_code);
        }
    }
}

impl ErrorCodes for CreateTopicsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            f(t.error_code);
        }
    }
}

impl ErrorCodes for DeleteTopicsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.responses {
            f(t.error_code);
        }
    }
}

impl ErrorCodes for DescribeConfigsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for DescribeLogDirsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for CreatePartitionsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for DeleteGroupsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for IncrementalAlterConfigsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.responses {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for CreateAclsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for DeleteAclsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.filter_results {
            f(r.error_code);
            for m in &r.matching_acls {
                f(m.error_code);
            }
        }
    }
}

/// Responses whose codes are per partition, in topics.
macro_rules! per_partition {
    ($($t:ty),*) => {$(
        impl ErrorCodes for $t {
            fn error_codes(&self, f: &mut dyn FnMut(i16)) {
                for t in &self.topics {
                    for p in &t.partitions {
                        f(p.error_code);
                    }
                }
            }
        }
    )*};
}

per_partition!(
    DeleteRecordsResponse,
    OffsetForLeaderEpochResponse,
    DescribeProducersResponse
);

impl ErrorCodes for AlterConfigsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.responses {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for OffsetDeleteResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for t in &self.topics {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeTopicPartitionsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            f(t.error_code);
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

/// Responses with one top-level code only.
macro_rules! top_level {
    ($($t:ty),*) => {$(
        impl ErrorCodes for $t {
            fn error_codes(&self, f: &mut dyn FnMut(i16)) {
                f(self.error_code);
            }
        }
    )*};
}
top_level!(
    ApiVersionsResponse,
    DescribeAclsResponse,
    DescribeClusterResponse,
    HeartbeatResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    ListGroupsResponse,
    SyncGroupResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
    kafka_protocol::messages::AddOffsetsToTxnResponse,
    kafka_protocol::messages::EndTxnResponse,
    kafka_protocol::messages::ListTransactionsResponse
);

impl ErrorCodes for kafka_protocol::messages::DescribeTransactionsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.transaction_states {
            f(t.error_code);
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::AddPartitionsToTxnResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        let topics = self
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .chain(&self.results_by_topic_v3_and_below);
        for t in topics {
            for p in &t.results_by_partition {
                f(p.partition_error_code);
            }
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::TxnOffsetCommitResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                f(p.error_code);
            }
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::DescribeUserScramCredentialsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        f(self.error_code);
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::AlterUserScramCredentialsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for r in &self.results {
            f(r.error_code);
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::WriteTxnMarkersResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for m in &self.markers {
            for t in &m.topics {
                for p in &t.partitions {
                    f(p.error_code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    #[test]
    fn produce_lists_every_partition_code() {
        let resp = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![
                PartitionProduceResponse::default().with_error_code(3),
                PartitionProduceResponse::default(),
            ]),
            TopicProduceResponse::default().with_partition_responses(vec![
                PartitionProduceResponse::default().with_error_code(56),
            ]),
        ]);
        let mut codes = Vec::new();
        resp.error_codes(&mut |c| codes.push(c));
        assert_eq!(codes, vec![3, 0, 56]);
    }
}
