#!/usr/bin/env bash
# Profiles the broker under acks=1 produce from librdkafka's
# rdkafka_performance (1 KiB messages, batches of 200, linger 5 ms, one
# partition), the workload of `net-bench --produce`. One fresh server and
# data directory per run; a 10-message produce creates the topic first so
# that setup stays out of the figures.
#
#   cargo build --release -p pubsub-cli
#   benches/produce-profile.sh strace    target/release/pubsub 300000
#   benches/produce-profile.sh perf      target/release/pubsub 500000
#   benches/produce-profile.sh callgrind target/release/pubsub 50000
#
# strace:    `strace -c -f` attached to the server for the run: syscalls,
#            and the Produce requests served (from /metrics) to divide by.
# perf:      `perf record -e cpu-clock -g` (software clock: this VM has no
#            hardware counters), then the top symbols by self time.
# callgrind: the server under valgrind, counts zeroed after the topic is
#            created and dumped after the run: user-space instructions by
#            function, repeatable on a busy machine (kernel work, the socket
#            and page-cache copies, is not counted; memcpy through
#            `rep movsb` counts about one instruction per byte copied).
#
# Also prints the server's CPU time per message (utime + stime).
# Environment: RDKAFKA_PERF (default ../shared/tools/rdkafka-perf).
# Leaves the run's files (perf.data, strace, callgrind.out) in the printed
# directory.
set -euo pipefail

MODE=${1:?usage: produce-profile.sh strace|perf|callgrind PUBSUB [MESSAGES]}
PUBSUB=${2:?usage: produce-profile.sh strace|perf|callgrind PUBSUB [MESSAGES]}
N=${3:-300000}
RDK=${RDKAFKA_PERF:-../shared/tools/rdkafka-perf}
work=$(mktemp -d)
server_pid=""
tool_pid=""

cleanup() {
  if [ -n "$tool_pid" ]; then kill -INT "$tool_pid" 2>/dev/null || true; wait "$tool_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

wrap=()
if [ "$MODE" = callgrind ]; then
  wrap=(valgrind --tool=callgrind "--callgrind-out-file=$work/callgrind.out")
fi
PUBSUB_TOPICS_DEFAULT_PARTITIONS=1 RUST_LOG=warn "${wrap[@]}" "$PUBSUB" serve \
  --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 600); do grep -q '^metrics on' "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/out")
metrics=$(sed -n 's/^metrics on //p' "$work/out")
[ -n "$addr" ] || { echo "no server: $(cat "$work/err")" >&2; exit 1; }

"$RDK" -P -t bench -b "$addr" -s 1024 -a 1 -p 0 -c 10 >/dev/null 2>&1
produce_requests() {
  curl -s "http://$metrics/metrics" | awk '/^pubsub_requests_total\{api="Produce"/ {print $2}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

case $MODE in
  strace)
    strace -c -f -p "$server_pid" -o "$work/strace" 2>/dev/null &
    tool_pid=$!
    sleep 1 ;;
  perf)
    perf record -e cpu-clock -F 2000 -g -p "$server_pid" -o "$work/perf.data" 2>"$work/perf.err" &
    tool_pid=$!
    sleep 1 ;;
  callgrind) callgrind_control -z "$server_pid" >/dev/null ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac

r0=$(produce_requests); c0=$(cpu_ticks)
"$RDK" -P -t bench -b "$addr" -s 1024 -a 1 -X batch.num.messages=200 -X linger.ms=5 -p 0 -c "$N" 2>&1 |
  grep -E 'msgs/s.*MB/s' | tail -1
r1=$(produce_requests); c1=$(cpu_ticks)
requests=$((${r1%.*} - ${r0%.*}))
echo "produce requests: $requests; server CPU: $(( (c1 - c0) * 10 )) ms, $(( (c1 - c0) * 10000000 / N )) ns per message"

case $MODE in
  strace)
    kill -INT "$tool_pid"; wait "$tool_pid" 2>/dev/null || true; tool_pid=""
    awk -v n="$requests" 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ {
        printf "%-18s %8d calls %6.2f per request\n", $NF, $4, $4 / n }' "$work/strace" |
      sort -k2 -n -r ;;
  perf)
    kill -INT "$tool_pid"; wait "$tool_pid" 2>/dev/null || true; tool_pid=""
    perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
      grep '%' | head -20 ;;
  callgrind)
    callgrind_control -d "$server_pid" >/dev/null
    sleep 1
    dump=$(ls "$work"/callgrind.out.* | head -1)
    callgrind_annotate --auto=no --threshold=99 "$dump" 2>/dev/null |
      sed -n '/PROGRAM TOTALS/,$p' | head -16 ;;
esac
echo "files: $work"
