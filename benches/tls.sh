#!/usr/bin/env bash
# Produce and consume throughput over TLS next to plaintext, in one run, on
# one broker: `pubsub serve` with its PLAINTEXT listener and an SSL listener
# (certificate made here with openssl), the same load generator against each
# listener in turn, 1 KiB records, acks=1, one partition; then the cost of a
# connection with and without the TLS handshake.
#
#   cargo build --release -p pubsub-cli
#   compat/kafka setup
#   benches/tls.sh [target/release/pubsub]
#
# Load generators: librdkafka's rdkafka_performance built with OpenSSL
# (RDKAFKA_PERF_SSL; by default built here once, about 2 minutes, from the
# librdkafka source the rdkafka-sys crate bundles, as
# ../shared/tools/rdkafka-perf builds its SSL-less one; needs libssl-dev)
# and Kafka's
# kafka-producer-perf-test / kafka-consumer-perf-test (ProducerPerformance /
# ConsumerPerformance from the jars compat/java pins) with
# --producer.config / --consumer.config naming a PEM truststore. Producers
# batch about 200 records (batch.size 200 KiB, linger.ms 5).
#
# Connection cost: CONNECTIONS (300) sequential connections from Python,
# each connect, (TLS handshake,) one ApiVersions round trip, close; the
# mean per connection over plaintext and over TLS (ECDSA P-256 certificate,
# TLS 1.3), and their difference: the handshake's cost as a client sees it.
#
# Environment: MESSAGES per run (300000), ROUNDS (2: plaintext then TLS,
# repeated), TOOL_TIMEOUT (600 s), TOOLS ("rdkafka kafka_tool": the load
# generators run; `TOOLS=rdkafka` for librdkafka's alone). Prints one line per measurement and the
# table for docs/BENCHMARKS.md with the ratio TLS / plaintext.
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath -- "${1:-target/release/pubsub}")

# rdkafka_performance with SSL, built once into the tools cache.
rdkafka_perf_ssl() {
  local version="4.10.0+2.12.1" cache=${PUBSUB_TOOLS_CACHE:-$HOME/.cache/pubsub-tools}
  local bin=$cache/rdkafka_performance-ssl-$version
  if [ ! -x "$bin" ]; then
    mkdir -p "$cache"
    local build
    build=$(mktemp -d)
    ( cd "$build" && cargo init -q --name rdkperf && cargo add -q "rdkafka-sys@=$version" --no-default-features >/dev/null && cargo fetch -q ) >&2
    cp -r "$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-"$version"/librdkafka | head -1)" "$build/librdkafka"
    ( cd "$build/librdkafka" \
      && ./configure --disable-sasl --disable-zstd --disable-curl --disable-gssapi >/dev/null \
      && make -s -j"$(nproc)" -C src >/dev/null 2>&1 \
      && make -s -C examples rdkafka_performance >/dev/null 2>&1 ) >&2
    cp "$build/librdkafka/examples/rdkafka_performance" "$bin"
    rm -rf "$build"
  fi
  echo "$bin"
}
if [ "${1:-}" = --build-rdkafka ]; then rdkafka_perf_ssl; exit 0; fi
RDK=${RDKAFKA_PERF_SSL:-$(rdkafka_perf_ssl)}
N=${MESSAGES:-300000}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-300}
work=$(mktemp -d)
results=$work/results.tsv
pid=""

cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The Java tools with the full JIT (compat/kafka's default stops at C1,
# which leaves AES-GCM without its intrinsics and the Java client's TLS
# several times slower), as vs-kafka.sh runs them.
export KAFKA_HEAP=1g
export KAFKA_JVM_FLAGS="-XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"

TOOL_TIMEOUT=${TOOL_TIMEOUT:-600}
limit() { timeout "$TOOL_TIMEOUT" "$@"; }

# A CA and an ECDSA P-256 certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 30 -extfile <(printf 'subjectAltName=IP:127.0.0.1') \
  -out "$work/server.pem" 2>/dev/null
printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n' \
  "$work/ca.pem" >"$work/ssl.properties"
: >"$work/plain.properties"

cat >"$work/pubsub.toml" <<EOF
data_dir = "$work/data"
listen = "127.0.0.1:0"

[[listeners]]
name = "ssl"
listen = "127.0.0.1:0"
protocol = "SSL"

[tls]
cert = "$work/server.pem"
key = "$work/server.key"
EOF
"$PUBSUB" serve --config "$work/pubsub.toml" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do
  grep -q '(ssl, SSL)' "$work/out" && break
  sleep 0.05
done
plain=$(sed -n '1s/^listening on //p' "$work/out")
ssl=$(sed -n 's/^listening on \(.*\) (ssl, SSL)$/\1/p' "$work/out")
[ -n "$plain" ] && [ -n "$ssl" ] || { echo "pubsub did not start: $(cat "$work/err")" >&2; exit 1; }

record() { printf '%s\t%s\t%s\t%s\n' "$@" | tee -a "$results"; }

# rdkafka_performance's settings for a listener: security flags.
rdk_flags() { # plain|ssl
  [ "$1" = ssl ] && printf -- '-X\nsecurity.protocol=SSL\n-X\nssl.ca.location=%s\n' "$work/ca.pem"
  return 0
}

produce_rdkafka() { # ADDR TOPIC plain|ssl
  local flags
  mapfile -t flags < <(rdk_flags "$3")
  limit "$RDK" -P -t "$2" -p 0 -b "$1" -s 1024 -a 1 -c "$N" \
    -X batch.num.messages=200 -X linger.ms=5 "${flags[@]}" 2>&1 \
    | grep 'msgs/s' | tail -1 | grep -oE '[0-9.]+ MB/s' | sed 's/ MB\/s//'
}
consume_rdkafka() { # ADDR TOPIC plain|ssl
  local flags
  mapfile -t flags < <(rdk_flags "$3")
  limit "$RDK" -C -t "$2" -p 0 -b "$1" -o beginning -c "$N" -X fetch.max.bytes=52428800 \
    "${flags[@]}" 2>&1 \
    | grep 'consumed in' | tail -1 | grep -oE '\([0-9.]+ MB/s\)' | tr -d '()' | sed 's/ MB\/s//'
}
produce_kafka_tool() { # ADDR TOPIC plain|ssl
  limit compat/kafka run "$work/tool" org.apache.kafka.tools.ProducerPerformance \
    --topic "$2" --num-records "$N" --record-size 1024 --throughput -1 \
    --producer.config "$work/$3.properties" \
    --producer-props bootstrap.servers="$1" acks=1 batch.size=204800 linger.ms=5 2>&1 \
    | grep 'records sent' | tail -1 | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/'
}
consume_kafka_tool() { # ADDR TOPIC plain|ssl
  limit compat/kafka run "$work/tool" org.apache.kafka.tools.ConsumerPerformance \
    --bootstrap-server "$1" --topic "$2" --messages "$N" --group "perf-$RANDOM$RANDOM" \
    --consumer.config "$work/$3.properties" 2>&1 \
    | grep -E '^[0-9]{4}-' | tail -1 | awk -F', ' '{print $9}'
}

for round in $(seq "$ROUNDS"); do
  for listener in plain ssl; do
    addr=$plain
    [ $listener = ssl ] && addr=$ssl
    for tool in ${TOOLS:-rdkafka kafka_tool}; do
      topic="t-$round-$listener-$tool"
      "$PUBSUB" topic create "$topic" --partitions 1 --bootstrap "$plain" >/dev/null 2>&1
      record "$listener" produce "$tool" "$(produce_$tool "$addr" "$topic" $listener || true)"
      record "$listener" consume "$tool" "$(consume_$tool "$addr" "$topic" $listener || true)"
    done
  done
done

# Connection cost: connect, (handshake,) ApiVersions, close; mean ms.
connection_ms() { # ADDR plain|ssl
  python3 - "$1" "$2" "$work/ca.pem" "$CONNECTIONS" <<'PY'
import socket, ssl, struct, sys, time
addr, kind, ca, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
body = struct.pack(">hhih", 18, 0, 1, -1)
frame = struct.pack(">i", len(body)) + body
def once():
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if kind == "ssl":
        s = ctx.wrap_socket(s, server_hostname=host)
    s.sendall(frame)
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    size = struct.unpack(">i", head)[0]
    got = 0
    while got < size:
        got += len(s.recv(size - got))
    s.close()
for _ in range(20):
    once()
start = time.perf_counter()
for _ in range(n):
    once()
print("%.3f" % ((time.perf_counter() - start) * 1000 / n))
PY
}
for round in $(seq "$ROUNDS"); do
  record plain connection python "$(connection_ms "$plain" plain)"
  record ssl connection python "$(connection_ms "$ssl" ssl)"
done

echo
echo "| workload | tool | plaintext | TLS | TLS / plaintext |"
echo "|---|---|---|---|---|"
python3 - "$results" <<'PY'
import collections, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    listener, workload, tool, value = line.rstrip("\n").split("\t")
    if value:
        runs[(workload, tool, listener)].append(float(value))
def best(key, workload):
    v = runs.get(key)
    if not v:
        return None
    # Throughput: the best round; connection time: the lowest.
    return min(v) if workload == "connection" else max(v)
names = {"rdkafka": "rdkafka_performance", "kafka_tool": "kafka-*-perf-test", "python": "python ssl/socket"}
for workload, tool in [("produce", "rdkafka"), ("produce", "kafka_tool"), ("consume", "rdkafka"),
                       ("consume", "kafka_tool"), ("connection", "python")]:
    p, t = best((workload, tool, "plain"), workload), best((workload, tool, "ssl"), workload)
    unit = "ms" if workload == "connection" else "MB/s"
    ratio = "%.2fx" % (t / p) if p and t else ""
    fmt = lambda x: "" if x is None else ("%.3f %s" % (x, unit) if unit == "ms" else "%.0f %s" % (x, unit))
    print("| %s | %s | %s | %s | %s |" % (workload, names[tool], fmt(p), fmt(t), ratio))
PY
