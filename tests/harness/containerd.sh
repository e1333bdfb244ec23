#!/bin/bash
# containerd with CRI and NRI for the tests: install (Debian's package,
# unpacked), configure, start, stop, restart. Two of them run side by side:
# 1.7 (trixie; bookworm's 1.6 has no NRI) under $HARNESS_DIR/containerd, and
# 2.x (sid; config version 3, NRI on by default) under $HARNESS_DIR/containerd2.
# The pause image is a local busybox running `sleep inf`. A pod asking for
# its own network gets one from CNI's bridge plugin: bridge igpod17,
# 10.89.17.0/24 under 1.7; igpod20, 10.89.20.0/24 under 2.x (gateway .1, the
# host's end; no masquerading).
#   usage: [CONTAINERD=1.7|2] containerd.sh install|start|stop|restart
set -euo pipefail
H=${HARNESS_DIR:-/var/tmp/ig-harness}
FLAVOUR=${CONTAINERD:-1.7}
case "$FLAVOUR" in
  1.7) C=$H/containerd; OPT=$H/opt/ctd17; SUITE=trixie; NET=17 ;;
  2) C=$H/containerd2; OPT=$H/opt/ctd2; SUITE=sid; NET=20 ;;
  *) echo "CONTAINERD must be 1.7 or 2, not $FLAVOUR" >&2; exit 2 ;;
esac
BIN=$OPT/usr/bin
PAUSE=localhost/ig-pause:latest
IMG=localhost/ig-busybox:latest
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "[containerd $FLAVOUR] $*" >&2; }
# A zombie counts as dead: PID 1 here reaps orphans late.
alive() { [ -s "$1" ] && grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$(cat "$1")/status"; }
wait_sock() { for _ in $(seq 1 150); do [ -S "$1" ] && return 0; sleep 0.2; done; log "no $1"; return 1; }

install() {
  if [ ! -x "$BIN/containerd" ] || [ ! -s "$H/opt/criapi/api.proto" ]; then
    local A=$H/apt mirror
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
    mirror=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" {print $2; exit}' || true)
    if [ -z "$mirror" ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq;
      mirror=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" {print $2; exit}' || true); fi
    [ -n "$mirror" ] || { log "no Debian mirror in the apt sources"; exit 1; }
    printf 'deb %s trixie main\ndeb %s sid main\n' "$mirror" "$mirror" > "$A/sources.list"
    local AO=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache")
    apt-get "${AO[@]}" update -qq
    (cd "$A" && rm -f ./*.deb && apt-get "${AO[@]}" download "containerd/$SUITE" \
      golang-github-kubernetes-cri-api-dev/trixie >/dev/null)
    rm -rf "$OPT" "$H/opt/criapi" && mkdir -p "$OPT" "$H/opt/criapi"
    dpkg-deb -x "$A"/containerd_*.deb "$OPT"
    dpkg-deb -x "$A"/golang-github-kubernetes-cri-api-dev_*.deb "$H/opt/criapi/x"
    # Debian's api.proto imports gogo.proto for Go-only options: drop those lines.
    sed '/gogo/d' "$H/opt/criapi/x/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto" \
      > "$H/opt/criapi/api.proto"
  fi
  # CRI client: Python grpc with stubs generated from the CRI api.proto.
  [ -x "$H/venv/bin/python" ] || python3 -m venv "$H/venv"
  "$H/venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null ||
    "$H/venv/bin/pip" install -q 'grpcio>=1.60' 'grpcio-tools>=1.60' protobuf
  mkdir -p "$H/cri"
  [ -s "$H/cri/api_pb2_grpc.py" ] || (cd "$H/opt/criapi" &&
    "$H/venv/bin/python" -m grpc_tools.protoc -I. --python_out="$H/cri" --grpc_python_out="$H/cri" api.proto)
  cp "$here/cri.py" "$H/cri/cri.py"
  [ -s "$H/pause.tar" ] || python3 "$here/mkimage.py" "$H/pause.tar" "$PAUSE" --entrypoint '["/bin/sleep","inf"]'
}

# One runtime handler's TOML: under table PREFIX, NAME runs BINARY through
# the runc v2 shim, with its state under $C/NAME.
runtime_handler() {
  cat <<TOML
    [plugins.$1.runtimes.$2]
      runtime_type = "io.containerd.runc.v2"
      [plugins.$1.runtimes.$2.options]
        BinaryName = "$3"
        Root = "$C/$2"
        SystemdCgroup = false
TOML
}

config_1_7() {
  mkdir -p "$C/nri-plugins" "$C/nri-conf" "$C/cni-conf"
  cat > "$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  restrict_oom_score_adj = true   # no CAP_SYS_RESOURCE here: the sandbox's -998 would fail
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
$(runtime_handler '"io.containerd.grpc.v1.cri".containerd' runc /usr/sbin/runc)
    # Pods asking for runtime handler "crun": crun behind the harness's wrapper (crun.sh).
$(runtime_handler '"io.containerd.grpc.v1.cri".containerd' crun "$H/crun/crun")
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/cni-conf"
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  disable_connections = false
  socket_path = "$C/nri.sock"
  plugin_path = "$C/nri-plugins"
  plugin_config_path = "$C/nri-conf"
  plugin_registration_timeout = "5s"
  plugin_request_timeout = "2s"
TOML
}

# Version 3: the CRI plugin is split into images and runtime sections.
config_2() {
  mkdir -p "$C/nri-plugins" "$C/nri-conf" "$C/cni-conf"
  cat > "$C/config.toml" <<TOML
version = 3
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[plugins.'io.containerd.internal.v1.opt']
  path = "$C/opt"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true   # no CAP_SYS_RESOURCE here: the sandbox's -998 would fail
  disable_apparmor = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
$(runtime_handler "'io.containerd.cri.v1.runtime'.containerd" runc /usr/sbin/runc)
    # Pods asking for runtime handler "crun": crun behind the harness's wrapper (crun.sh).
$(runtime_handler "'io.containerd.cri.v1.runtime'.containerd" crun "$H/crun/crun")
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$C/cni-conf"
# NRI is on by default in 2.x: only its paths are ours.
[plugins.'io.containerd.nri.v1.nri']
  socket_path = "$C/nri.sock"
  plugin_path = "$C/nri-plugins"
  plugin_config_path = "$C/nri-conf"
TOML
}

# CNI: one bridge per flavour, addresses from host-local under $C.
config_cni() {
  cat > "$C/cni-conf/10-ig-pods.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "ig-pods", "plugins": [
  {"type": "bridge", "bridge": "igpod$NET", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$C/cni-ipam",
            "ranges": [[{"subnet": "10.89.$NET.0/24", "gateway": "10.89.$NET.1"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}
JSON
}

config() { if [ "$FLAVOUR" = 2 ]; then config_2; else config_1_7; fi; config_cni; }

start() {
  install
  config
  if ! alive "$C/containerd.pid"; then
    rm -f "$C/containerd.sock" "$C/containerd.sock.ttrpc" "$C/nri.sock"
    # containerd finds containerd-shim-runc-v2 in PATH: its own first (bookworm's is 1.6).
    PATH=$BIN:$PATH nohup "$BIN/containerd" --config "$C/config.toml" > "$C/containerd.log" 2>&1 < /dev/null &
    echo $! > "$C/containerd.pid"
    wait_sock "$C/containerd.sock"; wait_sock "$C/nri.sock"
    log "started, pid $(cat "$C/containerd.pid")"
    local ctr="$BIN/ctr --address $C/containerd.sock -n k8s.io"
    for i in busybox pause; do
      ref=$([ $i = busybox ] && echo "$IMG" || echo "$PAUSE")
      $ctr images ls -q | grep -qx "$ref" || $ctr images import "$H/$i.tar" >/dev/null
    done
    # Pods restored from a killed containerd keep their names reserved.
    "$H/venv/bin/python" "$H/cri/cri.py" --sock "$C/containerd.sock" cleanup || true
  fi
}

stop() {
  if alive "$C/containerd.pid"; then
    local pid; pid=$(cat "$C/containerd.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 75); do grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" || break; sleep 0.2; done
    grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" && kill -KILL "$pid"
    log "stopped pid $pid"
  fi
  rm -f "$C/containerd.pid"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "usage: $0 install|start|stop|restart" >&2; exit 2 ;;
esac
