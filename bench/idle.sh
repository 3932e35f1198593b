#!/usr/bin/env bash
# CPU and memory of a 3-node cluster hosting many idle shards: starts the nodes with
# --initial-shards SHARDS, waits until every shard has a leader and the groups had time to
# quiesce, then reports each node's CPU use over WINDOW seconds and its RSS.
#
#   bench/idle.sh                    # SHARDS=1000 SETTLE=20 WINDOW=20
#
# Builds the release binary unless RAFTKV_BIN points at one. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SHARDS=${SHARDS:-1000}
SETTLE=${SETTLE:-20}
WINDOW=${WINDOW:-20}
BIN=${RAFTKV_BIN:-target/release/raft-kv}
BASE=${BASE_PORT:-19000}
command -v curl >/dev/null || { echo "missing curl"; exit 1; }
if [ -z "${RAFTKV_BIN:-}" ]; then
  cargo build --release -p raft-kv >&2
fi

WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

CLUSTER=""
for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}n$i=127.0.0.1:$((BASE + 10 + i))"; done
start=$(date +%s.%N)
for i in 1 2 3; do
  "$BIN" --node-id n$i --data-dir "$WORK/n$i" --port $((BASE + 10 + i)) \
    --redis-port $((BASE + 20 + i)) --cluster "$CLUSTER" --initial-shards "$SHARDS" \
    --log-level warn >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do wait_ready $((BASE + 10 + i)) 1200; done
ready=$(date +%s.%N)
printf '%s shards: every shard has a leader after %.1fs\n' "$SHARDS" "$(echo "$ready - $start" | bc)"
sleep "$SETTLE"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -a before
for i in 0 1 2; do before[$i]=$(ticks "${PIDS[$i]}"); done
sleep "$WINDOW"
hz=$(getconf CLK_TCK)
for i in 0 1 2; do
  after=$(ticks "${PIDS[$i]}")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/${PIDS[$i]}/status")
  awk -v b="${before[$i]}" -v a="$after" -v hz="$hz" -v w="$WINDOW" -v n=$((i + 1)) -v rss="$rss" \
    'BEGIN { printf "node n%d: %.1f%% of one core over %ss idle, RSS %.0f MiB\n", n, 100 * (a - b) / hz / w, w, rss / 1024 }'
done
