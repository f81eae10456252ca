//! Authorization: every rule of `authorize::RULES` walked, allowed and
//! denied, through the real request path (`dispatch` with a connection
//! context whose principal is set as the SASL exchange sets it); the ACL
//! APIs themselves; ACLs across a broker restart.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest as DtpTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;
use pubsub_broker::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use pubsub_broker::security::Principal;
use pubsub_broker::Broker;
use pubsub_client::admin;
use pubsub_client::connection::decode_answer;
use pubsub_server::authorize::{self, Rule, RULES};
use pubsub_server::{dispatch, Ctx, ServerConfig, SUPPORTED};
use tempfile::TempDir;
use tokio::sync::watch;

use crate::client::{produce_request, s, Client};
use crate::common::{batch_of, broker_config, bytes};

/// A filtered-out item (all-topics Metadata, ListGroups): no error code.
const FILTERED: i16 = -100;

/// The resources a rule's scenario uses: `orders`, `g`, `tx` on pubsub
/// (a fresh broker per rule), numbered on Kafka (one broker for all).
struct Names {
    topic: String,
    group: String,
    txn: String,
}

impl Names {
    fn plain() -> Names {
        Names::with_suffix("")
    }

    fn with_suffix(suffix: &str) -> Names {
        Names {
            topic: format!("orders{suffix}"),
            group: format!("g{suffix}"),
            txn: format!("tx{suffix}"),
        }
    }

    fn of(&self, rt: ResourceType) -> &str {
        match rt {
            ResourceType::Topic => &self.topic,
            ResourceType::Group => &self.group,
            ResourceType::TransactionalId => &self.txn,
            _ => CLUSTER_NAME,
        }
    }
}

/// A broker and connections to it as principals, with the authorizer on
/// and `User:admin` a super user.
struct Cluster {
    broker: Broker,
    config: Arc<ServerConfig>,
    _stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
    _dir: Option<TempDir>,
}

impl Cluster {
    fn open(dir: &std::path::Path) -> Cluster {
        let broker = Broker::open(dir, broker_config()).expect("open broker");
        let mut config = ServerConfig::default();
        config.authorizer.enabled = true;
        config.authorizer.super_users = vec!["User:admin".into()];
        let (stop, stopped) = watch::channel(false);
        Cluster {
            broker,
            config: Arc::new(config),
            _stop: stop,
            stopped,
            _dir: None,
        }
    }

    fn new() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster::open(dir.path());
        c._dir = Some(dir);
        c
    }

    /// A connection of `principal` from 127.0.0.1.
    fn connect(&self, principal: &str) -> Conn {
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let ctx = Ctx::new(
            self.broker.clone(),
            Arc::clone(&self.config),
            peer,
            self.stopped.clone(),
        );
        // What the SASL exchange does once a client authenticated.
        ctx.set_principal(Principal::parse(principal).expect("principal"));
        Conn::Local(ctx)
    }
}

/// A connection as a principal: a connection context driven through
/// `dispatch` (pubsub), or a SASL-authenticated socket (Apache Kafka).
enum Conn {
    Local(Ctx),
    Remote(tokio::sync::Mutex<Client>),
}

impl Conn {
    /// Sends `req` and decodes the answer.
    async fn call<R: Request>(&self, version: i16, req: &R) -> R::Response {
        let ctx = match self {
            Conn::Local(ctx) => ctx,
            Conn::Remote(client) => return client.lock().await.call(version, req).await,
        };
        let mut frame = Client::frame(1, version, req);
        let frame: BytesMut = frame.split_off(4);
        let reply = dispatch(ctx, frame).await.expect("dispatch");
        let out = reply
            .resolve()
            .await
            .expect("resolve")
            .expect("an answer")
            .to_bytes()
            .expect("bytes");
        let mut payload = BytesMut::from(&out[4..]);
        decode_answer::<R>(&mut payload, 1, version).expect("decode")
    }

    async fn create_acls(&self, acls: &[Acl<'_>]) {
        let creations = acls
            .iter()
            .map(|(rt, name, pattern, principal, op, permission)| {
                AclCreation::default()
                    .with_resource_type(rt.code())
                    .with_resource_name(s(name))
                    .with_resource_pattern_type(*pattern)
                    .with_principal(s(principal))
                    .with_host(s("*"))
                    .with_operation(op.code())
                    .with_permission_type(*permission)
            })
            .collect();
        let r = self
            .call(3, &CreateAclsRequest::default().with_creations(creations))
            .await;
        for result in r.results {
            assert_eq!(result.error_code, 0, "{:?}", result.error_message);
        }
    }
}

const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

type Acl<'a> = (ResourceType, &'a str, i8, &'a str, Operation, i8);

fn grant<'a>(rt: ResourceType, op: Operation, principal: &'a str, n: &'a Names) -> Acl<'a> {
    (rt, n.of(rt), LITERAL, principal, op, ALLOW)
}

fn metadata(topics: Option<&[&str]>, auto_create: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(s(t)))))
                .collect()
        }))
        .with_allow_auto_topic_creation(auto_create)
}

fn commit(n: &Names) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(&n.group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(&n.topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])])
}

fn config_resource_type<'a>(rule: &Rule, n: &'a Names) -> (i8, &'a str) {
    if rule.resource == ResourceType::Topic {
        (2, &n.topic)
    } else {
        (4, "0")
    }
}

/// Runs the request `rule` governs as `conn` and answers the error code of
/// the item the rule decides ([`FILTERED`] when it is left out).
async fn probe(rule: &Rule, conn: &Conn, n: &Names) -> i16 {
    use ApiKey::*;
    let name = n.of(rule.resource);
    let (topic, group) = (n.topic.as_str(), n.group.as_str());
    match rule.api {
        Produce if rule.resource == ResourceType::TransactionalId => {
            // A transactional batch, its transactional id named.
            let batch = batch_of(&["a"]).producer(1, 0, 0).transactional(true);
            let req = produce_request(topic, 0, -1, bytes(batch))
                .with_transactional_id(Some(TransactionalId(s(&n.txn))));
            let r = conn.call(9, &req).await;
            r.responses[0].partition_responses[0].error_code
        }
        Produce => {
            let req = produce_request(topic, 0, 1, bytes(batch_of(&["a"])));
            let r = conn.call(9, &req).await;
            r.responses[0].partition_responses[0].error_code
        }
        Fetch => {
            let req = crate::client::fetch_request(topic, 0, 0, 0, 1 << 20);
            let r = conn.call(12, &req).await;
            r.responses[0].partitions[0].error_code
        }
        ListOffsets => {
            let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
            conn.call(7, &req).await.topics[0].partitions[0].error_code
        }
        Metadata if rule.resource == ResourceType::Cluster && rule.error == 0 => {
            let req = metadata(Some(&[]), false).with_include_cluster_authorized_operations(true);
            let r = conn.call(10, &req).await;
            if r.cluster_authorized_operations & (1 << Operation::Describe.code()) != 0 {
                0
            } else {
                assert_eq!(r.cluster_authorized_operations, 0);
                FILTERED
            }
        }
        Metadata if rule.operation == Operation::Create => {
            let r = conn.call(12, &metadata(Some(&[topic]), true)).await;
            r.topics[0].error_code
        }
        Metadata => {
            let named = conn.call(12, &metadata(Some(&[topic]), false)).await;
            let all = conn.call(12, &metadata(None, false)).await;
            let listed = all
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|name| **name == *topic));
            // Named: refused; all topics: left out.
            assert_eq!(listed, named.topics[0].error_code == 0);
            named.topics[0].error_code
        }
        OffsetCommit => {
            let r = conn.call(8, &commit(n)).await;
            r.topics[0].partitions[0].error_code
        }
        OffsetFetch => {
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![0])]));
            let r = conn.call(7, &req).await;
            if r.error_code != 0 {
                r.error_code
            } else {
                r.topics[0].partitions[0].error_code
            }
        }
        FindCoordinator => {
            let key_type = if rule.resource == ResourceType::Group {
                0
            } else {
                1
            };
            let req = FindCoordinatorRequest::default()
                .with_key(s(name))
                .with_key_type(key_type);
            conn.call(3, &req).await.error_code
        }
        JoinGroup => {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(""))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Default::default())]);
            conn.call(9, &req).await.error_code
        }
        Heartbeat => {
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(1)
                .with_member_id(s("m"));
            conn.call(4, &req).await.error_code
        }
        LeaveGroup => {
            let req = LeaveGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_members(vec![MemberIdentity::default().with_member_id(s("m"))]);
            let r = conn.call(4, &req).await;
            if r.error_code != 0 {
                r.error_code
            } else {
                r.members[0].error_code
            }
        }
        SyncGroup => {
            // v5 needs the protocol type and name (else Kafka answers
            // INCONSISTENT_GROUP_PROTOCOL before anything else).
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(1)
                .with_member_id(s("m"))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
            conn.call(5, &req).await.error_code
        }
        DescribeGroups => {
            let req = DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s(group))])
                .with_include_authorized_operations(true);
            let r = conn.call(5, &req).await;
            let g = &r.groups[0];
            if g.error_code == 0 {
                assert_ne!(
                    g.authorized_operations & (1 << Operation::Describe.code()),
                    0
                );
            }
            g.error_code
        }
        ListGroups => {
            let r = conn.call(5, &ListGroupsRequest::default()).await;
            if r.groups.iter().any(|g| *g.group_id == *group) {
                0
            } else {
                FILTERED
            }
        }
        CreateTopics => {
            // The settings rule: both principals may create, so each only
            // validates (answered alike, nothing created).
            let settings = rule.operation == Operation::DescribeConfigs;
            let req = admin::create_topics_request::<&str, &str>(topic, 1, &[])
                .with_validate_only(settings);
            let r = conn.call(7, &req).await;
            let t = &r.topics[0];
            if !settings {
                return t.error_code;
            }
            // Valid either way; the settings only for DescribeConfigs.
            assert_eq!(t.error_code, 0, "{t:?}");
            let configs = t.configs.as_deref().unwrap_or_default();
            if t.topic_config_error_code == 0 {
                assert_eq!((t.num_partitions, t.replication_factor), (1, 1), "{t:?}");
                assert!(!configs.is_empty(), "{t:?}");
            } else {
                assert_eq!((t.num_partitions, t.replication_factor), (-1, -1), "{t:?}");
                assert!(configs.is_empty(), "{t:?}");
            }
            t.topic_config_error_code
        }
        DeleteTopics => {
            let req = DeleteTopicsRequest::default()
                .with_topic_names(vec![TopicName(s(topic))])
                .with_timeout_ms(30_000);
            conn.call(5, &req).await.responses[0].error_code
        }
        DeleteRecords => {
            let req =
                DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(-1)])]);
            conn.call(2, &req).await.topics[0].partitions[0].error_code
        }
        InitProducerId => {
            let txn = (rule.resource == ResourceType::TransactionalId)
                .then(|| TransactionalId(s(&n.txn)));
            let req = InitProducerIdRequest::default()
                .with_transactional_id(txn)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            conn.call(4, &req).await.error_code
        }
        AddPartitionsToTxn => {
            use kafka_protocol::messages::add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let topics = vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![0])];
            // No InitProducerId first: allowed, the id is unknown (49).
            if rule.resource == ResourceType::Cluster {
                let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(s(&n.txn)))
                        .with_producer_id(ProducerId(1))
                        .with_topics(topics),
                ]);
                let r = conn.call(4, &req).await;
                if r.error_code != 0 {
                    return r.error_code;
                }
                r.results_by_transaction[0].topic_results[0].results_by_partition[0]
                    .partition_error_code
            } else {
                let req = AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(&n.txn)))
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_topics(topics);
                let r = conn.call(3, &req).await;
                r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
            }
        }
        AddOffsetsToTxn => {
            let req = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s(&n.txn)))
                .with_producer_id(ProducerId(1))
                .with_group_id(GroupId(s(group)));
            conn.call(3, &req).await.error_code
        }
        TxnOffsetCommit => {
            use kafka_protocol::messages::txn_offset_commit_request::{
                TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
            };
            // No InitProducerId first: allowed, the producer is unknown.
            let req = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(&n.txn)))
                .with_group_id(GroupId(s(group)))
                .with_producer_id(ProducerId(1))
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1)])]);
            conn.call(3, &req).await.topics[0].partitions[0].error_code
        }
        EndTxn => {
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(&n.txn)))
                .with_producer_id(ProducerId(1))
                .with_committed(true);
            conn.call(3, &req).await.error_code
        }
        WriteTxnMarkers => {
            use kafka_protocol::messages::write_txn_markers_request::{
                WritableTxnMarker, WritableTxnMarkerTopic,
            };
            // An ABORT marker of a producer with no transaction there.
            let req =
                WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                    .with_producer_id(ProducerId(1))
                    .with_topics(vec![WritableTxnMarkerTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partition_indexes(vec![0])])]);
            conn.call(1, &req).await.markers[0].topics[0].partitions[0].error_code
        }
        OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0)]),
            ]);
            conn.call(4, &req).await.topics[0].partitions[0].error_code
        }
        DescribeAcls => conn.call(3, &describe_all()).await.error_code,
        CreateAcls => {
            let req = CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                .with_resource_type(ResourceType::Topic.code())
                .with_resource_name(s("other"))
                .with_resource_pattern_type(LITERAL)
                .with_principal(s("User:carol"))
                .with_host(s("*"))
                .with_operation(Operation::Read.code())
                .with_permission_type(ALLOW)]);
            conn.call(3, &req).await.results[0].error_code
        }
        DeleteAcls => {
            let req = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(ResourceType::Topic.code())
                .with_resource_name_filter(Some(s("other")))
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1)]);
            conn.call(3, &req).await.filter_results[0].error_code
        }
        DescribeConfigs => {
            let (rt, rname) = config_resource_type(rule, n);
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(rname)),
            ]);
            conn.call(4, &req).await.results[0].error_code
        }
        AlterConfigs => {
            let (rt, rname) = config_resource_type(rule, n);
            let configs = if rt == 2 {
                vec![AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("60000")))]
            } else {
                Vec::new()
            };
            let req = AlterConfigsRequest::default()
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(rname))
                    .with_configs(configs)])
                .with_validate_only(true);
            conn.call(2, &req).await.responses[0].error_code
        }
        IncrementalAlterConfigs => {
            let (rt, rname) = config_resource_type(rule, n);
            let configs = if rt == 2 {
                vec![IncConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("60000")))]
            } else {
                Vec::new()
            };
            let req = IncrementalAlterConfigsRequest::default()
                .with_resources(vec![IncResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(rname))
                    .with_configs(configs)])
                .with_validate_only(true);
            conn.call(1, &req).await.responses[0].error_code
        }
        DescribeLogDirs => {
            let r = conn.call(4, &DescribeLogDirsRequest::default()).await;
            if r.error_code == 0 {
                assert!(!r.results.is_empty());
            }
            r.error_code
        }
        CreatePartitions => {
            let req = CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_count(2)
                    .with_assignments(None)])
                .with_timeout_ms(10_000);
            conn.call(3, &req).await.results[0].error_code
        }
        DeleteGroups => {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
            conn.call(2, &req).await.results[0].error_code
        }
        OffsetDelete => {
            let req = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(vec![OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ])]);
            let r = conn.call(0, &req).await;
            if r.error_code != 0 {
                r.error_code
            } else {
                r.topics[0].partitions[0].error_code
            }
        }
        DescribeCluster => {
            let req = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(true)
                .with_endpoint_type(1);
            let r = conn.call(2, &req).await;
            assert_eq!(r.error_code, 0);
            if r.cluster_authorized_operations & (1 << Operation::Describe.code()) != 0 {
                0
            } else {
                assert_eq!(r.cluster_authorized_operations, 0);
                FILTERED
            }
        }
        DescribeProducers => {
            let req = DescribeProducersRequest::default()
                .with_topics(vec![TopicRequest::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![0])]);
            conn.call(0, &req).await.topics[0].partitions[0].error_code
        }
        DescribeTopicPartitions => {
            let named = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![DtpTopic::default().with_name(TopicName(s(topic)))])
                .with_response_partition_limit(100);
            let r = conn.call(0, &named).await;
            let all = DescribeTopicPartitionsRequest::default().with_response_partition_limit(100);
            let listed = conn
                .call(0, &all)
                .await
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|name| **name == *topic));
            assert_eq!(listed, r.topics[0].error_code == 0);
            r.topics[0].error_code
        }
        DescribeUserScramCredentials => {
            // A user nobody created: allowed, RESOURCE_NOT_FOUND in its
            // result and nothing at the top.
            let req = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(s("carol")),
            ]));
            let r = conn.call(0, &req).await;
            assert_eq!(r.results.len(), 1);
            if r.error_code != 0 {
                // Refused: the code again in one nameless result, no message.
                assert_eq!(r.error_message, None);
                let result = &r.results[0];
                assert_eq!(result.user.as_str(), "");
                assert_eq!(result.error_code, r.error_code);
                assert_eq!(result.error_message, None);
            } else {
                assert_eq!(r.results[0].user.as_str(), "carol");
            }
            r.error_code
        }
        AlterUserScramCredentials => {
            // Two upsertions, out of name order.
            let upsert = |user: &str| {
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(s(user))
                    .with_mechanism(1) // SCRAM-SHA-256
                    .with_iterations(4096)
                    .with_salt(bytes::Bytes::from_static(b"a-salt-of-16-by."))
                    .with_salted_password(bytes::Bytes::from(vec![7u8; 32]))
            };
            let req = AlterUserScramCredentialsRequest::default()
                .with_upsertions(vec![upsert("zed"), upsert("carol")]);
            let r = conn.call(0, &req).await;
            let mut users: Vec<&str> = r.results.iter().map(|x| x.user.as_str()).collect();
            let code = r.results[0].error_code;
            if code != 0 {
                // Refused: every user, sorted, with the code and a message.
                assert_eq!(users, ["carol", "zed"]);
                for x in &r.results {
                    assert_eq!(x.error_code, code);
                    let message = x.error_message.as_deref().unwrap_or_default();
                    assert!(
                        message.starts_with("Request ")
                            && message.ends_with(" needs ALTER permission."),
                        "{message}"
                    );
                }
            } else {
                users.sort();
                assert_eq!(users, ["carol", "zed"]);
                assert!(r.results.iter().all(|x| x.error_code == 0), "{r:?}");
            }
            code
        }
        DescribeTransactions => {
            // The transaction `open_transaction` made: its topic answered
            // only with Describe on it.
            let req = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s(&n.txn))]);
            let r = conn.call(0, &req).await;
            let t = &r.transaction_states[0];
            if rule.resource == ResourceType::Topic {
                assert_eq!(t.error_code, 0);
                if t.topics.iter().any(|x| *x.topic == *topic) {
                    0
                } else {
                    FILTERED
                }
            } else {
                if t.error_code != 0 {
                    // Refused: nothing about the id but the code.
                    assert_eq!(t.transaction_state.as_str(), "");
                    assert!(t.topics.is_empty());
                }
                t.error_code
            }
        }
        ListTransactions => {
            let r = conn.call(1, &ListTransactionsRequest::default()).await;
            assert_eq!(r.error_code, 0);
            if r.transaction_states
                .iter()
                .any(|t| *t.transactional_id == *n.txn)
            {
                0
            } else {
                FILTERED
            }
        }
        other => panic!("no probe for {other:?}: add one to acls.rs"),
    }
}

/// What each rule needs besides itself to be observed (granted to both
/// principals), whether `orders` exists first, and what the allowed
/// principal gets when that is not success.
struct Case {
    base: Vec<(ResourceType, Operation)>,
    topic_exists: bool,
    allowed_code: Option<i16>,
}

fn case(rule: &Rule) -> Case {
    use authorize::*;
    use Operation::*;
    use ResourceType as R;
    let mut c = Case {
        base: Vec::new(),
        topic_exists: true,
        allowed_code: Some(0),
    };
    let is = |r: &Rule| {
        r.api == rule.api && r.operation == rule.operation && r.resource == rule.resource
    };
    if is(&OFFSET_COMMIT_GROUP) || is(&OFFSET_DELETE_GROUP) {
        c.base.push((R::Topic, Read));
    } else if is(&OFFSET_COMMIT_TOPIC) {
        c.base.push((R::Group, Read));
    } else if is(&OFFSET_DELETE_TOPIC) {
        c.base.push((R::Group, Delete));
    } else if is(&OFFSET_FETCH_GROUP) {
        c.base.push((R::Topic, Describe));
    } else if is(&OFFSET_FETCH_TOPIC) {
        c.base.push((R::Group, Describe));
    } else if is(&METADATA_CREATE_CLUSTER) || is(&METADATA_CREATE_TOPIC) {
        c.base.push((R::Topic, Describe));
        c.topic_exists = false;
    } else if is(&CREATE_TOPICS_CONFIGS) {
        c.base.push((R::Cluster, Create));
        c.topic_exists = false;
    } else if rule.api == ApiKey::CreateTopics {
        c.topic_exists = false;
    } else if is(&PRODUCE_TXN) {
        // Allowed: the batch goes on to the partition's checks.
        c.base.push((R::Topic, Write));
        c.allowed_code = None;
    } else if is(&ADD_PARTITIONS_TO_TXN_TOPIC)
        || is(&ADD_PARTITIONS_TO_TXN_BATCHED)
        || is(&ADD_OFFSETS_TO_TXN_GROUP)
    {
        // Allowed: the transactional id has no producer yet (49).
        c.base.push((R::TransactionalId, Write));
        c.allowed_code = None;
    } else if is(&TXN_OFFSET_COMMIT_TXN) {
        // Allowed: the transactional id has no producer yet.
        c.base.push((R::Group, Read));
        c.base.push((R::Topic, Read));
        c.allowed_code = None;
    } else if is(&TXN_OFFSET_COMMIT_GROUP) {
        c.base.push((R::TransactionalId, Write));
        c.base.push((R::Topic, Read));
        c.allowed_code = None;
    } else if is(&TXN_OFFSET_COMMIT_TOPIC) {
        c.base.push((R::TransactionalId, Write));
        c.base.push((R::Group, Read));
        c.allowed_code = None;
    } else if is(&ADD_OFFSETS_TO_TXN_TXN) {
        c.base.push((R::Group, Read));
        c.allowed_code = None;
    } else if is(&ADD_PARTITIONS_TO_TXN_TXN) || is(&END_TXN) {
        // Allowed: the transactional id has no producer yet.
        c.base.push((R::Topic, Write));
        c.allowed_code = None;
    } else if is(&DESCRIBE_TRANSACTIONS_TOPIC) {
        c.base.push((R::TransactionalId, Describe));
    } else if is(&JOIN_GROUP) {
        // Allowed: a first join is asked to come back with its member id.
        c.allowed_code = Some(79);
    } else if is(&HEARTBEAT) || is(&SYNC_GROUP) || is(&LEAVE_GROUP) {
        // Allowed: the member is unknown to the (empty) group.
        c.allowed_code = Some(25);
    } else if rule.resource == R::Cluster
        && matches!(
            rule.api,
            ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs
        )
    {
        c.allowed_code = None;
    }
    c
}

/// Retries `step` (a setup step Kafka may need time for: a topic's leader,
/// the offsets topic, ACLs reaching the authorizer) up to 600 times, 100 ms
/// apart; panics naming `what` if it never succeeds.
async fn until<F, Fut>(what: &str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if step().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

/// How many bindings the broker's authorizer holds (DescribeAcls as admin).
async fn acl_count(admin: &Conn) -> usize {
    let r = admin.call(3, &describe_all()).await;
    assert_eq!(r.error_code, 0);
    r.resources.iter().map(|res| res.acls.len()).sum()
}

/// Sets up `rule`'s scenario (the topic, the group with a committed
/// offset, the ACLs: `case(rule).base` for both, the rule's own grant for
/// alice) and answers (bob's code, alice's code).
async fn scenario(rule: &Rule, n: &Names, admin: &Conn, bob: &Conn, alice: &Conn) -> (i16, i16) {
    let c = case(rule);
    if c.topic_exists {
        let r = admin
            .call(
                7,
                &admin::create_topics_request::<&str, &str>(&n.topic, 1, &[]),
            )
            .await;
        assert_eq!(r.topics[0].error_code, 0, "create {}", n.topic);
        until("the topic's leader", || async {
            let r = admin.call(12, &metadata(Some(&[&n.topic]), false)).await;
            let t = &r.topics[0];
            t.error_code == 0 && t.partitions.first().is_some_and(|p| p.leader_id.0 >= 0)
        })
        .await;
        // The group, Empty, with a committed offset.
        // On Kafka, FindCoordinator creates the offsets topic.
        until("the first offset commit", || async {
            let find = FindCoordinatorRequest::default().with_key(s(&n.group));
            if admin.call(3, &find).await.error_code != 0 {
                return false;
            }
            let r = admin.call(8, &commit(n)).await;
            r.topics[0].partitions[0].error_code == 0
        })
        .await;
    }
    if matches!(
        rule.api,
        ApiKey::DescribeTransactions | ApiKey::ListTransactions
    ) {
        open_transaction(admin, n).await;
    }
    let before = acl_count(admin).await;
    let mut acls = Vec::new();
    for (rt, op) in &c.base {
        for who in ["User:alice", "User:bob"] {
            acls.push(grant(*rt, *op, who, n));
        }
    }
    acls.push(grant(rule.resource, rule.operation, "User:alice", n));
    admin.create_acls(&acls).await;
    until("the ACLs reaching the authorizer", || async {
        acl_count(admin).await == before + acls.len()
    })
    .await;
    let denied = probe(rule, bob, n).await;
    let allowed = probe(rule, alice, n).await;
    (denied, allowed)
}

/// As admin: an ongoing transaction of `n.txn` with `n.topic`'s
/// partition 0 in it (on Kafka, FindCoordinator creates
/// `__transaction_state` first).
async fn open_transaction(admin: &Conn, n: &Names) {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    let mut pid = None;
    for _ in 0..600 {
        let find = FindCoordinatorRequest::default()
            .with_key(s(&n.txn))
            .with_key_type(1);
        if admin.call(3, &find).await.error_code == 0 {
            let req = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(&n.txn))))
                .with_transaction_timeout_ms(600_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let r = admin.call(4, &req).await;
            if r.error_code == 0 {
                pid = Some((r.producer_id.0, r.producer_epoch));
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = pid.expect("the transaction's producer id");
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(&n.txn)))
        .with_v3_and_below_producer_id(ProducerId(pid.0))
        .with_v3_and_below_producer_epoch(pid.1)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(&n.topic)))
            .with_partitions(vec![0])]);
    let r = admin.call(3, &req).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
}

/// The code a refused item gets under `rule` ([`FILTERED`] for a filter).
fn refusal(rule: &Rule) -> i16 {
    if rule.error == 0 {
        FILTERED
    } else {
        rule.error
    }
}

fn served(api: ApiKey) -> bool {
    SUPPORTED.iter().any(|(k, _, _)| *k == api)
}

fn rule_key(rule: &Rule) -> String {
    format!("{:?}\t{}\t{}", rule.api, rule.operation, rule.resource)
}

/// What Apache Kafka 4.1.1 (StandardAuthorizer) answered for each rule's
/// scenario, recorded by `apache_kafka_gives_the_recorded_outcomes`:
/// API, operation, resource, bob's code (no ACL), alice's code (the ACL).
const KAFKA_OUTCOMES: &str = include_str!("acl_kafka_outcomes.tsv");

/// Every rule of the table, for every served API: refused as the table
/// says for a principal without the ACL, allowed for one with it, and the
/// same outcome as Apache Kafka's for the same scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_is_enforced_allowed_and_denied() {
    let kafka: std::collections::HashMap<String, (i16, i16)> = KAFKA_OUTCOMES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, codes) = l.rsplit_once('\t').and_then(|(rest, alice)| {
                let (key, bob) = rest.rsplit_once('\t')?;
                Some((key.to_string(), (bob.parse().ok()?, alice.parse().ok()?)))
            })?;
            Some((key, codes))
        })
        .map(|kv| kv.expect("a line: API, operation, resource, bob, alice"))
        .collect();
    let mut walked = 0;
    for rule in RULES.iter().filter(|r| served(r.api)) {
        let c = case(rule);
        let cluster = Cluster::new();
        let n = Names::plain();
        let (admin, bob, alice) = (
            cluster.connect("User:admin"),
            cluster.connect("User:bob"),
            cluster.connect("User:alice"),
        );
        let (denied, allowed) = scenario(rule, &n, &admin, &bob, &alice).await;
        let what = rule_key(rule);
        assert_eq!(denied, refusal(rule), "{what} as bob");
        match c.allowed_code {
            Some(code) => assert_eq!(allowed, code, "{what} as alice"),
            None => assert_ne!(allowed, refusal(rule), "{what} as alice"),
        }
        // Kafka's outcome: the same refusal, and allowed where Kafka allows.
        let (kafka_bob, kafka_alice) = kafka
            .get(&what)
            .copied()
            .unwrap_or_else(|| panic!("no Kafka outcome recorded for {what}"));
        assert_eq!(denied, kafka_bob, "{what}: bob on pubsub and on Kafka");
        assert_eq!(
            allowed == refusal(rule),
            kafka_alice == refusal(rule),
            "{what}: alice on pubsub ({allowed}) and on Kafka ({kafka_alice})"
        );
        walked += 1;
        cluster.broker.close().expect("close");
    }
    // Every served API with a rule was walked.
    assert_eq!(walked, RULES.iter().filter(|r| served(r.api)).count());
    assert!(walked >= 40, "{walked}");
}

/// Apache Kafka with StandardAuthorizer, a SASL_PLAINTEXT listener and the
/// users admin (a super user), alice and bob, started by `compat/kafka`
/// where Java and Maven are (otherwise skipped, or failed under
/// `COMPAT_REQUIRE_KAFKA=1`); stopped on drop.
pub(crate) struct Kafka {
    dir: TempDir,
    pub(crate) addr: std::net::SocketAddr,
}

fn launcher() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka")
}

impl Kafka {
    /// `server.properties` lines for SASL/PLAIN users and the authorizer.
    /// The listener named PLAINTEXT speaks SASL_PLAINTEXT; the controller's
    /// own listener stays PLAINTEXT, its principal ANONYMOUS a super user
    /// (the broker's requests to its controller).
    const PROPERTIES: &[&str] = &[
        "listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        "listener.name.plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\" user_bob=\"bob-secret\";",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin;User:ANONYMOUS",
    ];

    pub(crate) fn start() -> Option<Kafka> {
        let required = std::env::var("COMPAT_REQUIRE_KAFKA").is_ok_and(|v| v == "1");
        for tool in ["java", "mvn"] {
            let found = std::process::Command::new(tool)
                .arg("-version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                assert!(!required, "COMPAT_REQUIRE_KAFKA=1 but {tool} is missing");
                eprintln!("skipped: {tool} is missing, so no Apache Kafka to compare with");
                return None;
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(launcher())
            .arg("start")
            .arg(dir.path())
            .args(Self::PROPERTIES)
            .output()
            .expect("compat/kafka");
        assert!(
            out.status.success(),
            "compat/kafka start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let addr = stdout
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .and_then(|a| a.trim().parse().ok())
            .expect("listening on HOST:PORT");
        Some(Kafka { dir, addr })
    }

    /// A connection authenticated as `user` (SASL PLAIN: Kafka's principal
    /// is `User:<user>`, as after SCRAM).
    async fn connect(&self, user: &str) -> Conn {
        let mut c = Client::connect(self.addr).await;
        let r = c
            .call(
                1,
                &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
            )
            .await;
        assert_eq!(r.error_code, 0, "SaslHandshake");
        let token = format!("\0{user}\0{user}-secret");
        let r = c
            .call(
                2,
                &SaslAuthenticateRequest::default()
                    .with_auth_bytes(bytes::Bytes::from(token.into_bytes())),
            )
            .await;
        assert_eq!(
            r.error_code, 0,
            "SaslAuthenticate as {user}: {:?}",
            r.error_message
        );
        Conn::Remote(tokio::sync::Mutex::new(c))
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = std::process::Command::new(launcher())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// The same scenarios on Apache Kafka give the outcomes recorded in
/// `acl_kafka_outcomes.tsv` (which `PUBSUB_WRITE_FIXTURES=1` rewrites from
/// this run), so the pubsub walk above compares with Kafka's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_kafka_gives_the_recorded_outcomes() {
    let Some(kafka) = Kafka::start() else {
        return;
    };
    let admin = kafka.connect("admin").await;
    let bob = kafka.connect("bob").await;
    let alice = kafka.connect("alice").await;
    let mut out = String::from(
        "# Apache Kafka 4.1.1, StandardAuthorizer: API, operation, resource, then the code\n\
         # of bob (no ACL) and alice (the ACL) in each rule's scenario (acls.rs).\n\
         # -100: left out of a list. Rewritten by PUBSUB_WRITE_FIXTURES=1 cargo test\n\
         # -p pubsub-server --test server apache_kafka_gives_the_recorded_outcomes.\n",
    );
    for (i, rule) in RULES.iter().filter(|r| served(r.api)).enumerate() {
        let n = Names::with_suffix(&format!("-{i}"));
        let (denied, allowed) = scenario(rule, &n, &admin, &bob, &alice).await;
        out.push_str(&format!("{}\t{denied}\t{allowed}\n", rule_key(rule)));
        // Every binding goes before the next scenario.
        let all = DeleteAclsFilter::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1);
        let r = admin
            .call(3, &DeleteAclsRequest::default().with_filters(vec![all]))
            .await;
        assert_eq!(r.filter_results[0].error_code, 0);
        until("the ACLs leaving the authorizer", || async {
            acl_count(&admin).await == 0
        })
        .await;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/server/acl_kafka_outcomes.tsv");
    if std::env::var("PUBSUB_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &out).expect("write the outcomes");
    }
    let recorded = std::fs::read_to_string(&path).expect("the recorded outcomes");
    assert_eq!(
        out,
        recorded,
        "Kafka's outcomes differ from {}",
        path.display()
    );
}

/// Super users pass every rule, even against a DENY of everything; DENY
/// wins over ALLOW; PREFIXED and wildcard bindings apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_users_deny_and_patterns() {
    let cluster = Cluster::new();
    let admin = cluster.connect("User:admin");
    for t in ["orders", "orders-eu", "payments"] {
        let r = admin
            .call(7, &admin::create_topics_request::<&str, &str>(t, 1, &[]))
            .await;
        assert_eq!(r.topics[0].error_code, 0);
    }
    admin
        .create_acls(&[
            (
                ResourceType::Topic,
                "ord",
                PREFIXED,
                "User:alice",
                Operation::Describe,
                ALLOW,
            ),
            (
                ResourceType::Topic,
                "orders-eu",
                LITERAL,
                "User:alice",
                Operation::Describe,
                DENY,
            ),
            (
                ResourceType::Topic,
                "*",
                LITERAL,
                "User:bob",
                Operation::Write,
                ALLOW,
            ),
            (
                ResourceType::Topic,
                "*",
                LITERAL,
                "User:*",
                Operation::All,
                DENY,
            ),
            (
                ResourceType::Topic,
                "payments",
                LITERAL,
                "User:alice",
                Operation::Describe,
                ALLOW,
            ),
        ])
        .await;
    let names = |r: &MetadataResponse| -> Vec<String> {
        r.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect()
    };
    // The `User:*` DENY ALL covers alice and bob, not the super user.
    let all = admin.call(12, &metadata(None, false)).await;
    assert_eq!(names(&all).len(), 3, "{:?}", names(&all));
    let alice = cluster.connect("User:alice");
    assert!(names(&alice.call(12, &metadata(None, false)).await).is_empty());
    let bob = cluster.connect("User:bob");
    let produced = bob
        .call(
            9,
            &produce_request("payments", 0, 1, bytes(batch_of(&["x"]))),
        )
        .await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 29);
    // Without the wildcard DENY: the prefix and the literal DENY decide.
    let r = admin
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(ResourceType::Topic.code())
                .with_resource_name_filter(Some(s("*")))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(Some(s("User:*")))
                .with_operation(1)
                .with_permission_type(1)]),
        )
        .await;
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    let listed = names(&alice.call(12, &metadata(None, false)).await);
    assert_eq!(listed, vec!["orders".to_string(), "payments".to_string()]);
    let produced = bob
        .call(
            9,
            &produce_request("payments", 0, 1, bytes(batch_of(&["x"]))),
        )
        .await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    // Write implies Describe: bob sees every topic.
    assert_eq!(names(&bob.call(12, &metadata(None, false)).await).len(), 3);
    // An ANONYMOUS client has no ACL: nothing.
    let anonymous = cluster.connect("User:ANONYMOUS");
    let r = anonymous
        .call(12, &metadata(Some(&["orders"]), false))
        .await;
    assert_eq!(r.topics[0].error_code, 29);
}

/// Kafka's "match everything" filter (the defaults are empty strings).
fn describe_all() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)
}

/// CreateAcls, DescribeAcls, DeleteAcls: filters, validation, and the
/// bindings across a broker restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_apis_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let cluster = Cluster::open(dir.path());
        let admin = cluster.connect("User:admin");
        admin
            .create_acls(&[
                (
                    ResourceType::Topic,
                    "orders",
                    LITERAL,
                    "User:alice",
                    Operation::Read,
                    ALLOW,
                ),
                (
                    ResourceType::Topic,
                    "ord",
                    PREFIXED,
                    "User:bob",
                    Operation::Write,
                    ALLOW,
                ),
                (
                    ResourceType::Group,
                    "g",
                    LITERAL,
                    "User:alice",
                    Operation::Read,
                    ALLOW,
                ),
                (
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                    LITERAL,
                    "User:ops",
                    Operation::Describe,
                    ALLOW,
                ),
            ])
            .await;
        // Creating one again keeps one.
        admin
            .create_acls(&[(
                ResourceType::Group,
                "g",
                LITERAL,
                "User:alice",
                Operation::Read,
                ALLOW,
            )])
            .await;
        // Invalid bindings: INVALID_REQUEST each, the valid one stored.
        let bad = |f: fn(AclCreation) -> AclCreation| {
            f(AclCreation::default()
                .with_resource_type(ResourceType::Topic.code())
                .with_resource_name(s("x"))
                .with_resource_pattern_type(LITERAL)
                .with_principal(s("User:carol"))
                .with_host(s("*"))
                .with_operation(Operation::Read.code())
                .with_permission_type(ALLOW))
        };
        let creations = vec![
            bad(|c| c.with_resource_pattern_type(2)), // MATCH
            bad(|c| c.with_resource_type(0)),
            bad(|c| c.with_principal(s("carol"))),
            bad(|c| c.with_resource_name(s(""))),
            bad(|c| c.with_operation(1)), // ANY
            bad(|c| c),
        ];
        let r = admin
            .call(3, &CreateAclsRequest::default().with_creations(creations))
            .await;
        let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![42, 42, 42, 42, 42, 0]);
        assert!(r.results[2]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("principal")));
        // A bad filter: INVALID_REQUEST.
        let r = admin
            .call(3, &describe_all().with_pattern_type_filter(0))
            .await;
        assert_eq!(r.error_code, 42);
        // MATCH: every binding that applies to topic `orders`.
        let r = admin
            .call(
                3,
                &describe_all()
                    .with_resource_type_filter(ResourceType::Topic.code())
                    .with_resource_name_filter(Some(s("orders")))
                    .with_pattern_type_filter(2),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let mut found: Vec<(String, i8, String)> = r
            .resources
            .iter()
            .flat_map(|res| {
                res.acls.iter().map(|a| {
                    (
                        res.resource_name.to_string(),
                        res.pattern_type,
                        a.principal.to_string(),
                    )
                })
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("ord".to_string(), PREFIXED, "User:bob".to_string()),
                ("orders".to_string(), LITERAL, "User:alice".to_string())
            ]
        );
        // Only ops may describe ACLs besides the super user.
        let r = cluster.connect("User:alice").call(3, &describe_all()).await;
        assert_eq!(r.error_code, 31);
        cluster.broker.close().expect("close");
    }
    // After a restart: the same bindings.
    let cluster = Cluster::open(dir.path());
    let admin = cluster.connect("User:admin");
    let r = admin.call(3, &describe_all()).await;
    let count: usize = r.resources.iter().map(|res| res.acls.len()).sum();
    assert_eq!(count, 5);
    // Still enforced.
    let ops = cluster.connect("User:ops");
    // ops (Describe on the cluster) may list the ACLs; alice may not.
    assert_eq!(ops.call(3, &describe_all()).await.error_code, 0);
    let alice = cluster.connect("User:alice");
    assert_eq!(alice.call(3, &describe_all()).await.error_code, 31);
    let req = DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(true)
        .with_endpoint_type(1);
    let bits = ops.call(2, &req).await.cluster_authorized_operations;
    assert_eq!(bits, 1 << Operation::Describe.code());
    // Delete by principal; the deletion is durable too.
    let r = admin
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_name_filter(None)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_principal_filter(Some(s("User:alice")))
                    .with_operation(1)
                    .with_permission_type(1),
                DeleteAclsFilter::default()
                    .with_resource_name_filter(None)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(9),
            ]),
        )
        .await;
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 2);
    assert_eq!(r.filter_results[1].error_code, 42);
    cluster.broker.close().expect("close");
    let cluster = Cluster::open(dir.path());
    let r = cluster.connect("User:admin").call(3, &describe_all()).await;
    let count: usize = r.resources.iter().map(|res| res.acls.len()).sum();
    assert_eq!(count, 3);
    cluster.broker.close().expect("close");
}

/// With the authorizer off (the default): every request allowed, the ACL
/// APIs answer SECURITY_DISABLED, as Kafka without an authorizer.
#[tokio::test]
async fn authorizer_off_allows_everything() {
    let server = crate::common::TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    let r = c.call(3, &describe_all()).await;
    assert_eq!(r.error_code, 54);
    assert_eq!(
        r.error_message.as_deref(),
        Some("No Authorizer is configured.")
    );
    let r = c
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_resource_pattern_type(LITERAL)
                .with_principal(s("User:a"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(ALLOW)]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 54);
    crate::client::create_topic(&mut c, "t", 1, &[]).await;
    let r = c
        .call(
            10,
            &metadata(Some(&["t"]), false)
                .with_include_cluster_authorized_operations(true)
                .with_include_topic_authorized_operations(true),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    let all_topic_ops = ResourceType::Topic
        .operations()
        .iter()
        .fold(0, |b, o| b | (1 << o.code()));
    assert_eq!(r.topics[0].topic_authorized_operations, all_topic_ops);
    server.stop().await;
}

/// The answers of a principal without ACLs to malformed transaction
/// requests (an empty transactional id; a producer id without an epoch):
/// InitProducerId, AddPartitionsToTxn v3, AddOffsetsToTxn, EndTxn.
async fn malformed_transaction_requests(conn: &Conn) -> Vec<i16> {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    let empty = || TransactionalId(s(""));
    let mut codes = Vec::new();
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(empty()))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    codes.push(conn.call(4, &init).await.error_code);
    let idempotent = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(5))
        .with_producer_epoch(-1);
    codes.push(conn.call(4, &idempotent).await.error_code);
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(empty())
        .with_v3_and_below_producer_id(ProducerId(1))
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(vec![0])]);
    let r = conn.call(3, &add).await;
    codes.push(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code);
    let offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(empty())
        .with_producer_id(ProducerId(1))
        .with_group_id(GroupId(s("g")));
    codes.push(conn.call(3, &offsets).await.error_code);
    let end = EndTxnRequest::default()
        .with_transactional_id(empty())
        .with_producer_id(ProducerId(1))
        .with_committed(true);
    codes.push(conn.call(3, &end).await.error_code);
    codes
}

/// Authorization comes before validation, as in Kafka: a principal without
/// ACLs learns nothing about a malformed request but that it is refused
/// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED),
/// on pubsub and on Apache Kafka alike; a super user gets INVALID_REQUEST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_requests_are_authorized_before_they_are_validated() {
    let refused = [53, 31, 53, 53, 53];
    let invalid = [42, 42, 42, 42, 42];
    let cluster = Cluster::new();
    let bob = cluster.connect("User:bob");
    assert_eq!(malformed_transaction_requests(&bob).await, refused);
    let admin = cluster.connect("User:admin");
    assert_eq!(malformed_transaction_requests(&admin).await, invalid);
    cluster.broker.close().expect("close");
    let Some(kafka) = Kafka::start() else {
        return;
    };
    let bob = kafka.connect("bob").await;
    assert_eq!(malformed_transaction_requests(&bob).await, refused, "Kafka");
}
