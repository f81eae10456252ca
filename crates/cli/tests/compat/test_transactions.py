"""Transactions with confluent-kafka's transactional producer: commit and
abort write a COMMIT/ABORT marker to every partition of the transaction, a
second producer with the same transactional.id fences the first, the
transaction timeout aborts an abandoned transaction, and a transaction
survives the broker's restart (clean and SIGKILL) mid-way.

The markers are seen two ways: each takes one offset of its partition
(end offsets, on pubsub and on Apache Kafka alike), and, on pubsub,
`pubsub log dump` shows the control batch and its type. The records are
read with isolation.level=read_uncommitted: which ones read_committed
returns is the log side's test."""

import json
import os
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import Broker, binary, create_topic, end_offsets, unique, wait_until


def producer(broker, txn_id, **extra):
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": txn_id,
        "linger.ms": 5,
    }
    conf.update(extra)
    return Producer(conf)


def send(p, topic, partitions, per_partition, tag):
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, key=f"{tag}-{i}".encode(), value=f"{tag}-{part}-{i}".encode(), partition=part)
    p.flush(30)


def read_uncommitted(broker, topic, partitions):
    """Every data record of the topic (control batches are not records)."""
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique("reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_uncommitted",
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, eof = [], set()
    while len(eof) < partitions:
        m = c.poll(10)
        assert m is not None, "the broker stopped answering"
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            eof.add(m.partition())
            continue
        eof.discard(m.partition())
        out.append((m.partition(), m.offset(), m.value().decode()))
    c.close()
    return out


def settled(broker, topic, partitions, expected):
    """Waits until the partitions' end offsets are `expected`: Kafka writes
    the markers after answering EndTxn (pubsub before)."""
    wait_until(lambda: end_offsets(broker, topic, partitions) == expected, what=f"end offsets {expected}")


def markers(broker, topic, partition):
    """The control batches of a pubsub partition, oldest first:
    [(producer id, epoch, "COMMIT" | "ABORT")]."""
    out = subprocess.run(
        [binary(), "log", "dump", "--json", "--records", os.path.join(broker.data_dir, f"{topic}-{partition}")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found, batch = [], None
    for line in out.splitlines():
        item = json.loads(line)
        if item["type"] == "batch":
            batch = item if item["control"] else None
            if batch is not None:
                assert batch["transactional"], batch
        elif item["type"] == "record" and batch is not None:
            kind = {0: "ABORT", 1: "COMMIT"}[ord(item["key"][3])]
            found.append((batch["producer_id"], batch["producer_epoch"], kind))
    return found


def test_commit_and_abort_mark_every_partition(broker):
    topic = unique("txn")
    create_topic(broker, topic, 3)
    p = producer(broker, unique("tx"))
    p.init_transactions(30)
    p.begin_transaction()
    send(p, topic, 3, 2, "committed")
    p.commit_transaction(30)
    # One marker after each partition's two records.
    settled(broker, topic, 3, [3, 3, 3])
    p.begin_transaction()
    send(p, topic, 2, 1, "aborted")
    p.abort_transaction(30)
    settled(broker, topic, 3, [5, 5, 3])
    got = read_uncommitted(broker, topic, 3)
    assert sorted((part, off) for part, off, _ in got) == [
        (0, 0), (0, 1), (0, 3), (1, 0), (1, 1), (1, 3), (2, 0), (2, 1)
    ]
    if isinstance(broker, Broker):
        pid_epoch = None
        for part, kinds in [(0, ["COMMIT", "ABORT"]), (1, ["COMMIT", "ABORT"]), (2, ["COMMIT"])]:
            found = markers(broker, topic, part)
            assert [k for _, _, k in found] == kinds, found
            assert len({(pid, e) for pid, e, _ in found}) == 1, found
            pid_epoch = pid_epoch or found[0][:2]
            assert found[0][:2] == pid_epoch
    p.flush(5)


def test_a_second_producer_fences_the_first(broker):
    topic = unique("txn")
    create_topic(broker, topic, 2)
    txn_id = unique("tx")
    zombie = producer(broker, txn_id)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    send(zombie, topic, 2, 1, "zombie")
    # The new instance fences the zombie and aborts its open transaction.
    fresh = producer(broker, txn_id)
    fresh.init_transactions(60)
    settled(broker, topic, 2, [2, 2])
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    err = raised.value.args[0]
    assert err.fatal(), err
    assert err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH), err
    # The new producer works.
    fresh.begin_transaction()
    send(fresh, topic, 2, 1, "fresh")
    fresh.commit_transaction(30)
    settled(broker, topic, 2, [4, 4])
    if isinstance(broker, Broker):
        for part in range(2):
            found = markers(broker, topic, part)
            assert [k for _, _, k in found] == ["ABORT", "COMMIT"], found
            # The abort carried the fencing epoch; the new producer's is one above.
            (pid, abort_epoch, _), (pid2, commit_epoch, _) = found
            assert pid == pid2 and commit_epoch == abort_epoch + 1, found


def test_the_transaction_timeout_aborts_an_abandoned_transaction(broker):
    topic = unique("txn")
    create_topic(broker, topic, 1)
    p = producer(broker, unique("tx"), **{"transaction.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    send(p, topic, 1, 3, "abandoned")
    # Kafka checks for timed-out transactions every 10 s; pubsub at each tick.
    settled(broker, topic, 1, [4])
    with pytest.raises(KafkaException) as raised:
        p.commit_transaction(30)
    assert raised.value.args[0].fatal() or raised.value.args[0].txn_requires_abort(), raised.value
    if isinstance(broker, Broker):
        assert [k for _, _, k in markers(broker, topic, 0)] == ["ABORT"]


def test_init_transactions_with_a_timeout_above_the_broker_maximum_is_refused(broker):
    p = producer(broker, unique("tx"), **{"transaction.timeout.ms": 900001, "message.timeout.ms": 900001})
    with pytest.raises(KafkaException) as raised:
        p.init_transactions(30)
    assert raised.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, raised.value


@pytest.mark.pubsub_only
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_transaction_survives_a_broker_restart_mid_way(broker, stop):
    topic = unique("txn")
    create_topic(broker, topic, 2)
    txn_id = unique("tx")
    p = producer(broker, txn_id)
    p.init_transactions(30)
    p.begin_transaction()
    send(p, topic, 2, 2, "before")
    (broker.stop if stop == "sigterm" else broker.kill9)()
    broker.restart()
    # The Ongoing transaction was durable: it commits after the restart.
    p.commit_transaction(60)
    settled(broker, topic, 2, [3, 3])
    assert [k for _, _, k in markers(broker, topic, 0)] == ["COMMIT"]
    assert [k for _, _, k in markers(broker, topic, 1)] == ["COMMIT"]
    # And the next transaction of the same producer too.
    p.begin_transaction()
    send(p, topic, 1, 1, "after")
    p.commit_transaction(30)
    settled(broker, topic, 2, [5, 3])


@pytest.mark.pubsub_only
def test_an_open_transaction_is_aborted_after_a_sigkill_by_the_next_instance(broker):
    topic = unique("txn")
    create_topic(broker, topic, 2)
    txn_id = unique("tx")
    p = producer(broker, txn_id)
    p.init_transactions(30)
    p.begin_transaction()
    send(p, topic, 2, 1, "lost")
    broker.kill9()
    broker.restart()
    fresh = producer(broker, txn_id)
    fresh.init_transactions(60)
    settled(broker, topic, 2, [2, 2])
    for part in range(2):
        assert [k for _, _, k in markers(broker, topic, part)] == ["ABORT"]
