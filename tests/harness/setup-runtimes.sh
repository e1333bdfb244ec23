#!/bin/bash
# Sets up real container runtimes for the tests, from local files only (no
# registry): runc with a busybox bundle template, and podman (runc, cgroupfs)
# with the busybox image; crun behind a wrapper (crun.sh); containerd 1.7 and 2.x with CRI and NRI (containerd.sh);
# dockerd and podman's API service (docker.sh). Idempotent; run as root. Writes $HARNESS_DIR/env.sh
# for the tests (IG_HARNESS_* variables).
#   HARNESS_DIR  working directory (default /var/tmp/ig-harness)
#   COMPONENTS   default "runc podman crun containerd containerd2 docker"
set -euo pipefail
H=${HARNESS_DIR:-/var/tmp/ig-harness}
COMPONENTS=${COMPONENTS:-"runc podman crun containerd containerd2 docker"}
IMG=localhost/ig-busybox:latest
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "[harness] $*" >&2; }
has() { [[ " $COMPONENTS " == *" $1 "* ]]; }
mkdir -p "$H"

# iptables: trace tcpdrop/tcpretrans tests drop packets on purpose in a container netns.
# openssl, curl, wget: trace ssl's clients and server (libssl and libgnutls).
pkgs=(busybox-static runc jq python3 iptables openssl curl wget)
has podman && pkgs+=(podman conmon)
has docker && pkgs+=(docker.io)
has crun && pkgs+=(crun gcc libc6-dev)
# CNI's bridge, host-local and loopback plugins: CRI pods with their own network (advise network-policy).
{ has containerd || has containerd2; } && pkgs+=(containernetworking-plugins)
missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

[ -s "$H/busybox.tar" ] || python3 "$here/mkimage.py" "$H/busybox.tar" "$IMG"

# runc: a read-only rootfs every test bundle points at.
ROOTFS=$H/rootfs
if [ ! -x "$ROOTFS/bin/busybox" ]; then
  rm -rf "$ROOTFS.tmp" && mkdir -p "$ROOTFS.tmp"
  layer=$(tar -xOf "$H/busybox.tar" manifest.json | jq -r '.[0].Layers[0]')
  tar -xOf "$H/busybox.tar" "$layer" | tar -C "$ROOTFS.tmp" -xf -
  rm -rf "$ROOTFS" && mv "$ROOTFS.tmp" "$ROOTFS"
fi
mkdir -p "$H/runc-state"
if [ ! -s "$H/config-template.json" ]; then
  t=$(mktemp -d) && (cd "$t" && runc spec) && mv "$t/config.json" "$H/config-template.json" && rm -rf "$t"
fi

if has podman; then
  # This machine has no CAP_SYS_RESOURCE (podman's default ulimits make runc
  # fail), crun refuses hybrid cgroups, and there is no systemd.
  conf=/etc/containers/containers.conf
  if ! grep -q 'ig-harness' "$conf" 2>/dev/null; then
    [ -e "$conf" ] && cp -n "$conf" "$conf.ig-harness-bak"
    mkdir -p /etc/containers
    printf '# ig-harness\n[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$conf"
  fi
  podman image exists "$IMG" || podman load -q -i "$H/busybox.tar" >&2
fi

if has crun; then
  HARNESS_DIR=$H bash "$here/crun.sh"
fi
if has containerd; then
  HARNESS_DIR=$H CONTAINERD=1.7 bash "$here/containerd.sh" start
fi
if has containerd2; then
  HARNESS_DIR=$H CONTAINERD=2 bash "$here/containerd.sh" start
fi
if has docker; then
  HARNESS_DIR=$H bash "$here/docker.sh" start
fi

# The tests' stand-in OTLP collector (tests/otlp/receiver.py): gRPC and
# OpenTelemetry's own protobuf definitions, from PyPI, in the harness venv.
[ -x "$H/venv/bin/python" ] || python3 -m venv "$H/venv"
"$H/venv/bin/python" -c 'import grpc, opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc' 2>/dev/null ||
  "$H/venv/bin/pip" install -q 'grpcio>=1.60' 'opentelemetry-proto>=1.20'
# advise network-policy's output checked against Kubernetes' own OpenAPI schemas.
"$H/venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null ||
  "$H/venv/bin/pip" install -q 'kubernetes-validate>=1.28'

cat > "$H/env.sh" <<ENV
export IG_HARNESS_DIR=$H
export IG_HARNESS_PYTHON=$H/venv/bin/python
export IG_HARNESS_ROOTFS=$ROOTFS
export IG_HARNESS_RUNC_ROOT=$H/runc-state
export IG_HARNESS_IMAGE=$IMG
export IG_HARNESS_COMPONENTS="$COMPONENTS"
export IG_HARNESS_CONTAINERD_SOCK=$H/containerd/containerd.sock
export IG_HARNESS_NRI_SOCK=$H/containerd/nri.sock
export IG_HARNESS_DOCKER_SOCK=$H/docker/docker.sock
export IG_HARNESS_PODMAN_SOCK=$H/podman/podman.sock
export IG_HARNESS_CRUN=$H/crun/crun
export IG_HARNESS_CTR="$H/opt/ctd17/usr/bin/ctr --address $H/containerd/containerd.sock"
export IG_HARNESS_CRI="$H/venv/bin/python $H/cri/cri.py --sock $H/containerd/containerd.sock"
export IG_HARNESS_CONTAINERD2_SOCK=$H/containerd2/containerd.sock
export IG_HARNESS_NRI2_SOCK=$H/containerd2/nri.sock
export IG_HARNESS_CTR2="$H/opt/ctd2/usr/bin/ctr --address $H/containerd2/containerd.sock"
export IG_HARNESS_CRI2="$H/venv/bin/python $H/cri/cri.py --sock $H/containerd2/containerd.sock"
ENV
log "ready: source $H/env.sh"
