#!/usr/bin/env python3
"""Transactional produce and read_committed consume, timed with
confluent-kafka (librdkafka), against any Kafka-protocol broker.

    benches/txn.py BOOTSTRAP produce-idempotent TOPIC MESSAGES SIZE
    benches/txn.py BOOTSTRAP produce-txn TOPIC MESSAGES SIZE PER_TXN
    benches/txn.py BOOTSTRAP consume TOPIC MESSAGES ISOLATION
    benches/txn.py BOOTSTRAP create TOPIC...

Producers: acks=all, idempotent, linger.ms 5, batch.size 200 KiB (as
benches/vs-kafka.sh); the transactional one commits every PER_TXN records
(begin, PER_TXN produce calls, commit_transaction, which flushes), after
one untimed warm-up record. The
consumer reads MESSAGES records from the start (timed from the first) with isolation.level
ISOLATION (read_committed or read_uncommitted). Prints one line:
`MB/s records/s seconds`.
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PRODUCER = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.size": 200 * 1024,
    "queue.buffering.max.kbytes": 1024 * 1024,
}


def produce(bootstrap, topic, n, size, per_txn):
    conf = dict(PRODUCER, **{"bootstrap.servers": bootstrap})
    if per_txn:
        conf["transactional.id"] = "bench-" + uuid.uuid4().hex
    p = Producer(conf)
    if per_txn:
        p.init_transactions(30)
    value = b"x" * size
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    # Warm-up (not timed): the producer id, the connections, the topic's
    # leader, and for transactions the coordinator's first records.
    if per_txn:
        p.begin_transaction()
    p.produce(topic, value, on_delivery=report)
    if per_txn:
        p.commit_transaction(60)
    p.flush(60)
    start = time.perf_counter()
    sent = 0
    while sent < n:
        batch = min(per_txn or n, n - sent)
        if per_txn:
            p.begin_transaction()
        for _ in range(batch):
            while True:
                try:
                    p.produce(topic, value, on_delivery=report)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        if per_txn:
            p.commit_transaction(60)
        sent += batch
    if not per_txn:
        p.flush(120)
    elapsed = time.perf_counter() - start
    if failed:
        sys.exit(f"{len(failed)} deliveries failed: {failed[0]}")
    return elapsed


def consume(bootstrap, topic, n, isolation):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-" + uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.max.bytes": 50 * 1024 * 1024,
        }
    )
    c.subscribe([topic])
    got = 0
    start = None
    deadline = time.monotonic() + 600
    while got < n and time.monotonic() < deadline:
        msgs = c.consume(10000, 1.0)
        for m in msgs:
            if m.error() is None:
                if start is None:
                    start = time.perf_counter()
                got += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    c.close()
    if got < n:
        sys.exit(f"consumed {got} of {n}")
    return elapsed


def create(bootstrap, topics):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    for f in futures.values():
        f.result(60)


def main():
    if sys.argv[2] == "create":
        create(sys.argv[1], sys.argv[3:])
        return
    bootstrap, mode, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "consume":
        elapsed = consume(bootstrap, topic, n, sys.argv[5])
        size = None
    else:
        size = int(sys.argv[5])
        per_txn = int(sys.argv[6]) if mode == "produce-txn" else 0
        elapsed = produce(bootstrap, topic, n, size, per_txn)
    mb = (n * (size or 1024)) / 1e6
    print(f"{mb / elapsed:.1f} {n / elapsed:.0f} {elapsed:.2f}")


if __name__ == "__main__":
    main()
