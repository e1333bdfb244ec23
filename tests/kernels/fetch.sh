#!/bin/bash
# Fetches Debian's stock cloud kernels (vmlinuz, config, modules) for the
# kernel matrix, through a private apt root (its own sources.list, lists and
# cache under $VM/apt): the host's apt configuration is never read for
# packages nor changed. Nothing is installed on the host.
#
# Usage: tests/kernels/fetch.sh [KVER...]   (default: every kernel in kernels.txt)
# Result: $VM/kernels/<kver>/{vmlinuz,config,modules/}   ($VM: ~/.cache/ig-kernels)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VM=${VM:-$HOME/.cache/ig-kernels}
A=$VM/apt
mkdir -p "$A"/lists/partial "$A"/cache/archives/partial "$VM"/debs "$VM"/kernels

if [ ! -s "$A/sources.list" ]; then
  # The same Debian mirrors the host uses, with the suites that carry each
  # kernel series: bullseye-security 5.10, bookworm 6.1, trixie 6.12,
  # trixie-backports 6.16-6.19, sid 7.x.
  MIRROR=$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm(-updates)?\/main$/ {print $2; exit}')
  SECURITY=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm-security/main" {print $2; exit}')
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
  {
    for suite in bookworm trixie trixie-backports sid; do echo "deb $MIRROR $suite main"; done
    echo "deb $SECURITY bullseye-security main"
  } > "$A/sources.list.tmp"
  mv "$A/sources.list.tmp" "$A/sources.list"
fi
APT=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Debug::NoLocking=1
     -o Acquire::Retries=3 -o APT::Sandbox::User=root)

# The private lists are refreshed when older than a day.
if [ -z "$(find "$A/lists" -name '*_Packages' -mtime -1 2>/dev/null | head -1)" ]; then
  apt-get "${APT[@]}" update -qq
fi

KVERS=("$@")
if [ ${#KVERS[@]} -eq 0 ]; then
  mapfile -t KVERS < <(grep -v "^#" "$here/kernels.txt" | awk "NF {print \$1}")
fi

cd "$VM/debs"
for kver in "${KVERS[@]}"; do
  out=$VM/kernels/$kver
  if [ -f "$out/vmlinuz" ]; then echo "[kernels] have $kver" >&2; continue; fi
  pkg=linux-image-$kver
  ls "${pkg}"_*.deb >/dev/null 2>&1 || apt-get "${APT[@]}" download -qq "$pkg"
  tmp=$(mktemp -d)
  for d in "${pkg}"_*.deb; do dpkg-deb -x "$d" "$tmp"; done
  # From 6.19 linux-image-X is a stub: the files are in linux-binary-X,
  # linux-modules-X and linux-base-X (from 7.x under /usr/lib/modules/X/).
  if [ ! -e "$tmp/boot/vmlinuz-$kver" ] && [ ! -e "$tmp/usr/lib/modules/$kver/vmlinuz" ]; then
    for sub in linux-binary-$kver linux-modules-$kver linux-base-$kver; do
      ls "${sub}"_*.deb >/dev/null 2>&1 || apt-get "${APT[@]}" download -qq "$sub" || true
      for d in "${sub}"_*.deb; do [ -f "$d" ] && dpkg-deb -x "$d" "$tmp"; done
    done
  fi
  first() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return 0; }; done; return 0; }
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  vmlinuz=$(first "$tmp/boot/vmlinuz-$kver" "$tmp/usr/lib/modules/$kver/vmlinuz")
  [ -n "$vmlinuz" ] || { echo "[kernels] no vmlinuz in $pkg" >&2; exit 1; }
  cp "$vmlinuz" "$out.tmp/vmlinuz"
  c=$(first "$tmp/boot/config-$kver" "$tmp/usr/lib/modules/$kver/config")
  [ -n "$c" ] && cp "$c" "$out.tmp/config"
  # The module tree: the VM loads overlay.ko from it.
  for m in "$tmp/lib/modules/$kver" "$tmp/usr/lib/modules/$kver"; do
    [ -d "$m/kernel" ] && mv "$m" "$out.tmp/modules" && break
  done
  rm -rf "$tmp" "$out" && mv "$out.tmp" "$out"
  echo "[kernels] got $kver ($(du -sh "$out" | cut -f1))" >&2
done
