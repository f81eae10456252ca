#!/usr/bin/env bash
# A/B of two `pubsub` server binaries on the same workloads, in one run:
# rounds alternate the binaries (A B, then B A, ...) so that disk state and
# machine noise fall on both alike. Each case gets a fresh server and data
# directory; the load generators (rdkafka_performance and the `pubsub bench`
# of the client binary) are the same for both, so only the server differs.
#
#   cargo build --release -p pubsub-cli
#   cp target/release/pubsub /tmp/pubsub-before   # on the old commit
#   benches/ab.sh /tmp/pubsub-before target/release/pubsub
#
# Environment: RDKAFKA_PERF (default ../shared/tools/rdkafka-perf), ROUNDS
# (3), MESSAGES (300000: within this machine's disk burst), CLIENT (the
# `pubsub` used for `bench`, default B). Prints one line per measurement and
# a table of medians with the ratio B/A: MB/s, and the server's CPU seconds
# per workload (lower is better; steadier than throughput on a shared disk).
set -euo pipefail

A=${1:?usage: ab.sh OLD_PUBSUB NEW_PUBSUB}
B=${2:?usage: ab.sh OLD_PUBSUB NEW_PUBSUB}
RDK=${RDKAFKA_PERF:-../shared/tools/rdkafka-perf}
ROUNDS=${ROUNDS:-3}
N=${MESSAGES:-300000}
CLIENT=${CLIENT:-$B}
work=$(mktemp -d)
results=$work/results.tsv
server_pid=""

cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# start BIN: a fresh server on a free port; sets $addr and $server_pid.
start() {
  local dir=$work/data-$RANDOM$RANDOM
  # Emptied here, not only by the redirection below: that runs in the child,
  # and the poll could otherwise read the previous broker's address.
  : >"$work/out"
  "$1" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$work/out" 2>"$work/err" &
  server_pid=$!
  for _ in $(seq 200); do
    addr=$(sed -n 's/^listening on //p' "$work/out")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "server did not start: $(cat "$work/err")" >&2
  exit 1
}

# stop LABEL WHAT: records the server's CPU seconds (user + system) for the
# workloads it served, a far steadier figure than throughput, then stops it.
stop() {
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  record "$1" "server CPU seconds: $2" "$(python3 -c "print(round($ticks / $(getconf CLK_TCK), 2))")"
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  rm -rf "$work"/data-*
  sync
  sleep 3
}

# rdk_mb ARGS...: MB/s from rdkafka_performance's summary line.
rdk_mb() {
  "$RDK" "$@" 2>&1 | grep 'msgs/s' | tail -1 | grep -oE '[0-9.]+ MB/s' | cut -d' ' -f1
}

# bench_mb ARGS...: MB/s from `pubsub bench ... --json`.
bench_mb() {
  "$CLIENT" bench "$@" --json --bootstrap "$addr" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["mb_per_s"], 1))'
}

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" | tee -a "$results"; }

case_run() {
  local label=$1 bin=$2
  start "$bin"
  record "$label" "rdkafka_performance produce acks=1" \
    "$(rdk_mb -P -t r1 -p 0 -b "$addr" -s 1024 -a 1 -c "$N" -X batch.num.messages=200 -X linger.ms=5)"
  record "$label" "rdkafka_performance consume" \
    "$(rdk_mb -C -t r1 -p 0 -b "$addr" -o beginning -c "$N" -X fetch.max.bytes=52428800)"
  stop "$label" "rdkafka_performance produce acks=1 + consume"
  start "$bin"
  record "$label" "rdkafka_performance produce acks=all" \
    "$(rdk_mb -P -t rall -p 0 -b "$addr" -s 1024 -a -1 -c "$N" -X batch.num.messages=200 -X linger.ms=5)"
  stop "$label" "rdkafka_performance produce acks=all"
  start "$bin"
  record "$label" "pubsub bench produce acks=1" \
    "$(bench_mb produce --topic p1 --messages "$N" --size 1024 --batch 200 --acks 1)"
  record "$label" "pubsub bench consume" "$(bench_mb consume --topic p1)"
  stop "$label" "pubsub bench produce acks=1 + consume"
  start "$bin"
  record "$label" "pubsub bench produce acks=all" \
    "$(bench_mb produce --topic pall --messages "$N" --size 1024 --batch 200 --acks all)"
  stop "$label" "pubsub bench produce acks=all"
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then case_run A "$A"; case_run B "$B"; else case_run B "$B"; case_run A "$A"; fi
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, case, mb = line.rstrip("\n").split("\t")
    rows.setdefault(case, {}).setdefault(label, []).append(float(mb))
print("\n| workload (1 KiB, 1 partition) | A (median) | B (median) | B / A |")
print("|---|---|---|---|")
for case, by in rows.items():
    a, b = statistics.median(by["A"]), statistics.median(by["B"])
    fmt = ".2f" if max(a, b) < 100 else ".0f"
    print(f"| {case} | {a:{fmt}} | {b:{fmt}} | {b / a:.2f}x |")
EOF
