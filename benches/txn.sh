#!/usr/bin/env bash
# Transactions' cost, pubsub next to Apache Kafka 4.1.1 on this machine, in
# one run: idempotent acks=all produce, transactional produce with 100 and
# 1,000 records per transaction, and consume of the transactional topic with
# read_uncommitted and read_committed; 1 KiB records, one partition each,
# every load from benches/txn.py (confluent-kafka / librdkafka, which speaks
# transaction version 1) and from pubsub.compat.tools.TxnBench (the
# reference Java client, kafka-clients 4.1.1, which takes transaction
# version 2, KIP-890, where the broker finalizes it: pubsub and Kafka 4.1.1
# both do).
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
# (200000), ROUNDS (3; the median is reported), BROKERS ("pubsub kafka"),
# CLIENT (python, java or both: the default; each client gets its own fresh
# broker). Prints one line per measurement (the Java client's broker column
# says "pubsub/java", "kafka/java"), then for each client a table with each
# transactional figure as a ratio of the idempotent one of the same broker
# and client, and the read_committed figure as a ratio of read_uncommitted,
# then the transaction version the Java client used against each broker
# (and how far the coordinator's epoch moved: version 2 bumps it once per
# transaction).
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath "${1:-target/release/pubsub}")
N=${MESSAGES:-200000}
ROUNDS=${ROUNDS:-3}
BROKERS=${BROKERS:-pubsub kafka}
case ${CLIENT:-both} in
  python | java) CLIENTS=$CLIENT ;;
  both) CLIENTS="python java" ;;
  *) echo "CLIENT must be python, java or both, not '$CLIENT'" >&2; exit 2 ;;
esac
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
      # Emptied here, not only by the redirection below: that runs in the child,
      # and the poll could otherwise read the previous broker's address.
      : >"$work/out"
      "$PUBSUB" serve --listen 127.0.0.1:0 --data-dir "$work/pubsub" >"$work/out" 2>"$work/err" &
      pubsub_pid=$!
      addr=""
      for _ in $(seq 600); do
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

# load CLIENT ARGS...: one benches/txn.py (python) or TxnBench (java) run
# against $addr; its stdout. TxnBench's transaction-version line (stderr)
# goes to $work/versions, the rest of its stderr to ours.
load() {
  local client=$1
  shift
  case $client in
    python) python3 benches/txn.py "$addr" "$@" ;;
    java)
      local status=0
      compat/kafka run "$work/java-logs" pubsub.compat.tools.TxnBench "$addr" "$@" 2>"$work/java-err" || status=$?
      grep '^transaction version' "$work/java-err" | sed "s/^/$broker: /" >>"$work/versions" || true
      grep -v '^transaction version' "$work/java-err" >&2 || true
      return $status
      ;;
  esac
}

run() { # CLIENT BROKER WORKLOAD ARGS...
  local client=$1 broker=$2 workload=$3
  shift 3
  local line label=$broker
  [ "$client" = python ] || label=$broker/$client
  # A failed run is reported, left out of the medians and returns 1 (the
  # round goes on; the consumes are skipped if the topic they read is short).
  if ! line=$(load "$client" "$@"); then
    printf '%s\t%s\tfailed\n' "$label" "$workload"
    return 1
  fi
  printf '%s\t%s\t%s\n' "$label" "$workload" "$line"
  printf '%s\t%s\t%s\t%s\n' "$client" "$broker" "$workload" "$line" >>"$results"
}

if [[ " $CLIENTS " == *" java "* ]]; then
  compat/kafka compile
fi
for round in $(seq "$ROUNDS"); do
  for broker in $BROKERS; do
    for client in $CLIENTS; do
      start_broker "$broker"
      load "$client" create idem txn100 txn1000
      run "$client" "$broker" "idempotent acks=all" produce-idempotent idem "$N" 1024 || true
      run "$client" "$broker" "txn 100/txn" produce-txn txn100 "$N" 1024 100 || true
      if run "$client" "$broker" "txn 1000/txn" produce-txn txn1000 "$N" 1024 1000; then
        run "$client" "$broker" "consume read_uncommitted" consume txn1000 "$N" read_uncommitted || true
        run "$client" "$broker" "consume read_committed" consume txn1000 "$N" read_committed || true
      fi
      stop_broker
    done
  done
  echo "round $round done" >&2
done

for client in $CLIENTS; do
if [ "$CLIENTS" != python ]; then
  case $client in
    python) echo; echo "python (confluent-kafka / librdkafka, transaction version 1):"; echo ;;
    java) echo; echo "java (kafka-clients 4.1.1):"; echo ;;
  esac
fi
python3 - "$results" "$client" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    client, broker, workload, figures = line.rstrip("\n").split("\t")
    if client != sys.argv[2]:
        continue
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
done
if [ -s "$work/versions" ]; then
  echo
  echo "transaction version used by the java client:"
  # "BROKER: transaction version V (...) (java client against ADDR):
  # coordinator epoch A -> B over T transactions", one per transactional run.
  sed 's/ (java client against [^)]*)//' "$work/versions" | awk -F': ' '
    { split($3, e, " "); bumps[$1 ": " $2] = bumps[$1 ": " $2] sprintf(" %d/%d", e[5] - e[3], e[7]) }
    END { for (k in bumps) print k ", coordinator epoch bumps / transactions:" bumps[k] }' | sort
fi
