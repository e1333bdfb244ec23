#!/bin/bash
# The whole test suite on a fresh machine (root): installs what is missing,
# checks formatting and lints, builds every binary, runs every test against
# the real kernel and real runtimes, then the kernel matrix (every gadget on
# Debian's stock kernels in QEMU). .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run-all.sh: the tests need root (real eBPF)" >&2; exit 1; }
bash install/deps.sh
echo "[tests] real runtimes (runc, podman)" >&2
bash tests/harness/setup-runtimes.sh
# The kernel's filesystems a node mounts at boot (systemd does): the tests
# run ig as an operator would, without --auto-mount-filesystems (the tests
# of that flag mount and check for themselves).
echo "[tests] bpffs and tracefs" >&2
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
export CARGO_TERM_COLOR=never
echo "[tests] cargo fmt --check" >&2
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
echo "[tests] clang-format --dry-run of the eBPF C" >&2
git ls-files -z 'tracer/bpf/*.[ch]' 'tracer/src/gadgets/*.[ch]' ':!tracer/bpf/vmlinux.h' |
  xargs -0 clang-format-14 --dry-run --Werror
echo "[tests] cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "[tests] cargo build" >&2
cargo build --workspace
echo "[tests] cargo test" >&2
cargo test --workspace
# Every fuzz target briefly, from the committed seeds (tests/fuzz.sh 600
# is the long run; a finding fails the suite and becomes a unit test).
echo "[tests] fuzz targets, 10 s each" >&2
IG_FUZZ_JOBS=2 bash tests/fuzz.sh 10
# Every gadget on Debian's stock kernels 5.10, 6.1, 6.12 and the newest, in
# QEMU (tests/kernels/; the full list: tests/kernels/matrix.sh without --ci).
echo "[tests] kernel matrix" >&2
bash tests/kernels/deps.sh
bash tests/kernels/matrix.sh --ci
