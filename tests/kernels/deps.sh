#!/bin/bash
# The Debian packages the kernel matrix needs on the host (root); idempotent.
#   qemu-system-x86: boots the kernels (TCG)   busybox-static: the guest's userland
#   zstd, xz-utils: unpack modules (overlay.ko)  runc: the runc-with-ig-hook check
#   openssl: trace ssl's row (its TLS client and server)
set -euo pipefail
pkgs=(qemu-system-x86 busybox-static zstd xz-utils runc openssl)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[kernels] installing ${missing[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
