#!/usr/bin/env bash
# The long fuzzing run, by hand: each target under libFuzzer for SECS seconds (default 300).
# New inputs go to fuzz/corpus/<target>/ (git-ignored; rename the worth-keeping ones to
# seed-*); crashes to fuzz/artifacts/<target>/, replayed by `cargo fuzz run <target> <file>`.
# cargo-fuzz needs nightly flags; on stable RUSTC_BOOTSTRAP=1 allows them. The first build of
# commands/wire/meta compiles RocksDB with sanitizers (long); resp_parser needs no RocksDB.
#   raft-kv/fuzz/run.sh                  every target, 300 s each
#   SECS=3600 raft-kv/fuzz/run.sh wire   one target, an hour
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(resp_parser commands wire meta admin)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustc --version | grep -q nightly || export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  features=()
  [ "$t" = resp_parser ] || features=(--features engine)
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run "${features[@]}" "$t" -- -max_total_time="$secs" -max_len=65536 \
    -timeout=10 -rss_limit_mb=4096
done
