#!/usr/bin/env bash
# A/B of two `pubsub` server binaries under net-bench's raw-wire clients
# (which cost about what a loopback copy's reader and writer cost, so the
# figures are the broker's). Rounds alternate the binaries (A B, B A, ...);
# each case gets a fresh server and data directory. Per case: the raw
# producer writes MESSAGES 1 KiB records (acks=1, batches of 200) to
# PARTITIONS partitions, then the raw consumer reads them back RUNS times.
# Reported: MB/s and the server's CPU time (utime + stime from /proc) per
# GB moved, produce and consume apart; CPU per GB is the steadier figure on
# a shared machine.
#
#   cargo build --release -p pubsub-cli -p pubsub-benches
#   cp target/release/pubsub /tmp/pubsub-before   # on the old commit
#   benches/raw-ab.sh /tmp/pubsub-before target/release/pubsub
#
# Environment: ROUNDS (3), MESSAGES (1000000), PARTITIONS (1), RUNS (3),
# NET_BENCH (target/release/net-bench).
set -euo pipefail

A=${1:?usage: raw-ab.sh OLD_PUBSUB NEW_PUBSUB}
B=${2:?usage: raw-ab.sh OLD_PUBSUB NEW_PUBSUB}
ROUNDS=${ROUNDS:-3}
N=${MESSAGES:-1000000}
P=${PARTITIONS:-1}
RUNS=${RUNS:-3}
NB=${NET_BENCH:-target/release/net-bench}
work=$(mktemp -d)
server_pid=""

cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# CPU clock ticks (utime + stime) of the server so far.
ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# case LABEL BIN: one server, produce then consume; appends to results.
case_of() {
  local dir=$work/data-$RANDOM$RANDOM
  # Emptied here, not only by the redirection below: that runs in the child,
  # and the poll could otherwise read the previous broker's address.
  : >"$work/out"
  PUBSUB_TOPICS_DEFAULT_PARTITIONS=$P RUST_LOG=warn "$2" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$work/out" 2>"$work/err" &
  server_pid=$!
  for _ in $(seq 200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  local addr
  addr=$(sed -n 's/^listening on //p' "$work/out")
  sync; sleep 2
  local t0 t1 t2 out
  t0=$(ticks)
  out=$("$NB" --against "$addr" --messages "$N" --partitions "$P" --consume-runs 0)
  t1=$(ticks)
  local pmb
  pmb=$(echo "$out" | sed -n 's/.* \([0-9]*\) MB\/s.*/\1/p')
  out=$("$NB" --against "$addr" --messages 0 --partitions "$P" --consume-runs "$RUNS")
  t2=$(ticks)
  local cmb
  cmb=$(echo "$out" | sed -n 's/.* \([0-9]*\) MB\/s.*/\1/p' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  # GB of payload: N KiB records, RUNS times for consume; ticks are 10 ms.
  awk -v l="$1" -v pmb="$pmb" -v cmb="$cmb" -v p=$((t1 - t0)) -v c=$((t2 - t1)) -v n="$N" -v r="$RUNS" 'BEGIN {
    gb = n * 1024 / 1e9
    printf "%s\t%s\t%.3f\t%s\t%.3f\n", l, pmb, p / 100 / gb, cmb, c / 100 / (gb * r)
  }' >>"$work/results.tsv"
  tail -1 "$work/results.tsv"
  kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  rm -rf "$dir"
}

echo -e "binary\tproduce MB/s\tproduce CPU s/GB\tconsume MB/s (median of $RUNS)\tconsume CPU s/GB"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then case_of A "$A"; case_of B "$B"; else case_of B "$B"; case_of A "$A"; fi
done
echo
echo "medians, $ROUNDS rounds, $P partition(s), $N messages:"
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for l in A B; do
  line=$l
  for col in 2 3 4 5; do
    line="$line\t$(awk -F'\t' -v l=$l -v c=$col '$1 == l {print $c}' "$work/results.tsv" | median)"
  done
  echo -e "$line"
done
