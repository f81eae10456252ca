//! Every advertised version of every API, over a real socket: a whole
//! topic and group life cycle is run once per version step, and every
//! response must decode at the version asked for and say what it should.

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use pubsub_server::SUPPORTED;

use crate::client::{s, Client};
use crate::common::{batch_of, bytes, TestServer};

/// The version of `key` used at step `i`: every advertised version is
/// reached as `i` runs from 0 to the largest maximum.
fn v(key: ApiKey, i: i16) -> i16 {
    let (_, min, max) = SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .copied()
        .expect("advertised");
    i.clamp(min, max)
}

/// A batch of `n` values `{tag}-{j}`.
fn batch(n: usize, tag: &str) -> Bytes {
    let values: Vec<String> = (0..n).map(|j| format!("{tag}-{j}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    bytes(batch_of(&values))
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_of_every_api_round_trips() {
    let server = TestServer::start().await;
    let max = SUPPORTED
        .iter()
        .map(|(_, _, max)| *max)
        .max()
        .expect("apis");
    for i in 0..=max {
        let mut c = Client::connect(server.addr).await;
        let name = format!("versions-{i}");
        let group = format!("group-{i}");

        // ApiVersions
        let av = v(ApiKey::ApiVersions, i);
        let r = c.call(av, &ApiVersionsRequest::default()).await;
        assert_eq!(r.error_code, 0, "ApiVersions v{av}");
        assert_eq!(r.api_keys.len(), SUPPORTED.len(), "ApiVersions v{av}");

        // CreateTopics, with a setting
        let ct = v(ApiKey::CreateTopics, i);
        let r = c
            .call(
                ct,
                &CreateTopicsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(topic(&name))
                        .with_num_partitions(2)
                        .with_replication_factor(1)
                        .with_configs(vec![CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("3600000")))])]),
            )
            .await;
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].error_code, 0,
            "CreateTopics v{ct}: {:?}",
            r.topics[0].error_message
        );
        if ct >= 5 {
            assert_eq!(r.topics[0].num_partitions, 2);
        }

        // Metadata
        let mv = v(ApiKey::Metadata, i);
        let r = c
            .call(
                mv,
                &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default(
                )
                .with_name(Some(topic(&name)))])),
            )
            .await;
        assert_eq!(r.brokers.len(), 1, "Metadata v{mv}");
        assert_eq!(r.brokers[0].port, i32::from(server.addr.port()));
        assert_eq!(r.topics[0].error_code, 0, "Metadata v{mv}");
        assert_eq!(r.topics[0].partitions.len(), 2, "Metadata v{mv}");
        assert_eq!(*r.topics[0].partitions[0].leader_id, 0);

        // InitProducerId
        let ip = v(ApiKey::InitProducerId, i);
        let r = c
            .call(
                ip,
                // Null: not transactional (an empty id is refused, as by Kafka).
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .await;
        assert_eq!(r.error_code, 0, "InitProducerId v{ip}");
        assert!(*r.producer_id >= 0);

        // Produce acks=all then acks=1
        let pv = v(ApiKey::Produce, i);
        for (acks, expect_base) in [(-1i16, 0i64), (1, 3)] {
            let r = c
                .call(
                    pv,
                    &ProduceRequest::default()
                        .with_acks(acks)
                        .with_timeout_ms(5000)
                        .with_topic_data(vec![TopicProduceData::default()
                            .with_name(topic(&name))
                            .with_partition_data(vec![PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch(3, &name)))])]),
                )
                .await;
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "Produce v{pv}: {:?}", p.error_message);
            assert_eq!(p.base_offset, expect_base, "Produce v{pv}");
        }

        // Fetch from the middle of the first batch: the whole batch comes back
        let fv = v(ApiKey::Fetch, i);
        let r = c
            .call(
                fv,
                &FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(100)
                    .with_min_bytes(1)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(topic(&name))
                        .with_partitions(vec![FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(1)
                            .with_partition_max_bytes(1 << 20)])]),
            )
            .await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{fv}");
        assert_eq!(p.high_watermark, 6, "Fetch v{fv}");
        let records = p.records.as_ref().expect("records are never null");
        let first = pubsub_records::Batch::parse(records).expect("a whole batch");
        assert_eq!(
            first.base_offset(),
            0,
            "Fetch v{fv}: the batch containing offset 1"
        );

        // ListOffsets earliest / latest / by time
        let lv = v(ApiKey::ListOffsets, i);
        for (ts, want) in [(-2i64, 0i64), (-1, 6), (1_700_000_000_001, 1)] {
            let r = c
                .call(
                    lv,
                    &ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![ListOffsetsTopic::default()
                            .with_name(topic(&name))
                            .with_partitions(vec![ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(ts)])]),
                )
                .await;
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "ListOffsets v{lv} {ts}");
            assert_eq!(p.offset, want, "ListOffsets v{lv} {ts}");
        }

        // FindCoordinator
        let fc = v(ApiKey::FindCoordinator, i);
        let r = c
            .call(fc, &FindCoordinatorRequest::default().with_key(s(&group)))
            .await;
        assert_eq!(r.error_code, 0, "FindCoordinator v{fc}");
        assert_eq!(r.port, i32::from(server.addr.port()));

        // JoinGroup (v4+: MEMBER_ID_REQUIRED first)
        let jv = v(ApiKey::JoinGroup, i);
        let join = |member: &str| {
            let mut req = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_session_timeout_ms(10_000)
                .with_member_id(s(member))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"subscription-bytes"))]);
            if jv >= 1 {
                req = req.with_rebalance_timeout_ms(10_000);
            }
            req
        };
        let mut r = c.call(jv, &join("")).await;
        if jv >= 4 {
            assert_eq!(r.error_code, 79, "JoinGroup v{jv}: MEMBER_ID_REQUIRED");
            let id = r.member_id.to_string();
            r = c.call(jv, &join(&id)).await;
        }
        assert_eq!(r.error_code, 0, "JoinGroup v{jv}");
        assert_eq!(
            r.leader, r.member_id,
            "JoinGroup v{jv}: the only member leads"
        );
        assert_eq!(r.members.len(), 1);
        assert_eq!(&r.members[0].metadata[..], b"subscription-bytes");
        let member = r.member_id.to_string();
        let generation = r.generation_id;

        // SyncGroup
        let sv = v(ApiKey::SyncGroup, i);
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(generation)
            .with_member_id(s(&member))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(b"assignment-bytes"))]);
        if sv >= 5 {
            req = req
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
        }
        let r = c.call(sv, &req).await;
        assert_eq!(r.error_code, 0, "SyncGroup v{sv}");
        assert_eq!(&r.assignment[..], b"assignment-bytes");

        // Heartbeat
        let hv = v(ApiKey::Heartbeat, i);
        let r = c
            .call(
                hv,
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_generation_id(generation)
                    .with_member_id(s(&member)),
            )
            .await;
        assert_eq!(r.error_code, 0, "Heartbeat v{hv}");

        // OffsetCommit with metadata, then OffsetFetch reads it back
        let oc = v(ApiKey::OffsetCommit, i);
        let r = c
            .call(
                oc,
                &OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_generation_id_or_member_epoch(generation)
                    .with_member_id(s(&member))
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(topic(&name))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(4)
                            .with_committed_metadata(Some(s("note")))])]),
            )
            .await;
        assert_eq!(
            r.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{oc}"
        );
        let of = v(ApiKey::OffsetFetch, i);
        let r = c
            .call(
                of,
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(topic(&name))
                        .with_partition_indexes(vec![0, 1])])),
            )
            .await;
        let parts = &r.topics[0].partitions;
        assert_eq!(parts.len(), 2, "OffsetFetch v{of}");
        let p0 = parts.iter().find(|p| p.partition_index == 0).expect("p0");
        let p1 = parts.iter().find(|p| p.partition_index == 1).expect("p1");
        assert_eq!(
            (p0.committed_offset, p0.metadata.as_deref()),
            (4, Some("note")),
            "OffsetFetch v{of}"
        );
        assert_eq!(p1.committed_offset, -1, "OffsetFetch v{of}");

        // DescribeGroups and ListGroups
        let dg = v(ApiKey::DescribeGroups, i);
        let r = c
            .call(
                dg,
                &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&group))]),
            )
            .await;
        let g = &r.groups[0];
        assert_eq!(g.error_code, 0, "DescribeGroups v{dg}");
        assert_eq!(&*g.group_state, "Stable", "DescribeGroups v{dg}");
        assert_eq!(&*g.protocol_data, "range");
        assert_eq!(g.members.len(), 1);
        assert_eq!(&g.members[0].member_assignment[..], b"assignment-bytes");
        assert_eq!(&g.members[0].member_metadata[..], b"subscription-bytes");
        let lg = v(ApiKey::ListGroups, i);
        let r = c.call(lg, &ListGroupsRequest::default()).await;
        assert_eq!(r.error_code, 0, "ListGroups v{lg}");
        let listed = r
            .groups
            .iter()
            .find(|g| *g.group_id == *group)
            .expect("listed");
        assert_eq!(&*listed.protocol_type, "consumer");

        // LeaveGroup, then DeleteGroups on the now empty group
        let lv = v(ApiKey::LeaveGroup, i);
        let req = if lv >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_members(vec![MemberIdentity::default().with_member_id(s(&member))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(&member))
        };
        let r = c.call(lv, &req).await;
        assert_eq!(r.error_code, 0, "LeaveGroup v{lv}");
        if lv >= 3 {
            assert_eq!(r.members[0].error_code, 0);
        }
        let dl = v(ApiKey::DeleteGroups, i);
        let r = c
            .call(
                dl,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]),
            )
            .await;
        assert_eq!(r.results[0].error_code, 0, "DeleteGroups v{dl}");

        // DescribeConfigs, IncrementalAlterConfigs, DescribeConfigs again
        let dc = v(ApiKey::DescribeConfigs, i);
        let describe = |keys: Option<Vec<&str>>| {
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&name))
                    .with_configuration_keys(keys.map(|k| k.into_iter().map(s).collect())),
            ])
        };
        let r = c.call(dc, &describe(None)).await;
        assert_eq!(r.results[0].error_code, 0, "DescribeConfigs v{dc}");
        let retention = r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == "retention.ms")
            .expect("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.config_source, 1, "set on the topic");
        let ia = v(ApiKey::IncrementalAlterConfigs, i);
        let r = c
            .call(
                ia,
                &IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(&name))
                        .with_configs(vec![AlterableConfig::default()
                            .with_name(s("max.message.bytes"))
                            .with_config_operation(0)
                            .with_value(Some(s("65536")))]),
                ]),
            )
            .await;
        assert_eq!(
            r.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{ia}: {:?}",
            r.responses[0].error_message
        );
        let r = c.call(dc, &describe(Some(vec!["max.message.bytes"]))).await;
        assert_eq!(r.results[0].configs.len(), 1);
        assert_eq!(r.results[0].configs[0].value.as_deref(), Some("65536"));

        // CreatePartitions 2 -> 3
        let cp = v(ApiKey::CreatePartitions, i);
        let r = c
            .call(
                cp,
                &CreatePartitionsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![CreatePartitionsTopic::default()
                        .with_name(topic(&name))
                        .with_count(3)]),
            )
            .await;
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{cp}");
        assert_eq!(server.broker.partition_count(&name), Some(3));

        // DescribeLogDirs: sizes of the partitions asked for (an unknown
        // one is left out), as the logs report them.
        let dl = v(ApiKey::DescribeLogDirs, i);
        let r = c
            .call(
                dl,
                &DescribeLogDirsRequest::default().with_topics(Some(vec![
                    kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic::default()
                        .with_topic(topic(&name))
                        .with_partitions(vec![0, 1, 2, 9]),
                ])),
            )
            .await;
        assert_eq!(r.error_code, 0, "DescribeLogDirs v{dl}");
        assert_eq!(r.results.len(), 1, "one log directory");
        let dir = &r.results[0];
        assert_eq!(dir.topics.len(), 1, "DescribeLogDirs v{dl}");
        assert_eq!(dir.topics[0].name, topic(&name));
        let sizes: Vec<(i32, i64)> = dir.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size))
            .collect();
        let want: Vec<(i32, i64)> = (0..3)
            .map(|p| {
                let log_size = server
                    .broker
                    .partition(&name, p)
                    .expect("partition")
                    .log()
                    .size_bytes();
                (p, i64::try_from(log_size).expect("size"))
            })
            .collect();
        assert_eq!(sizes, want, "DescribeLogDirs v{dl}");
        assert!(sizes[0].1 > 0 || sizes[1].1 > 0, "something was produced");
        if dl >= 4 {
            assert!(
                dir.total_bytes > 0 && dir.usable_bytes > 0,
                "DescribeLogDirs v{dl}"
            );
        }
        // All topics: the internal one too.
        let r = c
            .call(dl, &DescribeLogDirsRequest::default().with_topics(None))
            .await;
        let names: Vec<String> = r.results[0]
            .topics
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(
            names.contains(&name) && names.iter().any(|n| n == "__consumer_offsets"),
            "{names:?}"
        );

        // DeleteTopics
        let dt = v(ApiKey::DeleteTopics, i);
        let r = c
            .call(
                dt,
                &DeleteTopicsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topic_names(vec![topic(&name)]),
            )
            .await;
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{dt}");
        assert_eq!(server.broker.partition_count(&name), None);
    }
    server.stop().await;
}

/// docs/COMPATIBILITY.md's API table shows exactly what ApiVersions
/// advertises in its pubsub column (the cli tests check the Kafka column
/// against a real Kafka).
#[test]
fn the_documented_api_table_matches_what_is_advertised() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/COMPATIBILITY.md"
    ))
    .expect("docs/COMPATIBILITY.md");
    let table = doc
        .split("<!-- api-versions: generated by api_table.rs -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /api-versions -->").next())
        .expect("the API table");
    // Rows like `| 0 | Produce * | 3-10 | 0-13 |`; `-`: not served.
    let mut documented: Vec<(i16, i16, i16)> = table
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells.get(1)?.parse().ok()?;
            let ours = *cells.get(3)?;
            let (min, max) = ours.split_once('-').unwrap_or((ours, ours));
            Some((key, min.parse().ok()?, max.parse().ok()?))
        })
        .collect();
    documented.sort_unstable();
    let mut advertised: Vec<(i16, i16, i16)> = SUPPORTED
        .iter()
        .map(|(k, min, max)| (*k as i16, *min, *max))
        .collect();
    advertised.sort_unstable();
    assert_eq!(documented, advertised);
}

/// (name, min, max) of each supported feature and (name, min level, max
/// level) of each finalized one, with the finalized epoch.
type Features = (Vec<(String, i16, i16)>, Vec<(String, i16, i16)>, i64);

async fn features(addr: std::net::SocketAddr, version: i16) -> Features {
    let mut c = Client::connect(addr).await;
    let r = c.call(version, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0, "ApiVersions v{version}");
    (
        r.supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect(),
        r.finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
            .collect(),
        r.finalized_features_epoch,
    )
}

/// `transaction.version` as Kafka 4.1.1 advertises it on a new cluster:
/// supported 0-2 (at version 4; version 3 leaves out ranges starting at 0,
/// KIP-1022) and finalized at 2, with an epoch clients can order by;
/// `transaction_version: 1` finalizes level 1 (clients stay on version 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_advertises_transaction_version_2_as_kafka_does() {
    let server = TestServer::start().await;
    let tv = |min, max| vec![("transaction.version".to_string(), min, max)];
    let (supported, finalized, epoch) = features(server.addr, 4).await;
    assert_eq!(supported, tv(0, 2), "supported features at v4");
    assert_eq!(finalized, tv(2, 2), "finalized features at v4");
    assert!(epoch >= 0, "finalized epoch {epoch}");
    let (supported, finalized, epoch3) = features(server.addr, 3).await;
    assert_eq!(supported, vec![], "supported features at v3");
    assert_eq!(finalized, tv(2, 2), "finalized features at v3");
    assert_eq!(epoch3, epoch, "one epoch for every connection");
    server.stop().await;

    let pinned = pubsub_server::ServerConfig {
        transaction_version: 1,
        ..pubsub_server::ServerConfig::default()
    };
    let server = TestServer::start_with(crate::common::broker_config(), pinned).await;
    let (supported, finalized, _) = features(server.addr, 4).await;
    assert_eq!(supported, tv(0, 2), "supported features, pinned to 1");
    assert_eq!(finalized, tv(1, 1), "finalized features, pinned to 1");
    server.stop().await;
}
