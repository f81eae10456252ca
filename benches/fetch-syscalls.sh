#!/usr/bin/env bash
# Syscalls and CPU time of the broker while rdkafka_performance consumes a
# topic (1,000,000 1 KiB messages, produced first with acks=1): an A/B of
# the fetch path between two builds.
#
#   benches/fetch-syscalls.sh RDKAFKA_PERF PUBSUB_BIN [PARTITIONS]
#
# Prints the broker's user+system CPU seconds for one consume, then
# `strace -c -f` of the broker during a second consume (strace slows the
# broker down: its counts matter, not its times).
set -euo pipefail
perf=$1
bin=$2
parts=${3:-1}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
PUBSUB_TOPICS_DEFAULT_PARTITIONS=$parts RUST_LOG=warn "$bin" serve --listen 127.0.0.1:0 \
    --data-dir "$dir/data" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$dir/out")
pflag=()
[ "$parts" = 1 ] && pflag=(-p 0)
"$perf" -P -t bench -b "$addr" -s 1024 -a 1 -X batch.num.messages=200 -X linger.ms=5 \
    -c 1000000 "${pflag[@]}" >/dev/null 2>&1
consume() {
    local cflags=()
    for p in $(seq 0 $((parts - 1))); do cflags+=(-p "$p"); done
    "$perf" -C -t bench -b "$addr" -o beginning -c 1000000 -X fetch.max.bytes=52428800 \
        "${cflags[@]}" 2>&1 | grep -E "msgs/s" | tail -1
}
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
consume >/dev/null # page cache warm
t0=$(ticks)
consume
t1=$(ticks)
echo "broker CPU for one consume: $(echo "scale=2; ($t1 - $t0) / $hz" | bc) s"
strace -c -f -p "$pid" -o "$dir/strace" &
spid=$!
sleep 1
consume >/dev/null
kill -INT $spid
wait $spid 2>/dev/null || true
head -25 "$dir/strace"
