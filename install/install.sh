#!/bin/bash
# Puts ig on a node, or takes it off again.
#   install/install.sh [--root DIR] [--prefix /usr/local] [--bin-dir DIR] [--uninstall]
# Installs the four static binaries (ig, gadgetctl, ig-hook, ig-nri) into
# PREFIX/bin, the OCI hook for podman and CRI-O into
# /usr/share/containers/oci/hooks.d/ig-hook.json (pointing at PREFIX/bin/ig-hook),
# the systemd units ig.service and ig-nri.service into /etc/systemd/system,
# the man pages of ig and gadgetctl (every subcommand) into PREFIX/share/man/man1
# and their bash, zsh and fish completions under PREFIX/share.
# Everything goes under --root (default /), so a package or an image can be
# staged in a directory. It changes nothing else: it prints the steps that
# touch running services (group, systemd, containerd's NRI config).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROOT=/
PREFIX=/usr/local
BIN_DIR=$here/../target/x86_64-unknown-linux-gnu/release
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
BINS=(ig gadgetctl ig-hook ig-nri)
HOOK=/usr/share/containers/oci/hooks.d/ig-hook.json
UNITS=(/etc/systemd/system/ig.service /etc/systemd/system/ig-nri.service)
MAN=$PREFIX/share/man/man1
# shell, then where its completion for a command NAME goes.
COMPLETIONS=("bash $PREFIX/share/bash-completion/completions/NAME"
             "zsh $PREFIX/share/zsh/site-functions/_NAME"
             "fish $PREFIX/share/fish/vendor_completions.d/NAME.fish")
at() { printf '%s%s' "${ROOT%/}" "$1"; }

if [ "$UNINSTALL" = 1 ]; then
  for b in "${BINS[@]}"; do rm -f "$(at "$PREFIX/bin/$b")"; done
  rm -f "$(at "$HOOK")"
  for u in "${UNITS[@]}"; do rm -f "$(at "$u")"; done
  rm -f "$(at "$MAN")"/ig.1 "$(at "$MAN")"/ig-*.1 "$(at "$MAN")"/gadgetctl.1 "$(at "$MAN")"/gadgetctl-*.1
  for c in "${COMPLETIONS[@]}"; do
    for name in ig gadgetctl; do rm -f "$(at "${c#* }" | sed "s/NAME/$name/")"; done
  done
  echo "removed ig from ${ROOT}; if the units were running: systemctl disable --now ig ig-nri; systemctl daemon-reload" >&2
  exit 0
fi

for b in "${BINS[@]}"; do
  [ -x "$BIN_DIR/$b" ] || { echo "install.sh: $BIN_DIR/$b is missing: cargo build --release (or --bin-dir)" >&2; exit 1; }
done
install -d -m 0755 "$(at "$PREFIX/bin")" "$(dirname "$(at "$HOOK")")" "$(at /etc/systemd/system)"
for b in "${BINS[@]}"; do install -m 0755 "$BIN_DIR/$b" "$(at "$PREFIX/bin/$b")"; done
sed "s#/usr/local/bin/ig-hook#$PREFIX/bin/ig-hook#" "$here/hooks.d/ig-hook.json" > "$(at "$HOOK").tmp"
mv "$(at "$HOOK").tmp" "$(at "$HOOK")" && chmod 0644 "$(at "$HOOK")"
sed "s#/usr/local/bin/ig #$PREFIX/bin/ig #" "$here/ig.service" > "$(at "${UNITS[0]}")"
sed "s#/usr/local/bin/ig-nri #$PREFIX/bin/ig-nri #" "$here/nri/ig-nri.service" > "$(at "${UNITS[1]}")"
chmod 0644 "$(at "${UNITS[0]}")" "$(at "${UNITS[1]}")"
# Man pages and completions come from the binaries themselves (the same clap definitions).
for name in ig gadgetctl; do
  "$BIN_DIR/$name" man --dir "$(at "$MAN")"
  for c in "${COMPLETIONS[@]}"; do
    shell=${c%% *}; path=$(at "${c#* }" | sed "s/NAME/$name/")
    install -d -m 0755 "$(dirname "$path")"
    "$BIN_DIR/$name" completion "$shell" > "$path"
    chmod 0644 "$path"
  done
done
chmod 0644 "$(at "$MAN")"/*.1
cat >&2 <<MSG
installed ig into ${ROOT} (binaries in $PREFIX/bin). Next, on the node:
  groupadd --system ig                 # members may use gadgetctl
  systemctl daemon-reload && systemctl enable --now ig
  containerd with NRI: see install/nri/README.md (enable NRI), then systemctl enable --now ig-nri
  podman and CRI-O pick up $HOOK by themselves; docker and ctr are seen by ig's runc watcher.
MSG
