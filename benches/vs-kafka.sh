#!/usr/bin/env bash
# pubsub next to Apache Kafka on this machine, in one run: the same three
# load generators against each broker, 1 KiB records, acks=1 and acks=all,
# 1 and 8 partitions, produce and consume.
#
#   cargo build --release -p pubsub-cli
#   compat/kafka setup
#   benches/vs-kafka.sh [target/release/pubsub]
#
# Load generators: Kafka's kafka-producer-perf-test / kafka-consumer-perf-test
# (org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance, from the
# jars compat/java pins), librdkafka's rdkafka_performance
# (../shared/tools/rdkafka-perf) and `pubsub bench`. Every producer sends
# batches of about 200 records (batch.size 200 KiB, linger.ms 5).
#
# Brokers, each fresh:
#   pubsub        `pubsub serve` defaults: acks=all answers after an fsync
#   kafka         Kafka 4.1.1 (compat/kafka), Kafka's default flush policy:
#                 acks=all answers once the record is in the page cache
#   kafka-fsync   the same with log.flush.interval.messages=1, the
#                 equal-durability row (acks=all produce only)
# Kafka runs with its own start script's JVM settings (1 GiB heap, G1,
# MaxGCPauseMillis=20) and its default thread counts (3 network, 8 I/O).
#
# Environment: MESSAGES per run (500000), RDKAFKA_PERF, TOOL_TIMEOUT (600 s
# per tool run; a run over it is reported as failed). Prints one line per
# measurement (tab-separated: broker, workload, tool, MB/s, p99 ms) and then
# the table for docs/BENCHMARKS.md, with the ratio pubsub / Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath "${1:-target/release/pubsub}")
RDK=${RDKAFKA_PERF:-$(realpath ../shared/tools/rdkafka-perf)}
N=${MESSAGES:-500000}
work=$(mktemp -d)
results=$work/results.tsv
pubsub_pid=""
kafka_dir=""

# Kafka's own start script's JVM settings, for the broker and its tools.
export KAFKA_HEAP=1g
export KAFKA_JVM_FLAGS="-XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"

cleanup() {
  stop_broker
  rm -rf "$work"
}
trap cleanup EXIT

# start_broker NAME: a fresh broker; sets $addr.
start_broker() {
  case $1 in
    pubsub)
      # Emptied here, not only by the redirection below: that runs in the child,
      # and the poll could otherwise read the previous broker's address.
      : >"$work/out"
      "$PUBSUB" serve --listen 127.0.0.1:0 --data-dir "$work/pubsub" >"$work/out" 2>"$work/err" &
      pubsub_pid=$!
      addr=""
      for _ in $(seq 200); do
        addr=$(sed -n 's/^listening on //p' "$work/out")
        [ -n "$addr" ] && return 0
        sleep 0.05
      done
      echo "pubsub did not start: $(cat "$work/err")" >&2
      exit 1
      ;;
    kafka | kafka-fsync)
      kafka_dir=$work/kafka
      local extra=(num.network.threads=3 num.io.threads=8)
      [ "$1" = kafka-fsync ] && extra+=(log.flush.interval.messages=1)
      addr=$(compat/kafka start "$kafka_dir" "${extra[@]}" | sed -n 's/^listening on //p')
      ;;
  esac
}

stop_broker() {
  if [ -n "$pubsub_pid" ]; then
    kill -TERM "$pubsub_pid" 2>/dev/null || true
    wait "$pubsub_pid" 2>/dev/null || true
    pubsub_pid=""
  fi
  if [ -n "$kafka_dir" ]; then
    compat/kafka stop "$kafka_dir"
    kafka_dir=""
  fi
  rm -rf "$work/pubsub" "$work/kafka"
  sync
  sleep 3
}

# A tool that hangs (a consumer short of records) fails its row, not the run.
TOOL_TIMEOUT=${TOOL_TIMEOUT:-600}
limit() { timeout "$TOOL_TIMEOUT" "$@"; }

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" | tee -a "$results"; }

topic() { "$PUBSUB" topic create "$1" --partitions "$2" --bootstrap "$addr" >/dev/null 2>&1; }

# The three producers: each prints "MB/s<TAB>p99 ms" (p99 empty where the
# tool reports none).
produce_kafka_tool() { # TOPIC ACKS
  limit compat/kafka run "$work/tool" org.apache.kafka.tools.ProducerPerformance \
    --topic "$1" --num-records "$N" --record-size 1024 --throughput -1 \
    --producer-props bootstrap.servers="$addr" acks="$2" batch.size=204800 linger.ms=5 2>&1 \
    | grep 'records sent' | tail -1 \
    | sed -E 's/.*\(([0-9.]+) MB\/sec\).* ([0-9.]+) ms 99th.*/\1\t\2/'
}
produce_rdkafka() { # TOPIC ACKS PARTITIONS
  local part=()
  [ "$3" = 1 ] && part=(-p 0)
  limit "$RDK" -P -t "$1" "${part[@]}" -b "$addr" -s 1024 -a "$2" -c "$N" \
    -X batch.num.messages=200 -X linger.ms=5 2>&1 \
    | grep 'msgs/s' | tail -1 | grep -oE '[0-9.]+ MB/s' | sed 's/ MB\/s/\t/'
}
produce_bench() { # TOPIC ACKS
  limit "$PUBSUB" bench produce --bootstrap "$addr" --topic "$1" --messages "$N" --size 1024 \
    --batch 200 --acks "$2" --json \
    | bench_figures
}

bench_figures() {
  python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.1f\t%s" % (r["mb_per_s"], r["latency_ms"]["p99"]))'
}

# The three consumers of a topic holding $N records.
consume_kafka_tool() { # TOPIC
  # fetch.MB.sec: the rate once the group is formed (Kafka's join delay
  # excluded), as the other two tools count.
  limit compat/kafka run "$work/tool" org.apache.kafka.tools.ConsumerPerformance \
    --bootstrap-server "$addr" --topic "$1" --messages "$N" --group "perf-$RANDOM$RANDOM" \
    --consumer.config /dev/null 2>&1 \
    | grep -E '^[0-9]{4}-' | tail -1 | awk -F', ' '{printf "%s\t\n", $9}'
}
consume_rdkafka() { # TOPIC PARTITIONS
  local part=() p
  for p in $(seq 0 $(($2 - 1))); do part+=(-p "$p"); done
  limit "$RDK" -C -t "$1" "${part[@]}" -b "$addr" -o beginning -c "$N" -X fetch.max.bytes=52428800 2>&1 \
    | grep 'consumed in' | tail -1 | grep -oE '\([0-9.]+ MB/s\)' | tr -d '()' | sed 's/ MB\/s/\t/'
}
consume_bench() { # TOPIC
  limit "$PUBSUB" bench consume --bootstrap "$addr" --topic "$1" --json \
    | bench_figures
}

run_broker() { # NAME [acks=all only]
  local broker=$1 only_all=${2:-} p acks t
  start_broker "$broker"
  for p in 1 8; do
    for acks in 1 all; do
      [ -n "$only_all" ] && [ "$acks" = 1 ] && continue
      local num=$acks
      [ "$acks" = all ] && num=-1
      t=kt-$p-$acks; topic "$t" "$p"
      record "$broker" "produce acks=$acks partitions=$p" kafka-producer-perf-test "$(produce_kafka_tool "$t" "$num")"
      t=rdk-$p-$acks; topic "$t" "$p"
      record "$broker" "produce acks=$acks partitions=$p" rdkafka_performance "$(produce_rdkafka "$t" "$num" "$p")"
      t=pb-$p-$acks; topic "$t" "$p"
      record "$broker" "produce acks=$acks partitions=$p" "pubsub bench" "$(produce_bench "$t" "$acks")"
    done
    if [ -z "$only_all" ]; then
      # All three read the topic `pubsub bench` wrote with acks=1.
      record "$broker" "consume partitions=$p" kafka-consumer-perf-test "$(consume_kafka_tool "pb-$p-1")"
      record "$broker" "consume partitions=$p" rdkafka_performance "$(consume_rdkafka "pb-$p-1" "$p")"
      record "$broker" "consume partitions=$p" "pubsub bench" "$(consume_bench "pb-$p-1")"
    fi
    for t in kt rdk pb; do
      for acks in 1 all; do "$PUBSUB" topic delete "$t-$p-$acks" --bootstrap "$addr" >/dev/null 2>&1 || true; done
    done
  done
  stop_broker
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
run_broker pubsub
run_broker kafka
run_broker kafka-fsync all

python3 - "$results" "$N" <<'EOF'
import sys
rows, order = {}, []
for line in open(sys.argv[1]):
    broker, workload, tool, mb, p99 = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
    key = (workload, tool)
    if key not in rows:
        order.append(key)
    rows.setdefault(key, {})[broker] = (float(mb) if mb else None, p99)

def cell(v):
    mb, p99 = v if v else (None, "")
    if mb is None:
        return "failed", ""
    return f"{mb:.0f}", (f"{float(p99):.1f}" if p99 else "")

def ratio(a, b):
    return f"{a[0] / b[0]:.2f}x" if a and b and a[0] and b[0] else ""

print(f"\n{int(sys.argv[2]):,} records of 1 KiB per run; MB/s and p99 latency in ms (p99 where the tool reports it)\n")
print("| workload | tool | pubsub MB/s | p99 | Kafka MB/s | p99 | pubsub / Kafka | Kafka flush=1 MB/s | p99 | pubsub / Kafka flush=1 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    by = rows[key]
    ps, k, kf = by.get("pubsub"), by.get("kafka"), by.get("kafka-fsync")
    line = [key[0], key[1], *cell(ps), *cell(k), ratio(ps, k)]
    line += [*cell(kf), ratio(ps, kf)] if kf else ["", "", ""]
    print("| " + " | ".join(line) + " |")
EOF
