"""Fixtures for the Kafka client compatibility suite.

Each test gets its own `pubsub serve` process (the binary named by
PUBSUB_BIN) on a fresh data directory and a free loopback port. The Rust
test `compat::python_clients` runs this suite with the freshly built binary;
to run it by hand: `PUBSUB_BIN=target/debug/pubsub python3 -m pytest crates/cli/tests/compat`.

With COMPAT_KAFKA_BOOTSTRAP=HOST:PORT the same tests, with the same
assertions, run against that broker instead (the Rust test
`compat::python_clients_against_apache_kafka` starts a real Apache Kafka
for it), all sharing it; tests marked `pubsub_only` (they SIGKILL and restart
the broker process) are skipped there.
"""

import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def binary():
    path = os.environ.get("PUBSUB_BIN") or os.path.join(ROOT, "target", "debug", "pubsub")
    if not os.path.exists(path):
        pytest.fail(f"pubsub binary not found at {path}: build it or set PUBSUB_BIN")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The reference broker every test shares, when set.
REFERENCE = os.environ.get("COMPAT_KAFKA_BOOTSTRAP")


def pytest_configure(config):
    config.addinivalue_line("markers", "pubsub_only: needs a pubsub process of its own (signals, restarts)")


def pytest_collection_modifyitems(config, items):
    if not REFERENCE:
        return
    skip = pytest.mark.skip(reason="needs a pubsub process of its own; not run against the reference Kafka")
    for item in items:
        if "pubsub_only" in item.keywords:
            item.add_marker(skip)


class ReferenceBroker:
    """A broker the test does not own (the reference Apache Kafka): only its address."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.port = int(bootstrap.rsplit(":", 1)[1])


class Broker:
    """One `pubsub serve` process over `data_dir`, restartable on the same port."""

    def __init__(self, data_dir, env=None):
        self.data_dir = data_dir
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.pop("RUST_LOG", None)
        self.env.update({"PUBSUB_LOG": "info", "PUBSUB_GROUPS_INITIAL_REBALANCE_DELAY": "0ms"})
        self.env.update(env or {})
        self.proc = None
        self.stderr_path = os.path.join(os.path.dirname(data_dir), f"broker-{uuid.uuid4().hex}.log")
        self.start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        assert self.proc is None
        stderr = open(self.stderr_path, "ab")
        for attempt in range(50):
            self.proc = subprocess.Popen(
                [binary(), "serve", "--data-dir", self.data_dir, "--listen", self.bootstrap],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self.env,
            )
            line = self.proc.stdout.readline().decode()
            if line.startswith("listening on "):
                assert line.strip() == f"listening on {self.bootstrap}", line
                stderr.close()
                return
            # The port was taken in the meantime, or the broker failed.
            self.proc.wait()
            self.proc = None
            if "in use" not in self.stderr() and "Address already" not in self.stderr():
                break
            time.sleep(0.1)
        stderr.close()
        pytest.fail("pubsub serve did not start:\n" + self.stderr())

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        """SIGTERM and wait; the exit must be clean."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        assert code == 0, f"exit code {code}\n{self.stderr()}"

    def kill9(self):
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self):
        self.start()


@pytest.fixture
def broker(tmp_path):
    if REFERENCE:
        yield ReferenceBroker(REFERENCE)
        return
    b = Broker(str(tmp_path / "data"))
    yield b
    try:
        b.stop()
    finally:
        b.kill9()
        assert "panicked" not in b.stderr(), b.stderr()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def create_topic(broker, name, partitions=1):
    """Creates a topic with confluent-kafka's admin client, and waits until
    every partition answers for its offsets: Kafka answers CreateTopics
    before its broker has created the partitions, and records sent with
    acks=0 in the meantime are dropped (a new pubsub topic is ready at
    once)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("probe")})

    def ready():
        try:
            for p in range(partitions):
                probe.get_watermark_offsets(TopicPartition(name, p), timeout=5)
            return True
        except KafkaException:
            return False

    wait_until(ready, what=f"the partitions of {name}")
    probe.close()


def end_offsets(broker, topic, partitions):
    """Each partition's high watermark, as ListOffsets answers it now."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("ends")})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(partitions)]
    finally:
        c.close()


def read_topic(broker, topic, partitions):
    """Every record of the topic, read from offset 0 to each partition's
    end: {(partition, offset): (key, value, headers)}. A record delivered
    twice or an error other than end-of-partition fails the test."""
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique("reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {}
    eof = set()
    while len(eof) < partitions:
        m = c.poll(10)
        assert m is not None, "the broker stopped answering"
        if m.error():
            assert m.error().code() == -191, m.error()  # _PARTITION_EOF
            eof.add(m.partition())
            continue
        eof.discard(m.partition())
        key = (m.partition(), m.offset())
        assert key not in out, f"record {key} delivered twice"
        out[key] = (m.key(), m.value(), tuple(m.headers() or ()))
    c.close()
    return out


def manual_consumer(broker, group):
    """A confluent consumer of `group` that starts at the earliest offset
    and commits only when told."""
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def poll_messages(consumer, count, timeout=60.0):
    """Up to `count` messages from a confluent consumer (errors skipped),
    polling for at most `timeout` seconds."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            out.append(m)
    return out
