"""kcat (librdkafka's command-line client, from Debian): metadata, produce
with keys and headers, consume from the beginning, from an offset, as a
group, with JSON envelopes."""

import json
import shutil
import subprocess

import pytest

from conftest import unique

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(broker, *args, input=None, timeout=60):
    if KCAT is None:
        pytest.fail("kcat is not installed (apt-get install kcat)")
    out = subprocess.run(
        [KCAT, "-b", broker.bootstrap, *args], input=input, capture_output=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def test_kcat_metadata_produce_consume(broker):
    topic = unique("kcat")
    lines = "".join(f"key{i % 3}:value {i}\n" for i in range(30))
    kcat(broker, "-P", "-t", topic, "-K:", "-H", "source=kcat", "-H", "empty=", input=lines.encode())

    meta = json.loads(kcat(broker, "-L", "-J", "-t", topic))
    assert meta["brokers"] == [{"id": 0, "name": f"127.0.0.1:{broker.port}"}]
    assert meta["topics"][0]["topic"] == topic
    assert len(meta["topics"][0]["partitions"]) == 1

    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-J")
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["offset"] for r in records] == list(range(30))
    assert records[4]["key"] == "key1" and records[4]["payload"] == "value 4"
    assert records[4]["headers"] == ["source", "kcat", "empty", ""]

    # From an absolute offset, and the last 5 (relative to the end).
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "25", "-e", "-f", "%o %s\n")
    assert out.splitlines() == [f"{i} value {i}" for i in range(25, 30)]
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "-5", "-e", "-f", "%o\n")
    assert out.splitlines() == [str(i) for i in range(25, 30)]


def test_kcat_balanced_consumer_group(broker):
    topic = unique("kcat-group")
    kcat(broker, "-P", "-t", topic, input=b"".join(f"m{i}\n".encode() for i in range(20)))
    group = unique("g")
    out = kcat(broker, "-G", group, "-o", "beginning", "-e", "-f", "%o\n", topic, "-X", "auto.offset.reset=earliest")
    assert sorted(int(x) for x in out.split()) == list(range(20))
    # The group committed its position: a second run sees nothing new.
    kcat(broker, "-P", "-t", topic, input=b"late\n")
    out = kcat(broker, "-G", group, "-e", "-f", "%o %s\n", topic, "-X", "auto.offset.reset=earliest")
    assert out.split("\n")[0] == "20 late"
