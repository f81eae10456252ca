//! First-use opens and the runtime: a partition left closed by a clean
//! close opens when a request first names it (files, maps, possibly
//! recovery). That open must not run on the runtime's worker, or every
//! other connection that worker serves waits for it.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::mpsc;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiVersionsRequest, BrokerId, ListOffsetsRequest, TopicName};
use pubsub_broker::{Broker, ProducerConfig, ProducerRecord};
use pubsub_server::ServerConfig;

use crate::client::{s, Client};
use crate::common::{broker_config, TestServer};

/// How long the other connection may go unanswered before the test calls
/// the runtime stalled: a guard against hanging for ever, not a measure
/// (the answer needs no disk and comes at once unless the worker is held).
const STALLED: Duration = Duration::from_secs(60);

/// The open of a partition is held (its partition file is a FIFO the test
/// writes only when it chooses) on a server whose runtime has one worker;
/// another connection's request is answered meanwhile, and the held
/// request is answered once the open is let go.
#[test]
fn a_slow_first_use_open_does_not_stall_other_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let broker = Broker::open(dir.path(), broker_config()).expect("open");
        broker
            .create_topic("slow", Some(1), Default::default())
            .expect("create");
        let producer = broker
            .producer(ProducerConfig::default())
            .expect("producer");
        for v in ["a", "b", "c"] {
            producer
                .send(&ProducerRecord::new("slow", v.as_bytes()).partition(0))
                .expect("send")
                .wait()
                .expect("delivered");
        }
        drop(producer);
        broker.close().expect("close");
    }
    // The partition file, replaced by a FIFO: the first use's open reads
    // it, and waits until the test writes the same bytes and closes it.
    let file = dir
        .path()
        .join("slow-0")
        .join(pubsub_storage::PARTITION_CHECKPOINT);
    let bytes = std::fs::read(&file).expect("partition file");
    std::fs::remove_file(&file).expect("remove");
    let path = CString::new(file.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");

    let (held_tx, held) = mpsc::channel::<()>();
    let (release, let_go) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        // Returns once the broker's open has the FIFO open for reading.
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open the FIFO");
        let _ = held_tx.send(());
        let _ = let_go.recv();
        fifo.write_all(&bytes).expect("write the partition file");
    });

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let server = server_rt.block_on(TestServer::start_in(
        dir,
        broker_config(),
        ServerConfig::default(),
    ));
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let (end, other) = client_rt.block_on(async {
        let mut first = Client::connect(server.addr).await;
        let mut other = Client::connect(server.addr).await;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(s("slow")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let id = first.send(7, &req).await;
        held.recv().expect("the open reached the partition file");
        let answered =
            tokio::time::timeout(STALLED, other.call(2, &ApiVersionsRequest::default())).await;
        // Let the open go whatever happened, so the server can stop.
        release.send(()).expect("release");
        let other = answered.map(|r| r.error_code);
        let end = first.receive::<ListOffsetsRequest>(id, 7).await;
        (end, other)
    });
    writer.join().expect("writer");
    assert_eq!(
        other,
        Ok(0),
        "another connection was answered while the open was held"
    );
    let p = &end.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.offset),
        (0, 3),
        "the held request's answer"
    );
    server_rt.block_on(server.stop());
}
