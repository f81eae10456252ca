//! A request's answer when the whole request fails, before any handler
//! runs: Kafka's `AbstractRequest.getErrorResponse`, written once per API
//! ([`ErrorAnswer`]) and read from any request frame by [`answer`]. Kafka
//! builds it for a request that arrives out of turn during SASL
//! authentication (ILLEGAL_SASL_STATE, [`Failure::illegal_sasl_state`]).
//!
//! Each API's shape is Kafka's: one top-level code where the answer has
//! one; otherwise every topic, partition, group, resource or filter the
//! request names, each with the code (and the message where the answer
//! carries one: the failure's own words where Kafka takes `ApiError`'s
//! message, the code's standard words where it takes `Errors.message()`).
//! A Produce with `acks=0` has no answer (Kafka's is null), nor have an
//! OffsetFetch v1 or a DescribeUserScramCredentials asking for all (Kafka's
//! `getErrorResponse` fails on them, and the connection closes unanswered).

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use crate::dispatch::encode_response;

/// What failed the whole request.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The code every part of the answer carries.
    pub code: i16,
    /// The failure's own words (Kafka's `ApiError.message()`).
    pub message: String,
    /// The code's standard words (Kafka's `Errors.message()`).
    pub standard: &'static str,
}

impl Failure {
    /// A request other than SaslAuthenticate during the SASL exchange, in
    /// Kafka's words (`SaslServerAuthenticator`).
    pub fn illegal_sasl_state(key: ApiKey) -> Failure {
        Failure {
            code: ResponseError::IllegalSaslState.code(),
            message: format!(
                "Unexpected Kafka request of type {} during SASL authentication.",
                kafka_api_name(key)
            ),
            standard: "Request is not valid given the current SASL state.",
        }
    }

    fn message(&self) -> Option<StrBytes> {
        Some(StrBytes::from_string(self.message.clone()))
    }

    fn standard(&self) -> Option<StrBytes> {
        Some(StrBytes::from_static_str(self.standard))
    }
}

/// Kafka's `ApiKeys` name of `key` (`OFFSET_FOR_LEADER_EPOCH`): its
/// CamelCase name in upper snake case.
pub fn kafka_api_name(key: ApiKey) -> String {
    let mut out = String::new();
    for (i, c) in format!("{key:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The answer to `frame` (a whole request: header and body, no size)
/// whose every part failed with `failure(key)`: `None` when the frame is
/// not a request this server reads (unknown API, unsupported version,
/// undecodable) or the request has no answer.
pub fn answer(frame: &[u8], failure: impl FnOnce(ApiKey) -> Failure) -> Option<BytesMut> {
    if frame.len() < 8 {
        return None;
    }
    let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).ok()?;
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let (min, max) = crate::dispatch::supported(key)?;
    if version < min || version > max {
        return None;
    }
    let mut body = bytes::Bytes::copy_from_slice(frame);
    let header = RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
    let failure = failure(key);
    macro_rules! answers {
        ($($Key:ident => $Req:ty,)*) => {
            match key {
                $(ApiKey::$Key => {
                    let req = <$Req>::decode(&mut body, version).ok()?;
                    let resp = req.error_answer(version, &failure)?;
                    encode_response(key, version, header.correlation_id, &resp).ok()
                })*
                _ => None,
            }
        };
    }
    answers! {
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeConfigs => DescribeConfigsRequest,
        CreatePartitions => CreatePartitionsRequest,
        DeleteGroups => DeleteGroupsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        DeleteRecords => DeleteRecordsRequest,
        AlterConfigs => AlterConfigsRequest,
        OffsetDelete => OffsetDeleteRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        SaslHandshake => SaslHandshakeRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        DescribeAcls => DescribeAclsRequest,
        CreateAcls => CreateAclsRequest,
        DeleteAcls => DeleteAclsRequest,
    }
}

/// One request type's answer when all of it fails (Kafka's
/// `getErrorResponse` of that request).
pub trait ErrorAnswer {
    /// The answer's type.
    type Answer: Encodable;
    /// The answer at `version` whose every part carries `failure`; `None`
    /// when the request gets no answer.
    fn error_answer(self, version: i16, failure: &Failure) -> Option<Self::Answer>;
}

/// Answers with one top-level code (and nothing else but defaults).
macro_rules! top_level {
    ($($Req:ty => $Resp:ty,)*) => {$(
        impl ErrorAnswer for $Req {
            type Answer = $Resp;
            fn error_answer(self, _: i16, failure: &Failure) -> Option<$Resp> {
                Some(<$Resp>::default().with_error_code(failure.code))
            }
        }
    )*};
}

top_level! {
    HeartbeatRequest => HeartbeatResponse,
    LeaveGroupRequest => LeaveGroupResponse,
    ListGroupsRequest => ListGroupsResponse,
    ApiVersionsRequest => ApiVersionsResponse,
    AddOffsetsToTxnRequest => AddOffsetsToTxnResponse,
    EndTxnRequest => EndTxnResponse,
    DescribeLogDirsRequest => DescribeLogDirsResponse,
    OffsetDeleteRequest => OffsetDeleteResponse,
    ListTransactionsRequest => ListTransactionsResponse,
    SaslHandshakeRequest => SaslHandshakeResponse,
    SaslAuthenticateRequest => SaslAuthenticateResponse,
}

impl ErrorAnswer for SyncGroupRequest {
    type Answer = SyncGroupResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<SyncGroupResponse> {
        Some(SyncGroupResponse::default().with_error_code(failure.code))
    }
}

impl ErrorAnswer for InitProducerIdRequest {
    type Answer = InitProducerIdResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<InitProducerIdResponse> {
        Some(
            InitProducerIdResponse::default()
                .with_error_code(failure.code)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        )
    }
}

impl ErrorAnswer for JoinGroupRequest {
    type Answer = JoinGroupResponse;
    fn error_answer(self, version: i16, failure: &Failure) -> Option<JoinGroupResponse> {
        // Kafka's UNKNOWN_PROTOCOL_NAME: empty before v7, null after.
        let protocol_name = (version < 7).then(StrBytes::default);
        Some(
            JoinGroupResponse::default()
                .with_error_code(failure.code)
                .with_generation_id(-1)
                .with_protocol_name(protocol_name),
        )
    }
}

impl ErrorAnswer for DescribeClusterRequest {
    type Answer = DescribeClusterResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeClusterResponse> {
        Some(
            DescribeClusterResponse::default()
                .with_error_code(failure.code)
                .with_error_message(failure.message()),
        )
    }
}

impl ErrorAnswer for DescribeAclsRequest {
    type Answer = DescribeAclsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeAclsResponse> {
        Some(
            DescribeAclsResponse::default()
                .with_error_code(failure.code)
                .with_error_message(failure.message()),
        )
    }
}

impl ErrorAnswer for FindCoordinatorRequest {
    type Answer = FindCoordinatorResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<FindCoordinatorResponse> {
        // Versions before 4 (all this server speaks): one coordinator, none.
        Some(
            FindCoordinatorResponse::default()
                .with_error_code(failure.code)
                .with_error_message(failure.standard())
                .with_node_id((-1).into())
                .with_host(StrBytes::default())
                .with_port(-1),
        )
    }
}

impl ErrorAnswer for ProduceRequest {
    type Answer = ProduceResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<ProduceResponse> {
        use produce_response::{PartitionProduceResponse, TopicProduceResponse};
        if self.acks == 0 {
            return None;
        }
        let mut topics: Vec<TopicProduceResponse> = Vec::new();
        // Each name's entry in `topics`: a lookup per topic, not a scan.
        let mut at: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
        for t in self.topic_data {
            let partitions = t.partition_data.iter().map(|p| {
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(failure.code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(failure.message())
            });
            // One entry per topic, as Kafka's map of partitions.
            match at.get(&(t.name.clone(), t.topic_id)) {
                Some(&i) => topics[i].partition_responses.extend(partitions),
                None => {
                    at.insert((t.name.clone(), t.topic_id), topics.len());
                    topics.push(
                        TopicProduceResponse::default()
                            .with_name(t.name)
                            .with_topic_id(t.topic_id)
                            .with_partition_responses(partitions.collect()),
                    );
                }
            }
        }
        Some(ProduceResponse::default().with_responses(topics))
    }
}

impl ErrorAnswer for FetchRequest {
    type Answer = FetchResponse;
    fn error_answer(self, version: i16, failure: &Failure) -> Option<FetchResponse> {
        use fetch_response::{FetchableTopicResponse, PartitionData};
        // Before v13 every partition carries the code too.
        let topics = if version < 13 {
            self.topics
                .into_iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic)
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(failure.code)
                                        .with_high_watermark(-1)
                                })
                                .collect(),
                        )
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(
            FetchResponse::default()
                .with_error_code(failure.code)
                .with_session_id(self.session_id)
                .with_responses(topics),
        )
    }
}

impl ErrorAnswer for ListOffsetsRequest {
    type Answer = ListOffsetsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<ListOffsetsResponse> {
        use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(failure.code)
                                    .with_offset(-1)
                                    .with_timestamp(-1)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(ListOffsetsResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for MetadataRequest {
    type Answer = MetadataResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<MetadataResponse> {
        use metadata_response::MetadataResponseTopic;
        let topics = self
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                // A topic asked for by id only is answered with an empty name.
                MetadataResponseTopic::default()
                    .with_name(Some(t.name.unwrap_or_default()))
                    .with_topic_id(t.topic_id)
                    .with_error_code(failure.code)
            })
            .collect();
        Some(MetadataResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for OffsetCommitRequest {
    type Answer = OffsetCommitResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<OffsetCommitResponse> {
        use offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(failure.code)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(OffsetCommitResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for OffsetFetchRequest {
    type Answer = OffsetFetchResponse;
    fn error_answer(self, version: i16, failure: &Failure) -> Option<OffsetFetchResponse> {
        use offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
        };
        if version >= 8 {
            let groups = self
                .groups
                .into_iter()
                .map(|g| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(failure.code)
                })
                .collect();
            return Some(OffsetFetchResponse::default().with_groups(groups));
        }
        let resp = OffsetFetchResponse::default().with_error_code(failure.code);
        if version >= 2 {
            return Some(resp);
        }
        // v1 has no top-level code: every partition asked for carries it
        // (all partitions asked for: Kafka has no answer).
        let topics = self
            .topics?
            .into_iter()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_metadata(Some(StrBytes::default()))
                                    .with_error_code(failure.code)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(resp.with_topics(topics))
    }
}

impl ErrorAnswer for DescribeGroupsRequest {
    type Answer = DescribeGroupsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeGroupsResponse> {
        use describe_groups_response::DescribedGroup;
        let groups = self
            .groups
            .into_iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(g)
                    .with_error_code(failure.code)
                    .with_authorized_operations(i32::MIN)
            })
            .collect();
        Some(DescribeGroupsResponse::default().with_groups(groups))
    }
}

impl ErrorAnswer for CreateTopicsRequest {
    type Answer = CreateTopicsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<CreateTopicsResponse> {
        use create_topics_response::CreatableTopicResult;
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                CreatableTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(failure.code)
                    .with_error_message(failure.message())
            })
            .collect();
        Some(CreateTopicsResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for DeleteTopicsRequest {
    type Answer = DeleteTopicsResponse;
    fn error_answer(self, version: i16, failure: &Failure) -> Option<DeleteTopicsResponse> {
        use delete_topics_response::DeletableTopicResult;
        // Before v6 the topics are names only.
        let topics: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
            self.topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            self.topic_names
                .into_iter()
                .map(|n| (Some(n), Uuid::nil()))
                .collect()
        };
        let responses = topics
            .into_iter()
            .map(|(name, id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(failure.code)
            })
            .collect();
        Some(DeleteTopicsResponse::default().with_responses(responses))
    }
}

impl ErrorAnswer for AddPartitionsToTxnRequest {
    type Answer = AddPartitionsToTxnResponse;
    fn error_answer(self, version: i16, failure: &Failure) -> Option<AddPartitionsToTxnResponse> {
        use add_partitions_to_txn_response::{
            AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
        };
        if version >= 4 {
            return Some(AddPartitionsToTxnResponse::default().with_error_code(failure.code));
        }
        let topics = self
            .v3_and_below_topics
            .into_iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name)
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(failure.code)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics))
    }
}

impl ErrorAnswer for WriteTxnMarkersRequest {
    type Answer = WriteTxnMarkersResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<WriteTxnMarkersResponse> {
        use write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        };
        let markers = self
            .markers
            .into_iter()
            .map(|m| {
                WritableTxnMarkerResult::default()
                    .with_producer_id(m.producer_id)
                    .with_topics(
                        m.topics
                            .into_iter()
                            .map(|t| {
                                WritableTxnMarkerTopicResult::default()
                                    .with_name(t.name)
                                    .with_partitions(
                                        t.partition_indexes
                                            .iter()
                                            .map(|&p| {
                                                WritableTxnMarkerPartitionResult::default()
                                                    .with_partition_index(p)
                                                    .with_error_code(failure.code)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(WriteTxnMarkersResponse::default().with_markers(markers))
    }
}

impl ErrorAnswer for TxnOffsetCommitRequest {
    type Answer = TxnOffsetCommitResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<TxnOffsetCommitResponse> {
        Some(crate::handlers::txn_offset_commit::answer(&self, |_, _| {
            failure.code
        }))
    }
}

impl ErrorAnswer for DescribeConfigsRequest {
    type Answer = DescribeConfigsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeConfigsResponse> {
        use describe_configs_response::DescribeConfigsResult;
        let results = self
            .resources
            .into_iter()
            .map(|r| {
                DescribeConfigsResult::default()
                    .with_error_code(failure.code)
                    .with_error_message(failure.standard())
                    .with_resource_name(r.resource_name)
                    .with_resource_type(r.resource_type)
            })
            .collect();
        Some(DescribeConfigsResponse::default().with_results(results))
    }
}

impl ErrorAnswer for CreatePartitionsRequest {
    type Answer = CreatePartitionsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<CreatePartitionsResponse> {
        use create_partitions_response::CreatePartitionsTopicResult;
        let results = self
            .topics
            .into_iter()
            .map(|t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(failure.code)
                    .with_error_message(failure.message())
            })
            .collect();
        Some(CreatePartitionsResponse::default().with_results(results))
    }
}

impl ErrorAnswer for DeleteGroupsRequest {
    type Answer = DeleteGroupsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DeleteGroupsResponse> {
        use delete_groups_response::DeletableGroupResult;
        let results = self
            .groups_names
            .into_iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(failure.code)
            })
            .collect();
        Some(DeleteGroupsResponse::default().with_results(results))
    }
}

/// Answers naming each config resource of the request, with the code and
/// the failure's words.
macro_rules! per_resource {
    ($($Req:ty => $Resp:ty, $Result:ty;)*) => {$(
        impl ErrorAnswer for $Req {
            type Answer = $Resp;
            fn error_answer(self, _: i16, failure: &Failure) -> Option<$Resp> {
                let responses = self
                    .resources
                    .into_iter()
                    .map(|r| {
                        <$Result>::default()
                            .with_resource_name(r.resource_name)
                            .with_resource_type(r.resource_type)
                            .with_error_code(failure.code)
                            .with_error_message(failure.message())
                    })
                    .collect();
                Some(<$Resp>::default().with_responses(responses))
            }
        }
    )*};
}

per_resource! {
    IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse,
        incremental_alter_configs_response::AlterConfigsResourceResponse;
    AlterConfigsRequest => AlterConfigsResponse,
        alter_configs_response::AlterConfigsResourceResponse;
}

impl ErrorAnswer for DeleteRecordsRequest {
    type Answer = DeleteRecordsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DeleteRecordsResponse> {
        use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(failure.code)
                                    .with_low_watermark(-1)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(DeleteRecordsResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for DescribeTopicPartitionsRequest {
    type Answer = DescribeTopicPartitionsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeTopicPartitionsResponse> {
        use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(t.name))
                    .with_error_code(failure.code)
            })
            .collect();
        Some(DescribeTopicPartitionsResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for OffsetForLeaderEpochRequest {
    type Answer = OffsetForLeaderEpochResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<OffsetForLeaderEpochResponse> {
        use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                EpochEndOffset::default()
                                    .with_partition(p.partition)
                                    .with_error_code(failure.code)
                                    .with_leader_epoch(-1)
                                    .with_end_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for DescribeProducersRequest {
    type Answer = DescribeProducersResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeProducersResponse> {
        use describe_producers_response::{PartitionResponse, TopicResponse};
        let topics = self
            .topics
            .into_iter()
            .map(|t| {
                TopicResponse::default().with_name(t.name).with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| {
                            PartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(failure.code)
                        })
                        .collect(),
                )
            })
            .collect();
        Some(DescribeProducersResponse::default().with_topics(topics))
    }
}

impl ErrorAnswer for DescribeTransactionsRequest {
    type Answer = DescribeTransactionsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DescribeTransactionsResponse> {
        use describe_transactions_response::TransactionState;
        let states = self
            .transactional_ids
            .into_iter()
            .map(|id| {
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(failure.code)
            })
            .collect();
        Some(DescribeTransactionsResponse::default().with_transaction_states(states))
    }
}

impl ErrorAnswer for DescribeUserScramCredentialsRequest {
    type Answer = DescribeUserScramCredentialsResponse;
    fn error_answer(
        self,
        _: i16,
        failure: &Failure,
    ) -> Option<DescribeUserScramCredentialsResponse> {
        use describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
        // One unnamed result per user asked about (all users: Kafka has
        // no answer).
        let results = self
            .users?
            .iter()
            .map(|_| {
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(failure.code)
                    .with_error_message(failure.message())
            })
            .collect();
        Some(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(failure.code)
                .with_error_message(failure.message())
                .with_results(results),
        )
    }
}

impl ErrorAnswer for AlterUserScramCredentialsRequest {
    type Answer = AlterUserScramCredentialsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<AlterUserScramCredentialsResponse> {
        use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
        // Each user named once, in order.
        let users: std::collections::BTreeSet<StrBytes> = self
            .deletions
            .into_iter()
            .map(|d| d.name)
            .chain(self.upsertions.into_iter().map(|u| u.name))
            .collect();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(user)
                    .with_error_code(failure.code)
                    .with_error_message(failure.message())
            })
            .collect();
        Some(AlterUserScramCredentialsResponse::default().with_results(results))
    }
}

impl ErrorAnswer for CreateAclsRequest {
    type Answer = CreateAclsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<CreateAclsResponse> {
        use create_acls_response::AclCreationResult;
        let result = AclCreationResult::default()
            .with_error_code(failure.code)
            .with_error_message(failure.message());
        Some(CreateAclsResponse::default().with_results(vec![result; self.creations.len()]))
    }
}

impl ErrorAnswer for DeleteAclsRequest {
    type Answer = DeleteAclsResponse;
    fn error_answer(self, _: i16, failure: &Failure) -> Option<DeleteAclsResponse> {
        use delete_acls_response::DeleteAclsFilterResult;
        let result = DeleteAclsFilterResult::default()
            .with_error_code(failure.code)
            .with_error_message(failure.message());
        Some(DeleteAclsResponse::default().with_filter_results(vec![result; self.filters.len()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(kafka_api_name(ApiKey::Metadata), "METADATA");
        assert_eq!(
            kafka_api_name(ApiKey::OffsetForLeaderEpoch),
            "OFFSET_FOR_LEADER_EPOCH"
        );
        assert_eq!(
            kafka_api_name(ApiKey::DescribeUserScramCredentials),
            "DESCRIBE_USER_SCRAM_CREDENTIALS"
        );
    }
}
