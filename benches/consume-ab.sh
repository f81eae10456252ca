#!/usr/bin/env bash
# A/B of builds under rdkafka_performance consumes: one broker per build,
# the same 1,000,000 1 KiB records produced into each (acks=1, batches of
# 200), then ROUNDS rounds of one consume per build, alternated so every
# build sees the same minutes. Per consume: MB/s, the client's CPU seconds
# (user + system), the broker's CPU seconds and context switches (all its
# threads, /proc/PID/task/*/status).
#
#   benches/consume-ab.sh PARTITIONS ROUNDS PUBSUB_BIN...
#
# RDKAFKA_PERF: rdkafka_performance (default ../shared/tools/rdkafka-perf).
set -uo pipefail
parts=$1; rounds=$2; shift 2
perf=${RDKAFKA_PERF:-$(realpath ../shared/tools/rdkafka-perf)}
base=$(mktemp -d)
pids=(); addrs=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$base"; }
trap cleanup EXIT
i=0
for bin in "$@"; do
  d=$base/$i; mkdir -p "$d"
  PUBSUB_TOPICS_DEFAULT_PARTITIONS=$parts RUST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$d/data" >"$d/out" 2>"$d/err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$d/out" 2>/dev/null && break; sleep 0.1; done
  addrs+=("$(sed -n 's/^listening on //p' "$d/out")")
  pflag=(); [ "$parts" = 1 ] && pflag=(-p 0)
  "$perf" -P -t bench -b "${addrs[$i]}" -s 1024 -a 1 -X batch.num.messages=200 -X linger.ms=5 -c 1000000 "${pflag[@]}" >/dev/null 2>&1
  i=$((i+1))
done
sync; sleep 3
cflags=(); for p in $(seq 0 $((parts - 1))); do cflags+=(-p "$p"); done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctx() { cat /proc/$1/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
for r in $(seq "$rounds"); do
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    t0=$(ticks "$pid"); c0=$(ctx "$pid")
    out=$( { /usr/bin/time -f "CLIENT %U %S" "$perf" -C -t bench -b "${addrs[$i]}" -o beginning -c 1000000 -X fetch.max.bytes=52428800 "${cflags[@]}" 2>&1; } 2>&1 )
    t1=$(ticks "$pid"); c1=$(ctx "$pid")
    mb=$(echo "$out" | grep "consumed in" | tail -1 | grep -oE '\([0-9.]+ MB/s\)' | tr -d '()MB/s ')
    cl=$(echo "$out" | awk '/^CLIENT/ {printf "%.2f", $2+$3}')
    echo -e "round $r\tbuild $i\t$mb MB/s\tclient $cl s\tbroker $(echo "scale=2; ($t1-$t0)/100" | bc) s\tbroker ctxsw $((c1-c0))\tload $(cut -d' ' -f1 /proc/loadavg)"
  done
done
