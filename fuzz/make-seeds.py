#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/): one small,
well-formed example of each input kind, so the fuzzer starts from the real
formats. Run it again after changing a format; the BTF seeds are cut out of
an eBPF object built by the fuzz build (given as the first argument)."""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- oci_state_config: state NUL config -----------------------------------
state = {
    "ociVersion": "1.0.2", "id": "c0ffee", "status": "creating", "pid": 4242,
    "bundle": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/c0ffee",
    "annotations": {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "app",
        "io.kubernetes.cri.sandbox-name": "web-0",
        "io.kubernetes.cri.sandbox-namespace": "default",
        "io.kubernetes.cri.sandbox-uid": "0f0e-11",
        "io.kubernetes.cri.image-name": "docker.io/library/nginx:1",
    },
}
config = {
    "ociVersion": "1.0.2",
    "process": {"args": ["sh", "-c", "true"], "cwd": "/"},
    "root": {"path": "rootfs"},
    "annotations": {"io.container.manager": "libpod", "org.opencontainers.image.ref.name": "x"},
    "linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}]},
}
write("oci_state_config", "cri", json.dumps(state) + "\0" + json.dumps(config))
podman = dict(state, id="p0d", status="stopped", annotations={"io.podman.annotations.autoremove": "FALSE"})
write("oci_state_config", "podman-stop", json.dumps(podman))

# --- hook_message: JSON lines ---------------------------------------------
record = {
    "runtime": {"runtimeName": "runc", "containerId": "c0ffee", "containerName": "app",
                "containerImageName": "nginx"},
    "k8s": {"namespace": "default", "podName": "web-0", "containerName": "app", "podUID": "0f0e",
            "podLabels": {"app": "web"}},
    "pid": 4242, "mntns": 4026532000, "netns": 4026532001, "hostNetwork": False,
    "cgroupPath": "/sys/fs/cgroup/x", "cgroupID": 77, "cgroupV2": "/x", "bundle": "/b",
    "annotations": {"a": "b"},
}
write("hook_message", "add-remove",
      json.dumps({"kind": "add", "version": 1, "record": record, "source": "hook"}) + "\n"
      + json.dumps({"kind": "remove", "version": 1, "containerId": "c0ffee"}) + "\n")

# --- daemon_frames: u32 BE (len + 1) | kind | payload ------------------------
def dframe(kind, payload):
    return struct.pack(">IB", len(payload) + 1, kind) + payload

run = {"version": 1, "args": ["trace", "exec", "-o", "json", "-F", "comm:sh"], "terminalWidth": 120}
detach = {"version": 2, "args": ["trace", "open", "--host"], "action": {"kind": "detach", "name": "x"}}
write("daemon_frames", "run", dframe(1, json.dumps(run).encode()) + dframe(2, b""))
write("daemon_frames", "detach", dframe(1, json.dumps(detach).encode()))
write("daemon_frames", "exit", dframe(6, json.dumps({"code": 2, "error": "bad"}).encode()))

# --- nri_stream: mux frames carrying ttrpc messages of protobuf ---------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value

def pbmap(num, m):
    return b"".join(field(num, field(1, k) + field(2, v)) for k, v in m.items())

def pod():
    return (field(1, "pod1") + field(2, "web-0") + field(3, "uid-1") + field(4, "default")
            + pbmap(5, {"app": "web"}) + field(9, 4000))

def container(cid, state=2):
    return (field(1, cid) + field(2, "pod1") + field(3, "app") + field(4, state)
            + pbmap(6, {"io.kubernetes.cri.container-name": "app"}) + field(7, "sh") + field(12, 4242))

def ttrpc(stream, kind, data):
    return struct.pack(">IIBB", len(data), stream, kind, 0) + data

def mux(conn, payload):
    return struct.pack(">II", conn, len(payload)) + payload

def request(stream, method, payload):
    req = field(1, "nri.pkg.api.v1alpha1.Plugin") + field(2, method) + field(3, payload)
    return mux(1, ttrpc(stream, 1, req))

registered = mux(2, ttrpc(1, 2, b""))
configure = request(1, "Configure", field(2, "containerd") + field(3, "1.7.24"))
sync = request(3, "Synchronize", field(1, pod()) + field(2, container("c1")))
create = request(5, "StateChange", field(1, 3) + field(2, pod()) + field(3, container("c2", 1)))
remove = request(7, "StateChange", field(1, 11) + field(3, container("c1", 3)))
write("nri_stream", "session", registered + configure + sync + create + remove)
write("nri_stream", "refused", mux(2, ttrpc(1, 2, field(1, field(1, 7) + field(2, "no")))))

# --- dns_message -----------------------------------------------------------
def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"

query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname("example.com") + struct.pack(">HH", 1, 1)
answer = (struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 2, 0, 0) + qname("example.com") + struct.pack(">HH", 1, 1)
          + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([93, 184, 216, 34])
          + b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 300, 16) + bytes(range(16)))
nx = struct.pack(">HHHHHH", 7, 0x8183, 1, 0, 0, 0) + qname("nope.invalid") + struct.pack(">HH", 28, 1)
write("dns_message", "query", query)
write("dns_message", "answer", answer)
write("dns_message", "nxdomain", nx)

# --- tls_client_hello --------------------------------------------------------
def hello(exts):
    body = b"\x03\x03" + bytes([7] * 32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    ext = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs

name = b"example.com"
sni = struct.pack(">HBH", len(name) + 3, 0, len(name)) + name
write("tls_client_hello", "sni", hello([(10, b"\x00\x02\x00\x1d"), (0, sni)]))
write("tls_client_hello", "no-sni", hello([(43, b"\x02\x03\x04")]))

# --- dbus_message: systemd's replies (little-endian, as on x86) -------------
def dbus_reply(kind, reply_serial, sig, body, error=None):
    def pad(b, n):
        return b + b"\0" * (-len(b) % n)
    def field(code, vsig, val):
        return bytes([code, len(vsig)]) + vsig.encode() + b"\0" + val
    fields = [pad(field(5, "u", b"") , 4) + struct.pack("<I", reply_serial)]
    if error:
        fields.append(pad(field(4, "s", b""), 4) + struct.pack("<I", len(error)) + error.encode() + b"\0")
    fields.append(field(8, "g", bytes([len(sig)]) + sig.encode() + b"\0"))
    arr = b""
    for f in fields:
        arr = pad(arr, 8) + f
    head = b"l" + bytes([kind, 0, 1]) + struct.pack("<II", len(body), 9) + struct.pack("<I", len(arr)) + arr
    return pad(head, 8) + body

def dbus_str(s):
    return struct.pack("<I", len(s)) + s.encode() + b"\0"

write("dbus_message", "get-unit", dbus_reply(2, 2, "o", dbus_str("/org/freedesktop/systemd1/unit/ig_2eservice")))
write("dbus_message", "active-state", dbus_reply(2, 3, "v", b"\x01s\0\0" + dbus_str("active")))
write("dbus_message", "exec-main-status", dbus_reply(2, 5, "v", b"\x01i\0\0" + struct.pack("<i", 3)))
write("dbus_message", "error", dbus_reply(3, 4, "s", dbus_str("Unit ig.service not loaded."),
                                          error="org.freedesktop.systemd1.NoSuchUnit"))

# --- runtime_call: NUL-separated argv ------------------------------------------
for n, argv in {
    "runc-create": ["runc", "--root", "/run/runc", "--log", "/l", "create", "--bundle", "/b", "--pid-file", "/p", "c1"],
    "runc-start": ["runc", "--root", "/run/runc", "start", "c1"],
    "crun-create": ["crun", "--systemd-cgroup", "create", "-b=b", "--console-socket", "/s", "c2"],
    "runc-delete": ["runc", "delete", "--force", "c1"],
}.items():
    write("runtime_call", n, "\0".join(argv))

# --- filter_expr: one -F spec per line -------------------------------------------
write("filter_expr", "simple", "comm:sh")
write("filter_expr", "all-ops", "pid:>=100\nret:!=0\nargs:~^/bin/\nk8s.podName:!~^kube-\nuid:<1000\nppid:>1")

# --- btf_subset: mode byte + BTF or object ---------------------------------------
if len(sys.argv) > 1:
    obj = open(sys.argv[1], "rb").read()
    with tempfile.TemporaryDirectory() as t:
        out = os.path.join(t, "btf")
        subprocess.run(["llvm-objcopy-14", "--dump-section", ".BTF=" + out, sys.argv[1], os.path.join(t, "o")], check=True)
        btf = open(out, "rb").read()
    write("btf_subset", "kernel-btf", b"\0" + btf)
    write("btf_subset", "object", b"\1" + obj)
    write("btf_subset", "module-btf", b"\2" + btf)
