#!/bin/bash
# Coverage-guided fuzzing of every parser fed from outside (fuzz/targets/):
# builds the targets with libFuzzer through stable rustc's sanitizer-coverage
# flags (no nightly, no cargo-fuzz), then runs each for SECONDS.
#   tests/fuzz.sh SECONDS [TARGET...]     (default: every target)
#   IG_FUZZ_JOBS=2 runs two targets at a time; IG_FUZZ_DIR (default
#   /var/tmp/ig-fuzz) keeps the build, the grown corpora and the findings.
# Each run starts from the committed seeds (fuzz/corpus/<target>) and the
# corpus earlier runs grew; an input that crashes, hangs (> 10 s) or takes
# more than 2 GB is written to $IG_FUZZ_DIR/findings/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: tests/fuzz.sh SECONDS [TARGET...]}
shift
dir=${IG_FUZZ_DIR:-/var/tmp/ig-fuzz}
jobs=${IG_FUZZ_JOBS:-1}
target_triple=x86_64-unknown-linux-gnu
[ -r /sys/kernel/btf/vmlinux ] || { echo "fuzz.sh: the btf_subset target needs /sys/kernel/btf/vmlinux" >&2; exit 1; }
command -v c++ >/dev/null || { echo "fuzz.sh: libFuzzer is C++: install g++ (install/deps.sh does)" >&2; exit 1; }

# The coverage libFuzzer steers by, with stable flags. --target keeps the
# flags off build scripts and proc macros (they run on the host, unlinked to libFuzzer).
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
export CARGO_TARGET_DIR="$dir/target"
echo "[fuzz] building the targets" >&2
cargo build --quiet --release --manifest-path fuzz/Cargo.toml --target "$target_triple"
bin="$CARGO_TARGET_DIR/$target_triple/release"

if [ $# -eq 0 ]; then
    set -- $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ig-fuzz$')
fi
mkdir -p "$dir/findings" "$dir/logs"

# One target: its figures on one line, its log kept; non-zero on a finding.
run_one() {
    local t=$1 log="$dir/logs/$1.log"
    mkdir -p "$dir/corpus/$t"
    local rc=0
    "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/findings/$t-" "$dir/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    local runs cov corpus
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "$dir/corpus/$t" -type f | wc -l)
    if [ "$rc" = 0 ]; then
        printf '%-18s %12s runs  %6s edges  %6s corpus  no finding\n' "$t" "${runs:-?}" "${cov:-?}" "$corpus"
    else
        printf '%-18s %12s runs  %6s edges  %6s corpus  FINDING (exit %s): %s\n' "$t" "${runs:-?}" "${cov:-?}" \
            "$corpus" "$rc" "$(grep -o "Test unit written to .*" "$log" | tail -1 | cut -d' ' -f5)"
        grep -m3 -E "panicked|ERROR:|SUMMARY" "$log" | sed 's/^/    /'
        return 1
    fi
}
export -f run_one
export seconds dir bin

echo "[fuzz] $# targets, ${seconds}s each, $jobs at a time" >&2
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
