#!/usr/bin/env bash
# The cost of authenticating a connection on pubsub's own listeners: one
# `pubsub serve` with a PLAINTEXT, an SSL, a SASL_PLAINTEXT and a SASL_SSL
# listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; ECDSA P-256 certificate made
# here with openssl; the user made by PUBSUB_BOOTSTRAP_USER, 4096 SCRAM
# iterations), and compat/sasl/auth_cost.py driving CONNECTIONS (300)
# sequential connections of each kind: connect, (TLS handshake,) (SASL
# handshake and authentication,) ApiVersions, close.
#
#   cargo build --release -p pubsub-cli
#   benches/auth-cost.sh [target/release/pubsub]
#
# Per kind: the mean wall time per connection as the Python client sees it,
# and the broker's CPU time per connection (/proc/PID/stat, user + system),
# the lowest of ROUNDS (3) rounds; each next to the plaintext connection as
# a ratio. Prints the table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath -- "${1:-target/release/pubsub}")
CONNECTIONS=${CONNECTIONS:-300}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 30 -extfile <(printf 'subjectAltName=IP:127.0.0.1') \
  -out "$work/server.pem" 2>/dev/null

cat >"$work/pubsub.toml" <<EOF
data_dir = "$work/data"
listen = "127.0.0.1:0"

[[listeners]]
name = "ssl"
listen = "127.0.0.1:0"
protocol = "SSL"

[[listeners]]
name = "sasl_plain"
listen = "127.0.0.1:0"
protocol = "SASL_PLAINTEXT"
sasl_mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

[[listeners]]
name = "sasl_ssl"
listen = "127.0.0.1:0"
protocol = "SASL_SSL"
sasl_mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

[tls]
cert = "$work/server.pem"
key = "$work/server.key"
EOF
PUBSUB_BOOTSTRAP_USER=bench:bench-secret "$PUBSUB" serve --config "$work/pubsub.toml" \
  >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do
  grep -q '(sasl_ssl, SASL_SSL)' "$work/out" && break
  sleep 0.05
done
addr() { sed -n "s/^listening on \(.*\) ($1)\$/\1/p" "$work/out"; }
plain=$(sed -n '1s/^listening on //p' "$work/out")
[ -n "$plain" ] && [ -n "$(addr 'sasl_ssl, SASL_SSL')" ] \
  || { echo "pubsub did not start: $(cat "$work/err")" >&2; exit 1; }

for round in $(seq "$ROUNDS"); do
  python3 compat/sasl/auth_cost.py --user bench --password bench-secret --ca "$work/ca.pem" \
    --plaintext "$plain" --tls "$(addr 'ssl, SSL')" \
    --sasl-plaintext "$(addr 'sasl_plain, SASL_PLAINTEXT')" \
    --sasl-ssl "$(addr 'sasl_ssl, SASL_SSL')" \
    --connections "$CONNECTIONS" --pid "$pid" | tee -a "$work/results.tsv"
done

echo
echo "| connection | client wall time | / plaintext | broker CPU | / plaintext |"
echo "|---|---|---|---|---|"
python3 - "$work/results.tsv" <<'PY'
import collections, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kind, wall, cpu = line.split()
    runs[kind].append((float(wall), float(cpu)))
best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
base_wall, base_cpu = best["plaintext"]
for kind in runs:
    wall, cpu = best[kind]
    ratio = lambda x, b: "%.1fx" % (x / b) if b > 0 else "n/a"
    print("| %s | %.3f ms | %s | %.3f ms | %s |" % (kind, wall, ratio(wall, base_wall), cpu, ratio(cpu, base_cpu)))
PY
