#!/usr/bin/env python3
"""Records the Kafka requests real clients send, as fuzzing seeds.

Starts `pubsub serve` advertising a recording proxy, drives kcat,
confluent-kafka and kafka-python through it, and writes each distinct
(api key, version, client) request payload (the frame without its length
prefix) to data/fixtures/requests/. Run from the repository root after
`cargo build`:  python3 fuzz/capture.py
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "data", "fixtures", "requests")
BIN = os.environ.get("PUBSUB_BIN", os.path.join(ROOT, "target", "debug", "pubsub"))
seen = {}
lock = threading.Lock()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pump(src, dst, record, client):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if record:
                buf += data
                while len(buf) >= 4:
                    size = int.from_bytes(buf[:4], "big")
                    if len(buf) < 4 + size:
                        break
                    payload, buf = buf[4 : 4 + size], buf[4 + size :]
                    key = (int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big"), client)
                    with lock:
                        if key not in seen and len(payload) < 64 * 1024:
                            seen[key] = payload
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(listen_port, target_port, client_name):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)

    def accept():
        while True:
            c, _ = srv.accept()
            b = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pump, args=(c, b, True, client_name[0]), daemon=True).start()
            threading.Thread(target=pump, args=(b, c, False, None), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def main():
    tmp = tempfile.mkdtemp()
    port, proxy_port = free_port(), free_port()
    broker = subprocess.Popen(
        [BIN, "serve", "--data-dir", os.path.join(tmp, "data"), "--listen", f"127.0.0.1:{port}",
         "--advertised", f"127.0.0.1:{proxy_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "PUBSUB_GROUPS_INITIAL_REBALANCE_DELAY": "0ms"},
    )
    broker.stdout.readline()
    client = ["kcat"]
    proxy(proxy_port, port, client)
    bootstrap = f"127.0.0.1:{proxy_port}"
    try:
        kcat = shutil.which("kcat")
        if kcat:
            subprocess.run([kcat, "-b", bootstrap, "-L"], capture_output=True, timeout=30)
            subprocess.run([kcat, "-b", bootstrap, "-P", "-t", "cap", "-K:", "-H", "h=v", "-z", "snappy"],
                           input=b"k:v\nk2:v2\n", capture_output=True, timeout=30)
            subprocess.run([kcat, "-b", bootstrap, "-C", "-t", "cap", "-o", "beginning", "-e"], capture_output=True, timeout=30)
            subprocess.run([kcat, "-b", bootstrap, "-G", "capg", "-e", "cap"], capture_output=True, timeout=60)
        client[0] = "confluent"
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("cap2", 2, 1)])["cap2"].result(30)
        res = ConfigResource(ResourceType.TOPIC, "cap2")
        admin.describe_configs([res])[res].result(30)
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "gzip"})
        for i in range(10):
            p.produce("cap2", key=b"k", value=b"v%d" % i, headers=[("a", b"b")])
        p.flush(30)
        t = Producer({"bootstrap.servers": bootstrap, "transactional.id": "capt"})
        t.init_transactions(30)
        for commit in (True, False):
            t.begin_transaction()
            t.produce("cap2", key=b"k", value=b"t")
            (t.commit_transaction if commit else t.abort_transaction)(30)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "capg2", "auto.offset.reset": "earliest"})
        c.subscribe(["cap2"])
        end = time.time() + 10
        while time.time() < end:
            c.poll(0.2)
        try:
            c.commit(asynchronous=False)
        except Exception:  # nothing new to commit (auto-commit got there first)
            pass
        c.offsets_for_times([TopicPartition("cap2", 0, 1)], timeout=10)
        # Consume-transform-produce: AddOffsetsToTxn and TxnOffsetCommit.
        t.begin_transaction()
        t.produce("cap2", key=b"k", value=b"o")
        t.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        t.commit_transaction(30)
        c.close()
        admin.list_consumer_groups().result(30)
        admin.describe_consumer_groups(["capg2"])["capg2"].result(30)
        admin.delete_topics(["cap2"])["cap2"].result(30)
        client[0] = "kafka-python"
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
        from kafka.admin import NewTopic as KNewTopic
        ka = KafkaAdminClient(bootstrap_servers=bootstrap)
        ka.create_topics([KNewTopic("cap3", 1, 1)])
        kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="snappy")
        kp.send("cap3", b"x", key=b"y").get(30)
        kp.close()
        kc = KafkaConsumer("cap3", bootstrap_servers=bootstrap, group_id="capg3", auto_offset_reset="earliest", consumer_timeout_ms=3000)
        list(kc)
        kc.commit()
        kc.close()
        ka.list_groups()
        ka.describe_groups(["capg3"])
        ka.delete_groups(["capg3"])
        ka.delete_topics(["cap3"])
        ka.close()
    finally:
        broker.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    for (api, version, who), payload in sorted(seen.items()):
        with open(os.path.join(OUT, f"{who}-api{api:02d}-v{version:02d}.bin"), "wb") as f:
            f.write(payload)
    print(f"wrote {len(seen)} requests to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
