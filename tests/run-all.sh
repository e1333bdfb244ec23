#!/bin/bash
# The whole test suite on a fresh machine (root): installs what is missing,
# checks formatting and lints, builds every binary, runs every test against
# the real kernel and real runtimes. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run-all.sh: the tests need root (real eBPF)" >&2; exit 1; }
bash install/deps.sh
echo "[tests] real runtimes (runc, podman)" >&2
bash tests/harness/setup-runtimes.sh
export CARGO_TERM_COLOR=never
echo "[tests] cargo fmt --check" >&2
cargo fmt --all --check
echo "[tests] cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "[tests] cargo build" >&2
cargo build --workspace
echo "[tests] cargo test" >&2
cargo test --workspace
