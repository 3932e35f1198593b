#!/usr/bin/env bash
# Throughput against the number of shards: redis-benchmark SET, GET, INCR and MSET (10 keys)
# with -c CLIENTS at -P 1 and -P 16 against one redis-server and 3-node RaftKV clusters with
# 1, 4, 8 and 16 shards, both cluster-aware (redis-benchmark --cluster: straight to each
# shard's leader; with one shard, plain redis-benchmark against its leader) and proxy (every
# request to node 1, which routes it). Medians of RUNS runs, each run starting every target
# afresh in turn; ratios against redis-server and against 1 shard at the end.
#
#   bench/shards.sh                       # RUNS=3 N=100000 CLIENTS=50 SHARDS="1 4 8 16"
#   RUNS=5 N=100000 SHARDS="1 8" TESTS="set get" bench/shards.sh
#   WARMUP=0 bench/shards.sh              # no unrecorded warm-up run per cluster (default 20000)
#   NODE_CPU=0.4 bench/shards.sh          # cap each node at 0.4 core (cgroups, root): one
#                                         # small machine per node, as in a real cluster
#                                         # (0.5+ saturates the two cores again)
#
# Needs redis-server, redis-benchmark and redis-cli (Debian: redis-server, redis-tools).
# Automatic splits are off, so each cluster keeps the shard count it is measured with (a
# 1-shard cluster under this load would split itself within seconds).
# Builds the release binary unless RAFTKV_BIN points at one. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${RUNS:-3}
# redis-benchmark --cluster reports an elapsed time that comes in ~250 ms steps (seen here:
# 8-shard runs of 30,000 SETs took 2.51, 2.76, 3.01, 3.26 s and nothing between), so a run
# must last several seconds for its ops/s to mean anything: 20,000 requests gave 10% steps.
N=${N:-100000}
CLIENTS=${CLIENTS:-50}
SHARDS=${SHARDS:-"1 4 8 16"}
TESTS=${TESTS:-"set get incr mset"}
PIPELINES=${PIPELINES:-"1 16"}
BIN=${RAFTKV_BIN:-target/release/raft-kv}
BASE=${BASE_PORT:-18000}

for tool in redis-server redis-benchmark redis-cli curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools curl)"; exit 1; }
done
if [ -z "${RAFTKV_BIN:-}" ]; then
  cargo build --release -p raft-kv >&2
fi

NODE_CPU=${NODE_CPU:-}

WORK=$(mktemp -d)
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup_cgroups() {
  for i in 1 2 3; do
    rmdir "/sys/fs/cgroup/cpu/raftkv-bench-n$i" "/sys/fs/cgroup/raftkv-bench-n$i" 2>/dev/null || true
  done
}
trap 'stop_all; cleanup_cgroups; rm -rf "$WORK"' EXIT

# Puts node i's process in a cgroup limited to NODE_CPU cores (cgroup v1 or v2).
cap_cpu() { # i pid
  [ -n "$NODE_CPU" ] || return 0
  local quota
  # 20 ms periods: with the default 100 ms a node can burn its quota in one burst and then
  # stall for tens of milliseconds, which a closed-loop benchmark reads as latency.
  quota=$(awk -v c="$NODE_CPU" 'BEGIN { printf "%d", c * 20000 }')
  if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
    local g=/sys/fs/cgroup/cpu/raftkv-bench-n$1
    mkdir -p "$g"; echo 20000 >"$g/cpu.cfs_period_us"; echo "$quota" >"$g/cpu.cfs_quota_us"
    echo "$2" >"$g/cgroup.procs"
  elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    local g=/sys/fs/cgroup/raftkv-bench-n$1
    mkdir -p "$g"; echo "$quota 20000" >"$g/cpu.max"; echo "$2" >"$g/cgroup.procs"
  else
    echo "NODE_CPU needs a writable cpu cgroup (run as root)" >&2; exit 1
  fi
}


# Prints "rps p50 p99" of one redis-benchmark run.
one() { # port test pipeline [--cluster]
  redis-benchmark -p "$1" -t "$2" -n "$N" -c "$CLIENTS" -P "$3" -r 100000 ${4:-} --csv -q 2>/dev/null |
    awk -F'","' -v t="$(echo "$2" | tr a-z A-Z)" '
      { gsub(/"/, "", $1); gsub(/"/, "", $NF); split($1, name, " ") }
      name[1] == t { print $2, $5, $7 }'
}


declare -A RESULT
TARGETS=()
# One run of every test and pipeline against one target; the runs' medians are taken at the
# end. Each run starts every target afresh, one after another (redis, 1 shard, 4, ...), so a
# drift of this machine's speed (30% within minutes, seen here) spreads over all targets
# instead of landing in the ratios between them.
measure() { # name port [--cluster]
  [[ " ${TARGETS[*]} " == *" $1 "* ]] || TARGETS+=("$1")
  for p in $PIPELINES; do
    for t in $TESTS; do
      local got
      got=$(one "$2" "$t" "$p" "${3:-}" || true)
      [ -n "$got" ] && echo "$got" >>"$WORK/runs.$1.$t.$p"
      echo "  $1 $t -P $p: ${got:-failed}" >&2
    done
  done
}

# An unrecorded run first: the first test on a fresh cluster (above all a capped one) met
# leaders still moving to their preferred nodes and came out far below the later ones.
WARMUP=${WARMUP:-20000}
warm_up() { # port [--cluster]
  [ "$WARMUP" -gt 0 ] || return 0
  redis-benchmark -p "$1" -t set -n "$WARMUP" -c "$CLIENTS" -r 100000 ${2:-} -q >/dev/null 2>&1 || true
}

start_cluster() { # shards
  CLUSTER=""
  for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}n$i=127.0.0.1:$((BASE + 10 + i))"; done
  rm -rf "$WORK"/n*
  for i in 1 2 3; do
    "$BIN" --node-id n$i --data-dir "$WORK/n$i" --port $((BASE + 10 + i)) \
      --redis-port $((BASE + 20 + i)) --cluster "$CLUSTER" --initial-shards "$1" \
      --split-ops 0 --split-size-mb 0 \
      --log-level warn ${RAFTKV_FLAGS:-} >"$WORK/n$i.log" 2>&1 &
    PIDS+=($!)
    cap_cpu "$i" $!
  done
  for i in 1 2 3; do wait_port $((BASE + 20 + i)); done
  # Every shard has a leader, and leaders had time to move to their preferred nodes.
  for i in 1 2 3; do wait_ready $((BASE + 10 + i)) 200; done
  sleep 3
}

for run in $(seq 1 "$RUNS"); do
  # Reference: redis-server without persistence.
  rm -f "$WORK"/dump.rdb
  redis-server --port "$BASE" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$BASE"
  echo "run $run/$RUNS: redis-server" >&2
  measure redis "$BASE"
  stop_all

  for s in $SHARDS; do
    start_cluster "$s"
    echo "run $run/$RUNS: raftkv $s shard(s)" >&2
    if [ "$s" = 1 ]; then
      # redis-benchmark --cluster needs two masters or more; with one shard, "cluster-aware"
      # means talking to its leader directly.
      LEADER=$((BASE + 21))
      for i in 1 2 3; do
        redis-cli -p $((BASE + 20 + i)) INFO replication | grep -q 'raft_role:leader' && LEADER=$((BASE + 20 + i))
      done
      warm_up "$LEADER"
      measure "raftkv-$s-cluster" "$LEADER"
    else
      warm_up $((BASE + 21)) --cluster
      measure "raftkv-$s-cluster" $((BASE + 21)) --cluster
    fi
    measure "raftkv-$s-proxy" $((BASE + 21))
    stop_all
  done
done

for name in "${TARGETS[@]}"; do
  for p in $PIPELINES; do
    for t in $TESTS; do
      f="$WORK/runs.$name.$t.$p"
      touch "$f"
      RESULT[$name.$t.$p]="$(awk '{print $1}' "$f" | median) $(awk '{print $2}' "$f" | median) $(awk '{print $3}' "$f" | median)"
    done
  done
done

printf '\nredis-benchmark -n %s -c %s, median of %s runs; 3-node RaftKV on this machine%s\n' "$N" "$CLIENTS" "$RUNS" \
  "${NODE_CPU:+, each node capped at $NODE_CPU cores}"
for p in $PIPELINES; do
  printf '\n-P %s\n%-22s' "$p" target
  for t in $TESTS; do printf '%26s' "$t ops/s (p50/p99 ms)"; done
  printf '\n'
  for name in "${TARGETS[@]}"; do
    printf '%-22s' "$name"
    for t in $TESTS; do
      read -r rps p50 p99 <<<"${RESULT[$name.$t.$p]}"
      printf '%26s' "$(printf '%.0f (%s/%s)' "$rps" "$p50" "$p99")"
    done
    printf '\n'
  done
done

first=${SHARDS%% *}
printf '\nratios, ops/s: vs redis-server | vs %s shard(s) in the same mode\n' "$first"
for p in $PIPELINES; do
  for name in "${TARGETS[@]}"; do
    [ "$name" = redis ] && continue
    mode=${name##*-}
    printf '%-22s -P %-3s' "$name" "$p"
    for t in $TESTS; do
      read -r a _ _ <<<"${RESULT[$name.$t.$p]}"
      read -r r _ _ <<<"${RESULT[redis.$t.$p]}"
      read -r b _ _ <<<"${RESULT[raftkv-$first-$mode.$t.$p]}"
      awk -v a="$a" -v r="$r" -v b="$b" -v t="$t" 'BEGIN {
        printf "  %s %s | %s", t, (r > 0 ? sprintf("%.2fx", a / r) : "-"), (b > 0 ? sprintf("%.2fx", a / b) : "-") }'
    done
    printf '\n'
  done
done
