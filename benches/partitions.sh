#!/usr/bin/env bash
# 100,000 partitions on one node under default limits: builds pubsub
# (release), then runs `pubsub bench partitions` with the soft open-files
# limit at 1024 and the hard limit as high as this shell may set it
# (65,536 or more is the target; vm.max_map_count is left as it is). Where
# the hard limit cannot be raised (a container without CAP_SYS_RESOURCE:
# even root gets EPERM, see docs/BENCHMARKS.md) the broker works within the
# hard limit it finds; the table's first line prints the limits that held.
# Arguments go to `pubsub bench partitions`, e.g.
#   benches/partitions.sh                       # 5,000 topics x 20 partitions
#   benches/partitions.sh --topics 100          # 2,000 partitions
# Prints a markdown table on stdout; progress goes to stderr. Builds into
# $CARGO_TARGET_DIR when set (else target/).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pubsub-cli
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then
    ulimit -Hn 65536 2>/dev/null || echo "note: hard open-files limit stays at $hard (cannot raise it here)" >&2
fi
ulimit -Sn 1024
exec "${CARGO_TARGET_DIR:-target}/release/pubsub" bench partitions "$@"
