"""Consumer groups with confluent-kafka and kafka-python: partitions split
and move as members join and leave; auto and manual commits with metadata."""

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition as KpTopicPartition

from conftest import create_topic, manual_consumer, poll_messages, unique, wait_until



def fill(broker, topic, partitions, per_partition):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=f"{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


class Member:
    """A confluent consumer polled on its own thread."""

    def __init__(self, broker, group, topic, name):
        self.consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": group,
                "client.id": name,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 500,
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 200,
            }
        )
        self.received = []
        self.lock = threading.Lock()
        self.owned = []
        # librdkafka must not be asked for the assignment while another
        # thread polls: track it from the rebalance callbacks instead.
        self.consumer.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_revoke)
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            m = self.consumer.poll(0.1)
            if m is not None and m.error() is None:
                with self.lock:
                    self.received.append((m.partition(), m.offset()))

    def on_assign(self, consumer, partitions):
        with self.lock:
            self.owned = sorted(tp.partition for tp in partitions)

    def on_revoke(self, consumer, partitions):
        with self.lock:
            self.owned = []

    def assignment(self):
        with self.lock:
            return list(self.owned)

    def close(self):
        self.running = False
        self.thread.join()
        self.consumer.close()


def settled(members, partitions):
    """Each partition owned by exactly one member, loads within one."""
    owned = [m.assignment() for m in members]
    flat = sorted(p for o in owned for p in o)
    if flat != list(range(partitions)):
        return None
    loads = [len(o) for o in owned]
    if max(loads) - min(loads) > 1:
        return None
    return owned


def test_confluent_group_splits_and_rebalances(broker):
    topic = unique("split")
    group = unique("g")
    create_topic(broker, topic, 4)
    fill(broker, topic, 4, 25)

    a = Member(broker, group, topic, "a")
    b = Member(broker, group, topic, "b")
    owned = wait_until(lambda: settled([a, b], 4), what="two members share 4 partitions")
    assert sorted(len(o) for o in owned) == [2, 2]

    c = Member(broker, group, topic, "c")
    owned = wait_until(lambda: settled([a, b, c], 4), what="a third member takes partitions")
    assert sorted(len(o) for o in owned) == [1, 1, 2]

    a.close()
    owned = wait_until(lambda: settled([b, c], 4), what="partitions move when a member leaves")
    assert sorted(len(o) for o in owned) == [2, 2]

    # Every message was received by someone (auto-commit moved positions forward).
    def everything():
        got = set(a.received) | set(b.received) | set(c.received)
        return len({x for x in got}) == 100
    wait_until(everything, what="all 100 messages consumed")

    # Auto-commit stored positions at the end of every partition.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    def all_committed():
        res = admin.list_consumer_group_offsets(
            [__import__("confluent_kafka").ConsumerGroupTopicPartitions(group)]
        )[group].result(timeout=30)
        return sorted((tp.partition, tp.offset) for tp in res.topic_partitions if tp.topic == topic) == [
            (p, 25) for p in range(4)
        ]
    wait_until(all_committed, what="auto-committed offsets")
    b.close()
    c.close()


def test_manual_commit_with_metadata_read_back_by_both_clients(broker):
    topic = unique("manual")
    group = unique("g")
    create_topic(broker, topic, 2)
    fill(broker, topic, 2, 10)

    c = manual_consumer(broker, group)
    c.subscribe([topic])
    assert len(poll_messages(c, 20)) == 20
    tp0 = TopicPartition(topic, 0, 7, "checkpoint-7")
    c.commit(offsets=[tp0, TopicPartition(topic, 1, 10)], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 7), (1, 10)]
    assert committed[0].metadata == "checkpoint-7"
    c.close()

    # kafka-python reads the same commits, metadata included, and commits its own.
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    k0, k1 = KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)
    meta = kc.committed(k0, metadata=True)
    # confluent-kafka sends the metadata with its C string terminator; the
    # broker stores what it is given, byte for byte.
    assert (meta.offset, meta.metadata) == (7, "checkpoint-7\x00")
    assert kc.committed(k1) == 10
    kc.commit({k0: OffsetAndMetadata(9, "from-kafka-python", -1)})
    meta = kc.committed(k0, metadata=True)
    assert (meta.offset, meta.metadata) == (9, "from-kafka-python")
    kc.close()

    # A new group member resumes from the committed positions.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.subscribe([topic])
    first = {}
    deadline = time.monotonic() + 60
    while len(first) < 1 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None and m.partition() == 0:
            first.setdefault(0, m.offset())
    assert first[0] == 9
    c.close()


def test_kafka_python_group_with_auto_commit(broker):
    topic = unique("kp-group")
    group = unique("g")
    create_topic(broker, topic, 4)
    fill(broker, topic, 4, 5)
    received = set()
    owned = {}
    lock = threading.Lock()
    stop = threading.Event()

    def member(name):
        # One consumer per thread, polled the usual way.
        c = KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            auto_commit_interval_ms=100,
        )
        while not stop.is_set():
            batch = c.poll(timeout_ms=500)
            with lock:
                for records in batch.values():
                    received.update((r.partition, r.offset) for r in records)
                owned[name] = sorted(tp.partition for tp in c.assignment())
        c.commit()
        with lock:
            owned[name + "-committed"] = {p: c.committed(KpTopicPartition(topic, p)) for p in range(4)}
        c.close()

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in ("a", "b")]
    for t in threads:
        t.start()

    def shared():
        with lock:
            parts = [owned.get("a", []), owned.get("b", [])]
            return len(received) == 20 and sorted(parts[0] + parts[1]) == [0, 1, 2, 3] and all(parts)

    wait_until(shared, what="two kafka-python members share the topic and read everything")
    stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a kafka-python member did not stop"
    assert owned["a-committed"] == {p: 5 for p in range(4)}
    assert owned["b-committed"] == {p: 5 for p in range(4)}
