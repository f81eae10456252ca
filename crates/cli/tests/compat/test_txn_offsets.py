"""Consume-transform-produce with transactional offset commits
(TxnOffsetCommit): confluent-kafka's `send_offsets_to_transaction` and
kafka-python's. A committed transaction makes its output visible to
read_committed consumers and moves the group's committed offsets; an
aborted one does neither; a transaction whose offsets were sent before a
broker restart (clean or SIGKILL) commits after it."""

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic, manual_consumer, poll_messages, unique, wait_until


def fill(broker, topic, n):
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"in-{i}".encode(), partition=0)
    p.flush(30)


def read_committed(broker, topic):
    """The values a read_committed consumer returns from partition 0, up to
    the last stable offset."""
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique("reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    while True:
        m = c.poll(10)
        assert m is not None, "the broker stopped answering"
        if m.error():
            assert m.error().code() == -191, m.error()  # _PARTITION_EOF
            break
        out.append(m.value().decode())
    c.close()
    return out


def committed(broker, group, topic, stable=True):
    """The group's committed offset of partition 0 (None: none). `stable`:
    as a read_committed consumer fetches it (require_stable: it waits out a
    transaction still open or completing); otherwise the last committed
    offset, ignoring a transaction's pending one."""
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if stable else "read_uncommitted",
        }
    )
    try:
        offset = c.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
        return None if offset < 0 else offset
    finally:
        c.close()


def transform_batch(broker, group, source, sink, n, txn_id):
    """Consumes `n` records of `source` in `group`, produces their
    transformation to `sink` and sends the consumer's positions, all in one
    open transaction; returns (producer, consumer)."""
    consumer = manual_consumer(broker, group)
    consumer.subscribe([source])
    msgs = poll_messages(consumer, n)
    assert len(msgs) == n
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id, "linger.ms": 5})
    p.init_transactions(30)
    p.begin_transaction()
    for m in msgs:
        p.produce(sink, value=m.value().replace(b"in-", b"out-"), partition=0)
    p.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
    return p, consumer


def test_a_committed_transaction_moves_output_and_offsets_together(broker):
    source, sink, group = unique("cin"), unique("cout"), unique("ctp")
    create_topic(broker, source, 1)
    create_topic(broker, sink, 1)
    fill(broker, source, 5)
    p, consumer = transform_batch(broker, group, source, sink, 5, unique("tx"))
    assert committed(broker, group, source, stable=False) is None, "invisible before the commit"
    p.commit_transaction(30)
    consumer.close()
    assert read_committed(broker, sink) == [f"out-{i}" for i in range(5)]
    assert committed(broker, group, source) == 5


def test_an_aborted_transaction_moves_neither(broker):
    source, sink, group = unique("ain"), unique("aout"), unique("atp")
    create_topic(broker, source, 1)
    create_topic(broker, sink, 1)
    fill(broker, source, 4)
    p, consumer = transform_batch(broker, group, source, sink, 4, unique("tx"))
    p.abort_transaction(30)
    consumer.close()
    assert read_committed(broker, sink) == []
    assert committed(broker, group, source) is None


@pytest.mark.pubsub_only
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_offsets_sent_before_a_restart_commit_after_it(broker, stop):
    source, sink, group = unique("rin"), unique("rout"), unique("rtp")
    create_topic(broker, source, 1)
    create_topic(broker, sink, 1)
    fill(broker, source, 3)
    p, consumer = transform_batch(broker, group, source, sink, 3, unique("tx"))
    consumer.close()
    (broker.stop if stop == "sigterm" else broker.kill9)()
    broker.restart()
    assert committed(broker, group, source, stable=False) is None, "still pending after the restart"
    p.commit_transaction(60)
    assert read_committed(broker, sink) == ["out-0", "out-1", "out-2"]
    assert committed(broker, group, source) == 3


def test_kafka_python_sends_offsets_to_its_transaction(broker):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTopicPartition

    source, sink, group = unique("kin"), unique("kout"), unique("ktp")
    create_topic(broker, source, 1)
    create_topic(broker, sink, 1)
    fill(broker, source, 3)
    tp = KTopicPartition(source, 0)
    for commit, expected in [(False, None), (True, 3)]:
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=unique("ktx"))
        p.init_transactions()
        p.begin_transaction()
        p.send(sink, value=b"out", partition=0)
        p.send_offsets_to_transaction({tp: OffsetAndMetadata(3, "", -1)}, group)
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()
        p.close()
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
        if commit:
            # Kafka writes the markers after answering EndTxn (pubsub before).
            wait_until(lambda: c.committed(tp) == expected, what="the committed offset")
        else:
            assert c.committed(tp) is None
        c.close()
    assert read_committed(broker, sink) == ["out"]
