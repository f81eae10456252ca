"""SIGKILL the broker in the middle of a stream and restart it on the same
directory and port: every acknowledged message is there, once, at the offset
its delivery report gave, in order; idempotent retries across the restart are
not duplicated; a consumer group resumes at its committed offsets."""

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic, manual_consumer, read_topic, unique, wait_until

# These kill and restart the broker process: pubsub's own.
pytestmark = pytest.mark.pubsub_only

PARTITIONS = 4


def create(broker, topic):
    create_topic(broker, topic, PARTITIONS)


def read_everything(broker, topic):
    """{partition: [(offset, value), ...]}, in offset order."""
    out = {p: [] for p in range(PARTITIONS)}
    for (p, offset), (_, value, _) in sorted(read_topic(broker, topic, PARTITIONS).items()):
        out[p].append((offset, value.decode()))
    return out


class Stream:
    """A producer thread sending `total` numbered messages, keyed by
    message number modulo 16, recording every delivery report."""

    def __init__(self, broker, topic, prefix, config, total):
        self.prefix = prefix
        self.producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, **config})
        self.topic = topic
        self.total = total
        self.acked = {}
        self.failed = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def on_delivery(self, err, msg):
        with self.lock:
            if err is None:
                self.acked[msg.value().decode()] = (msg.partition(), msg.offset())
            else:
                self.failed.append((msg.value().decode(), str(err)))

    def run(self):
        for i in range(self.total):
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=f"k{i % 16}".encode(), value=f"{self.prefix}{i:06d}".encode(), on_delivery=self.on_delivery
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
            if i % 50 == 0:
                self.producer.poll(0)
                time.sleep(0.002)
        assert self.producer.flush(180) == 0

    def count(self):
        with self.lock:
            return len(self.acked)


def check_stream(stream, stored, exactly_once):
    assert not stream.failed, stream.failed[:5]
    assert len(stream.acked) == stream.total
    position = {}
    for partition, records in stored.items():
        offsets = [o for o, _ in records]
        assert offsets == list(range(len(records))), f"partition {partition}: offsets are dense and ordered"
        for offset, value in records:
            if value.startswith(stream.prefix):
                position.setdefault(value, []).append((partition, offset))
    for value, (partition, offset) in stream.acked.items():
        assert (partition, offset) in position.get(value, []), f"{value} acknowledged at {partition}/{offset} but not there"
        if exactly_once:
            assert len(position[value]) == 1, f"{value} stored {len(position[value])} times"
    if not exactly_once:
        return  # an acks=1 stream's retries may store a message twice, so out of order
    # Per key (so per partition), acknowledged messages are in send order.
    for partition, records in stored.items():
        seen = {}
        for _, value in records:
            if value in stream.acked and stream.acked[value][0] == partition:
                n = int(value[len(stream.prefix):])
                key = n % 16
                assert seen.get(key, -1) < n, f"{value} out of order"
                seen[key] = n


def test_sigkill_mid_stream_loses_nothing_acknowledged(broker):
    topic = unique("crash")
    create(broker, topic)
    idempotent = Stream(broker, topic, "idem-", {"acks": "all", "enable.idempotence": True}, 20_000)
    leader_acks = Stream(broker, topic, "acks1-", {"acks": "1", "enable.idempotence": False, "retries": 1000}, 10_000)

    wait_until(lambda: idempotent.count() > 3_000 and leader_acks.count() > 1_500, what="a stream under way")
    broker.kill9()
    time.sleep(0.5)
    broker.restart()
    idempotent.thread.join(240)
    leader_acks.thread.join(240)
    assert not idempotent.thread.is_alive() and not leader_acks.thread.is_alive()

    stored = read_everything(broker, topic)
    total = sum(len(r) for r in stored.values())
    assert total >= 30_000
    check_stream(idempotent, stored, exactly_once=True)
    check_stream(leader_acks, stored, exactly_once=False)

    # Kill again, this time with nothing in flight, and check once more.
    broker.kill9()
    broker.restart()
    assert read_everything(broker, topic) == stored


def test_group_resumes_at_committed_offsets_after_sigkill(broker):
    topic = unique("resume")
    group = unique("g")
    create(broker, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(400):
        p.produce(topic, value=f"r{i}".encode(), partition=i % PARTITIONS)
    assert p.flush(30) == 0

    c = manual_consumer(broker, group)
    c.subscribe([topic])
    consumed = 0
    deadline = time.monotonic() + 60
    while consumed < 150 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        consumed += 1
        if consumed % 10 == 0:
            c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)}
    assert sum(v for v in committed.values() if v > 0) == 150

    # The member leaves (a member that vanishes with the broker would be
    # waited for until its session times out, as in Kafka).
    c.close()
    broker.kill9()
    broker.restart()

    # A fresh member of the group starts exactly where the commits left off
    # (partitions consumed to their end have nothing left to deliver).
    expected = {q: max(committed.get(q, 0), 0) for q in range(PARTITIONS)}
    expected = {q: o for q, o in expected.items() if o < 100}
    assert expected, "some partitions still have messages"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    first = {}
    deadline = time.monotonic() + 60
    while len(first) < len(expected) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            first.setdefault(m.partition(), m.offset())
    c.close()
    assert first == expected
