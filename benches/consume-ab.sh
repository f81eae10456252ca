#!/usr/bin/env bash
# A/B of builds under consumes: one broker per build, the same 1,000,000
# 1 KiB records produced into each (acks=1, batches of 200), then ROUNDS
# rounds of one consume per build, alternated so every build sees the same
# minutes. Per consume: MB/s, the client's CPU seconds (user + system), the
# broker's CPU seconds and context switches (all its threads,
# /proc/PID/task/*/status).
#
#   benches/consume-ab.sh PARTITIONS ROUNDS PUBSUB_BIN...
#
# CLIENT picks the consumer (the same one for every build):
#   rdkafka (default)  rdkafka_performance, fetch.max.bytes 50 MiB
#   pubsub             `pubsub bench consume` of PUBSUB_CLIENT (default: the
#                      first PUBSUB_BIN), one fetch of every partition in flight
#   raw                net-bench's raw consumer (NET_BENCH, default
#                      target/release/net-bench), 1 MiB a partition, one
#                      fetch per partition in flight
# RDKAFKA_PERF: rdkafka_performance (default ../shared/tools/rdkafka-perf).
set -uo pipefail
parts=$1; rounds=$2; shift 2
client=${CLIENT:-rdkafka}
perf=${RDKAFKA_PERF:-$(realpath ../shared/tools/rdkafka-perf)}
own=${PUBSUB_CLIENT:-$1}
netbench=${NET_BENCH:-target/release/net-bench}
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
  if [ "$client" = raw ]; then
    # The raw consumer reads topic `raw`, which its producer fills.
    "$netbench" --against "${addrs[$i]}" --messages 1000000 --partitions "$parts" --consume-runs 0 >/dev/null
  else
    pflag=(); [ "$parts" = 1 ] && pflag=(-p 0)
    "$perf" -P -t bench -b "${addrs[$i]}" -s 1024 -a 1 -X batch.num.messages=200 -X linger.ms=5 -c 1000000 "${pflag[@]}" >/dev/null 2>&1
  fi
  i=$((i+1))
done
sync; sleep 3
cflags=(); for p in $(seq 0 $((parts - 1))); do cflags+=(-p "$p"); done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctx() { cat /proc/$1/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
# One consume of the broker at $1: its output, with a line "CLIENT user sys".
consume() {
  case $client in
    rdkafka) "$perf" -C -t bench -b "$1" -o beginning -c 1000000 -X fetch.max.bytes=52428800 "${cflags[@]}" ;;
    pubsub) "$own" bench consume --json --bootstrap "$1" --topic bench ;;
    raw) "$netbench" --against "$1" --messages 0 --partitions "$parts" --fetch-bytes 1048576 --consume-runs 1 ;;
  esac
}
# MB/s of 1 KiB messages from a consume's output.
rate() {
  case $client in
    rdkafka) grep "consumed in" | tail -1 | grep -oE '\([0-9.]+ MB/s\)' | tr -d '()MB/s ' ;;
    pubsub) grep -oE '"mb_per_s": ?[0-9.]+' | grep -oE '[0-9.]+$' | awk '{printf "%.0f", $1}' ;;
    raw) grep -oE '[0-9.]+ MB/s' | grep -oE '^[0-9.]+' ;;
  esac
}
for r in $(seq "$rounds"); do
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    t0=$(ticks "$pid"); c0=$(ctx "$pid")
    out=$( { /usr/bin/time -f "CLIENT %U %S" bash -c "$(declare -f consume); $(declare -p client perf own netbench parts cflags); consume ${addrs[$i]}" 2>&1; } 2>&1 )
    t1=$(ticks "$pid"); c1=$(ctx "$pid")
    mb=$(echo "$out" | rate)
    cl=$(echo "$out" | awk '/^CLIENT/ {printf "%.2f", $2+$3}')
    echo -e "round $r\tbuild $i\t$mb MB/s\tclient $cl s\tbroker $(echo "scale=2; ($t1-$t0)/100" | bc) s\tbroker ctxsw $((c1-c0))\tload $(cut -d' ' -f1 /proc/loadavg)"
  done
done
