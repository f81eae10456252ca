use std::time::Duration;

use pubsub_broker::{ConsumerConfig, ProducerConfig, ProducerRecord};

use crate::common::*;

#[test]
fn produce_consume_commit_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let consumed;
    {
        let broker = open(dir.path());
        broker
            .create_topic("t", Some(3), no_configs())
            .expect("create");
        let producer = broker
            .producer(ProducerConfig::default())
            .expect("producer");
        for i in 0..30 {
            let v = format!("v{i}");
            producer
                .send(&ProducerRecord::new("t", v.as_bytes()).key(format!("k{i}").as_bytes()))
                .expect("send");
        }
        producer.flush();
        let mut consumer = broker
            .consumer(ConsumerConfig::new("g").name("c1"))
            .expect("consumer");
        consumer.subscribe(&["t"]).expect("subscribe");
        assert_eq!(consumer.assignment().len(), 3);
        let mut got = Vec::new();
        while got.len() < 20 {
            got.extend(consumer.poll(Duration::from_secs(5)).expect("poll"));
        }
        consumed = got.len();
        consumer.commit().expect("commit");
        drop(consumer);
        broker.close().expect("close");
    }
    let broker = open(dir.path());
    let mut consumer = broker
        .consumer(ConsumerConfig::new("g").name("c1"))
        .expect("consumer");
    consumer.subscribe(&["t"]).expect("subscribe");
    let mut total = 0;
    loop {
        let recs = consumer.poll(Duration::from_millis(300)).expect("poll");
        if recs.is_empty() {
            break;
        }
        total += recs.len();
    }
    assert_eq!(
        consumed + total,
        30,
        "the restarted member resumes where the commit left it"
    );
}

#[test]
fn a_broker_file_out_of_space_heals_by_the_storage_rule_and_is_not_the_logs() {
    let io = |op: &'static str, errno: i32| pubsub_broker::BrokerError::Io {
        op,
        path: "x".into(),
        source: std::io::Error::from_raw_os_error(errno),
    };
    // A write of a metadata file (a producer snapshot, say) that finds no
    // space heals; the partition's log said nothing about it, so it is not
    // the log's.
    assert!(io("write", libc::ENOSPC).is_out_of_space());
    assert!(io("create", libc::EDQUOT).is_out_of_space());
    assert!(!io("write", libc::ENOSPC).is_log_out_of_space());
    // An fsync of a metadata file that reports ENOSPC lost accepted pages.
    assert!(!io("fsync", libc::ENOSPC).is_out_of_space());
    assert!(!io("fsync directory", libc::ENOSPC).is_out_of_space());
    assert!(!io("write", libc::EIO).is_out_of_space());
}
