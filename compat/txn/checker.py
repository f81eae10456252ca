#!/usr/bin/env python3
"""A randomized checker of transactions under crashes (confluent-kafka).

Several transactional producers write to several partitions of one topic,
each transaction to a random subset of partitions, and commit or abort it
at random; read_committed readers follow the topic all along; and the
broker (`pubsub serve`, started here) is killed with SIGKILL at random
points, some of them while a producer's commit is in flight, and started
again on the same data directory and port. At the end it checks:

- no record of an aborted transaction was ever read (by a reader during
  the run or by the final read);
- every record of a committed transaction is read exactly once;
- a transaction whose outcome the producer could not learn (its instance
  failed fatally around a kill) is all visible or not at all;
- per partition, each producer's records are in the order it sent them;
- what each reader read of a partition is a prefix of the final read
  (same offsets, same values): nothing it saw was later lost or changed.

Every random choice comes from --seed; the seed is printed first and again
with any failure (thread timing still varies from run to run). Exit status
0 when every check held, 1 otherwise; the last line is a summary:
`committed=N aborted=N unknown=N kills=N mid_commit_kills=N records=N`.

Usage: checker.py --bin target/debug/pubsub [--seed N] [--seconds S]
       [--producers P] [--partitions N] [--readers R] [--kill-interval S]
With --bootstrap HOST:PORT instead of --bin it checks a running broker
(Apache Kafka, for comparison) without killing it.
Run by crates/cli/tests/cli/txn_checker.rs (a short run; a long one with
PUBSUB_TXN_CHECK_SECONDS)."""

import argparse
import faulthandler
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# The topic, and the prefix of transactional ids and groups: unique per run,
# for a broker the checker shares (--bootstrap).
RUN = f"{os.getpid()}-{int(time.time())}"
TOPIC = f"checked-{RUN}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """`pubsub serve` over one data directory, on one port, killable and
    restartable."""

    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.proc = None
        self.lock = threading.Lock()
        self.start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        env = dict(os.environ, PUBSUB_LOG="warn", PUBSUB_GROUPS_INITIAL_REBALANCE_DELAY="0ms")
        env.pop("RUST_LOG", None)
        for _ in range(100):
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, "serve", "--data-dir", self.data_dir, "--listen", self.bootstrap],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                )
            line = self.proc.stdout.readline().decode()
            if line.startswith("listening on "):
                return
            self.proc.wait()
            # The port may still be held by the killed process's sockets; try again.
            time.sleep(0.1)
        raise RuntimeError(f"pubsub serve did not start again; see {self.log_path}")

    def kill9_and_restart(self, pause):
        with self.lock:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            time.sleep(pause)
            self.start()

    def stop(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


class External:
    """A broker the checker does not own (--bootstrap): never killed."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.log_path = "(not ours)"
        self.proc = None

    def stop(self):
        pass


class Killer(threading.Thread):
    """Kills the broker at random times and, when a producer asks, a moment
    after its commit went out."""

    def __init__(self, broker, rng, stop, mean_interval):
        super().__init__(daemon=True)
        self.broker = broker
        self.rng = rng
        self.stop = stop
        self.mean_interval = mean_interval
        self.mid_commit = threading.Event()
        self.kills = 0
        self.mid_commit_kills = 0
        # (monotonic time of the kill, of the restart)
        self.times = []
        self.error = None

    def run(self):
        if self.mean_interval <= 0:
            return
        try:
            while not self.stop.is_set():
                asked = self.mid_commit.wait(self.rng.expovariate(1 / self.mean_interval))
                if self.stop.is_set():
                    return
                if asked:
                    # Let the EndTxn reach the broker, or not quite.
                    time.sleep(self.rng.uniform(0, 0.03))
                    self.mid_commit_kills += 1
                killed = time.monotonic()
                self.broker.kill9_and_restart(self.rng.uniform(0, 0.5))
                self.times.append((killed, time.monotonic()))
                self.kills += 1
                # Some progress between kills; a request made meanwhile is stale.
                self.stop.wait(self.rng.uniform(1.0, 2.0))
                self.mid_commit.clear()
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            self.error = e


class Ledger:
    """What the producers know of each transaction: its records and how it ended."""

    def __init__(self):
        self.lock = threading.Lock()
        # (producer, txn) -> {"records": [(partition, value)], "outcome": ...}
        self.txns = {}

    def record(self, key, records, outcome):
        with self.lock:
            self.txns[key] = {"records": records, "outcome": outcome}


class TxnProducer(threading.Thread):
    """One transactional id: transactions of 1-20 records over random
    partitions, committed (70%) or aborted; a fatal error (fenced after a
    kill, a timeout) ends the instance and a new one continues."""

    def __init__(self, index, broker, rng, stop, ledger, killer, partitions):
        super().__init__(daemon=True)
        self.index = index
        self.broker = broker
        self.rng = rng
        self.stop = stop
        self.ledger = ledger
        self.killer = killer
        self.partitions = partitions
        self.txn_id = f"checker-{RUN}-{index}"
        self.error = None
        self.producer = None

    def new_instance(self):
        p = Producer(
            {
                "bootstrap.servers": self.broker.bootstrap,
                "transactional.id": self.txn_id,
                "linger.ms": 2,
                "reconnect.backoff.max.ms": 500,
                "transaction.timeout.ms": 30000,
                "message.timeout.ms": 30000,
            }
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                p.init_transactions(30)
                return p
            except KafkaException as e:
                if time.monotonic() > deadline or not e.args[0].retriable():
                    raise

    def run(self):
        try:
            self.producer = self.new_instance()
            txn = 0
            while not self.stop.is_set():
                txn += 1
                self.one(txn)
            self.producer.flush(30)
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            self.error = f"producer {self.index}: {type(e).__name__}: {e}"

    def one(self, txn):
        rng = self.rng
        count = rng.randint(1, 20)
        records = [(rng.randrange(self.partitions), f"{self.index}:{txn}:{i}") for i in range(count)]
        commit = rng.random() < 0.7
        kill_mid_commit = rng.random() < 0.005
        key = (self.index, txn)
        try:
            self.producer.begin_transaction()
            for part, value in records:
                # A record not delivered makes the commit fail (abortable).
                self.producer.produce(TOPIC, value=value.encode(), partition=part)
                self.producer.poll(0)
            if not commit:
                # Written first: librdkafka drops what it has not sent when it aborts.
                self.producer.flush(30)
                self.producer.abort_transaction(60)
                self.ledger.record(key, records, "aborted")
                return
            if kill_mid_commit:
                self.killer.mid_commit.set()
            deadline = time.monotonic() + 120
            while True:
                try:
                    self.producer.commit_transaction(30)
                    break
                except KafkaException as e:
                    err = e.args[0]
                    if err.retriable() and time.monotonic() < deadline:
                        continue
                    if err.txn_requires_abort():
                        self.producer.abort_transaction(60)
                        self.ledger.record(key, records, "aborted")
                        return
                    raise
            self.ledger.record(key, records, "committed")
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                try:
                    self.producer.abort_transaction(60)
                    self.ledger.record(key, records, "aborted")
                    return
                except KafkaException:
                    pass
            # The outcome is unknown to this instance: a new one ends the
            # transaction (InitProducerId completes or aborts it).
            self.ledger.record(key, records, "unknown")
            self.producer = self.new_instance()


def reader_config(bootstrap, group):
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "reconnect.backoff.max.ms": 500,
    }


class Reader(threading.Thread):
    """A read_committed consumer of every partition from offset 0, all run
    long: confluent-kafka (even indexes) or kafka-python (odd ones), so that
    what one client does with the broker's answers is not the only witness."""

    def __init__(self, index, broker, stop, partitions):
        super().__init__(daemon=True)
        self.broker = broker
        self.stop = stop
        self.partitions = partitions
        self.index = index
        self.client = "confluent-kafka" if index % 2 == 0 else "kafka-python"
        # partition -> [(offset, value)]
        self.read = {p: [] for p in range(partitions)}
        # partition -> monotonic time of each read, for the report
        self.when = {p: [] for p in range(partitions)}
        self.error = None

    def got(self, partition, offset, value):
        self.read[partition].append((offset, value.decode()))
        self.when[partition].append(time.monotonic())

    def run(self):
        try:
            if self.client == "kafka-python":
                self.run_kafka_python()
                return
            c = Consumer(reader_config(self.broker.bootstrap, f"checker-{RUN}-reader-{self.index}"))
            c.assign([TopicPartition(TOPIC, p, 0) for p in range(self.partitions)])
            while not self.stop.is_set():
                m = c.poll(0.2)
                if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                    continue
                if m.error():
                    # Connection errors around a kill are expected; the client reconnects.
                    continue
                self.got(m.partition(), m.offset(), m.value())
            c.close()
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            self.error = f"reader {self.index} ({self.client}): {type(e).__name__}: {e}"

    def run_kafka_python(self):
        from kafka import KafkaConsumer
        from kafka import TopicPartition as KTopicPartition

        c = KafkaConsumer(
            bootstrap_servers=self.broker.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            reconnect_backoff_max_ms=500,
        )
        tps = [KTopicPartition(TOPIC, p) for p in range(self.partitions)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        while not self.stop.is_set():
            try:
                batches = c.poll(timeout_ms=200)
            except Exception:  # noqa: BLE001 - connection errors around a kill; it reconnects
                time.sleep(0.1)
                continue
            for records in batches.values():
                for r in records:
                    self.got(r.partition, r.offset, r.value)
        c.close()


def varint(buf, at):
    """A zigzag varint of a record at `at`: (value, next position)."""
    shift = result = 0
    while True:
        b = buf[at]
        at += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), at


def batches(records):
    """The record batches of a Fetch answer's records, uncompressed (the
    checker's producers do not compress): dicts of base, last, pid,
    transactional, control and the records' (offset, key, value)."""
    out, at = [], 0
    while at + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, at)
        if at + 12 + length > len(records):
            break  # a partial batch at the end of the answer
        attributes, last_delta = struct.unpack_from(">hi", records, at + 21)
        pid, _epoch, _seq, count = struct.unpack_from(">qhii", records, at + 43)
        if attributes & 0x07:
            raise RuntimeError(f"a compressed batch at {base}")
        items, pos = [], at + 61
        for _ in range(count):
            _length, pos = varint(records, pos)
            pos += 1  # attributes
            _ts, pos = varint(records, pos)
            delta, pos = varint(records, pos)
            klen, pos = varint(records, pos)
            key = None if klen < 0 else bytes(records[pos : pos + klen])
            pos += max(klen, 0)
            vlen, pos = varint(records, pos)
            value = None if vlen < 0 else bytes(records[pos : pos + vlen])
            pos += max(vlen, 0)
            headers, pos = varint(records, pos)
            for _ in range(headers):
                hk, pos = varint(records, pos)
                pos += hk
                hv, pos = varint(records, pos)
                pos += max(hv, 0)
            items.append((base + delta, key, value))
        out.append(
            {
                "base": base,
                "last": base + last_delta,
                "pid": pid,
                "transactional": bool(attributes & 0x10),
                "control": bool(attributes & 0x20),
                "records": items,
            }
        )
        at += 12 + length
    return out


class RawReader(threading.Thread):
    """A read_committed reader speaking Fetch v4 itself, so that what the
    broker answered, and not what a client library made of it, is checked:
    it skips, as clients must, the batches of each aborted transaction the
    answer lists (from its first offset to the producer's ABORT marker) and
    keeps every answer that delivered a record, for the report."""

    def __init__(self, index, broker, stop, partitions):
        super().__init__(daemon=True)
        self.broker = broker
        self.stop = stop
        self.partitions = partitions
        self.index = index
        self.client = "raw Fetch v4"
        self.read = {p: [] for p in range(partitions)}
        self.when = {p: [] for p in range(partitions)}
        # (partition, offset) -> the answer that delivered it
        self.answer = {}
        self.error = None

    def fetch(self, sock, correlation, partition, offset):
        topic = TOPIC.encode()
        client = b"checker-raw"
        body = struct.pack(">hhih", 1, 4, correlation, len(client)) + client
        body += struct.pack(">iiiib", -1, 100, 1, 1 << 20, 1)
        body += struct.pack(">ih", 1, len(topic)) + topic
        body += struct.pack(">iiqi", 1, partition, offset, 1 << 20)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", self.exactly(sock, 4))[0]
        resp = self.exactly(sock, size)
        at = 4 + 4  # correlation id, throttle time
        (_topics,) = struct.unpack_from(">i", resp, at)
        (tlen,) = struct.unpack_from(">h", resp, at + 4)
        at += 6 + tlen
        (_parts,) = struct.unpack_from(">i", resp, at)
        part, error, hw, lso = struct.unpack_from(">ihqq", resp, at + 4)
        at += 4 + 4 + 2 + 8 + 8
        (count,) = struct.unpack_from(">i", resp, at)
        at += 4
        aborted = []
        for _ in range(max(count, 0)):
            aborted.append(struct.unpack_from(">qq", resp, at))
            at += 16
        (rlen,) = struct.unpack_from(">i", resp, at)
        records = resp[at + 4 : at + 4 + max(rlen, 0)]
        return error, hw, lso, aborted, records

    @staticmethod
    def exactly(sock, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return bytes(buf)

    def run(self):
        position = {p: 0 for p in range(self.partitions)}
        # partition -> {pid: first offset} of aborted transactions being skipped
        skipping = {p: {} for p in range(self.partitions)}
        correlation = 0
        sock = None
        try:
            while not self.stop.is_set():
                try:
                    if sock is None:
                        host, port = self.broker.bootstrap.rsplit(":", 1)
                        sock = socket.create_connection((host, int(port)), timeout=10)
                    for p in range(self.partitions):
                        correlation += 1
                        error, hw, lso, aborted, records = self.fetch(sock, correlation, p, position[p])
                        if error:
                            continue
                        answer = f"fetch at {position[p]}: hw {hw}, lso {lso}, aborted {aborted}"
                        pending = sorted(aborted, key=lambda a: a[1])
                        for b in batches(records):
                            if b["last"] < position[p]:
                                continue
                            # An entry applies once, from its first offset
                            # (Kafka's clients take it off their queue).
                            for entry in [a for a in pending if a[0] == b["pid"] and a[1] <= b["base"]]:
                                pending.remove(entry)
                                skipping[p].setdefault(entry[0], entry[1])
                            if b["control"]:
                                skipping[p].pop(b["pid"], None)
                            elif not (b["transactional"] and b["pid"] in skipping[p]):
                                for offset, _key, value in b["records"]:
                                    if offset >= position[p]:
                                        self.read[p].append((offset, value.decode()))
                                        self.when[p].append(time.monotonic())
                                        self.answer[(p, offset)] = answer
                            position[p] = b["last"] + 1
                except (OSError, ConnectionError, struct.error):
                    # The broker was killed: connect again.
                    if sock is not None:
                        sock.close()
                    sock = None
                    time.sleep(0.1)
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            self.error = f"reader {self.index} ({self.client}): {type(e).__name__}: {e}"


def final_read(bootstrap, partitions):
    """Every partition read read_committed once the last stable offset
    reached the high watermark (no transaction open)."""
    c = Consumer(reader_config(bootstrap, "checker-final"))
    ends_of = Consumer(dict(reader_config(bootstrap, "checker-ends"), **{"isolation.level": "read_uncommitted"}))
    tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
    deadline = time.monotonic() + 120
    while True:
        ends = [ends_of.get_watermark_offsets(tp, timeout=30)[1] for tp in tps]
        stable = [c.get_watermark_offsets(tp, timeout=30)[1] for tp in tps]
        if stable == ends:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"a transaction stayed open: last stable offsets {stable}, high watermarks {ends}")
        time.sleep(0.2)
    ends_of.close()
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    eof = set()
    while len(eof) < partitions:
        m = c.poll(10)
        if m is None:
            raise RuntimeError("the broker stopped answering the final read")
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"final read: {m.error()}")
            eof.add(m.partition())
            continue
        eof.discard(m.partition())
        out[m.partition()].append((m.offset(), m.value().decode()))
    c.close()
    return out


def verify(ledger, final, readers, kills):
    """The violations of the properties in the module's doc."""
    problems = []
    where = {}
    for part, items in final.items():
        for offset, value in items:
            if value in where:
                problems.append(f"{value} read twice: at {where[value]} and {part}/{offset}")
            where[value] = (part, offset)
    for (producer, txn), t in sorted(ledger.txns.items()):
        present = [v for _, v in t["records"] if v in where]
        if t["outcome"] == "aborted" and present:
            problems.append(f"aborted transaction {producer}:{txn} visible: {present}")
        elif t["outcome"] == "committed" and len(present) != len(t["records"]):
            missing = [v for _, v in t["records"] if v not in where]
            problems.append(f"committed transaction {producer}:{txn} lost {missing}")
        elif t["outcome"] == "unknown" and present and len(present) != len(t["records"]):
            problems.append(f"transaction {producer}:{txn} torn: {len(present)} of {len(t['records'])} visible")
        for part, value in t["records"]:
            if value in where and where[value][0] != part:
                problems.append(f"{value} sent to partition {part}, read from {where[value][0]}")
    known = {f"{p}:{t}" for p, t in ledger.txns}
    for value, (part, offset) in where.items():
        producer, txn, _ = value.split(":")
        if f"{producer}:{txn}" not in known:
            problems.append(f"{value} at {part}/{offset} is of no transaction the producers began")
    for part, items in final.items():
        last = {}
        for offset, value in items:
            producer, txn, i = (int(x) for x in value.split(":"))
            if producer in last and last[producer] >= (txn, i):
                problems.append(f"partition {part}: {value} at {offset} after {producer}:{last[producer]}")
            last[producer] = (txn, i)
    for r in readers:
        for part, items in r.read.items():
            if items != final[part][: len(items)]:
                first = next(
                    (i for i, (a, b) in enumerate(zip(items, final[part])) if a != b), min(len(items), len(final[part]))
                )
                seen = items[first : first + 3]
                outcomes = [ledger.txns.get(tuple(int(x) for x in v.split(":")[:2]), {}).get("outcome") for _, v in seen]
                at = r.when[part][first] if first < len(r.when[part]) else None
                near = [f"{k - at:+.3f}/{r - at:+.3f}" for k, r in kills if at is not None and abs(k - at) < 5]
                when = f"; kills/restarts within 5 s of that read, in seconds after it: {near}"
                answer = getattr(r, "answer", {}).get((part, seen[0][0])) if seen else None
                if answer:
                    when += f"; the broker's answer: {answer}"
                problems.append(
                    f"reader {r.index} ({r.client}), partition {part}: read {seen} (transactions {outcomes}) as its {first}th record,"
                    f" the final read has {final[part][first:first + 3]}{when}"
                )
    return problems


def main():
    a = argparse.ArgumentParser()
    target = a.add_mutually_exclusive_group(required=True)
    target.add_argument("--bin", help="the pubsub binary: the checker runs it, and kills it")
    target.add_argument("--bootstrap", help="HOST:PORT of a running broker (Apache Kafka): no kills")
    a.add_argument("--seed", type=int, default=None)
    a.add_argument("--seconds", type=float, default=20)
    a.add_argument("--producers", type=int, default=3)
    a.add_argument("--partitions", type=int, default=4)
    a.add_argument("--readers", type=int, default=2)
    a.add_argument("--kill-interval", type=float, default=3.0, help="mean seconds between random kills; 0: no kills at all")
    args = a.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"seed={seed}", flush=True)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="txn-checker-")
    if args.bootstrap:
        broker = External(args.bootstrap)
        args.kill_interval = 0
    else:
        broker = Broker(args.bin, os.path.join(work, "data"), os.path.join(work, "broker.log"))

    def stalled():
        # Rather than hang the caller: every thread's stack, the broker killed, a failure.
        print(f"FAILED with seed={seed}: the run stalled; broker log: {broker.log_path}", flush=True)
        faulthandler.dump_traceback(all_threads=True)
        if broker.proc is not None:
            broker.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(args.seconds + 600, stalled)
    watchdog.daemon = True
    watchdog.start()
    ok = False
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(TOPIC, num_partitions=args.partitions, replication_factor=1)])[TOPIC].result(30)
        stop_producing, stop_killing, stop_reading = threading.Event(), threading.Event(), threading.Event()
        ledger = Ledger()
        killer = Killer(broker, random.Random(rng.random()), stop_killing, args.kill_interval)
        producers = [
            TxnProducer(i, broker, random.Random(rng.random()), stop_producing, ledger, killer, args.partitions)
            for i in range(args.producers)
        ]
        readers = [Reader(i, broker, stop_reading, args.partitions) for i in range(args.readers)]
        readers.append(RawReader(args.readers, broker, stop_reading, args.partitions))
        for t in readers + producers + [killer]:
            t.start()
        time.sleep(args.seconds)
        stop_killing.set()
        killer.mid_commit.set()
        killer.join()
        stop_producing.set()
        for p in producers:
            p.join(300)
        final = final_read(broker.bootstrap, args.partitions)
        # Let the readers catch up with the final read, then stop them.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
            len(r.read[p]) < len(final[p]) for r in readers for p in final
        ):
            time.sleep(0.2)
        stop_reading.set()
        for r in readers:
            r.join(60)
        problems = [x.error for x in producers + readers + [killer] if x.error]
        problems += [f"producer {p.index} did not finish" for p in producers if p.is_alive()]
        problems += [
            f"reader {r.index} read {sum(map(len, r.read.values()))} of {sum(map(len, final.values()))} records"
            for r in readers
            if any(len(r.read[p]) < len(final[p]) for p in final)
        ]
        problems += verify(ledger, final, readers, killer.times)
        outcomes = [t["outcome"] for t in ledger.txns.values()]
        summary = (
            f"committed={outcomes.count('committed')} aborted={outcomes.count('aborted')}"
            f" unknown={outcomes.count('unknown')} kills={killer.kills} mid_commit_kills={killer.mid_commit_kills}"
            f" records={sum(map(len, final.values()))}"
        )
        for p in problems[:50]:
            print(f"VIOLATION {p}", flush=True)
        if problems:
            print(f"FAILED with seed={seed} ({len(problems)} violations); broker log: {broker.log_path}", flush=True)
        ok = not problems
        print(summary, flush=True)
    finally:
        watchdog.cancel()
        broker.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
