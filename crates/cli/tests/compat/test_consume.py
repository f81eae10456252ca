"""Replay: from the beginning, from an offset, and from a timestamp
(offsets_for_times), with confluent-kafka and kafka-python."""

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition

from conftest import create_topic, poll_messages, unique

BASE_TS = 1_700_000_000_000


def prepare(broker, partitions=1, count=50):
    """`count` records per partition, record i stamped BASE_TS + 1000 * i."""
    topic = unique("replay")
    create_topic(broker, topic, partitions)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for part in range(partitions):
        for i in range(count):
            p.produce(topic, value=f"{part}:{i}".encode(), partition=part, timestamp=BASE_TS + 1000 * i)
    assert p.flush(30) == 0
    return topic


def drain(consumer, expect):
    return [
        (m.partition(), m.offset(), m.value().decode(), m.timestamp()[1])
        for m in poll_messages(consumer, expect)
    ]


def test_confluent_replay_from_beginning_offset_and_time(broker):
    topic = prepare(broker)
    # From the beginning, via a group with auto.offset.reset=earliest.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = drain(c, 50)
    assert [g[1] for g in got] == list(range(50))
    assert got[7][2:] == ("0:7", BASE_TS + 7000), "timestamps survive"
    c.close()

    # From an offset in the middle of a batch.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 33)])
    got = drain(c, 17)
    assert [g[1] for g in got] == list(range(33, 50)), "starts exactly at 33, nothing before"
    c.close()

    # From a timestamp: first record at or after it.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"), "enable.auto.commit": False})
    found = c.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 20_500)], timeout=30)
    assert found[0].offset == 21
    after_end = c.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 10_000_000)], timeout=30)
    assert after_end[0].offset == -1, "no record that late: end of log (-1)"
    c.assign(found)
    got = drain(c, 29)
    assert got[0][1:3] == (21, "0:21")
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    assert (lo, hi) == (0, 50)
    c.close()


def test_kafka_python_replay_from_beginning_offset_and_time(broker):
    topic = prepare(broker, partitions=2, count=30)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    tps = [KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)]
    c.assign(tps)
    c.seek_to_beginning()
    got = sorted((m.partition, m.offset) for m in c)
    assert got == [(p, o) for p in range(2) for o in range(30)]

    c.seek(tps[1], 12)
    c.seek(tps[0], 29)
    got = sorted((m.partition, m.offset) for m in c)
    assert got == [(0, 29)] + [(1, o) for o in range(12, 30)]

    found = c.offsets_for_times({tps[0]: BASE_TS + 5_000, tps[1]: BASE_TS + 5_001})
    assert found[tps[0]].offset == 5 and found[tps[0]].timestamp == BASE_TS + 5_000
    assert found[tps[1]].offset == 6
    assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
    assert c.end_offsets(tps) == {tps[0]: 30, tps[1]: 30}
    c.seek(tps[0], found[tps[0]].offset)
    c.seek(tps[1], 30)
    first = next(iter(c))
    assert (first.partition, first.offset, first.value) == (0, 5, b"0:5")
    c.close()
