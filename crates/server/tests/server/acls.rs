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
const TOPIC: &str = "orders";
const GROUP: &str = "g";
const TXN: &str = "tx";

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
        Conn { ctx }
    }
}

/// One connection's context.
struct Conn {
    ctx: Ctx,
}

impl Conn {
    /// Sends `req` through the server's dispatch and decodes the answer.
    async fn call<R: Request>(&self, version: i16, req: &R) -> R::Response {
        let mut frame = Client::frame(1, version, req);
        let frame: BytesMut = frame.split_off(4);
        let reply = dispatch(&self.ctx, frame).await.expect("dispatch");
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

    async fn create_acls(&self, acls: &[(ResourceType, &str, i8, &str, Operation, i8)]) {
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

fn grant(
    rt: ResourceType,
    op: Operation,
    principal: &str,
) -> (ResourceType, &'static str, i8, &str, Operation, i8) {
    let name = match rt {
        ResourceType::Topic => TOPIC,
        ResourceType::Group => GROUP,
        ResourceType::TransactionalId => TXN,
        _ => CLUSTER_NAME,
    };
    (rt, name, LITERAL, principal, op, ALLOW)
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

fn commit(group: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])])
}

fn config_resource_type(rule: &Rule) -> (i8, &'static str) {
    if rule.resource == ResourceType::Topic {
        (2, TOPIC)
    } else {
        (4, "0")
    }
}

/// Runs the request `rule` governs as `conn` and answers the error code of
/// the item the rule decides ([`FILTERED`] when it is left out).
async fn probe(rule: &Rule, conn: &Conn) -> i16 {
    use ApiKey::*;
    let name = authorize_name(rule);
    match rule.api {
        Produce => {
            let req = produce_request(TOPIC, 0, 1, bytes(batch_of(&["a"])));
            let r = conn.call(9, &req).await;
            r.responses[0].partition_responses[0].error_code
        }
        Fetch => {
            let req = crate::client::fetch_request(TOPIC, 0, 0, 0, 1 << 20);
            let r = conn.call(12, &req).await;
            r.responses[0].partitions[0].error_code
        }
        ListOffsets => {
            let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(s(TOPIC)))
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
            let r = conn.call(12, &metadata(Some(&[TOPIC]), true)).await;
            r.topics[0].error_code
        }
        Metadata => {
            let named = conn.call(12, &metadata(Some(&[TOPIC]), false)).await;
            let all = conn.call(12, &metadata(None, false)).await;
            let listed = all
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| **n == *TOPIC));
            // Named: refused; all topics: left out.
            assert_eq!(listed, named.topics[0].error_code == 0);
            named.topics[0].error_code
        }
        OffsetCommit => {
            let r = conn.call(8, &commit(GROUP)).await;
            r.topics[0].partitions[0].error_code
        }
        OffsetFetch => {
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(TOPIC)))
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
                .with_group_id(GroupId(s(GROUP)))
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
                .with_group_id(GroupId(s(GROUP)))
                .with_generation_id(1)
                .with_member_id(s("m"));
            conn.call(4, &req).await.error_code
        }
        LeaveGroup => {
            let req = LeaveGroupRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_members(vec![MemberIdentity::default().with_member_id(s("m"))]);
            let r = conn.call(4, &req).await;
            if r.error_code != 0 {
                r.error_code
            } else {
                r.members[0].error_code
            }
        }
        SyncGroup => {
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_generation_id(1)
                .with_member_id(s("m"));
            conn.call(5, &req).await.error_code
        }
        DescribeGroups => {
            let req = DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s(GROUP))])
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
            if r.groups.iter().any(|g| *g.group_id == *GROUP) {
                0
            } else {
                FILTERED
            }
        }
        CreateTopics => {
            let r = conn
                .call(
                    7,
                    &admin::create_topics_request::<&str, &str>(TOPIC, 1, &[]),
                )
                .await;
            r.topics[0].error_code
        }
        DeleteTopics => {
            let req = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s(TOPIC))]);
            conn.call(5, &req).await.responses[0].error_code
        }
        DeleteRecords => {
            let req =
                DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(s(TOPIC)))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(-1)])]);
            conn.call(2, &req).await.topics[0].partitions[0].error_code
        }
        InitProducerId => {
            let txn =
                (rule.resource == ResourceType::TransactionalId).then(|| TransactionalId(s(TXN)));
            let req = InitProducerIdRequest::default()
                .with_transactional_id(txn)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            conn.call(4, &req).await.error_code
        }
        OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(s(TOPIC)))
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
            let (rt, rname) = config_resource_type(rule);
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(rname)),
            ]);
            conn.call(4, &req).await.results[0].error_code
        }
        AlterConfigs => {
            let (rt, rname) = config_resource_type(rule);
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
            let (rt, rname) = config_resource_type(rule);
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
                    .with_name(TopicName(s(TOPIC)))
                    .with_count(2)])
                .with_timeout_ms(10_000);
            conn.call(3, &req).await.results[0].error_code
        }
        DeleteGroups => {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(GROUP))]);
            conn.call(2, &req).await.results[0].error_code
        }
        OffsetDelete => {
            let req = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_topics(vec![OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(TOPIC)))
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
                    .with_name(TopicName(s(TOPIC)))
                    .with_partition_indexes(vec![0])]);
            conn.call(0, &req).await.topics[0].partitions[0].error_code
        }
        DescribeTopicPartitions => {
            let named = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![DtpTopic::default().with_name(TopicName(s(TOPIC)))])
                .with_response_partition_limit(100);
            let r = conn.call(0, &named).await;
            let all = DescribeTopicPartitionsRequest::default().with_response_partition_limit(100);
            let listed = conn
                .call(0, &all)
                .await
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| **n == *TOPIC));
            assert_eq!(listed, r.topics[0].error_code == 0);
            r.topics[0].error_code
        }
        other => panic!("no probe for {other:?}: add one to acls.rs"),
    }
}

fn authorize_name(rule: &Rule) -> &'static str {
    match rule.resource {
        ResourceType::Topic => TOPIC,
        ResourceType::Group => GROUP,
        ResourceType::TransactionalId => TXN,
        _ => CLUSTER_NAME,
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
    } else if rule.api == ApiKey::CreateTopics {
        c.topic_exists = false;
    } else if is(&INIT_PRODUCER_ID_TXN) {
        // No transactions: refused even when Write on the id is allowed.
        c.allowed_code = Some(53);
    } else if is(&FIND_COORDINATOR_TXN) {
        // No transactions: no coordinator, once Describe is allowed.
        c.allowed_code = Some(15);
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

/// Every rule of the table, for every served API: refused as the table
/// says for a principal without the ACL, allowed for one with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_is_enforced_allowed_and_denied() {
    let served = |api: ApiKey| SUPPORTED.iter().any(|(k, _, _)| *k == api);
    let mut walked = 0;
    for rule in RULES {
        if !served(rule.api) {
            continue;
        }
        let c = case(rule);
        let cluster = Cluster::new();
        let admin = cluster.connect("User:admin");
        if c.topic_exists {
            let r = admin
                .call(
                    7,
                    &admin::create_topics_request::<&str, &str>(TOPIC, 1, &[]),
                )
                .await;
            assert_eq!(r.topics[0].error_code, 0);
        }
        if c.topic_exists {
            // The group, Empty, with a committed offset.
            let r = admin.call(8, &commit(GROUP)).await;
            assert_eq!(r.topics[0].partitions[0].error_code, 0);
        }
        let mut acls = Vec::new();
        for (rt, op) in &c.base {
            for who in ["User:alice", "User:bob"] {
                acls.push(grant(*rt, *op, who));
            }
        }
        acls.push(grant(rule.resource, rule.operation, "User:alice"));
        admin.create_acls(&acls).await;

        let denied = probe(rule, &cluster.connect("User:bob")).await;
        let refused = if rule.error == 0 {
            FILTERED
        } else {
            rule.error
        };
        assert_eq!(
            denied, refused,
            "{:?} {} {} as bob",
            rule.api, rule.operation, rule.resource
        );
        let allowed = probe(rule, &cluster.connect("User:alice")).await;
        match c.allowed_code {
            Some(code) => assert_eq!(
                allowed, code,
                "{:?} {} {} as alice",
                rule.api, rule.operation, rule.resource
            ),
            None => assert_ne!(allowed, refused, "{:?} as alice", rule.api),
        }
        walked += 1;
        cluster.broker.close().expect("close");
    }
    // Every served API with a rule was walked (the SCRAM credential
    // rules wait for their APIs).
    let with_rules = RULES.iter().filter(|r| served(r.api)).count();
    assert_eq!(walked, with_rules);
    assert!(walked >= 40, "{walked}");
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
