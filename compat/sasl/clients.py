#!/usr/bin/env python3
"""SASL outcomes as real Kafka clients see them, against any broker.

For each client library (confluent-kafka/librdkafka, kafka-python, kcat)
and each SASL mechanism asked for, tries to produce one record and read it
back over SASL_PLAINTEXT (or SASL_SSL with --ca, trusting that PEM CA), and
prints one JSON line per attempt:

    {"client": "confluent", "mechanism": "SCRAM-SHA-256", "ok": true, "error": null}

Usage:
    compat/sasl/clients.py --bootstrap HOST:PORT --user U --password P \
        [--mechanism SCRAM-SHA-256 ...] [--client confluent ...] [--topic T] \
        [--ca ca.pem] [--refused]

With --refused (a refusal is expected) each client gives up at its first
error instead of retrying: confluent-kafka stops at the first error its
error callback reports, kafka-python waits 5 s instead of 30 s to
bootstrap. kafka-python 3.x never raises an authentication failure at
bootstrap: it retries every failed connection until bootstrap_timeout_ms
and then raises KafkaTimeoutError("Unable to bootstrap ..."), so its error
here carries the first and the last failure its bootstrap logged
(SaslAuthenticationFailedError, or "socket disconnected" when the broker's
answer and its close arrive in one read: kafka-python then drops the
answer; the last attempt may also be cut short by the deadline).

The same script serves pubsub (crates/server/tests/server/sasl.rs spawns it
against the in-process server) and Apache Kafka started with
`compat/kafka start DIR` and KAFKA_SASL_USERS set (a SASL_PLAINTEXT
listener with SCRAM credentials), so the outcomes can be compared. A
failed authentication must be an error, never a hang: every client has
short timeouts.
"""

import argparse
import json
import logging
import shutil
import subprocess
import sys
import uuid

MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
# librdkafka 2.0 (Debian's kcat) sends a wrong nonce in its SCRAM
# client-final message; Kafka 4.1.1 refuses it as pubsub does. Its SCRAM
# attempts run only when asked for explicitly (--client kcat --mechanism ...).
KNOWN_BROKEN = {("kcat", "SCRAM-SHA-256"), ("kcat", "SCRAM-SHA-512")}
CLIENTS = ["confluent", "kafka-python", "kcat"]


class BootstrapFailures(logging.Handler):
    """The reasons kafka-python's bootstrap gave for its failed attempts."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen = []

    def emit(self, record):
        if record.getMessage().startswith("Bootstrap connection to") and len(record.args) > 1:
            self.seen.append(str(record.args[1]))

    def summary(self):
        if not self.seen:
            return "no attempt finished"
        return f"first: {self.seen[0]}; last: {self.seen[-1]}; {len(self.seen)} attempts"


BOOTSTRAP_FAILURES = BootstrapFailures()


def protocol(args):
    return "SASL_SSL" if args.ca else "SASL_PLAINTEXT"


def confluent(args, mechanism, topic):
    from confluent_kafka import Consumer, KafkaException, Producer

    conf = {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": protocol(args),
        "sasl.mechanisms": mechanism,
        "sasl.username": args.user,
        "sasl.password": args.password,
        "socket.timeout.ms": 10000,
        "message.timeout.ms": 10000,
    }
    if args.ca:
        conf["ssl.ca.location"] = args.ca
    errors = []
    conf_p = dict(conf, error_cb=lambda e: errors.append(str(e)))
    p = Producer(conf_p)
    delivered = []
    p.produce(topic, b"over " + mechanism.encode(), on_delivery=lambda e, m: delivered.append(e))
    # Stop at the first authentication error rather than waiting out the
    # message timeout.
    for _ in range(30):
        p.poll(0.5)
        if delivered or any("uthenticat" in e for e in errors) or (args.refused and errors):
            break
    auth = [e for e in errors if "uthenticat" in e] or (errors if args.refused else [])
    if auth:
        raise RuntimeError(auth[0])
    if not delivered or delivered[0] is not None:
        raise RuntimeError(f"not delivered: {delivered or errors}")
    c = Consumer(
        dict(conf, **{"group.id": "sasl-" + uuid.uuid4().hex[:8], "auto.offset.reset": "earliest"})
    )
    c.subscribe([topic])
    try:
        for _ in range(30):
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            return m.value().decode()
        raise RuntimeError("nothing consumed")
    finally:
        c.close()


def kafka_python(args, mechanism, topic):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import errors as Errors

    conf = dict(
        bootstrap_servers=args.bootstrap,
        security_protocol=protocol(args),
        sasl_mechanism=mechanism,
        sasl_plain_username=args.user,
        sasl_plain_password=args.password,
        request_timeout_ms=30000,
    )
    if args.ca:
        conf["ssl_cafile"] = args.ca
    BOOTSTRAP_FAILURES.seen = []
    try:
        p = KafkaProducer(**conf, max_block_ms=30000,
                          bootstrap_timeout_ms=5000 if args.refused else 30000)
    except Errors.KafkaTimeoutError as e:
        raise RuntimeError(f"{e} (bootstrap failures: {BOOTSTRAP_FAILURES.summary()})") from e
    try:
        p.send(topic, b"over " + mechanism.encode()).get(timeout=15)
    finally:
        p.close(timeout=5)
    c = KafkaConsumer(topic, **conf, auto_offset_reset="earliest", consumer_timeout_ms=15000)
    try:
        for m in c:
            return m.value.decode()
        raise RuntimeError("nothing consumed")
    finally:
        c.close()


def kcat(args, mechanism, topic):
    exe = shutil.which("kcat") or shutil.which("kafkacat")
    if exe is None:
        raise RuntimeError("kcat is not installed")
    base = [
        exe, "-b", args.bootstrap,
        "-X", f"security.protocol={protocol(args)}",
        "-X", f"sasl.mechanisms={mechanism}",
        "-X", f"sasl.username={args.user}",
        "-X", f"sasl.password={args.password}",
        "-m", "15",
    ] + (["-X", f"ssl.ca.location={args.ca}"] if args.ca else []) + (["-d", "security,broker,protocol"] if args.debug else [])
    out = subprocess.run(base + ["-P", "-t", topic], input=b"over " + mechanism.encode() + b"\n",
                         capture_output=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode().strip() if args.debug else
                           out.stderr.decode().strip().splitlines()[-1:] or "kcat -P failed")
    out = subprocess.run(base + ["-C", "-t", topic, "-o", "beginning", "-c", "1", "-e"],
                         capture_output=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(out.stderr.decode().strip().splitlines()[-1:] or "kcat -C failed")
    return out.stdout.decode().strip()


RUN = {"confluent": confluent, "kafka-python": kafka_python, "kcat": kcat}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mechanism", action="append", choices=MECHANISMS)
    ap.add_argument("--client", action="append", choices=CLIENTS)
    ap.add_argument("--debug", action="store_true", help="kcat: print librdkafka's security debug log")
    ap.add_argument("--ca", help="SASL_SSL, trusting this PEM CA (default: SASL_PLAINTEXT)")
    ap.add_argument("--topic", help="an existing topic (default: a new name per attempt)")
    ap.add_argument("--refused", action="store_true",
                    help="a refusal is expected: give up at the first error rather than retrying")
    args = ap.parse_args()
    logging.getLogger("kafka").addHandler(BOOTSTRAP_FAILURES)
    for client in args.client or CLIENTS:
        for mechanism in args.mechanism or MECHANISMS:
            if (client, mechanism) in KNOWN_BROKEN and not (args.client and args.mechanism):
                continue
            topic = args.topic or f"sasl-{client}-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
            try:
                value = RUN[client](args, mechanism, topic)
                ok = value == "over " + mechanism
                error = None if ok else f"read back {value!r}"
            except Exception as e:  # the outcome is the report
                ok, error = False, f"{type(e).__name__}: {e}"
            print(json.dumps({"client": client, "mechanism": mechanism, "ok": ok, "error": error}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
