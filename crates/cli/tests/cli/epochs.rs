//! Leader epochs, OffsetForLeaderEpoch (23), DescribeProducers (61),
//! ListOffsets v10 and ListGroups v5, side by side: the same requests to a
//! pubsub daemon and to a real Apache Kafka 4.1.1, and every answer a client
//! can observe compared. The scenario includes a crash that truncates the
//! log: both brokers are SIGKILLed, the tail of the partition's segment is
//! torn (as a power loss leaves an unsynced write), and after recovery a
//! consumer positioned past the truncated tail must learn so from the
//! epochs, the way the Java client and librdkafka detect truncation: an
//! OffsetForLeaderEpoch end offset below its position, or Fetch's
//! `diverging_epoch`.
//!
//! Needs Java and Maven for Kafka (see reference.rs); without them only the
//! pubsub run is checked against the expected answers it shares with Kafka.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    describe_producers_request::TopicRequest, ApiVersionsRequest, BrokerId,
    DescribeProducersRequest, FetchRequest, FindCoordinatorRequest, GroupId, InitProducerIdRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetForLeaderEpochRequest, ProducerId, TopicName,
};
use pubsub_records::{BatchBuilder, BatchHeader, NewRecord};

use crate::client::{create_topic, produce, s, Client};
use crate::daemon::Daemon;
use crate::reference::{differences, Kafka};

const TOPIC: &str = "epochs";
const GROUP: &str = "epochs-group";
/// Record timestamps are this plus a few seconds: a minute ago, the same
/// for both runs. (Kafka forgets idempotent producers whose last batch is
/// older than `producer.id.expiration.ms`, a day, when it reloads a log;
/// recent timestamps keep that out of the comparison.)
static T: LazyLock<i64> = LazyLock::new(|| {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    now.as_millis() as i64 - 60_000
});

/// A broker the scenario can crash and restart.
enum Target<'a> {
    Pubsub {
        dir: PathBuf,
        daemon: Option<Daemon>,
    },
    Kafka(&'a Kafka),
}

impl Target<'_> {
    fn addr(&self) -> SocketAddr {
        match self {
            Target::Pubsub { daemon, .. } => daemon.as_ref().unwrap().addr,
            Target::Kafka(k) => k.bootstrap.parse().unwrap(),
        }
    }

    /// The partition's first (and only) segment file.
    fn segment(&self) -> PathBuf {
        let data = match self {
            Target::Pubsub { dir, .. } => dir.clone(),
            Target::Kafka(k) => k.data_dir(),
        };
        data.join(format!("{TOPIC}-0"))
            .join("00000000000000000000.log")
    }

    fn kill9(&mut self) {
        match self {
            Target::Pubsub { daemon, .. } => {
                daemon.take().unwrap().kill9();
            }
            Target::Kafka(k) => k.kill9(),
        }
    }

    fn stop(&mut self) {
        match self {
            Target::Pubsub { daemon, .. } => {
                let (status, _, stderr) = daemon.take().unwrap().stop();
                assert!(status.success(), "pubsub did not stop cleanly: {stderr}");
            }
            // `restart` stops it first.
            Target::Kafka(_) => {}
        }
    }

    fn start_again(&mut self) {
        match self {
            Target::Pubsub { dir, daemon } => *daemon = Some(Daemon::start(dir)),
            Target::Kafka(k) => k.restart(),
        }
    }
}

/// Each step's answer, in order.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn step(&mut self, name: &str, answer: impl std::fmt::Debug) {
        self.0.push((name.to_string(), format!("{answer:?}")));
    }

    fn get(&self, name: &str) -> &str {
        &self.0.iter().find(|(n, _)| n == name).unwrap().1
    }
}

fn metadata_request() -> MetadataRequest {
    MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(s(TOPIC))))
        ]))
}

/// Waits (bounded) until the partition has its leader after a (re)start,
/// and answers its leader epoch.
async fn leader_epoch(c: &mut Client) -> i32 {
    for _ in 0..600 {
        let m = c.call(12, &metadata_request()).await;
        let t = &m.topics[0];
        if t.error_code == 0
            && t.partitions
                .first()
                .is_some_and(|p| p.leader_id.0 == 0 && p.error_code == 0)
        {
            let epoch = t.partitions[0].leader_epoch;
            // Kafka names the leader a moment before the partition serves.
            if list_offset(c, 10, -1, -1).await.0 == 0 {
                return epoch;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the partition never got its leader back");
}

/// Connects, retrying while a restarted broker is not listening yet.
async fn connect(addr: SocketAddr) -> Client {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Client::connect(addr).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} never accepted a connection");
}

/// One batch of `timestamps.len()` records, from the idempotent producer
/// `pid` when given.
fn batch(pid: Option<(i64, i16, i32)>, timestamps: &[i64]) -> Bytes {
    let mut b = BatchBuilder::new();
    if let Some((id, epoch, seq)) = pid {
        b = b.producer(id, epoch, seq);
    }
    for (i, ts) in timestamps.iter().enumerate() {
        let value = format!("v{i}");
        b.push(&NewRecord {
            timestamp: *ts,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .unwrap();
    }
    Bytes::from(b.build().unwrap())
}

/// Produces (acks=1), retrying while the leader is still being elected.
async fn produce_batch(c: &mut Client, records: Bytes) -> (i16, i64) {
    for _ in 0..300 {
        let p = produce(c, TOPIC, 0, 1, records.clone()).await;
        if p.error_code != 6 && p.error_code != 5 {
            return (p.error_code, p.base_offset);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("produce never found the leader");
}

/// The partitionLeaderEpoch of every batch stored, read with Fetch v12.
async fn batch_epochs(c: &mut Client) -> Vec<(i64, i32)> {
    let r = c.call(12, &fetch(0, -1, -1)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let records = p.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let h = BatchHeader::parse(&records[at..]).unwrap();
        out.push((h.base_offset, h.partition_leader_epoch));
        at += h.len;
    }
    out
}

fn fetch(offset: i64, current_leader_epoch: i32, last_fetched_epoch: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(current_leader_epoch)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_partition_max_bytes(1 << 20)])])
}

/// Fetch v12's answer, records left out: (error, high watermark, log start,
/// diverging epoch and end offset, record bytes returned).
async fn fetch_answer(
    c: &mut Client,
    offset: i64,
    current: i32,
    last_fetched: i32,
) -> (i16, i64, i64, (i32, i64), bool) {
    let r = c.call(12, &fetch(offset, current, last_fetched)).await;
    let p = &r.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.log_start_offset,
        (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
    )
}

/// ListOffsets at `version`: (error, offset, timestamp, leader epoch).
async fn list_offset(
    c: &mut Client,
    version: i16,
    timestamp: i64,
    current: i32,
) -> (i16, i64, i64, i32) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_timeout_ms(if version >= 10 { 1000 } else { 0 })
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(current)
                .with_timestamp(timestamp)])]);
    let r = c.call(version, &req).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp, p.leader_epoch)
}

/// OffsetForLeaderEpoch v4 for one partition: (error, epoch, end offset).
async fn end_offset(
    c: &mut Client,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])]);
    let r = c.call(4, &req).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// DescribeProducers for `topic`'s `partitions`: per partition, its error
/// and its producers (whether the id is `pid`, epoch, last sequence, last
/// timestamp, coordinator epoch, current transaction start).
async fn producers(
    c: &mut Client,
    topic: &str,
    partitions: &[i32],
    pid: i64,
) -> Vec<(i32, i16, Vec<(bool, i32, i32, i64, i32, i64)>)> {
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(s(topic)))
        .with_partition_indexes(partitions.to_vec())]);
    let r = c.call(0, &req).await;
    r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.error_code,
                p.active_producers
                    .iter()
                    .map(|a| {
                        (
                            a.producer_id.0 == pid,
                            a.producer_epoch,
                            a.last_sequence,
                            a.last_timestamp,
                            a.coordinator_epoch,
                            a.current_txn_start_offset,
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// ListGroups at `version` with filters: this scenario's group as
/// (protocol type, state, type), if listed.
async fn listed(
    c: &mut Client,
    version: i16,
    states: &[&str],
    types: &[&str],
) -> (i16, Vec<(String, String, String)>) {
    let req = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|x| s(x)).collect())
        .with_types_filter(types.iter().map(|x| s(x)).collect());
    let r = c.call(version, &req).await;
    let groups = r
        .groups
        .iter()
        .filter(|g| g.group_id.0.as_str() == GROUP)
        .map(|g| {
            (
                g.protocol_type.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect();
    (r.error_code, groups)
}

/// Commits an offset for [`GROUP`] as a client that assigned partitions
/// itself (generation -1), once the coordinator is there.
async fn commit(c: &mut Client) -> i16 {
    for _ in 0..300 {
        let f = c
            .call(
                3,
                &FindCoordinatorRequest::default()
                    .with_key(s(GROUP))
                    .with_key_type(0),
            )
            .await;
        if f.error_code == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)
                .with_committed_leader_epoch(0)
                .with_committed_metadata(Some(s("")))])]);
    let mut code = -1;
    for _ in 0..300 {
        let r = c.call(8, &req).await;
        code = r.topics[0].partitions[0].error_code;
        // Kafka answers these while it creates its offsets topic.
        if ![14, 15, 16].contains(&code) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    code
}

/// Cuts the last `bytes` bytes off a segment file: a torn, unsynced tail.
fn tear(segment: &PathBuf, bytes: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap_or_else(|e| panic!("{}: {e}", segment.display()));
    let len = f.metadata().unwrap().len();
    assert!(len > bytes, "{} holds {len} bytes", segment.display());
    f.set_len(len - bytes).unwrap();
    f.sync_all().unwrap();
}

/// The whole scenario against one broker.
async fn scenario(target: &mut Target<'_>) -> Seen {
    let mut seen = Seen::default();
    let mut c = connect(target.addr()).await;

    let versions = c
        .call(2, &ApiVersionsRequest::default())
        .await
        .api_keys
        .iter()
        .filter(|k| [2, 16, 23, 61].contains(&k.api_key))
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect::<Vec<_>>();
    seen.step(
        "ApiVersions of ListOffsets, ListGroups, OffsetForLeaderEpoch, DescribeProducers",
        versions,
    );

    create_topic(&mut c, TOPIC, 1, &[]).await;
    seen.step(
        "Metadata leader epoch of a new partition",
        leader_epoch(&mut c).await,
    );

    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let mut init = c.call(4, &request).await;
    // Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its producer id
    // manager is ready.
    for _ in 0..300 {
        if init.error_code != 14 && init.error_code != 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        init = c.call(4, &request).await;
    }
    assert_eq!(init.error_code, 0);
    let (pid, pepoch) = (init.producer_id.0, init.producer_epoch);
    let first = batch(Some((pid, pepoch, 0)), &[*T + 1000, *T + 3000, *T + 3000]);
    seen.step("produce 3 records", produce_batch(&mut c, first).await);
    let second = batch(Some((pid, pepoch, 3)), &[*T + 2000, *T + 3000]);
    seen.step("produce 2 more", produce_batch(&mut c, second).await);
    seen.step(
        "stored batches (base offset, partitionLeaderEpoch)",
        batch_epochs(&mut c).await,
    );

    for (name, ts) in [
        ("earliest", -2),
        ("latest", -1),
        ("max timestamp", -3),
        ("earliest local", -4),
        ("latest tiered", -5),
        ("at T+2000", *T + 2000),
        ("after every record", *T + 9000),
    ] {
        seen.step(
            &format!("ListOffsets v10 {name}"),
            list_offset(&mut c, 10, ts, -1).await,
        );
    }
    seen.step(
        "ListOffsets v7 max timestamp",
        list_offset(&mut c, 7, -3, -1).await,
    );
    seen.step(
        "ListOffsets v9 earliest local",
        list_offset(&mut c, 9, -4, -1).await,
    );
    seen.step(
        "ListOffsets v10 latest, current epoch 0",
        list_offset(&mut c, 10, -1, 0).await,
    );
    seen.step(
        "ListOffsets v10 latest, newer epoch 1",
        list_offset(&mut c, 10, -1, 1).await,
    );

    for (name, current, epoch) in [
        ("epoch -1", -1, -1),
        ("epoch 0 (the current one)", -1, 0),
        ("epoch 1 (unknown, newer)", -1, 1),
        ("epoch 0, current epoch 0", 0, 0),
        ("epoch 0, current epoch 3 (newer)", 3, 0),
    ] {
        seen.step(
            &format!("OffsetForLeaderEpoch {name}"),
            end_offset(&mut c, TOPIC, 0, current, epoch).await,
        );
    }
    seen.step(
        "OffsetForLeaderEpoch, unknown partition",
        end_offset(&mut c, TOPIC, 9, -1, 0).await,
    );
    seen.step(
        "OffsetForLeaderEpoch, unknown topic",
        end_offset(&mut c, "no-such-topic", 0, -1, 0).await,
    );

    seen.step(
        "Fetch v12 at the end, last fetched epoch 0",
        fetch_answer(&mut c, 5, 0, 0).await,
    );
    seen.step(
        "Fetch v12 at 2, last fetched epoch 0",
        fetch_answer(&mut c, 2, 0, 0).await,
    );
    seen.step(
        "Fetch v12, last fetched epoch 1 (unknown)",
        fetch_answer(&mut c, 5, -1, 1).await,
    );
    seen.step(
        "Fetch v12, current epoch 1 (newer)",
        fetch_answer(&mut c, 2, 1, -1).await,
    );

    seen.step(
        "DescribeProducers",
        producers(&mut c, TOPIC, &[0, 9], pid).await,
    );
    seen.step(
        "DescribeProducers, unknown topic",
        producers(&mut c, "no-such-topic", &[0], pid).await,
    );

    seen.step("OffsetCommit (generation -1)", commit(&mut c).await);
    for (name, version, states, types) in [
        ("v5", 5, &[][..], &[][..]),
        ("v5 type classic", 5, &[], &["classic"]),
        ("v5 type Classic", 5, &[], &["Classic"]),
        ("v5 type consumer", 5, &[], &["consumer"]),
        ("v5 state empty, type classic", 5, &["empty"], &["classic"]),
        ("v5 state Stable", 5, &["Stable"], &[]),
        ("v4", 4, &[], &[]),
    ] {
        seen.step(
            &format!("ListGroups {name}"),
            listed(&mut c, version, states, types).await,
        );
    }

    // A crash that loses the unsynced tail: the second batch is torn.
    drop(c);
    target.kill9();
    tear(&target.segment(), 5);
    target.start_again();
    let mut c = connect(target.addr()).await;
    let epoch = leader_epoch(&mut c).await;
    seen.step("Metadata leader epoch after the crash", epoch);
    seen.step(
        "ListOffsets latest after the crash",
        list_offset(&mut c, 10, -1, -1).await,
    );
    seen.step(
        "ListOffsets earliest after the crash",
        list_offset(&mut c, 10, -2, -1).await,
    );
    // The consumer had read to offset 5 in epoch 0.
    seen.step(
        "OffsetForLeaderEpoch 0 from the consumer at 5",
        end_offset(&mut c, TOPIC, 0, epoch, 0).await,
    );
    seen.step(
        "Fetch v12 at 5, last fetched epoch 0",
        fetch_answer(&mut c, 5, epoch, 0).await,
    );
    seen.step(
        "Fetch v12, the old current epoch 0",
        fetch_answer(&mut c, 3, 0, -1).await,
    );
    seen.step(
        "OffsetForLeaderEpoch, the old current epoch 0",
        end_offset(&mut c, TOPIC, 0, 0, 0).await,
    );
    seen.step(
        "ListOffsets, the old current epoch 0",
        list_offset(&mut c, 10, -1, 0).await,
    );
    seen.step(
        "DescribeProducers after the crash",
        producers(&mut c, TOPIC, &[0], pid).await,
    );
    let third = batch(None, &[*T + 4000]);
    seen.step(
        "produce after the crash",
        produce_batch(&mut c, third).await,
    );
    seen.step("stored batches after the crash", batch_epochs(&mut c).await);
    for e in 0..=epoch + 1 {
        seen.step(
            &format!("OffsetForLeaderEpoch {e} after the crash"),
            end_offset(&mut c, TOPIC, 0, -1, e).await,
        );
    }
    seen.step(
        "ListOffsets max timestamp after the crash",
        list_offset(&mut c, 10, -3, -1).await,
    );

    // A clean restart raises the epoch too.
    drop(c);
    target.stop();
    target.start_again();
    let mut c = connect(target.addr()).await;
    let epoch = leader_epoch(&mut c).await;
    seen.step("Metadata leader epoch after a clean restart", epoch);
    for e in 0..=epoch {
        seen.step(
            &format!("OffsetForLeaderEpoch {e} after a clean restart"),
            end_offset(&mut c, TOPIC, 0, epoch, e).await,
        );
    }
    seen.step(
        "ListOffsets earliest after a clean restart",
        list_offset(&mut c, 10, -2, epoch).await,
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_and_truncation_answer_as_apache_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut ours = Target::Pubsub {
        daemon: Some(Daemon::start(&data)),
        dir: data,
    };
    let pubsub = scenario(&mut ours).await;

    // What a client relies on, whether or not Kafka is here to compare.
    assert_eq!(pubsub.get("Metadata leader epoch of a new partition"), "0");
    assert_eq!(
        pubsub.get("stored batches (base offset, partitionLeaderEpoch)"),
        "[(0, 0), (3, 0)]"
    );
    assert_eq!(
        pubsub.get("ListOffsets v10 max timestamp"),
        format!("(0, 1, {}, 0)", *T + 3000)
    );
    assert_eq!(pubsub.get("Metadata leader epoch after the crash"), "2");
    assert_eq!(
        pubsub.get("ListOffsets latest after the crash"),
        "(0, 3, -1, 2)"
    );
    assert_eq!(
        pubsub.get("OffsetForLeaderEpoch 0 from the consumer at 5"),
        "(0, 0, 3)"
    );
    assert_eq!(
        pubsub.get("Fetch v12 at 5, last fetched epoch 0"),
        "(0, 3, 0, (0, 3), false)"
    );
    assert_eq!(
        pubsub.get("Fetch v12, the old current epoch 0"),
        "(74, -1, -1, (-1, -1), false)"
    );
    assert_eq!(
        pubsub.get("Metadata leader epoch after a clean restart"),
        "4"
    );

    let Some(kafka) = Kafka::start() else { return };
    let mut theirs = Target::Kafka(&kafka);
    let reference = scenario(&mut theirs).await;
    let diff = differences(&pubsub.0, &reference.0);
    assert!(diff.is_empty(), "pubsub and Apache Kafka differ:\n{diff}");
}
