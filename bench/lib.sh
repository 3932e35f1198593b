# Helpers shared by the bench scripts (sourced, not run).

# Waits up to 10 s for a Redis-protocol port to answer PING; exits the script otherwise.
wait_port() { # port
  for _ in $(seq 1 200); do
    redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "port $1 did not come up" >&2; exit 1
}

# Waits until a node's admin port says every shard it hosts has a leader (`tries` x 0.1 s;
# gives up quietly: the measurements then show what is wrong).
wait_ready() { # http-port tries
  for _ in $(seq 1 "$2"); do
    curl -sf "http://127.0.0.1:$1/ready" >/dev/null && return 0
    sleep 0.1
  done
}

# The median of the numbers on stdin, one per line ("nan" for none).
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print a[int((NR + 1) / 2)] }'; }
