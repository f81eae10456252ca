#!/usr/bin/env bash
# The randomized transaction checker (compat/txn/checker.py) run long:
# transactional producers committing and aborting at random, read_committed
# readers, `pubsub serve` SIGKILLed at random points (some mid-commit) and
# restarted, then every check of the checker's doc. CI runs it for 20 s
# (crates/cli/tests/cli/txn_checker.rs); this runs it for as long as asked.
#
#   cargo build -p pubsub-cli            (or --release)
#   benches/txn-checker.sh [target/debug/pubsub]
#
# Environment: CHECK_SECONDS (1800), ROUNDS (1: rounds one after the
# other, each a fresh broker and a new seed), KILL_INTERVAL (3.0 s, the
# mean between kills), PRODUCERS (3), PARTITIONS (4), READERS (2), SEED (a
# random one; with ROUNDS=1, replays a failed run). The same through the
# test: PUBSUB_TXN_CHECK_SECONDS=1800 cargo test -p pubsub-cli --test cli
# txn_checker -- --nocapture. Prints each round's seed and summary line
# (`committed=N aborted=N unknown=N kills=N mid_commit_kills=N records=N`)
# and exits 1 at the first round with a violation (the checker prints it).
set -euo pipefail
cd "$(dirname "$0")/.."

PUBSUB=$(realpath "${1:-target/debug/pubsub}")
ROUNDS=${ROUNDS:-1}
for round in $(seq 1 "$ROUNDS"); do
  args=(--bin "$PUBSUB" --seconds "${CHECK_SECONDS:-1800}"
        --kill-interval "${KILL_INTERVAL:-3.0}" --producers "${PRODUCERS:-3}"
        --partitions "${PARTITIONS:-4}" --readers "${READERS:-2}")
  if [ -n "${SEED:-}" ]; then
    args+=(--seed "$SEED")
  fi
  echo "round $round of $ROUNDS, $(date -u +%H:%M:%S) UTC"
  # librdkafka's own log lines start with '%': left out.
  python3 compat/txn/checker.py "${args[@]}" 2> >(grep -v '^%' >&2)
done
