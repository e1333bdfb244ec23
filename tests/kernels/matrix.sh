#!/bin/bash
# The kernel matrix: every gadget on Debian's stock kernels, each booted in
# QEMU (TCG: this host's /dev/kvm cannot run them) with a small initramfs
# (busybox-static, the static release ig, ig-hook and kernel-guest, runc
# with its libraries), cgroup v2 unified. Prints kernel x gadget -> ok (the
# variant) or FAIL (why), and exits 1 if any check failed on any kernel.
#
# Usage: tests/kernels/matrix.sh [--ci] [KVER...]
#   --ci     the kernels marked `ci` in kernels.txt (what tests/run-all.sh runs)
#   KVER...  these kernels (default: every kernel in kernels.txt)
# Environment:
#   VM=~/.cache/ig-kernels  kernels, apt lists and results (outside the repo)
#   JOBS=2                  VMs at once (one host core each)
#   IG_BIN_DIR              where ig, ig-hook, kernel-guest are (default: build them, release)
#   APPEND="ONLY=trace_exec" more kernel command line (NAME=value reach the guest)
#   VM_TIMEOUT=900          seconds before a VM is killed
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VM=${VM:-$HOME/.cache/ig-kernels}
JOBS=${JOBS:-2}
APPEND=${APPEND:-}
VM_TIMEOUT=${VM_TIMEOUT:-900}
export VM
log() { echo "[matrix] $*" >&2; }

kernels=()
ci=0
for a in "$@"; do
  case $a in
    --ci) ci=1 ;;
    *) kernels+=("$a") ;;
  esac
done
list() { grep -v '^#' "$here/kernels.txt" | awk 'NF'; }
if [ ${#kernels[@]} -eq 0 ]; then
  if [ $ci = 1 ]; then mapfile -t kernels < <(list | awk '$3 == "ci" {print $1}')
  else mapfile -t kernels < <(list | awk '{print $1}'); fi
fi
wants_runc() { list | awk -v k="$1" '$1 == k && $4 == "runc" {found=1} END {exit !found}'; }

for tool in qemu-system-x86_64 busybox zstd xz runc openssl; do
  command -v "$tool" >/dev/null || { log "missing $tool (tests/kernels/deps.sh installs it)"; exit 1; }
done
bash "$here/fetch.sh" "${kernels[@]}"

# The binaries: static (see .cargo/config.toml), optimized (TCG is slow).
if [ -z "${IG_BIN_DIR:-}" ]; then
  log "building ig, ig-hook and kernel-guest (release)"
  (cd "$repo" && cargo build --release -q -p tracer -p ig-hook -p tests --bin ig --bin ig-hook --bin kernel-guest)
  IG_BIN_DIR=$repo/target/x86_64-unknown-linux-gnu/release
fi

# The initramfs every kernel boots; runc and the overlay and loop modules per kernel.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
R=$work/root
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib64,lib/x86_64-linux-gnu,var/tmp}
cp /bin/busybox "$R/bin/busybox"
file -L "$R/bin/busybox" | grep -q 'statically linked' || { log "/bin/busybox is not busybox-static"; exit 1; }
for b in ig ig-hook; do
  strip -o "$R/bin/$b" "$IG_BIN_DIR/$b"
done
# kernel-guest keeps its symbol table: profile cpu's row names its frames.
strip --strip-debug -o "$R/bin/kernel-guest" "$IG_BIN_DIR/kernel-guest"
# trace ssl's row: Debian's openssl and the libraries it loads (libssl among them).
mkdir -p "$R/usr/bin"
cp /usr/bin/openssl "$R/usr/bin/openssl"
for lib in $(ldd /usr/bin/openssl | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
# Its server's certificate, made here (the image has no openssl.cnf).
mkdir -p "$R/etc/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=igvm \
  -keyout "$R/etc/tls/key.pem" -out "$R/etc/tls/cert.pem" 2>/dev/null
cp "$here/init" "$R/init"
chmod 755 "$R/init" "$R"/bin/*
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R/etc/hosts"
(cd "$R" && find . | sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 > "$work/base.cpio.gz"
# runc and the libraries it links (Debian's, dynamically linked).
X=$work/runc
mkdir -p "$X/bin"
runc_bin=$(command -v runc)
cp "$runc_bin" "$X/bin/runc"
for lib in $(ldd "$runc_bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$X$(dirname "$lib")"; cp -L "$lib" "$X$lib"
done
(cd "$X" && find . | sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 > "$work/runc.cpio.gz"
log "initramfs $(du -h "$work/base.cpio.gz" | cut -f1) (+ runc $(du -h "$work/runc.cpio.gz" | cut -f1))"

boot() {
  local kver=$1 K=$VM/kernels/$1 out=$VM/results/$1
  rm -rf "$out"; mkdir -p "$out"
  local x; x=$(mktemp -d)
  # Its "." is the guest's root once unpacked over the base: mktemp's 0700
  # would leave / closed to every user but root (a setuid child could not
  # exec anything).
  chmod 755 "$x"
  mkdir -p "$x/modules"
  # overlay for runc's root, loop for top block-io, veth for advise
  # network-policy's pod (modules on Debian's kernels).
  local mod ko
  for mod in overlay loop veth; do
    ko=$(find "$K/modules" -name "$mod.ko*" 2>/dev/null | head -1)
    case "$ko" in
      *.xz) xz -dc "$ko" > "$x/modules/$mod.ko" ;;
      *.zst) zstd -dcq "$ko" > "$x/modules/$mod.ko" ;;
      *.ko) cp "$ko" "$x/modules/$mod.ko" ;;
    esac
  done
  (cd "$x" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 > "$out/extra.cpio.gz"
  rm -rf "$x"
  cat "$work/base.cpio.gz" "$out/extra.cpio.gz" > "$out/initrd.gz"
  local append=${APPEND:-}
  if wants_runc "$kver"; then cat "$work/runc.cpio.gz" >> "$out/initrd.gz"; append="$append RUNC=1"; fi
  local t0; t0=$(date +%s)
  # Single-threaded TCG: multi-threaded TCG with 2 vCPUs livelocks now and
  # then on the kernel's text patching (tools/kernels/README in shared).
  timeout -s KILL "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=single -cpu max -smp 2 -m 2048 \
    -kernel "$K/vmlinuz" -initrd "$out/initrd.gz" \
    -append "console=ttyS0 panic=-1 loglevel=4 $append" \
    -nographic -no-reboot -nic none </dev/null > "$out/serial.log" 2>&1 || true
  echo $(( $(date +%s) - t0 )) > "$out/seconds"
  rm -f "$out/initrd.gz" "$out/extra.cpio.gz"
  log "$kver done in $(cat "$out/seconds") s"
}
export -f boot wants_runc list log
export work here VM_TIMEOUT APPEND
log "booting ${#kernels[@]} kernels, $JOBS at a time"
printf '%s\n' "${kernels[@]}" | xargs -P "$JOBS" -I{} bash -c 'boot "$@"' _ {}

# The table.
python3 "$here/report.py" "$VM/results" "${kernels[@]}"
