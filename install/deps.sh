#!/bin/bash
# Installs the Debian packages that building and testing ig need on a fresh
# bookworm machine (root). Idempotent: only missing packages are installed.
#   clang, llvm (llvm-strip), libbpf-dev: compile the C eBPF programs (build.rs)
#   libclang-dev: bindgen generates the Rust event structs from the C headers
#   bpftool: the tests count loaded programs with it
#   zsh, fish: the tests check the completion scripts with the shells themselves
#   prometheus: the metrics test scrapes ig with a real one (never started as a service)
#   g++: tests/fuzz.sh builds libFuzzer (C++) into the fuzz targets
#   clang-format-14: the suite checks the eBPF C's format (.clang-format)
#   --bench adds bpftrace and libbpf-tools, which `bench peers` compares against
set -euo pipefail
pkgs=(clang llvm libbpf-dev libclang-dev bpftool zsh fish prometheus g++ clang-format-14)
[ "${1:-}" = "--bench" ] && pkgs+=(bpftrace libbpf-tools)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing ${missing[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
