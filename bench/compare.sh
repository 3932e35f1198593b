#!/usr/bin/env bash
# RaftKV next to its reference systems, in one run: redis-server (no persistence), redis-server
# with appendfsync always (the durability peer), a 3-member etcd cluster (the Raft peer), and
# RaftKV as a single node, a 3-node cluster with one shard, and a 3-node cluster with SHARDS
# shards (cluster-aware: redis-benchmark --cluster; proxy: everything to node 1).
#
# Every system runs at once; each workload is run RUNS times, interleaved across the systems
# (so the machine's noise hits them alike), and the medians are printed with ratios, then the
# issue's targets as met/missed. Per run: ops/s, p50/p99/p99.9 latency (ms), CPU seconds per
# 100k ops (all of a system's processes), peak RSS per process (MiB), bytes written to disk
# per op (/proc/PID/io write_bytes, all processes).
#
#   bench/compare.sh                  # the default matrix (about 15 minutes)
#   FULL=1 bench/compare.sh           # every test x -c 1/50/200 x -P 1/16 x 16 B/1 KiB/16 KiB
#   RUNS=5 SHARDS=16 ONLY="set get" bench/compare.sh
#
# Needs redis-server, redis-benchmark, redis-cli (redis-server, redis-tools), etcd (etcd-server)
# and curl. Builds the release binary and the load generator (raft-kv/examples/loadgen.rs,
# for etcd puts and the Zipfian mix). Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${RUNS:-3}
SHARDS=${SHARDS:-8}
BASE=${BASE_PORT:-19000}
MEMORY_KEYS=${MEMORY_KEYS:-1000000}
BIN=${RAFTKV_BIN:-target/release/raft-kv}
LOADGEN=${LOADGEN_BIN:-target/release/examples/loadgen}

for tool in redis-server redis-benchmark redis-cli etcd curl; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install redis-server redis-tools etcd-server curl)"; exit 1; }
done
if [ -z "${RAFTKV_BIN:-}" ]; then
  cargo build --release -p raft-kv --bin raft-kv --example loadgen >&2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the systems -------------------------------------------------------------------------
declare -A PORT PROCS CLUSTERFLAG
SYSTEMS=()
add_system() { # name redis-port "pids" [--cluster]
  SYSTEMS+=("$1"); PORT[$1]=$2; PROCS[$1]=$3; CLUSTERFLAG[$1]=${4:-}
}

redis-server --port "$BASE" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  >/dev/null 2>&1 &
PIDS+=($!); add_system redis "$BASE" "$!"
mkdir -p "$WORK/aof"
redis-server --port $((BASE + 1)) --bind 127.0.0.1 --save '' --appendonly yes \
  --appendfsync always --dir "$WORK/aof" >/dev/null 2>&1 &
PIDS+=($!); add_system redis-aof $((BASE + 1)) "$!"

# RaftKV: name first-port shards nodes
start_raftkv() {
  local name=$1 base=$2 shards=$3 nodes=$4 cluster="" pids="" i
  for i in $(seq 1 "$nodes"); do cluster+="${cluster:+,}n$i=127.0.0.1:$((base + i))"; done
  for i in $(seq 1 "$nodes"); do
    # --split-ops 0: the shard counts stay as started (load-based splitting would otherwise
    # split the one-shard cluster within seconds of load). Reads by leader lease, as the
    # targets say (READ_MODE=read-index for the default mode).
    local flags=(--node-id "n$i" --data-dir "$WORK/$name/n$i" --port $((base + i))
      --redis-port $((base + 10 + i)) --log-level warn --split-ops 0
      --read-mode "${READ_MODE:-lease}")
    [ "$nodes" -gt 1 ] && flags+=(--cluster "$cluster" --initial-shards "$shards")
    "$BIN" "${flags[@]}" ${RAFTKV_FLAGS:-} >"$WORK/$name-n$i.log" 2>&1 &
    PIDS+=($!); pids+="${pids:+ }$!"
  done
  for i in $(seq 1 "$nodes"); do wait_port $((base + 10 + i)); done
  for i in $(seq 1 "$nodes"); do wait_ready $((base + i)) 300; done
  RAFTKV_PIDS=$pids
}
start_raftkv single $((BASE + 100)) 1 1
add_system raftkv-1node $((BASE + 111)) "$RAFTKV_PIDS"
start_raftkv one $((BASE + 200)) 1 3
ONE_PIDS=$RAFTKV_PIDS
start_raftkv many $((BASE + 300)) "$SHARDS" 3
MANY_PIDS=$RAFTKV_PIDS
sleep 3 # leaders settle on their preferred nodes
# One shard: "cluster-aware" means talking to its leader.
LEADER=$((BASE + 211))
for i in 1 2 3; do
  redis-cli -p $((BASE + 210 + i)) INFO replication 2>/dev/null | grep -q 'raft_role:leader' &&
    LEADER=$((BASE + 210 + i))
done
add_system raftkv-3n-1s "$LEADER" "$ONE_PIDS"
add_system "raftkv-3n-${SHARDS}s-cluster" $((BASE + 311)) "$MANY_PIDS" --cluster
add_system "raftkv-3n-${SHARDS}s-proxy" $((BASE + 311)) "$MANY_PIDS"

ETCD_ENDPOINTS=""
etcd_peers=""
for i in 1 2 3; do etcd_peers+="${etcd_peers:+,}e$i=http://127.0.0.1:$((BASE + 420 + i))"; done
ETCD_PIDS=""
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$WORK/etcd/e$i" \
    --listen-client-urls "http://127.0.0.1:$((BASE + 410 + i))" \
    --advertise-client-urls "http://127.0.0.1:$((BASE + 410 + i))" \
    --listen-peer-urls "http://127.0.0.1:$((BASE + 420 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 420 + i))" \
    --initial-cluster "$etcd_peers" --initial-cluster-state new \
    --initial-cluster-token raftkv-bench >"$WORK/etcd-e$i.log" 2>&1 &
  PIDS+=($!); ETCD_PIDS+="${ETCD_PIDS:+ }$!"
  ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:$((BASE + 410 + i))"
done
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$((BASE + 411))/health" | grep -q true && break
  sleep 0.1
done

# --- measuring ---------------------------------------------------------------------------
# Sums utime+stime (ticks) and write_bytes over pids: "ticks bytes".
proc_counters() {
  local t=0 b=0 p
  for p in $1; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    b=$((b + $(awk '/^write_bytes/ {print $2}' "/proc/$p/io")))
  done
  echo "$t $b"
}
max_rss_mib() {
  local m=0 p r
  for p in $1; do
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")
    [ "$r" -gt "$m" ] && m=$r
  done
  echo $((m / 1024))
}
TICK=$(getconf CLK_TCK)

# Parses redis-benchmark's full output: "ops p50 p99 p999". Percentiles come from the
# cumulative counts of its latency distribution (the smallest bound covering the fraction).
parse_rb() {
  awk '
    /throughput summary:/ { ops = $3 }
    /^Latency by percentile distribution/ { in_pct = 1; next }
    /^Cumulative distribution/ { in_pct = 0 }
    in_pct && /cumulative count/ {
      n++; ms[n] = $3 + 0; c = $NF; gsub(/[^0-9]/, "", c); cnt[n] = c + 0
    }
    function pct(q,   i) { for (i = 1; i <= n; i++) if (cnt[i] >= q * cnt[n]) return ms[i]; return "nan" }
    END { if (n == 0) print ops, "nan", "nan", "nan"; else print ops, pct(0.5), pct(0.99), pct(0.999) }'
}

# One run of a workload on one system; appends "ops p50 p99 p999 cpu rss bytes/op".
run_one() { # system workload-id
  local sys=$1 w=$2 before after out
  local test clients pipe size
  IFS=: read -r test clients pipe size <<<"$w"
  before=$(proc_counters "${PROCS[$sys]}")
  case $test in
  zipf)
    out=$("$LOADGEN" redis "127.0.0.1:${PORT[$sys]}" --clients "$clients" --secs "${ZIPF_SECS:-5}" \
      --pipeline "$pipe" --value "$size" --reads 0.8 --zipf 0.99 | awk '{print $1, $2, $3, $4}')
    ;;
  put)
    out=$("$LOADGEN" etcd "$ETCD_ENDPOINTS" --clients "$clients" --secs "${ETCD_SECS:-5}" \
      --value "$size" --zipf 0 | awk '{print $1, $2, $3, $4}')
    ;;
  *)
    local n=${N:-20000}
    [ "$pipe" -gt 1 ] && n=$((n * 5))
    [ "$clients" -eq 1 ] && n=$((n / 10))
    [ "$size" -ge 16384 ] && n=$((n / 4))
    out=$(redis-benchmark -p "${PORT[$sys]}" -t "$test" -n "$n" -c "$clients" -P "$pipe" \
      -d "$size" -r 100000 ${CLUSTERFLAG[$sys]} 2>/dev/null | tr '\r' '\n' | parse_rb)
    ;;
  esac
  after=$(proc_counters "${PROCS[$sys]}")
  local ops total
  read -r ops _ <<<"$out"
  # Counts per op need the number of ops, not the rate: redis-benchmark's n, loadgen's secs.
  case $test in
  zipf) total=$(awk -v o="$ops" -v s="${ZIPF_SECS:-5}" 'BEGIN { print o * s }') ;;
  put) total=$(awk -v o="$ops" -v s="${ETCD_SECS:-5}" 'BEGIN { print o * s }') ;;
  *) total=$n ;;
  esac
  awk -v o="$out" -v b="$before" -v a="$after" -v tick="$TICK" -v total="$total" \
    -v rss="$(max_rss_mib "${PROCS[$sys]}")" '
    BEGIN {
      split(o, f, " "); split(b, x, " "); split(a, y, " ")
      if (f[1] == "" || total == 0) { print "nan nan nan nan nan nan nan"; exit }
      cpu = (y[1] - x[1]) / tick / total * 100000
      wb = (y[2] - x[2]) / total
      printf "%s %s %s %s %.2f %s %.0f\n", f[1], f[2], f[3], f[4], cpu, rss, wb
    }'
}

# The workload matrix: test:clients:pipeline:value-size.
WORKLOADS=()
TESTS=${ONLY:-"set get incr mset lpush hset zadd"}
if [ -n "${FULL:-}" ]; then
  for t in $TESTS; do for c in 1 50 200; do for p in 1 16; do for s in 16 1024 16384; do
    WORKLOADS+=("$t:$c:$p:$s")
  done; done; done; done
else
  for p in 1 16; do for t in $TESTS; do WORKLOADS+=("$t:50:$p:16"); done; done
  for t in set get; do
    case " $TESTS " in *" $t "*) ;; *) continue ;; esac
    for c in 1 200; do WORKLOADS+=("$t:$c:1:16"); done
    for s in 1024 16384; do WORKLOADS+=("$t:50:1:$s"); done
  done
fi
WORKLOADS+=("zipf:50:1:100")
# etcd runs only puts, at the concurrencies RaftKV's SET runs at.
ETCD_WORKLOADS=("put:1:1:16" "put:50:1:16")
[ -n "${FULL:-}" ] && ETCD_WORKLOADS+=("put:200:1:16")

declare -A RESULT
for w in "${WORKLOADS[@]}"; do
  for sys in "${SYSTEMS[@]}"; do : >"$WORK/r.$sys.$w"; done
  for r in $(seq 1 "$RUNS"); do
    for sys in "${SYSTEMS[@]}"; do
      # The load generator is a plain client: its runs against a cluster-aware target would
      # only repeat the proxy's.
      if [ "${w%%:*}" = zipf ] && [ -n "${CLUSTERFLAG[$sys]}" ]; then
        echo "nan nan nan nan nan nan nan" >>"$WORK/r.$sys.$w"
        continue
      fi
      run_one "$sys" "$w" >>"$WORK/r.$sys.$w" || echo "nan nan nan nan nan nan nan" >>"$WORK/r.$sys.$w"
    done
  done
  for sys in "${SYSTEMS[@]}"; do
    row=""
    for col in 1 2 3 4 5 6 7; do
      row+="$(awk -v c=$col '{print $c}' "$WORK/r.$sys.$w" | median) "
    done
    RESULT[$sys.$w]=$row
  done
  echo "done: $w" >&2
done
for w in "${ETCD_WORKLOADS[@]}"; do
  PROCS[etcd]=$ETCD_PIDS
  : >"$WORK/r.etcd.$w"
  for r in $(seq 1 "$RUNS"); do run_one etcd "$w" >>"$WORK/r.etcd.$w" || true; done
  row=""
  for col in 1 2 3 4 5 6 7; do row+="$(awk -v c=$col '{print $c}' "$WORK/r.etcd.$w" | median) "; done
  RESULT[etcd.$w]=$row
  echo "done: etcd $w" >&2
done

# --- memory: 1M keys of 100 bytes into a fresh 3-node cluster with one shard -------------
if [ "$MEMORY_KEYS" -gt 0 ]; then
  start_raftkv mem $((BASE + 500)) 1 3
  MEM_PIDS=$RAFTKV_PIDS
  MEM_PORTS=""
  for i in 1 2 3; do MEM_PORTS+="${MEM_PORTS:+,}127.0.0.1:$((BASE + 510 + i))"; done
  "$LOADGEN" fill "$MEM_PORTS" --keys "$MEMORY_KEYS" --value 100 --clients 48 \
    --pipeline 16 >/dev/null
  sleep 2
  MEM_RSS=$(max_rss_mib "$MEM_PIDS")
  echo "done: memory" >&2
fi

# --- the report --------------------------------------------------------------------------
f0() { awk -v x="$1" 'BEGIN { if (x == "nan") print "nan"; else printf "%.0f", x }'; }
printf '\nMedians of %s runs, all on this machine (%s cores). test:clients:pipeline:bytes\n' \
  "$RUNS" "$(nproc)"
printf '%-26s %-28s %10s %7s %7s %8s %9s %7s %9s %8s %8s\n' workload system ops/s p50 p99 p99.9 \
  "cpu/100k" "rss" "disk B/op" "x redis" "x aof"
for w in "${WORKLOADS[@]}"; do
  read -r ref _ <<<"${RESULT[redis.$w]}"
  read -r aof _ <<<"${RESULT[redis-aof.$w]}"
  for sys in "${SYSTEMS[@]}"; do
    read -r ops p50 p99 p999 cpu rss wb <<<"${RESULT[$sys.$w]}"
    printf '%-26s %-28s %10s %7s %7s %8s %9s %7s %9s %8s %8s\n' "$w" "$sys" "$(f0 "$ops")" \
      "$p50" "$p99" "$p999" "$cpu" "$rss" "$wb" \
      "$(awk -v a="$ops" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')" \
      "$(awk -v a="$ops" -v b="$aof" 'BEGIN { printf "%.2f", a / b }')"
  done
done
for w in "${ETCD_WORKLOADS[@]}"; do
  read -r ops p50 p99 p999 cpu rss wb <<<"${RESULT[etcd.$w]}"
  printf '%-26s %-28s %10s %7s %7s %8s %9s %7s %9s\n' "$w" etcd-3members "$(f0 "$ops")" \
    "$p50" "$p99" "$p999" "$cpu" "$rss" "$wb"
done

# --- the targets (issue #8) ---------------------------------------------------------------
ops_of() { read -r o _ <<<"${RESULT[$1.$2]:-nan}"; echo "$o"; }
col_of() { local a; read -r -a a <<<"${RESULT[$1.$2]:-nan}"; echo "${a[$3]:-nan}"; }
check() { # label value op threshold
  awk -v l="$1" -v v="$2" -v op="$3" -v t="$4" 'BEGIN {
    ok = (v != "nan") && ((op == ">=" && v >= t) || (op == "<" && v < t))
    printf "  %-62s %10s %s %-8s %s\n", l, v, op, t, ok ? "met" : "MISSED" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b }'; }
best3n() { # workload: the better of the 3-node one-shard cluster (its leader) and N shards
  local a b
  a=$(ops_of raftkv-3n-1s "$1"); b=$(ops_of "raftkv-3n-${SHARDS}s-cluster" "$1")
  awk -v a="$a" -v b="$b" 'BEGIN { if (b != "nan" && (a == "nan" || b > a)) print b; else print a }'
}
printf '\nTargets (issue #8), 3-node cluster = the better of 1 shard and %s shards, cluster-aware\n' "$SHARDS"
if [ -n "${RESULT[redis.set:50:16:16]:-}" ]; then
  check "SET -c50 -P16 vs redis appendfsync always" \
    "$(ratio "$(best3n set:50:16:16)" "$(ops_of redis-aof set:50:16:16)")" ">=" 0.25
  check "SET -c50 -P16 ops/s" "$(best3n set:50:16:16)" ">=" 100000
fi
if [ -n "${RESULT[redis.set:50:1:16]:-}" ]; then
  check "SET -c50 -P1 vs redis" "$(ratio "$(best3n set:50:1:16)" "$(ops_of redis set:50:1:16)")" ">=" 0.6
  check "SET -c50 -P1 p99 ms (1 shard)" "$(col_of raftkv-3n-1s set:50:1:16 2)" "<" 5
  check "SET -c50 -P1 p99.9 ms (1 shard)" "$(col_of raftkv-3n-1s set:50:1:16 3)" "<" 1000
  check "SET -c50 vs etcd put -c50" "$(ratio "$(best3n set:50:1:16)" "$(ops_of etcd put:50:1:16)")" ">=" 10
  check "SET -c1 vs etcd put -c1" "$(ratio "$(ops_of raftkv-3n-1s set:1:1:16)" "$(ops_of etcd put:1:1:16)")" ">=" 10
  check "SET -c50 -P1: $SHARDS shards vs 1 shard" \
    "$(ratio "$(ops_of "raftkv-3n-${SHARDS}s-cluster" set:50:1:16)" "$(ops_of raftkv-3n-1s set:50:1:16)")" ">=" 1.6
fi
if [ -n "${RESULT[redis.get:50:16:16]:-}" ]; then
  check "GET -c50 -P16 vs redis" "$(ratio "$(best3n get:50:16:16)" "$(ops_of redis get:50:16:16)")" ">=" 0.5
fi
worst=nan
for key in "${!RESULT[@]}"; do
  case $key in raftkv-*) ;; *) continue ;; esac
  p999=$(col_of "${key%%.*}" "${key#*.}" 3)
  worst=$(awk -v a="$worst" -v b="$p999" 'BEGIN { if (b != "nan" && (a == "nan" || b > a)) print b; else print a }')
done
check "worst RaftKV p99.9 ms over every workload (no stall over 1 s)" "$worst" "<" 1000
if [ -n "${MEM_RSS:-}" ]; then
  check "RSS MiB per node with $MEMORY_KEYS keys of 100 B" "$MEM_RSS" "<" 200
fi
