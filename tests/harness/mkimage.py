#!/usr/bin/env python3
"""Builds a tiny busybox image archive from the local /bin/busybox (busybox-static).

usage: mkimage.py OUT.tar NAME:TAG [--entrypoint JSON] [--cmd JSON]
One tar that is both an OCI image layout and a docker-archive, so `podman load`,
`ctr images import` and `docker load` all take it. Deterministic output.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def entry(tf, name, data=None, mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.mode, info.type, info.linkname, info.mtime, info.uid, info.gid = mode, kind, link, 0, 0, 0
    info.uname = info.gname = "root"
    if data is None:
        tf.addfile(info)
    else:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def digest(blob):
    return hashlib.sha256(blob).hexdigest()


def rootfs_layer(busybox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d, m in [("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o755),
                     ("root", 0o700), ("sys", 0o755), ("tmp", 0o1777), ("var", 0o755)]:
            entry(tf, d, mode=m, kind=tarfile.DIRTYPE)
        with open(busybox, "rb") as f:
            entry(tf, "bin/busybox", f.read(), mode=0o755)
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in sorted(set(applets) - {"busybox"}):
            entry(tf, "bin/" + applet, kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        entry(tf, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        entry(tf, "etc/group", b"root:x:0:\n")
    return buf.getvalue()


def main(argv):
    out, ref = argv[0], argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    layer = rootfs_layer(opts.get("--busybox", "/bin/busybox"))
    cfg = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if "--entrypoint" in opts:
        cfg["Entrypoint"] = json.loads(opts["--entrypoint"])
    if "--cmd" in opts or "--entrypoint" not in opts:
        cfg["Cmd"] = json.loads(opts.get("--cmd", '["/bin/sh"]'))
    config = json.dumps({"created": "1970-01-01T00:00:00Z", "architecture": "amd64", "os": "linux", "config": cfg,
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest(layer)]}},
                        sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + digest(layer), "size": len(layer)}]}, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + digest(manifest), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref}}]}, sort_keys=True).encode()
    docker_manifest = json.dumps([{"Config": "blobs/sha256/" + digest(config), "RepoTags": [ref],
                                   "Layers": ["blobs/sha256/" + digest(layer)]}]).encode()
    with tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as tf:
        entry(tf, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        entry(tf, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for blob in (layer, config, manifest):
            entry(tf, "blobs/sha256/" + digest(blob), blob)
        entry(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        entry(tf, "index.json", index)
        entry(tf, "manifest.json", docker_manifest)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv[1:])
