#!/bin/bash
# Sets up what is missing, builds ig and runs `ig trace exec --host` (root).
# Extra arguments go to ig, e.g. `install/run-ig.sh -o json`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash install/deps.sh
cargo build --release --bin ig >&2
exec ./target/x86_64-unknown-linux-gnu/release/ig trace exec --host --auto-mount-filesystems "$@"
