#!/bin/bash
# crun for the tests: Debian's crun 1.8.1 behind a wrapper, $H/crun/crun,
# that podman (--runtime) and containerd (ctr --runc-binary) call instead of
# /usr/bin/crun. The wrapper gives crun what this machine lacks and changes
# nothing ig sees (crun's own argv, state on the hooks' stdin, its ordering
# of hooks, the exec of /usr/bin/crun the runc watcher marks):
#   1. cgroup v2: crun refuses this host's hybrid cgroups ("cgroups in hybrid
#      mode not supported"). Each call runs in its own mount namespace with a
#      cgroup2 mount on /sys/fs/cgroup: the one unified hierarchy, so create,
#      start and delete in different calls see the same cgroups.
#   2. RLIMIT_MEMLOCK: crun raises it to load its device-cgroup eBPF program,
#      and this machine has no CAP_SYS_RESOURCE. A preload ($H/crun/memlock.so)
#      turns that one EPERM into success: the kernel (>= 5.11) charges BPF
#      memory to the memory cgroup, so the raise is not needed.
#   3. containerd 1.7 writes runtime-spec 1.2.0 bundles and bookworm's crun
#      1.8.1 accepts only 1.0: the wrapper relabels the version and keeps only
#      the devices of linux.resources (the v2 hierarchy here has no cpu,
#      memory or pids controller: they are bound to v1).
# podman needs --pids-limit=-1 for the same reason (tests/tests/containers_crun.rs).
set -euo pipefail
H=${HARNESS_DIR:-/var/tmp/ig-harness}
D=$H/crun
log() { echo "[crun] $*" >&2; }
for p in crun gcc python3; do command -v "$p" >/dev/null || { log "needs $p (setup-runtimes.sh installs it)"; exit 1; }; done
mkdir -p "$D"
cat > "$D/memlock.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

/* EPERM raising RLIMIT_MEMLOCK is success: the kernel does not need it. */
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
    int (*real)(__rlimit_resource_t, const struct rlimit *) =
        (int (*)(__rlimit_resource_t, const struct rlimit *))dlsym(RTLD_NEXT, "setrlimit");
    int rc = real(resource, limit);
    if (rc != 0 && errno == EPERM && resource == RLIMIT_MEMLOCK)
        return 0;
    return rc;
}
C
gcc -shared -fPIC -O2 -o "$D/memlock.so.tmp" "$D/memlock.c" -ldl && mv "$D/memlock.so.tmp" "$D/memlock.so"
cat > "$D/bundle-fix.py" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
config["ociVersion"] = "1.0.2"
resources = config.get("linux", {}).get("resources")
if resources:
    config["linux"]["resources"] = {k: v for k, v in resources.items() if k == "devices"}
with open(path, "w") as f:
    json.dump(config, f)
PY
cat > "$D/crun.tmp" <<SH
#!/bin/sh
# tests/harness/crun.sh: crun with cgroup v2, a memlock preload and 1.0 bundles.
prev=
for a in "\$@"; do
  case "\$prev" in --bundle|-b) python3 $D/bundle-fix.py "\$a/config.json" || exit 1 ;; esac
  prev=\$a
done
exec unshare -m --propagation private /bin/sh -c \\
  'mount -t cgroup2 none /sys/fs/cgroup && LD_PRELOAD=$D/memlock.so exec /usr/bin/crun "\$@"' crun "\$@"
SH
chmod +x "$D/crun.tmp" && mv "$D/crun.tmp" "$D/crun"
"$D/crun" --version >/dev/null || { log "the wrapper does not run crun"; exit 1; }
log "ready: $D/crun"
