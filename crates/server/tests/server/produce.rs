//! Produce over the wire: limits, corruption, acks, ordering, idempotence
//! across a restart.

use kafka_protocol::messages::MetadataRequest;

use crate::client::Client;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_corrupt_batches_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "small", 1, &[("max.message.bytes", "1024")]).await;

    let big = "x".repeat(4096);
    let p = produce(&mut c, "small", 0, -1, bytes(batch_of(&[&big]))).await;
    assert_eq!(p.error_code, 10, "MESSAGE_TOO_LARGE");
    assert_eq!(
        p.error_message, None,
        "as Kafka: no message, the error says it"
    );
    assert_eq!(p.base_offset, -1);

    let mut corrupt = bytes(batch_of(&["hello", "world"])).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    let p = produce(&mut c, "small", 0, -1, corrupt.into()).await;
    assert_eq!(p.error_code, 2, "CORRUPT_MESSAGE");

    let p = produce(&mut c, "small", 0, 2, bytes(batch_of(&["a"]))).await;
    assert_eq!(p.error_code, 21, "INVALID_REQUIRED_ACKS");

    let p = produce(&mut c, "small", 7, -1, bytes(batch_of(&["a"]))).await;
    assert_eq!(p.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let described = server.broker.describe_topic("small").expect("topic");
    assert_eq!(
        described.partitions[0].log_end_offset, 0,
        "nothing refused was stored"
    );

    let p = produce(&mut c, "small", 0, -1, bytes(batch_of(&["fits"]))).await;
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_gets_no_answer_and_pipelined_requests_answer_in_order() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "pipe", 1, &[]).await;

    // acks=0: no response at all; the next request's answer is the next frame.
    c.send(
        PRODUCE_V,
        &produce_request("pipe", 0, 0, bytes(batch_of(&["fire", "forget"]))),
    )
    .await;
    let id = c.send(12, &MetadataRequest::default()).await;
    let m = c.receive::<MetadataRequest>(id, 12).await;
    assert_eq!(m.brokers.len(), 1);

    // 50 produce requests sent back to back, answers in order with growing offsets.
    let mut ids = Vec::new();
    for i in 0..50 {
        let value = format!("m{i}");
        ids.push(
            c.send(
                PRODUCE_V,
                &produce_request("pipe", 0, 1, bytes(batch_of(&[&value]))),
            )
            .await,
        );
    }
    for (i, id) in ids.into_iter().enumerate() {
        let r = c
            .receive::<kafka_protocol::messages::ProduceRequest>(id, PRODUCE_V)
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(
            p.base_offset,
            2 + i as i64,
            "the acks=0 batch took offsets 0 and 1"
        );
    }
    let r = c
        .call(FETCH_V, &fetch_request("pipe", 0, 0, 0, 1 << 20))
        .await;
    let records = r.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    let first = pubsub_records::Batch::parse(&records).expect("batch");
    assert_eq!(first.record_count(), 2, "the acks=0 batch was stored");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_acks_all_answers_come_in_order_and_only_once_fsynced() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "durable", 2, &[]).await;

    // acks=all and acks=1 produces to two partitions, with a metadata
    // request in the middle, all sent before any answer is read.
    enum Sent {
        Produce {
            id: i32,
            partition: i32,
            acks: i16,
            nth: i64,
        },
        Metadata(i32),
    }
    let mut sent = Vec::new();
    let mut per_partition = [0i64; 2];
    for i in 0..60 {
        if i == 30 {
            sent.push(Sent::Metadata(
                c.send(12, &MetadataRequest::default()).await,
            ));
        }
        let partition = i % 2;
        let acks = if i % 3 == 0 { 1 } else { -1 };
        let value = format!("v{i}");
        let id = c
            .send(
                PRODUCE_V,
                &produce_request("durable", partition, acks, bytes(batch_of(&[&value, "x"]))),
            )
            .await;
        let nth = per_partition[partition as usize];
        per_partition[partition as usize] += 1;
        sent.push(Sent::Produce {
            id,
            partition,
            acks,
            nth,
        });
    }
    for s in sent {
        match s {
            Sent::Metadata(id) => {
                let m = c.receive::<MetadataRequest>(id, 12).await;
                assert_eq!(m.brokers.len(), 1);
            }
            Sent::Produce {
                id,
                partition,
                acks,
                nth,
            } => {
                let r = c
                    .receive::<kafka_protocol::messages::ProduceRequest>(id, PRODUCE_V)
                    .await;
                let p = &r.responses[0].partition_responses[0];
                assert_eq!(p.error_code, 0);
                assert_eq!(p.index, partition);
                assert_eq!(
                    p.base_offset,
                    2 * nth,
                    "two records per batch, in send order"
                );
                if acks == -1 {
                    let durable = server
                        .broker
                        .partition("durable", partition)
                        .expect("partition")
                        .log()
                        .durable_offset();
                    assert!(
                        durable >= p.base_offset as u64 + 2,
                        "acks=all answered for offset {} with only {durable} fsynced",
                        p.base_offset + 1
                    );
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_are_detected_even_after_a_restart() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let r = c
        .call(
            4,
            &kafka_protocol::messages::InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let (pid, epoch) = (*r.producer_id, r.producer_epoch);
    let batch = |seq: i32, values: &[&str]| bytes(batch_of(values).producer(pid, epoch, seq));

    let first = produce(&mut c, "idem", 0, -1, batch(0, &["a", "b"])).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let second = produce(&mut c, "idem", 0, -1, batch(2, &["c"])).await;
    assert_eq!((second.error_code, second.base_offset), (0, 2));
    // A retry of the first batch: success with its original offset, nothing appended.
    let retry = produce(&mut c, "idem", 0, -1, batch(0, &["a", "b"])).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    // A gap in sequence numbers is refused.
    let gap = produce(&mut c, "idem", 0, -1, batch(7, &["z"])).await;
    assert_eq!(gap.error_code, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");

    // Restart on the same directory: the retry is still recognised.
    drop(c);
    let dir = server.stop_keeping_data().await;
    let server =
        TestServer::start_in(dir, broker_config(), pubsub_server::ServerConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    let retry = produce(&mut c, "idem", 0, -1, batch(2, &["c"])).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 2),
        "duplicate detected after restart"
    );
    let next = produce(&mut c, "idem", 0, -1, batch(3, &["d"])).await;
    assert_eq!((next.error_code, next.base_offset), (0, 3));
    let d = server.broker.describe_topic("idem").expect("topic");
    assert_eq!(d.partitions[0].log_end_offset, 4, "a, b, c, d: each once");
    server.stop().await;
}

/// Batches of about `kib` KiB: `n` records of `kib` KiB / n each, their
/// bytes depending on `seed`.
fn large_batch(seed: u8, kib: usize, n: usize) -> Vec<u8> {
    let value: String = (0..kib * 1024 / n)
        .map(|i| char::from(b'a' + (i as u8).wrapping_mul(seed) % 26))
        .collect();
    let values: Vec<&str> = (0..n).map(|_| value.as_str()).collect();
    batch_of(&values).build().expect("build")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_of_several_partitions_are_stored_as_sent_with_their_offsets() {
    // Large requests are written from the request frame itself (offsets
    // and leader epoch rewritten there): every partition of a request
    // must get its own batch, with only those fields changed, and a
    // refused partition must not disturb the others.
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};

    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "wide", 2, &[]).await;
    create_topic(&mut c, "tall", 1, &[]).await;
    let targets = [("wide", 0), ("tall", 0), ("wide", 9), ("wide", 1)];
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); targets.len()];
    for round in 0..3u8 {
        let batches: Vec<Vec<u8>> = (0..targets.len())
            .map(|i| large_batch(round * 4 + i as u8 + 1, 40 + 10 * i, 4 + i))
            .collect();
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for (i, (topic, partition)) in targets.iter().enumerate() {
            let data = PartitionProduceData::default()
                .with_index(*partition)
                .with_records(Some(Bytes::from(batches[i].clone())));
            match topics.iter_mut().find(|t| &*t.name.0 == *topic) {
                Some(t) => t.partition_data.push(data),
                None => topics.push(
                    TopicProduceData::default()
                        .with_name(TopicName(crate::client::s(topic)))
                        .with_partition_data(vec![data]),
                ),
            }
        }
        let req = ProduceRequest::default()
            .with_acks(if round == 1 { -1 } else { 1 })
            .with_timeout_ms(30_000)
            .with_topic_data(topics);
        let r = c.call(PRODUCE_V, &req).await;
        for (i, (topic, partition)) in targets.iter().enumerate() {
            let p = r
                .responses
                .iter()
                .filter(|t| &*t.name.0 == *topic)
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == *partition)
                .expect("an answer per partition");
            if *partition == 9 {
                assert_eq!(p.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
                continue;
            }
            assert_eq!(p.error_code, 0, "{topic}-{partition}");
            let records = 4 + i as i64;
            assert_eq!(
                p.base_offset,
                i64::from(round) * records,
                "{topic}-{partition}"
            );
            sent[i].push(batches[i].clone());
        }
    }
    for (i, (topic, partition)) in targets.iter().enumerate() {
        if *partition == 9 {
            continue;
        }
        let r = c
            .call(FETCH_V, &fetch_request(topic, *partition, 0, 0, 8 << 20))
            .await;
        let stored = r.responses[0].partitions[0]
            .records
            .clone()
            .expect("records");
        let mut at = 0;
        for (round, original) in sent[i].iter().enumerate() {
            let batch = pubsub_records::Batch::parse(&stored[at..]).expect("batch");
            let got = batch.as_bytes();
            assert_eq!(
                batch.base_offset(),
                round as i64 * (4 + i as i64),
                "{topic}-{partition} batch {round}"
            );
            assert_eq!(got.len(), original.len());
            assert!(
                got[8..12] == original[8..12] && got[16..] == original[16..],
                "{topic}-{partition} batch {round}: stored as sent but for offset and epoch"
            );
            at += got.len();
        }
        assert_eq!(at, stored.len(), "{topic}-{partition}: nothing else stored");
    }
    server.stop().await;
}
