//! Requests out of turn during SASL authentication, on pubsub and on Apache
//! Kafka 4.1.1 over the same wire: after a v1 SaslHandshake, every API but
//! SaslAuthenticate, at every version pubsub serves, gets Kafka's
//! `getErrorResponse` with ILLEGAL_SASL_STATE (34) in every part, then the
//! close; a Produce with `acks=0` and any request before the handshake (a
//! second ApiVersions too) close unanswered. The answers are compared byte
//! for byte with Kafka's (where Java and Maven are).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use pubsub_server::dispatch::SUPPORTED;

use crate::client::{s, Client};

/// One request sent out of turn.
struct Case {
    name: String,
    /// The request frame, length prefix included.
    frame: BytesMut,
    /// Sent before the handshake (else after a v1 PLAIN handshake).
    before_handshake: bool,
    /// The answer's error codes, decoded (pubsub's check of the code).
    codes: fn(Bytes, i16) -> Vec<i16>,
    version: i16,
}

/// What a connection got: the answer's bytes (`None`: no answer) and
/// whether the connection then closed.
type Outcome = (String, Option<Bytes>, bool);

const ID: i32 = 77;

fn case<R: Request + std::fmt::Debug>(version: i16, req: R) -> Case
where
    R::Response: std::fmt::Debug,
{
    let key = ApiKey::try_from(R::KEY).expect("key");
    Case {
        name: format!("{key:?} v{version}"),
        frame: Client::frame(ID, version, &req),
        before_handshake: false,
        codes: codes_of::<R>,
        version,
    }
}

/// Every `error_code: N` (and `partition_error_code`) in the decoded answer.
fn codes_of<R: Request>(mut answer: Bytes, version: i16) -> Vec<i16>
where
    R::Response: std::fmt::Debug,
{
    let hv = <R::Response as HeaderVersion>::header_version(version);
    ResponseHeader::decode(&mut answer, hv).expect("header");
    let resp = R::Response::decode(&mut answer, version).expect("decodes");
    assert!(answer.is_empty(), "trailing bytes");
    let text = format!("{resp:?}");
    text.split("error_code: ")
        .skip(1)
        .map(|rest| {
            let n: String = rest
                .chars()
                .take_while(|c| *c == '-' || c.is_ascii_digit())
                .collect();
            n.parse().expect("a code")
        })
        .collect()
}

fn topic() -> TopicName {
    TopicName(s("t"))
}

fn group() -> GroupId {
    GroupId(s("g"))
}

fn txn() -> TransactionalId {
    TransactionalId(s("x"))
}

/// A request of `key` at `version` naming a topic, partition, group,
/// transactional id or resource wherever it can, so every part of the
/// answer is seen.
fn request(key: ApiKey, v: i16) -> Option<Case> {
    use ApiKey as K;
    Some(match key {
        K::Produce => case(
            v,
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::new())),
                    ])]),
        ),
        K::Fetch => case(
            v,
            FetchRequest::default()
                .with_max_wait_ms(10)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![
                        fetch_request::FetchPartition::default().with_partition(0)
                    ])]),
        ),
        K::ListOffsets => case(
            v,
            ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)]),
            ]),
        ),
        K::Metadata => case(
            v,
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ])),
        ),
        K::OffsetCommit => case(
            v,
            OffsetCommitRequest::default()
                .with_group_id(group())
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(1),
                        ]),
                ]),
        ),
        K::OffsetFetch => case(
            v,
            OffsetFetchRequest::default()
                .with_group_id(group())
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic())
                        .with_partition_indexes(vec![0]),
                ])),
        ),
        K::FindCoordinator => case(v, FindCoordinatorRequest::default().with_key(s("g"))),
        K::JoinGroup => case(
            v,
            JoinGroupRequest::default()
                .with_group_id(group())
                .with_session_timeout_ms(10_000)
                .with_protocol_type(s("consumer")),
        ),
        K::Heartbeat => case(v, HeartbeatRequest::default().with_group_id(group())),
        K::LeaveGroup => case(v, LeaveGroupRequest::default().with_group_id(group())),
        K::SyncGroup => case(v, SyncGroupRequest::default().with_group_id(group())),
        K::DescribeGroups => case(
            v,
            DescribeGroupsRequest::default().with_groups(vec![group(), GroupId(s("h"))]),
        ),
        K::ListGroups => case(v, ListGroupsRequest::default()),
        K::ApiVersions => case(v, ApiVersionsRequest::default()),
        K::CreateTopics => case(
            v,
            CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(topic())
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        ),
        K::DeleteTopics => case(
            v,
            DeleteTopicsRequest::default().with_topic_names(vec![topic()]),
        ),
        K::InitProducerId => case(
            v,
            InitProducerIdRequest::default()
                .with_transactional_id(Some(txn()))
                .with_transaction_timeout_ms(60_000),
        ),
        K::AddPartitionsToTxn => {
            let topics = vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![0]),
            ];
            let req = if v < 4 {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn())
                    .with_v3_and_below_topics(topics)
            } else {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(txn())
                        .with_topics(topics),
                ])
            };
            case(v, req)
        }
        K::AddOffsetsToTxn => case(
            v,
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn())
                .with_group_id(group()),
        ),
        K::EndTxn => case(v, EndTxnRequest::default().with_transactional_id(txn())),
        K::WriteTxnMarkers => case(
            v,
            WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(1))
                    .with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(topic())
                            .with_partition_indexes(vec![0]),
                    ]),
            ]),
        ),
        K::TxnOffsetCommit => case(
            v,
            TxnOffsetCommitRequest::default()
                .with_transactional_id(txn())
                .with_group_id(group())
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_committed_offset(1),
                        ]),
                ]),
        ),
        K::DescribeConfigs => case(
            v,
            DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ]),
        ),
        K::CreatePartitions => case(
            v,
            CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic())
                    .with_count(2),
            ]),
        ),
        K::DeleteGroups => case(
            v,
            DeleteGroupsRequest::default().with_groups_names(vec![group()]),
        ),
        K::IncrementalAlterConfigs => case(
            v,
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ]),
        ),
        K::DescribeLogDirs => case(v, DescribeLogDirsRequest::default()),
        K::DeleteRecords => case(
            v,
            DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default(),
                    ]),
            ]),
        ),
        K::AlterConfigs => case(
            v,
            AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ]),
        ),
        K::OffsetDelete => case(
            v,
            OffsetDeleteRequest::default()
                .with_group_id(group())
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]),
        ),
        K::DescribeCluster => case(v, DescribeClusterRequest::default()),
        K::DescribeTopicPartitions => case(
            v,
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default().with_name(topic()),
                ])
                .with_response_partition_limit(100),
        ),
        K::OffsetForLeaderEpoch => case(
            v,
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default(),
                    ]),
            ]),
        ),
        K::DescribeProducers => case(
            v,
            DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0, 1]),
            ]),
        ),
        K::DescribeTransactions => case(
            v,
            DescribeTransactionsRequest::default().with_transactional_ids(vec![txn()]),
        ),
        K::ListTransactions => case(v, ListTransactionsRequest::default()),
        K::SaslHandshake => case(
            v,
            SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        ),
        // Allowed: the exchange itself.
        K::SaslAuthenticate => return None,
        K::DescribeUserScramCredentials => case(
            v,
            DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(s("alice")),
            ])),
        ),
        K::AlterUserScramCredentials => case(
            v,
            AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(s("bob"))
                        .with_mechanism(1),
                ])
                .with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(s("alice"))
                        .with_mechanism(1)
                        .with_iterations(4096)
                        .with_salt(Bytes::from_static(b"salt"))
                        .with_salted_password(Bytes::from_static(b"salted")),
                ]),
        ),
        // Filters and bindings Kafka's parser accepts (no UNKNOWN, no
        // ANY/MATCH pattern in a binding).
        K::DescribeAcls => case(
            v,
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ),
        K::CreateAcls => case(
            v,
            CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:alice"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
            ]),
        ),
        K::DeleteAcls => case(
            v,
            DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s("t")))
                    .with_pattern_type_filter(3)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        ),
        other => panic!("{other:?} is served but has no case here"),
    })
}

/// Every case: each served API at each version, after the handshake; an
/// `acks=0` Produce; before the handshake, Metadata, and two ApiVersions.
fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = SUPPORTED
        .iter()
        .flat_map(|&(key, min, max)| (min..=max).filter_map(move |v| request(key, v)))
        .collect();
    let mut acks0 = case(
        9,
        ProduceRequest::default().with_acks(0).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![produce_request::PartitionProduceData::default()
                    .with_records(Some(Bytes::new()))]),
        ]),
    );
    acks0.name = "Produce v9 acks=0".into();
    out.push(acks0);
    let mut metadata = case(12, MetadataRequest::default());
    metadata.name = "Metadata before the handshake".into();
    metadata.before_handshake = true;
    out.push(metadata);
    let mut versions = case(3, named_api_versions());
    versions.name = "a second ApiVersions before the handshake".into();
    versions.before_handshake = true;
    out.push(versions);
    out
}

/// ApiVersions v3+ naming the client as Kafka requires (its
/// `client_software_name` and version may not be empty).
fn named_api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(s("pubsub-test"))
        .with_client_software_version(s("1.0"))
}

/// Runs every case on a fresh connection to `addr` (a SASL listener with
/// PLAIN).
async fn outcomes(addr: std::net::SocketAddr, cases: &[Case]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for case in cases {
        let mut c = Client::connect(addr).await;
        if case.before_handshake {
            let r: ApiVersionsResponse = c.call(3, &named_api_versions()).await;
            assert_eq!(r.error_code, 0, "{}: ApiVersions", case.name);
        } else {
            let r: SaslHandshakeResponse = c
                .call(
                    1,
                    &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
                )
                .await;
            assert_eq!(r.error_code, 0, "{}: the handshake", case.name);
        }
        c.send_raw(&case.frame).await.expect("send");
        let answer = c.read_frame().await.map(BytesMut::freeze);
        let closed = answer.is_none() || c.is_closed().await;
        out.push((case.name.clone(), answer, closed));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_out_of_turn_is_answered_as_kafka() {
    let cases = cases();
    assert!(cases.len() > 120, "{}", cases.len());
    let server = crate::sasl::sasl_server().await;
    let pubsub = outcomes(server.addr, &cases).await;
    server.stop().await;
    // Every part of each answer carries ILLEGAL_SASL_STATE (a code that
    // reads 0 is a field the version does not have; DescribeLogDirs before
    // v3 has none at all, and its answer is empty, as Kafka's).
    let mut wrong = Vec::new();
    for (case, (name, answer, closed)) in cases.iter().zip(&pubsub) {
        let unanswered = case.before_handshake || name.ends_with("acks=0");
        let codeless = name.starts_with("DescribeLogDirs v") && case.version < 3;
        let codes = answer.clone().map(|a| (case.codes)(a, case.version));
        let right = match &codes {
            None => unanswered,
            Some(codes) => {
                !unanswered
                    && (codeless || codes.contains(&34))
                    && codes.iter().all(|&c| c == 34 || c == 0)
            }
        };
        if !right || !closed {
            wrong.push(format!("{name}: codes {codes:?}, closed {closed}"));
        }
    }
    let mut differ = Vec::new();
    if let Some(kafka) = crate::acls::Kafka::start() {
        let kafka = outcomes(kafka.addr, &cases).await;
        differ = pubsub
            .iter()
            .zip(&kafka)
            .filter(|(p, k)| p != k)
            .map(|(p, k)| {
                format!(
                    "{}:\n  pubsub {:?}\n  Kafka  {:?}",
                    p.0,
                    (&p.1, p.2),
                    (&k.1, k.2)
                )
            })
            .collect();
    }
    assert!(
        wrong.is_empty() && differ.is_empty(),
        "pubsub:\n{}\n{} differ from Kafka:\n{}",
        wrong.join("\n"),
        differ.len(),
        differ.join("\n")
    );
}
