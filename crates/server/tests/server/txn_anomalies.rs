//! Transactional writes checked against the coordinator (KIP-890 part 1),
//! and the anomalies Jepsen found in Kafka-compatible brokers (Bufstream
//! 0.1.0, Redpanda 21.10, Kafka before KIP-890), each crafted with raw
//! requests and shown not to happen here: the aborted read (a late write
//! landing after its transaction's abort), the lost write through a stale
//! marker (a delayed marker of one transaction ending the next one), the
//! torn transaction (a commit visible in one partition and never in
//! another, across a crash between the markers). What a read_committed
//! consumer sees is computed from Fetch answers as Kafka's consumer does.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::*;
use pubsub_broker::txn::{TxnState, TxnStore};
use pubsub_broker::{wall_clock_ms, BrokerError};
use pubsub_records::{Batches, ControlRecord, ControlType};
use pubsub_server::ServerConfig;

use crate::client::{add_partitions, end_txn_request, init_txn, s, txn_batch, Client};
use crate::common::{broker_config, create_topic, fetch_request, produce_request, TestServer};
use crate::common::{FETCH_V, PRODUCE_V};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const NOT_ENOUGH_REPLICAS: i16 = 19;

/// A transactional batch of `values`, stamped now.
fn batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    txn_batch(pid, epoch, seq, wall_clock_ms(), values)
}

/// A transactional Produce (acks=all) of `id` at `version`: the
/// partition's error code.
async fn write_at(
    c: &mut Client,
    version: i16,
    (id, topic, partition): (&str, &str, i32),
    records: Bytes,
) -> i16 {
    let req = produce_request(topic, partition, -1, records)
        .with_transactional_id(Some(TransactionalId(s(id))));
    let r = c.call(version, &req).await;
    r.responses[0].partition_responses[0].error_code
}

/// A transactional Produce (acks=all) of `values` by producer `pid` at
/// `epoch` of `id`, from sequence `seq`: the partition's error code.
async fn write_values(
    c: &mut Client,
    (id, pid, epoch): (&str, i64, i16),
    (topic, partition): (&str, i32),
    seq: i32,
    values: &[&str],
) -> i16 {
    write(c, id, topic, partition, batch(pid, epoch, seq, values)).await
}

/// A transactional Produce of `id` (acks=all): the partition's error code.
async fn write(c: &mut Client, id: &str, topic: &str, partition: i32, records: Bytes) -> i16 {
    write_at(c, PRODUCE_V, (id, topic, partition), records).await
}

/// A transactional Produce v12 (transaction version 2: the write adds its
/// partition to the transaction): the partition's error code.
async fn write_v12(c: &mut Client, id: &str, topic: &str, partition: i32, records: Bytes) -> i16 {
    write_at(c, 12, (id, topic, partition), records).await
}

/// EndTxn v3: its error code.
async fn end(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let req = end_txn_request(id, pid, epoch, commit);
    c.call(3, &req).await.error_code
}

/// EndTxn v5 (transaction version 2): its error code, producer id and
/// epoch.
async fn end_v5(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool) -> (i16, i64, i16) {
    let r = c.call(5, &end_txn_request(id, pid, epoch, commit)).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// The producer id and epoch of every control batch of the partition.
async fn markers(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, i16)> {
    let r = c
        .call(FETCH_V, &fetch_request(topic, partition, 0, 0, 1 << 20))
        .await;
    let records = r.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    Batches::new(&records)
        .map(|b| b.expect("batch"))
        .filter(|b| b.is_control())
        .map(|b| (b.producer_id(), b.producer_epoch()))
        .collect()
}

/// The partition's high watermark (read_uncommitted).
async fn high_watermark(c: &mut Client, topic: &str, partition: i32) -> i64 {
    let r = c
        .call(FETCH_V, &fetch_request(topic, partition, 0, 0, 1))
        .await;
    r.responses[0].partitions[0].high_watermark
}

/// What a read_committed consumer reads from the start of the partition
/// up to its last stable offset: Fetch with isolation_level=1, dropping
/// the records of the aborted transactions it names, as Kafka's consumer
/// does (a producer's data is dropped from its aborted transaction's first
/// offset until that producer's ABORT marker).
async fn committed(c: &mut Client, topic: &str, partition: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = 0i64;
    let mut aborting: Vec<i64> = Vec::new();
    let mut pending: Vec<(i64, i64)> = Vec::new();
    loop {
        let mut req = fetch_request(topic, partition, next, 0, 1 << 20);
        req.isolation_level = 1;
        let r = c.call(FETCH_V, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        for t in p.aborted_transactions.iter().flatten() {
            if !pending.contains(&(t.producer_id.0, t.first_offset)) {
                pending.push((t.producer_id.0, t.first_offset));
            }
        }
        let records = p.records.clone().unwrap_or_default();
        if next >= p.last_stable_offset || records.is_empty() {
            return out;
        }
        for b in Batches::new(&records) {
            let b = b.expect("batch");
            next = b.next_offset();
            pending.retain(|&(pid, first)| {
                let started = first <= b.last_offset();
                if started && !aborting.contains(&pid) {
                    aborting.push(pid);
                }
                !started
            });
            let set = b.records(1 << 20).expect("records");
            if b.is_control() {
                for r in set.iter() {
                    let r = r.expect("record");
                    let m = ControlRecord::parse(r.key, r.value).expect("control");
                    if m.kind == ControlType::Abort {
                        aborting.retain(|&pid| pid != b.producer_id());
                    }
                }
                continue;
            }
            if b.is_transactional() && aborting.contains(&b.producer_id()) {
                continue;
            }
            for r in set.iter() {
                let v = r.expect("record").value.expect("value");
                out.push(String::from_utf8(v.to_vec()).expect("utf8"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_write_is_appended_only_inside_its_ongoing_transaction() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "v", 2, &[]).await;
    // An id the coordinator does not know.
    let code = write_values(&mut c, ("ghost", 1_000, 0), ("v", 0), 0, &["g"]).await;
    assert_eq!(code, INVALID_PRODUCER_ID_MAPPING);
    let (pid, epoch) = init_txn(&mut c, 3, "tx-v").await;
    // No AddPartitionsToTxn yet: outside the transaction (there is none).
    let code = write_values(&mut c, ("tx-v", pid, epoch), ("v", 0), 0, &["x"]).await;
    assert_eq!(code, INVALID_TXN_STATE);
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-v", pid, epoch), "v", &[0]).await,
        [0]
    );
    // Partition 1 did not join; another producer id; the id's batch under
    // someone else's transactional id.
    let code = write_values(&mut c, ("tx-v", pid, epoch), ("v", 1), 0, &["x"]).await;
    assert_eq!(code, INVALID_TXN_STATE);
    let code = write_values(&mut c, ("tx-v", pid + 1, epoch), ("v", 0), 0, &["x"]).await;
    assert_eq!(code, INVALID_PRODUCER_ID_MAPPING);
    let code = write_values(&mut c, ("ghost", pid, epoch), ("v", 0), 0, &["x"]).await;
    assert_eq!(code, INVALID_PRODUCER_ID_MAPPING);
    for p in 0..2 {
        assert_eq!(high_watermark(&mut c, "v", p).await, 0, "nothing appended");
    }
    // Inside it: appended.
    let code = write_values(&mut c, ("tx-v", pid, epoch), ("v", 0), 0, &["in"]).await;
    assert_eq!(code, 0);
    // A new producer of the id fences this one (its transaction aborted
    // with epoch + 1, the new producer gets epoch + 2, as Kafka): its
    // writes are refused with the epoch error Produce v9 clients know.
    let (pid2, epoch2) = init_txn(&mut c, 3, "tx-v").await;
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    let code = write_values(&mut c, ("tx-v", pid, epoch), ("v", 0), 1, &["zombie"]).await;
    assert_eq!(code, INVALID_PRODUCER_EPOCH);
    // The fenced transaction was aborted: nothing of it is committed.
    assert_eq!(
        high_watermark(&mut c, "v", 0).await,
        2,
        "the write and its abort"
    );
    assert!(committed(&mut c, "v", 0).await.is_empty());
    server.stop().await;
}

/// Aborted read: the write of a transaction delayed in flight (or retried)
/// reaches the partition after its transaction was aborted. In Kafka
/// before KIP-890 it opened a new transaction there, which the same
/// producer's next commit then committed; here it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_arriving_after_its_transactions_abort_is_never_read() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "ar", 2, &[]).await;
    let (pid, epoch) = init_txn(&mut c, 3, "tx-ar").await;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-ar", pid, epoch), "ar", &[0, 1]).await,
        [0, 0]
    );
    let code = write_values(&mut c, ("tx-ar", pid, epoch), ("ar", 0), 0, &["aborted-1"]).await;
    assert_eq!(code, 0);
    assert_eq!(end(&mut c, "tx-ar", pid, epoch, false).await, 0);
    // The late write, to a partition written before and to one that was
    // only added: both refused, no transaction left hanging.
    let late = batch(pid, epoch, 1, &["aborted-late"]);
    assert_eq!(
        write(&mut c, "tx-ar", "ar", 0, late).await,
        INVALID_TXN_STATE
    );
    let late = batch(pid, epoch, 0, &["aborted-late"]);
    assert_eq!(
        write(&mut c, "tx-ar", "ar", 1, late).await,
        INVALID_TXN_STATE
    );
    assert_eq!(high_watermark(&mut c, "ar", 0).await, 2, "write + ABORT");
    assert_eq!(high_watermark(&mut c, "ar", 1).await, 1, "ABORT only");
    // The producer's next transaction commits what it wrote, and only that.
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-ar", pid, epoch), "ar", &[0, 1]).await,
        [0, 0]
    );
    let code = write_values(
        &mut c,
        ("tx-ar", pid, epoch),
        ("ar", 0),
        1,
        &["committed-1"],
    )
    .await;
    assert_eq!(code, 0);
    let code = write_values(
        &mut c,
        ("tx-ar", pid, epoch),
        ("ar", 1),
        0,
        &["committed-2"],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(end(&mut c, "tx-ar", pid, epoch, true).await, 0);
    // And a write after the commit is refused too.
    let late = batch(pid, epoch, 2, &["committed-late"]);
    assert_eq!(
        write(&mut c, "tx-ar", "ar", 0, late).await,
        INVALID_TXN_STATE
    );
    assert_eq!(committed(&mut c, "ar", 0).await, ["committed-1"]);
    assert_eq!(committed(&mut c, "ar", 1).await, ["committed-2"]);
    server.stop().await;
}

/// Lost write via a stale marker: a COMMIT or ABORT of transaction N that
/// arrives late must not end transaction N+1 (Kafka's markers carried the
/// same epoch for both). Here markers are written by the coordinator in
/// the broker, never sent over the network; the partitions still refuse a
/// marker older than the producer's epoch, and the producer's zombie
/// writes of N are refused once N+1 owns the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_marker_or_write_of_one_transaction_cannot_land_in_the_next() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "sm", 1, &[]).await;
    let (pid, e0) = init_txn(&mut c, 3, "tx-sm").await;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-sm", pid, e0), "sm", &[0]).await,
        [0]
    );
    assert_eq!(
        write_values(&mut c, ("tx-sm", pid, e0), ("sm", 0), 0, &["n-1"]).await,
        0
    );
    // The producer restarts (or a new instance takes the id): N is aborted
    // with epoch + 1, N+1 begins with epoch + 2.
    let (pid1, e1) = init_txn(&mut c, 3, "tx-sm").await;
    assert_eq!((pid1, e1), (pid, e0 + 2));
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-sm", pid, e1), "sm", &[0]).await,
        [0]
    );
    assert_eq!(
        write_values(&mut c, ("tx-sm", pid, e1), ("sm", 0), 0, &["n1-1"]).await,
        0
    );
    let hw = high_watermark(&mut c, "sm", 0).await;
    // N's delayed COMMIT marker: refused by the partition.
    let stale = server.broker.write_txn_marker(
        "sm",
        0,
        pid,
        e0,
        ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 0,
        },
    );
    assert!(
        matches!(stale, Err(BrokerError::InvalidProducerEpoch { .. })),
        "{stale:?}"
    );
    // N's delayed write: refused.
    let late = batch(pid, e0, 1, &["n-2"]);
    assert_eq!(
        write(&mut c, "tx-sm", "sm", 0, late).await,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(high_watermark(&mut c, "sm", 0).await, hw, "nothing landed");
    // N+1 is still open: nothing of it (nor of N) is readable.
    assert!(committed(&mut c, "sm", 0).await.is_empty());
    // N+1 aborts; N+2 commits: only N+2's record is ever read.
    assert_eq!(end(&mut c, "tx-sm", pid, e1, false).await, 0);
    assert!(committed(&mut c, "sm", 0).await.is_empty());
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-sm", pid, e1), "sm", &[0]).await,
        [0]
    );
    assert_eq!(
        write_values(&mut c, ("tx-sm", pid, e1), ("sm", 0), 1, &["n2-1"]).await,
        0
    );
    assert_eq!(end(&mut c, "tx-sm", pid, e1, true).await, 0);
    assert_eq!(committed(&mut c, "sm", 0).await, ["n2-1"]);
    server.stop().await;
}

/// The broker's store, except that the process "dies" after the first
/// marker: later markers fail as a crash would leave them, unwritten.
struct DiesAfterOneMarker<'a> {
    store: &'a dyn TxnStore,
    markers: AtomicUsize,
}

impl TxnStore for DiesAfterOneMarker<'_> {
    fn persist_txn(&self, id: &str, value: Option<Vec<u8>>) -> pubsub_broker::Result<()> {
        if self.markers.load(Ordering::SeqCst) > 0 {
            return Err(BrokerError::Closed);
        }
        self.store.persist_txn(id, value)
    }

    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> pubsub_broker::Result<()> {
        if self.markers.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(BrokerError::Closed);
        }
        self.store
            .write_marker(topic, partition, producer_id, producer_epoch, commit)
    }

    fn new_producer_id(&self) -> pubsub_broker::Result<i64> {
        self.store.new_producer_id()
    }
}

/// Torn transaction: the broker stops between the COMMIT markers of a
/// transaction's two partitions. The commit is visible in the first and,
/// until the restart completes it, in neither the second's committed view
/// nor a next transaction (which cannot start); after the restart it is
/// visible in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_interrupted_between_its_markers_is_completed_everywhere() {
    let mut config = broker_config();
    config.background = false;
    let server = TestServer::start_with(config.clone(), ServerConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "tt", 2, &[]).await;
    let (pid, epoch) = init_txn(&mut c, 3, "tx-tt").await;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-tt", pid, epoch), "tt", &[0, 1]).await,
        [0, 0]
    );
    for p in 0..2 {
        let b = batch(pid, epoch, 0, &[&format!("p{p}")]);
        assert_eq!(write(&mut c, "tx-tt", "tt", p, b).await, 0);
    }
    let dying = DiesAfterOneMarker {
        store: server.broker.txn_store(),
        markers: AtomicUsize::new(0),
    };
    server
        .broker
        .transactions()
        .end_txn(&dying, "tx-tt", pid, epoch, true, wall_clock_ms())
        .expect("the decision is durable");
    let m = server
        .broker
        .transactions()
        .describe("tx-tt")
        .expect("known");
    assert_eq!(m.state, TxnState::PrepareCommit);
    assert_eq!(committed(&mut c, "tt", 0).await, ["p0"]);
    assert!(
        committed(&mut c, "tt", 1).await.is_empty(),
        "not yet, not torn"
    );
    // The next transaction waits for this one's markers: neither it nor a
    // late write can slip in before them.
    let codes = add_partitions(&mut c, 3, ("tx-tt", pid, epoch), "tt", &[1]).await;
    assert_eq!(codes, [CONCURRENT_TRANSACTIONS]);
    let late = batch(pid, epoch, 1, &["late"]);
    assert_eq!(
        write(&mut c, "tx-tt", "tt", 1, late).await,
        NOT_ENOUGH_REPLICAS
    );
    drop(c);
    let dir = server.stop_keeping_data().await;
    let server = TestServer::start_in(dir, config, ServerConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    let m = server
        .broker
        .transactions()
        .describe("tx-tt")
        .expect("loaded");
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert_eq!(committed(&mut c, "tt", 0).await, ["p0"]);
    assert_eq!(committed(&mut c, "tt", 1).await, ["p1"]);
    // The missing marker was written (the first maybe twice: harmless).
    assert_eq!(high_watermark(&mut c, "tt", 1).await, 2);
    server.stop().await;
}

/// Transaction version 2 over the wire (EndTxn v5): every commit or abort
/// bumps the producer's epoch, its markers carry the bumped epoch, the
/// answer tells the producer its new epoch, a retry of the EndTxn gets the
/// same answer, and the writes of the ended transaction (its epoch) are
/// refused as a fenced epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_of_transaction_version_2_bumps_the_epoch_its_markers_carry() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "v2e", 1, &[]).await;
    let (pid, e0) = init_txn(&mut c, 3, "tx-v2e").await;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-v2e", pid, e0), "v2e", &[0]).await,
        [0]
    );
    let code = write_values(&mut c, ("tx-v2e", pid, e0), ("v2e", 0), 0, &["one"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e0, true).await,
        (0, pid, e0 + 1)
    );
    assert_eq!(markers(&mut c, "v2e", 0).await, [(pid, e0 + 1)]);
    // Retried (the answer lost): the same answer, no second marker.
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e0, true).await,
        (0, pid, e0 + 1)
    );
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e0, false).await.0,
        INVALID_TXN_STATE
    );
    // A late write of the committed transaction: its epoch is over.
    let late = batch(pid, e0, 1, &["late"]);
    assert_eq!(
        write(&mut c, "tx-v2e", "v2e", 0, late).await,
        INVALID_PRODUCER_EPOCH
    );
    // The next transaction, at the new epoch (sequences from 0), aborts:
    // another bump.
    let e1 = e0 + 1;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-v2e", pid, e1), "v2e", &[0]).await,
        [0]
    );
    let code = write_values(&mut c, ("tx-v2e", pid, e1), ("v2e", 0), 0, &["two"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e1, false).await,
        (0, pid, e1 + 1)
    );
    assert_eq!(
        markers(&mut c, "v2e", 0).await,
        [(pid, e0 + 1), (pid, e1 + 1)]
    );
    // An abort with nothing open bumps the epoch too (no markers); a
    // commit with nothing open is refused.
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e1 + 1, false).await,
        (0, pid, e1 + 2)
    );
    assert_eq!(
        end_v5(&mut c, "tx-v2e", pid, e1 + 2, true).await.0,
        INVALID_TXN_STATE
    );
    assert_eq!(markers(&mut c, "v2e", 0).await.len(), 2);
    assert_eq!(committed(&mut c, "v2e", 0).await, ["one"]);
    server.stop().await;
}

/// Transaction version 2's implicit add (KIP-890 part 2): a Produce v12 of
/// a transactional batch adds its partition to the producer's transaction
/// (starting one), with AddPartitionsToTxn's checks, as Kafka 4.x's
/// partition leader has its coordinator do. Produce v10 and below still
/// need AddPartitionsToTxn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_of_transaction_version_2_adds_its_partition_to_the_transaction() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "v2a", 2, &[]).await;
    let (pid, e0) = init_txn(&mut c, 3, "tx-v2a").await;
    // Not a transactional id the coordinator knows; another producer id; a
    // fenced epoch: refused as AddPartitionsToTxn refuses them.
    let code = write_v12(&mut c, "ghost", "v2a", 0, batch(pid, e0, 0, &["g"])).await;
    assert_eq!(code, INVALID_PRODUCER_ID_MAPPING);
    let code = write_v12(&mut c, "tx-v2a", "v2a", 0, batch(pid + 1, e0, 0, &["g"])).await;
    assert_eq!(code, INVALID_PRODUCER_ID_MAPPING);
    let code = write_v12(&mut c, "tx-v2a", "v2a", 0, batch(pid, e0 + 1, 0, &["g"])).await;
    assert_eq!(code, INVALID_PRODUCER_EPOCH);
    // Produce v9 (transaction version 1) does not add the partition.
    let code = write_values(&mut c, ("tx-v2a", pid, e0), ("v2a", 1), 0, &["g"]).await;
    assert_eq!(code, INVALID_TXN_STATE);
    for p in 0..2 {
        assert_eq!(
            high_watermark(&mut c, "v2a", p).await,
            0,
            "nothing appended"
        );
    }
    // The first write starts the transaction; the second partition joins.
    let code = write_v12(&mut c, "tx-v2a", "v2a", 0, batch(pid, e0, 0, &["a"])).await;
    assert_eq!(code, 0);
    let code = write_v12(&mut c, "tx-v2a", "v2a", 1, batch(pid, e0, 0, &["b"])).await;
    assert_eq!(code, 0);
    let txn = server
        .broker
        .transactions()
        .describe("tx-v2a")
        .expect("known");
    assert_eq!(txn.state, TxnState::Ongoing);
    assert_eq!(txn.partitions.len(), 2);
    assert_eq!(txn.client_version, 2);
    // Still open: nothing readable.
    assert!(committed(&mut c, "v2a", 0).await.is_empty());
    assert_eq!(
        end_v5(&mut c, "tx-v2a", pid, e0, true).await,
        (0, pid, e0 + 1)
    );
    assert_eq!(committed(&mut c, "v2a", 0).await, ["a"]);
    assert_eq!(committed(&mut c, "v2a", 1).await, ["b"]);
    // A late write of the committed transaction cannot open the next one:
    // its epoch is over. The next transaction, at the new epoch, aborts.
    let late = batch(pid, e0, 1, &["late"]);
    assert_eq!(
        write_v12(&mut c, "tx-v2a", "v2a", 0, late).await,
        INVALID_PRODUCER_EPOCH
    );
    let e1 = e0 + 1;
    let code = write_v12(&mut c, "tx-v2a", "v2a", 0, batch(pid, e1, 0, &["aborted"])).await;
    assert_eq!(code, 0);
    assert_eq!(
        end_v5(&mut c, "tx-v2a", pid, e1, false).await,
        (0, pid, e1 + 1)
    );
    assert_eq!(committed(&mut c, "v2a", 0).await, ["a"]);
    server.stop().await;
}

/// Jepsen's anomalies with a transaction version 2 producer (Produce v12,
/// whose writes add their partition; EndTxn v5, which bumps the epoch):
/// the aborted read (a late write of an aborted transaction would open a
/// new one by itself, but its epoch is over), the lost write through a
/// stale marker (a marker of the previous epoch cannot end the next
/// transaction), and the torn transaction (a crash between the markers:
/// completed everywhere after the restart, and nothing of the next
/// transaction slips in before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anomalies_cannot_happen_with_a_transaction_version_2_producer_either() {
    let mut config = broker_config();
    config.background = false;
    let server = TestServer::start_with(config.clone(), ServerConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "j2", 2, &[]).await;
    let id = "tx-j2";
    let (pid, e0) = init_txn(&mut c, 3, id).await;
    // Aborted read: N writes, aborts; its late writes, to a partition it
    // wrote and to one it did not, are refused rather than opening N+1.
    let code = write_v12(&mut c, id, "j2", 0, batch(pid, e0, 0, &["aborted"])).await;
    assert_eq!(code, 0);
    assert_eq!(end_v5(&mut c, id, pid, e0, false).await, (0, pid, e0 + 1));
    for p in 0..2 {
        let late = batch(pid, e0, 1, &["aborted-late"]);
        assert_eq!(
            write_v12(&mut c, id, "j2", p, late).await,
            INVALID_PRODUCER_EPOCH
        );
    }
    let m = server.broker.transactions().describe(id).expect("known");
    assert_eq!(m.state, TxnState::CompleteAbort, "no transaction opened");
    // Lost write via a stale marker: N+1 writes at the new epoch; a marker
    // of N's epoch arriving now is refused by the partition.
    let e1 = e0 + 1;
    let code = write_v12(&mut c, id, "j2", 0, batch(pid, e1, 0, &["n1"])).await;
    assert_eq!(code, 0);
    let hw = high_watermark(&mut c, "j2", 0).await;
    let stale = server.broker.write_txn_marker(
        "j2",
        0,
        pid,
        e0,
        ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 0,
        },
    );
    assert!(
        matches!(stale, Err(BrokerError::InvalidProducerEpoch { .. })),
        "{stale:?}"
    );
    assert_eq!(high_watermark(&mut c, "j2", 0).await, hw, "nothing landed");
    assert!(committed(&mut c, "j2", 0).await.is_empty(), "N+1 is open");
    assert_eq!(end_v5(&mut c, id, pid, e1, true).await, (0, pid, e1 + 1));
    assert_eq!(committed(&mut c, "j2", 0).await, ["n1"]);
    // Torn transaction: N+2 writes both partitions; the broker dies after
    // the first COMMIT marker.
    let e2 = e1 + 1;
    for p in 0..2 {
        let b = batch(pid, e2, 0, &[&format!("n2-p{p}")]);
        assert_eq!(write_v12(&mut c, id, "j2", p, b).await, 0);
    }
    let dying = DiesAfterOneMarker {
        store: server.broker.txn_store(),
        markers: AtomicUsize::new(0),
    };
    let answer = server
        .broker
        .transactions()
        .end_transaction(&dying, id, pid, e2, true, true, wall_clock_ms())
        .expect("the decision is durable");
    let e3 = e2 + 1;
    assert_eq!(answer, (pid, e3));
    assert_eq!(committed(&mut c, "j2", 0).await, ["n1", "n2-p0"]);
    assert!(committed(&mut c, "j2", 1).await.is_empty(), "not torn");
    // Neither N+3 (at the epoch it was told) nor a late write of N+2 slips
    // in before the missing marker.
    let next = batch(pid, e3, 0, &["n3"]);
    assert_eq!(
        write_v12(&mut c, id, "j2", 1, next).await,
        NOT_ENOUGH_REPLICAS
    );
    let late = batch(pid, e2, 1, &["n2-late"]);
    assert_eq!(
        write_v12(&mut c, id, "j2", 1, late).await,
        INVALID_PRODUCER_EPOCH
    );
    drop(c);
    let dir = server.stop_keeping_data().await;
    let server = TestServer::start_in(dir, config, ServerConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    let m = server.broker.transactions().describe(id).expect("loaded");
    assert_eq!(
        (m.state, m.producer_epoch, m.client_version),
        (TxnState::CompleteCommit, e3, 2)
    );
    assert_eq!(committed(&mut c, "j2", 0).await, ["n1", "n2-p0"]);
    assert_eq!(committed(&mut c, "j2", 1).await, ["n2-p1"]);
    // N+3 now runs at the epoch the decision handed out.
    let next = batch(pid, e3, 0, &["n3"]);
    assert_eq!(write_v12(&mut c, id, "j2", 1, next).await, 0);
    assert_eq!(end_v5(&mut c, id, pid, e3, true).await, (0, pid, e3 + 1));
    assert_eq!(committed(&mut c, "j2", 1).await, ["n2-p1", "n3"]);
    server.stop().await;
}

/// KIP-890's abortable error on the produce path: a transactional write to
/// a partition outside the ongoing transaction is INVALID_TXN_STATE up to
/// Produce v10 and TRANSACTION_ABORTABLE from v11, with no log start offset
/// (the coordinator refused it before the log was looked at), as Kafka
/// 4.1.1 answers (the differential scenario "transactional produce
/// versions"); nothing is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_outside_the_transaction_is_abortable_from_produce_v11() {
    const TRANSACTION_ABORTABLE: i16 = 120;
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "abortable", 2, &[]).await;
    let (pid, e0) = init_txn(&mut c, 3, "tx-abortable").await;
    assert_eq!(
        add_partitions(&mut c, 3, ("tx-abortable", pid, e0), "abortable", &[0]).await,
        [0]
    );
    for (version, expected) in [
        (9, INVALID_TXN_STATE),
        (10, INVALID_TXN_STATE),
        (11, TRANSACTION_ABORTABLE),
    ] {
        let req = produce_request("abortable", 1, -1, batch(pid, e0, 0, &["x"]))
            .with_transactional_id(Some(TransactionalId(s("tx-abortable"))));
        let r = c.call(version, &req).await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, expected, "Produce v{version}");
        assert_eq!(p.log_start_offset, -1, "Produce v{version}");
    }
    assert_eq!(high_watermark(&mut c, "abortable", 1).await, 0);
    server.stop().await;
}
