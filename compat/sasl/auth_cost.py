#!/usr/bin/env python3
"""The cost of authenticating one connection, per listener kind and SASL
mechanism, against any Kafka-protocol broker.

Each connection: connect, (TLS handshake,) (SaslHandshake v1 and one or two
SaslAuthenticate v1 round trips,) one ApiVersions round trip, close. Runs
--connections sequential connections of each kind (after --warmup) and
prints one tab-separated line per kind:

    KIND  MEAN_MS_PER_CONNECTION  BROKER_CPU_MS_PER_CONNECTION

The wall time is what a client sees (its own work included: TLS and, for
SCRAM, the proof; the client caches its salted password per salt, as the
broker side has nothing to cache). With --pid, the broker's CPU time
(user + system, from /proc/PID/stat) over the kind's connections, divided
by their number: the broker's own cost, whatever else the client does.

Kinds: plaintext and tls (no SASL, PLAINTEXT and SSL listeners), and
sasl_plaintext-MECH / sasl_ssl-MECH for MECH in PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512. A kind whose listener is not given is left out.

Usage:
    compat/sasl/auth_cost.py --user U --password P [--ca ca.pem] \\
        [--plaintext H:P] [--tls H:P] [--sasl-plaintext H:P] [--sasl-ssl H:P] \\
        [--connections 300] [--warmup 20] [--pid BROKER_PID]

benches/auth-cost.sh starts `pubsub serve` with all four listeners and runs
this against it.
"""

import argparse
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time

HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}


class Connection:
    """One Kafka connection with request header v1 (non-flexible) framing."""

    def __init__(self, addr, ctx):
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(s, server_hostname=host) if ctx else s
        self.correlation = 0

    def request(self, api_key, version, body):
        self.correlation += 1
        header = struct.pack(">hhih", api_key, version, self.correlation, 4) + b"cost"
        payload = header + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", self._exactly(4))[0]
        answer = self._exactly(size)
        if struct.unpack(">i", answer[:4])[0] != self.correlation:
            raise RuntimeError("answer out of order")
        return answer[4:]

    def _exactly(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("connection closed")
            out += chunk
        return out

    def close(self):
        self.sock.close()


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def sasl_authenticate(conn, token):
    """SaslAuthenticate v1: the server's token, or an error."""
    body = conn.request(36, 1, struct.pack(">i", len(token)) + token)
    error = struct.unpack(">h", body[:2])[0]
    pos = 2
    msg_len = struct.unpack(">h", body[pos:pos + 2])[0]
    pos += 2 + max(msg_len, 0)
    if error != 0:
        raise RuntimeError(f"SaslAuthenticate error {error}: {body[4:4 + max(msg_len, 0)]!r}")
    n = struct.unpack(">i", body[pos:pos + 4])[0]
    return body[pos + 4:pos + 4 + n]


class Scram:
    """The client side of SCRAM (RFC 5802), the salted password cached."""

    salted = {}

    def __init__(self, mechanism, user, password):
        self.h = HASHES[mechanism]
        self.user, self.password = user, password

    def login(self, conn):
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={self.user},r={nonce}"
        server_first = sasl_authenticate(conn, ("n,," + first_bare).encode()).decode()
        fields = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iterations = base64.b64decode(fields["s"]), int(fields["i"])
        key = (self.h().name, salt, iterations)
        if key not in Scram.salted:
            Scram.salted[key] = hashlib.pbkdf2_hmac(self.h().name, self.password.encode(), salt, iterations)
        salted = Scram.salted[key]
        client_key = hmac.new(salted, b"Client Key", self.h).digest()
        stored_key = self.h(client_key).digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        server_final = sasl_authenticate(conn, final.encode()).decode()
        server_key = hmac.new(salted, b"Server Key", self.h).digest()
        expected = hmac.new(server_key, auth_message, self.h).digest()
        if server_final != "v=" + base64.b64encode(expected).decode():
            raise RuntimeError(f"server signature does not match: {server_final}")


def once(addr, ctx, mechanism, user, password):
    conn = Connection(addr, ctx)
    try:
        if mechanism:
            body = conn.request(17, 1, string(mechanism))
            if struct.unpack(">h", body[:2])[0] != 0:
                raise RuntimeError(f"SaslHandshake refused {mechanism}")
            if mechanism == "PLAIN":
                sasl_authenticate(conn, f"\0{user}\0{password}".encode())
            else:
                Scram(mechanism, user, password).login(conn)
        body = conn.request(18, 0, b"")
        if struct.unpack(">h", body[:2])[0] != 0:
            raise RuntimeError("ApiVersions failed")
    finally:
        conn.close()


def cpu_ms(pid):
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca", help="the PEM CA the TLS listeners' certificate chains to")
    ap.add_argument("--plaintext")
    ap.add_argument("--tls")
    ap.add_argument("--sasl-plaintext")
    ap.add_argument("--sasl-ssl")
    ap.add_argument("--connections", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pid", type=int, help="the broker's process id: also measure its CPU time")
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else None
    kinds = [("plaintext", args.plaintext, None, None), ("tls", args.tls, ctx, None)]
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
        kinds.append((f"sasl_plaintext-{mechanism}", args.sasl_plaintext, None, mechanism))
        kinds.append((f"sasl_ssl-{mechanism}", args.sasl_ssl, ctx, mechanism))
    for kind, addr, tls, mechanism in kinds:
        if not addr:
            continue
        for _ in range(args.warmup):
            once(addr, tls, mechanism, args.user, args.password)
        cpu = cpu_ms(args.pid)
        start = time.perf_counter()
        for _ in range(args.connections):
            once(addr, tls, mechanism, args.user, args.password)
        wall = (time.perf_counter() - start) * 1000 / args.connections
        broker = (cpu_ms(args.pid) - cpu) / args.connections
        print(f"{kind}\t{wall:.3f}\t{broker:.3f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
