#!/usr/bin/env python3
"""Reads one partition from the beginning with isolation.level=read_committed
until the consumer's position reaches --until, with confluent-kafka and with
kafka-python, and prints one line per client: `name|v1,v2,...|position`.

Used by crates/server/tests/server/read_committed.rs (pubsub's read_committed
against real clients)."""

import argparse
import sys
import time


def confluent(bootstrap, topic, until, deadline):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "rc-confluent",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    })
    tp = TopicPartition(topic, 0, 0)
    c.assign([tp])
    values = []
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            values.append(m.value().decode())
        pos = c.position([TopicPartition(topic, 0)])[0].offset
        if pos >= until:
            break
    pos = c.position([TopicPartition(topic, 0)])[0].offset
    c.close()
    return values, pos


def kafka_python(bootstrap, topic, until, deadline):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    values = []
    while time.time() < deadline:
        for records in c.poll(timeout_ms=200).values():
            values.extend(r.value.decode() for r in records)
        if c.position(tp) >= until:
            break
    pos = c.position(tp)
    c.close()
    return values, pos


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    ok = True
    for name, run in (("confluent-kafka", confluent), ("kafka-python", kafka_python)):
        values, pos = run(a.bootstrap, a.topic, a.until, time.time() + a.timeout)
        print(f"{name}|{','.join(values)}|{pos}", flush=True)
        ok = ok and pos >= a.until
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
