#!/bin/bash
# The integration and unit tests N times in a row (default 5) while every
# core is kept busy by a CPU hog at the tests' own priority: what a loaded
# CI machine does to timing. A test that fails once here is a flaky test.
# Needs what tests/run-all.sh sets up (runtimes, bpffs, tracefs), as root.
#
#   bash tests/under-load.sh [N]
#
# Logs: /var/tmp/ig-under-load/run-K.log; the summary names every test
# that failed and in which run.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
logs=/var/tmp/ig-under-load
mkdir -p "$logs"
[ -f /var/tmp/ig-harness/env.sh ] || { echo "under-load.sh: run tests/harness/setup-runtimes.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
source /var/tmp/ig-harness/env.sh
export CARGO_TERM_COLOR=never

echo "[under-load] building the tests first (not under the hog)" >&2
# The binaries too: the tests run ig, ig-hook and ig-nri from the same profile.
{ cargo build --workspace -q && cargo test --workspace --no-run -q; } >/dev/null 2>&1 ||
  { echo "under-load.sh: the tests do not build" >&2; exit 1; }

hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap stop_hogs EXIT
for _ in $(seq "$(nproc)"); do
  (while :; do :; done) &
  hogs+=("$!")
done
echo "[under-load] ${#hogs[@]} hog(s) running, one per core" >&2

passed=0
for k in $(seq "$runs"); do
  log=$logs/run-$k.log
  start=$(date +%s)
  if cargo test --workspace --no-fail-fast >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "[under-load] run $k: passed in $(($(date +%s) - start)) s" >&2
  else
    echo "[under-load] run $k: FAILED in $(($(date +%s) - start)) s:" >&2
    grep -E '^    [a-z0-9_:]+$|^test .* FAILED$' "$log" | sort -u | sed 's/^/  /' >&2
  fi
done
echo "[under-load] $passed of $runs runs passed (logs in $logs)" >&2
[ "$passed" = "$runs" ]
