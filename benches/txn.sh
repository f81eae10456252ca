#!/usr/bin/env bash
# Transactions' cost, pubsub next to Apache Kafka 4.1.1 on this machine, in
# one run: idempotent acks=all produce, transactional produce with 100 and
# 1,000 records per transaction, and consume of the transactional topic with
# read_uncommitted and read_committed; 1 KiB records, one partition each,
# every load from benches/txn.py (confluent-kafka / librdkafka).
#
#   cargo build --release -p pubsub-cli
#   compat/kafka setup
#   benches/txn.sh [target/release/pubsub]
#
# Brokers, each fresh per round: `pubsub serve` defaults (acks=all answers
# after an fsync; the coordinator's decision and each marker are fsynced
# too, AddPartitionsToTxn's record before the transaction's first write)
# and Kafka with its default flush policy (nothing fsynced) as
# benches/vs-kafka.sh runs it. Environment: MESSAGES per run
# (200000), ROUNDS (3; the median is reported), BROKERS ("pubsub kafka").
# Prints one line per measurement, then a table with each transactional
# figure as a ratio of the idempotent one of the same broker, and the
# read_committed figure as a ratio of read_uncommitted.
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath "${1:-target/release/pubsub}")
N=${MESSAGES:-200000}
ROUNDS=${ROUNDS:-3}
BROKERS=${BROKERS:-pubsub kafka}
work=$(mktemp -d)
results=$work/results.tsv
pubsub_pid=""
kafka_dir=""
export KAFKA_HEAP=1g
export KAFKA_JVM_FLAGS="-XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"

stop_broker() {
  if [ -n "$pubsub_pid" ]; then
    kill -TERM "$pubsub_pid" 2>/dev/null || true
    wait "$pubsub_pid" 2>/dev/null || true
    pubsub_pid=""
  fi
  if [ -n "$kafka_dir" ]; then
    compat/kafka stop "$kafka_dir" >/dev/null 2>&1 || true
    rm -rf "$kafka_dir"
    kafka_dir=""
  fi
}
cleanup() {
  stop_broker
  rm -rf "$work"
}
trap cleanup EXIT

start_broker() {
  case $1 in
    pubsub)
      rm -rf "$work/pubsub"
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
    kafka)
      kafka_dir=$work/kafka
      addr=$(compat/kafka start "$kafka_dir" num.network.threads=3 num.io.threads=8 \
        transaction.state.log.replication.factor=1 transaction.state.log.min.isr=1 |
        sed -n 's/^listening on //p')
      ;;
  esac
}

run() { # BROKER WORKLOAD ARGS...
  local broker=$1 workload=$2
  shift 2
  local line
  line=$(python3 benches/txn.py "$addr" "$@")
  printf '%s\t%s\t%s\n' "$broker" "$workload" "$line" | tee -a "$results"
}

for round in $(seq "$ROUNDS"); do
  for broker in $BROKERS; do
    start_broker "$broker"
    python3 benches/txn.py "$addr" create idem txn100 txn1000
    run "$broker" "idempotent acks=all" produce-idempotent idem "$N" 1024
    run "$broker" "txn 100/txn" produce-txn txn100 "$N" 1024 100
    run "$broker" "txn 1000/txn" produce-txn txn1000 "$N" 1024 1000
    run "$broker" "consume read_uncommitted" consume txn1000 "$N" read_uncommitted
    run "$broker" "consume read_committed" consume txn1000 "$N" read_committed
    stop_broker
  done
  echo "round $round done" >&2
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    broker, workload, figures = line.rstrip("\n").split("\t")
    mbs, rps, secs = figures.split()
    rows.setdefault((broker, workload), []).append(float(rps))
med = {k: statistics.median(v) for k, v in rows.items()}
brokers = sorted({b for b, _ in med}, key=lambda b: (b != "pubsub", b))
base = {"txn 100/txn": "idempotent acks=all", "txn 1000/txn": "idempotent acks=all",
        "consume read_committed": "consume read_uncommitted"}
print("| workload | " + " | ".join(f"{b} records/s | ratio" for b in brokers) + " |")
print("|---|" + "---|---|" * len(brokers))
for w in ["idempotent acks=all", "txn 100/txn", "txn 1000/txn",
          "consume read_uncommitted", "consume read_committed"]:
    cells = []
    for b in brokers:
        v = med.get((b, w))
        if v is None:
            cells += ["-", "-"]
            continue
        ref = med.get((b, base.get(w, w)))
        cells += [f"{v:,.0f}", f"{v / ref:.2f}x" if ref else "-"]
    print(f"| {w} | " + " | ".join(cells) + " |")
if ("kafka", "txn 1000/txn") in med and ("pubsub", "txn 1000/txn") in med:
    print(f"\npubsub / kafka, txn 1000/txn: {med[('pubsub','txn 1000/txn')] / med[('kafka','txn 1000/txn')]:.2f}x")
PY
