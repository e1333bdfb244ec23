#!/bin/bash
# dockerd (Debian's docker.io 20.10) for the tests, with private data and
# exec roots and its own socket under $HARNESS_DIR/docker, no bridge and no
# iptables (this machine kind has no networking for containers), plus
# podman's API service on $HARNESS_DIR/podman/podman.sock. dockerd starts
# its own containerd (Debian's 1.6, namespace "moby"); both call
# /usr/sbin/runc, which is what the fanotify watcher marks.
#   usage: docker.sh start|stop
set -euo pipefail
H=${HARNESS_DIR:-/var/tmp/ig-harness}
D=$H/docker
P=$H/podman
IMG=localhost/ig-busybox:latest
log() { echo "[docker] $*" >&2; }
# A zombie counts as dead: PID 1 here reaps orphans late.
alive() { [ -s "$1" ] && grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$(cat "$1")/status"; }
wait_sock() { for _ in $(seq 1 150); do [ -S "$1" ] && return 0; sleep 0.2; done; log "no $1"; return 1; }

start() {
  mkdir -p "$D" "$P"
  if ! alive "$D/dockerd.pid"; then
    rm -f "$D/docker.sock"
    nohup dockerd --data-root "$D/root" --exec-root "$D/exec" --host "unix://$D/docker.sock" \
      --pidfile "$D/dockerd.pid" --storage-driver overlay2 --iptables=false --ip-masq=false --bridge=none \
      > "$D/dockerd.log" 2>&1 < /dev/null &
    wait_sock "$D/docker.sock"
    for _ in $(seq 1 100); do DOCKER_HOST=unix://$D/docker.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done
    log "dockerd started, pid $(cat "$D/dockerd.pid")"
  fi
  DOCKER_HOST=unix://$D/docker.sock docker image inspect "$IMG" >/dev/null 2>&1 ||
    DOCKER_HOST=unix://$D/docker.sock docker load -q -i "$H/busybox.tar" >&2
  if ! alive "$P/service.pid"; then
    rm -f "$P/podman.sock"
    nohup podman system service --time=0 "unix://$P/podman.sock" > "$P/service.log" 2>&1 < /dev/null &
    echo $! > "$P/service.pid"
    wait_sock "$P/podman.sock"
    log "podman API service started, pid $(cat "$P/service.pid")"
  fi
}

stop() {
  for f in "$D/dockerd.pid" "$P/service.pid"; do
    if alive "$f"; then
      local pid; pid=$(cat "$f")
      kill -TERM "$pid"
      for _ in $(seq 1 75); do grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" || break; sleep 0.2; done
      grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$pid/status" && kill -KILL "$pid"
      log "stopped pid $pid"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
