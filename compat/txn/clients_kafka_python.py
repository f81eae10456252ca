#!/usr/bin/env python3
"""Transactions with kafka-python's transactional producer
(KafkaProducer(transactional_id=...)) against one broker: commit, abort,
an open transaction that read_committed does not see until it ends, a
zombie fenced by a new producer of the same transactional id, and
send_offsets_to_transaction. Each scenario prints `PASS name`,
`FAIL name: why` or `SKIP name`, and `OBSERVE name key = value` lines that
must be the same on every broker (crates/cli/tests/cli/txn_clients.rs
compares pubsub with Apache Kafka).

Usage: clients_kafka_python.py BOOTSTRAP [--skip a,b]. Exit status 1 when a
scenario failed."""

import json
import sys
import time
import traceback
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

BOOTSTRAP = sys.argv[1]
SKIP = set(sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[2] == "--skip" else set()
RUN = uuid.uuid4().hex[:8]
ADMIN = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
scenario = ""


class Failed(Exception):
    pass


def observe(key, value):
    print(f"OBSERVE {scenario} {key} = {json.dumps(value)}", flush=True)


def equal(expected, actual, what):
    if expected != actual:
        raise Failed(f"{what}: expected {expected}, got {actual}")


def name(suffix):
    return f"{scenario.replace('.', '-')}-{suffix}-{RUN}"


def eventually(what, predicate):
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            raise Failed(f"gave up after 60 s waiting for {what}")
        time.sleep(0.05)


def topic(suffix, partitions):
    t = name(suffix)
    ADMIN.create_topics([NewTopic(t, partitions, 1)])
    eventually(f"the partitions of {t}", lambda: len(stable(t, partitions, "read_uncommitted")) == partitions)
    return t


def stable(t, partitions, isolation="read_committed"):
    """Each partition's end as a consumer of `isolation` sees it (read_committed:
    the last stable offset)."""
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation)
    try:
        ends = c.end_offsets([TopicPartition(t, p) for p in range(partitions)])
        return [ends[TopicPartition(t, p)] for p in range(partitions)]
    except KafkaError:
        return []
    finally:
        c.close()


def settle(t, expected):
    """Waits until read_committed ends the partitions at `expected`: Kafka
    answers EndTxn before it writes the markers."""
    eventually(f"last stable offsets {expected}", lambda: stable(t, len(expected)) == expected)


def transactional(txn_id):
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=txn_id, linger_ms=5)
    p.init_transactions()
    return p


def send(p, t, partitions, prefix, per_partition):
    futures = [
        p.send(t, key=b"k", value=f"{prefix}-{part}-{i}".encode(), partition=part)
        for part in range(partitions)
        for i in range(per_partition)
    ]
    p.flush()
    for f in futures:
        f.get(timeout=60)


def read(t, partitions, isolation):
    """Everything `isolation` reads of the topic up to its end, as
    "partition/offset:value" by partition then offset."""
    tps = [TopicPartition(t, p) for p in range(partitions)]
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation, enable_auto_commit=False)
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    got = []
    deadline = time.monotonic() + 60
    while any(c.position(tp) < ends[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise Failed(f"gave up reading {t} ({isolation}) to {ends}")
        for records in c.poll(timeout_ms=200).values():
            got.extend((r.partition, r.offset, r.value.decode()) for r in records)
    c.close()
    return [f"{p}/{o}:{v}" for p, o, v in sorted(got)]


def commit():
    t = topic("t", 2)
    p = transactional(name("tx"))
    p.begin_transaction()
    send(p, t, 2, "c", 3)
    p.commit_transaction()
    settle(t, [4, 4])
    committed = read(t, 2, "read_committed")
    equal(["0/0:c-0-0", "0/1:c-0-1", "0/2:c-0-2", "1/0:c-1-0", "1/1:c-1-1", "1/2:c-1-2"], committed, "read_committed")
    equal(committed, read(t, 2, "read_uncommitted"), "read_uncommitted")
    p.close()
    observe("read-committed", committed)


def abort():
    t = topic("t", 1)
    p = transactional(name("tx"))
    for prefix, count, end in (("first", 2, "commit"), ("aborted", 2, "abort"), ("third", 1, "commit")):
        p.begin_transaction()
        send(p, t, 1, prefix, count)
        (p.commit_transaction if end == "commit" else p.abort_transaction)()
    settle(t, [8])
    committed = read(t, 1, "read_committed")
    equal(["0/0:first-0-0", "0/1:first-0-1", "0/6:third-0-0"], committed, "read_committed")
    uncommitted = read(t, 1, "read_uncommitted")
    equal(
        ["0/0:first-0-0", "0/1:first-0-1", "0/3:aborted-0-0", "0/4:aborted-0-1", "0/6:third-0-0"],
        uncommitted,
        "read_uncommitted",
    )
    p.close()
    observe("read-committed", committed)
    observe("read-uncommitted", uncommitted)


def open_invisible():
    t = topic("t", 1)
    p = transactional(name("tx"))
    p.begin_transaction()
    send(p, t, 1, "open", 2)
    plain = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    plain.send(t, value=b"plain", partition=0).get(timeout=60)
    plain.close()
    uncommitted = read(t, 1, "read_uncommitted")
    equal(["0/0:open-0-0", "0/1:open-0-1", "0/2:plain"], uncommitted, "read_uncommitted while open")
    while_open = stable(t, 1)
    equal([0], while_open, "last stable offset while the transaction is open")
    equal([], read(t, 1, "read_committed"), "read_committed while open")
    p.commit_transaction()
    settle(t, [4])
    committed = read(t, 1, "read_committed")
    equal(uncommitted, committed, "read_committed after the commit")
    p.close()
    observe("stable-while-open", while_open)
    observe("read-committed", committed)


def zombie_fenced():
    t = topic("t", 2)
    txn_id = name("tx")
    zombie = transactional(txn_id)
    zombie.begin_transaction()
    send(zombie, t, 2, "zombie", 1)
    fresh = transactional(txn_id)
    refusal = "none"
    try:
        zombie.commit_transaction()
    except KafkaError as e:
        refusal = type(e).__name__
    fresh.begin_transaction()
    send(fresh, t, 2, "fresh", 1)
    fresh.commit_transaction()
    settle(t, [4, 4])
    committed = read(t, 2, "read_committed")
    equal(["0/2:fresh-0-0", "1/2:fresh-1-0"], committed, "read_committed")
    equal(
        ["0/0:zombie-0-0", "0/2:fresh-0-0", "1/0:zombie-1-0", "1/2:fresh-1-0"],
        read(t, 2, "read_uncommitted"),
        "read_uncommitted",
    )
    if refusal == "none":
        raise Failed("the zombie's commit succeeded")
    zombie.close(timeout=5)
    fresh.close()
    observe("zombie-commit", refusal)
    observe("read-committed", committed)


def send_offsets():
    src = topic("in", 1)
    out = topic("out", 1)
    group = name("g")
    plain = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(10):
        plain.send(src, value=f"v-{i}".encode(), partition=0)
    plain.flush()
    plain.close()
    tp = TopicPartition(src, 0)
    p = transactional(name("tx"))

    def committed_offset():
        o = ADMIN.list_group_offsets(group).get(group, {}).get(tp)
        return -1 if o is None else o.offset

    def step(start, end, commit):
        p.begin_transaction()
        for i in range(start, end):
            p.send(out, value=f"V-{i}".encode(), partition=0)
        # Sent before the end: kafka-python drops what it has not sent yet when it aborts.
        p.flush()
        p.send_offsets_to_transaction({tp: OffsetAndMetadata(end, "", -1)}, group)
        (p.commit_transaction if commit else p.abort_transaction)()

    step(0, 5, True)
    step(5, 10, False)
    settle(out, [12])
    eventually("the group's offset at 5", lambda: committed_offset() == 5)
    step(5, 10, True)
    settle(out, [18])
    eventually("the group's offset at 10", lambda: committed_offset() == 10)
    output = [r.split(":", 1)[1] for r in read(out, 1, "read_committed")]
    equal([f"V-{i}" for i in range(10)], output, "the output, read_committed")
    p.close()
    observe("output", output)
    observe("group-offset", committed_offset())


SCENARIOS = {
    "txn.commit": commit,
    "txn.abort": abort,
    "txn.open-invisible-to-read-committed": open_invisible,
    "txn.zombie-fenced": zombie_fenced,
    "txn.send-offsets": send_offsets,
}


def main():
    global scenario
    failed = []
    for n, f in SCENARIOS.items():
        scenario = n
        if n in SKIP:
            print(f"SKIP {n}", flush=True)
            continue
        try:
            f()
            print(f"PASS {n}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
            failed.append(n)
            print(f"FAIL {n}: {type(e).__name__}: {e}".replace("\n", " "), flush=True)
            traceback.print_exc()
    ADMIN.close()
    print(f"failed: {', '.join(failed)}" if failed else "all scenarios passed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
