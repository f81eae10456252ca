//! Broker files other than a partition's log that cannot be written (here
//! a topic's metadata file, which a directory stands in the way of: the
//! rename that replaces it fails with EISDIR, a real file-system error)
//! answer KAFKA_STORAGE_ERROR, as Kafka answers any I/O failure on its log
//! directory, not UNKNOWN_SERVER_ERROR; once the file can be written again
//! the same request succeeds.

use crate::client::{create_topic, s, Client};
use crate::common::TestServer;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::*;

const KAFKA_STORAGE_ERROR: i16 = 56;

async fn add_partitions(c: &mut Client, topic: &str, count: i32) -> i16 {
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(10_000);
    c.call(3, &req).await.results[0].error_code
}

async fn set_retention(c: &mut Client, topic: &str, ms: &str) -> i16 {
    let req =
        IncrementalAlterConfigsRequest::default().with_resources(vec![IncResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![IncConfig::default()
                .with_name(s("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(s(ms)))])]);
    c.call(1, &req).await.responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_file_that_cannot_be_written_answers_kafka_storage_error_until_it_can() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "blocked", 1, &[]).await;
    // `topics/<name>.topic` (docs/FORMAT.md).
    let file = server.dir.path().join("topics").join("blocked.topic");
    assert!(file.is_file(), "the topic file is at {}", file.display());
    std::fs::remove_file(&file).expect("remove the topic file");
    std::fs::create_dir(&file).expect("a directory in its place");
    std::fs::write(file.join("in-the-way"), b"x").expect("a file in that directory");

    assert_eq!(
        add_partitions(&mut c, "blocked", 2).await,
        KAFKA_STORAGE_ERROR,
        "CreatePartitions whose topic file cannot be written"
    );
    assert_eq!(
        set_retention(&mut c, "blocked", "60000").await,
        KAFKA_STORAGE_ERROR,
        "IncrementalAlterConfigs whose topic file cannot be written"
    );

    // The way cleared, the same requests are done and the file rewritten.
    std::fs::remove_dir_all(&file).expect("clear the way");
    assert_eq!(add_partitions(&mut c, "blocked", 2).await, 0);
    assert_eq!(set_retention(&mut c, "blocked", "60000").await, 0);
    assert!(file.is_file(), "the topic file is written again");
}
