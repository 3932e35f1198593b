#!/usr/bin/env bash
# SET/GET throughput and p50/p99 latency of a 3-node RaftKV cluster next to a single
# redis-server, in one run, with redis-benchmark. Medians over RUNS runs; ratios at the end.
#
#   bench/cluster.sh                 # defaults: RUNS=3 N=50000 CLIENTS=50 PIPELINE=1
#   RUNS=5 N=200000 CLIENTS=100 PIPELINE=16 bench/cluster.sh
#
# One shard by default (one Raft group: "leader" and "follower" are its leader and a
# follower); SHARDS=8 runs the cluster sharded (bench/shards.sh compares shard counts).
#
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools). Builds the
# release binary unless RAFTKV_BIN points at one. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${RUNS:-3}
N=${N:-50000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
SIZE=${SIZE:-64}
BIN=${RAFTKV_BIN:-target/release/raft-kv}
BASE=${BASE_PORT:-17000}

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)"; exit 1; }
done
if [ -z "${RAFTKV_BIN:-}" ]; then
  cargo build --release -p raft-kv >&2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT


# Reference: one redis-server, no persistence (its fastest configuration) and with
# appendfsync always (durability closest to RaftKV's: every write fsynced before the reply).
REDIS_PORT=$BASE
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --daemonize no >/dev/null 2>&1 &
PIDS+=($!)
REDIS_AOF_PORT=$((BASE + 1))
mkdir -p "$WORK/aof"
redis-server --port $REDIS_AOF_PORT --bind 127.0.0.1 --save '' --appendonly yes \
  --appendfsync always --dir "$WORK/aof" --daemonize no >/dev/null 2>&1 &
PIDS+=($!)

CLUSTER=""
for i in 1 2 3; do
  CLUSTER+="${CLUSTER:+,}n$i=127.0.0.1:$((BASE + 10 + i))"
done
for i in 1 2 3; do
  "$BIN" --node-id n$i --data-dir "$WORK/n$i" --port $((BASE + 10 + i)) \
    --redis-port $((BASE + 20 + i)) --cluster "$CLUSTER" --initial-shards "${SHARDS:-1}" \
    --log-level warn \
    ${RAFTKV_FLAGS:-} >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
done
wait_port $REDIS_PORT; wait_port $REDIS_AOF_PORT
for i in 1 2 3; do wait_port $((BASE + 20 + i)); done
# Wait for a leader: a SET through node 1 succeeds.
for _ in $(seq 1 100); do
  [ "$(redis-cli -p $((BASE + 21)) SET bench:ready 1 2>/dev/null)" = "OK" ] && break
  sleep 0.1
done
LEADER_PORT=""
for i in 1 2 3; do
  if redis-cli -p $((BASE + 20 + i)) INFO replication | grep -q 'raft_role:leader'; then
    LEADER_PORT=$((BASE + 20 + i))
  fi
done
FOLLOWER_PORT=$((BASE + 21))
[ "$LEADER_PORT" = "$FOLLOWER_PORT" ] && FOLLOWER_PORT=$((BASE + 22))

# One redis-benchmark run: prints "rps p50 p99" for the test.
one() { # port test
  redis-benchmark -p "$1" -t "$2" -n "$N" -c "$CLIENTS" -P "$PIPELINE" -d "$SIZE" -r 100000 --csv -q 2>/dev/null |
    awk -F'","' -v t="$(echo "$2" | tr a-z A-Z)" '
      { gsub(/"/, "", $1); gsub(/"/, "", $NF) }
      $1 == t { print $2, $5, $7 }'
}


declare -A RESULT
for target in redis:$REDIS_PORT redis-aof-always:$REDIS_AOF_PORT raftkv-leader:$LEADER_PORT raftkv-follower:$FOLLOWER_PORT; do
  name=${target%%:*}; port=${target##*:}
  for t in set get; do
    : >"$WORK/runs"
    for _ in $(seq 1 "$RUNS"); do one "$port" "$t" >>"$WORK/runs"; done
    rps=$(awk '{print $1}' "$WORK/runs" | median)
    p50=$(awk '{print $2}' "$WORK/runs" | median)
    p99=$(awk '{print $3}' "$WORK/runs" | median)
    RESULT[$name.$t]="$rps $p50 $p99"
  done
done

printf '\nredis-benchmark -n %s -c %s -P %s -d %s, median of %s runs (3-node RaftKV on one machine)\n' \
  "$N" "$CLIENTS" "$PIPELINE" "$SIZE" "$RUNS"
printf '%-18s %-4s %12s %10s %10s\n' target test 'ops/s' 'p50 ms' 'p99 ms'
for name in redis redis-aof-always raftkv-leader raftkv-follower; do
  for t in set get; do
    read -r rps p50 p99 <<<"${RESULT[$name.$t]}"
    printf '%-18s %-4s %12s %10s %10s\n' "$name" "$t" "$rps" "$p50" "$p99"
  done
done
printf '\nratios (RaftKV leader / reference, ops/s):\n'
for t in set get; do
  read -r a _ _ <<<"${RESULT[raftkv-leader.$t]}"
  read -r b _ _ <<<"${RESULT[redis.$t]}"
  read -r c _ _ <<<"${RESULT[redis-aof-always.$t]}"
  awk -v a="$a" -v b="$b" -v c="$c" -v t="$t" 'BEGIN {
    printf "  %s: %.2fx of redis-server, %.2fx of redis-server appendfsync always\n", t, a / b, a / c }'
done
