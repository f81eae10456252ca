//! Every setting DescribeConfigs and CreateTopics answer, with its value,
//! source and type: the topic settings table must keep these answers.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;

use crate::client::{create_topic, s, Client};
use crate::common::TestServer;

/// `name=value source type read_only` lines of one DescribeConfigs resource.
async fn described(c: &mut Client, resource_type: i8, name: &str) -> String {
    let r = c
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None),
            ]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0);
    r.results[0]
        .configs
        .iter()
        .map(|c| {
            format!(
                "{}={} {} {} {}\n",
                &*c.name,
                c.value.as_deref().unwrap_or("null"),
                c.config_source,
                c.config_type,
                c.read_only
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_is_described_with_its_source_and_type() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "described", 1, &[("retention.ms", "3600000")]).await;
    assert_eq!(
        described(&mut c, 2, "described").await,
        "\
cleanup.policy=delete 5 7 false
compression.type=producer 5 2 false
delete.retention.ms=86400000 5 5 false
index.interval.bytes=4096 5 3 false
max.message.bytes=1048588 5 3 false
message.timestamp.type=CreateTime 5 2 false
retention.bytes=-1 5 5 false
retention.ms=3600000 1 5 false
segment.bytes=1073741824 5 3 false
segment.index.bytes=10485760 5 3 false
segment.ms=604800000 5 5 false
"
    );
    assert_eq!(
        described(&mut c, 4, "0").await,
        "\
auto.create.topics.enable=true 4 1 true
compression.type=producer 4 2 true
connections.max.idle.ms=600000 4 5 true
group.initial.rebalance.delay.ms=0 4 3 true
group.max.session.timeout.ms=1800000 4 3 true
group.min.session.timeout.ms=6000 4 3 true
log.cleanup.policy=delete 4 7 true
log.delete.retention.ms=86400000 4 5 true
log.index.interval.bytes=4096 4 3 true
log.message.timestamp.type=CreateTime 4 2 true
log.retention.bytes=-1 4 5 true
log.retention.ms=604800000 4 5 true
log.segment.bytes=1073741824 4 3 true
log.segment.index.bytes=10485760 4 3 true
log.segment.ms=604800000 4 5 true
max.connections=1000 4 3 true
message.max.bytes=1048588 4 3 true
num.partitions=1 4 3 true
offsets.topic.num.partitions=50 4 3 true
socket.request.max.bytes=104857600 4 3 true
"
    );

    // CreateTopics answers the same settings (without types).
    let r = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(s("checked")))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(vec![CreatableTopicConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact,delete")))])]),
        )
        .await;
    let configs: String = r.topics[0]
        .configs
        .iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={} {}\n",
                &*c.name,
                c.value.as_deref().unwrap_or("null"),
                c.config_source
            )
        })
        .collect();
    assert_eq!(
        configs,
        "\
cleanup.policy=compact,delete 1
compression.type=producer 5
delete.retention.ms=86400000 5
index.interval.bytes=4096 5
max.message.bytes=1048588 5
message.timestamp.type=CreateTime 5
retention.bytes=-1 5
retention.ms=604800000 5
segment.bytes=1073741824 5
segment.index.bytes=10485760 5
segment.ms=604800000 5
"
    );
    server.stop().await;
}
