#!/usr/bin/env python3
"""A small CRI v1 client for the tests (there is no crictl package here).

usage: cri.py [--sock PATH] runp POD.json | create POD_ID CTR.json POD.json | start ID | stop ID | rm ID
              | stopp POD_ID | rmp POD_ID | run POD.json CTR.json [HANDLER] | inspect ID | ps | pods | cleanup
              | bench POD.json CTR.json N   (prints create+start milliseconds, one per line)
Configs are protobuf JSON, as crictl takes them.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import api_pb2 as pb  # noqa: E402
import api_pb2_grpc as pbg  # noqa: E402

TIMEOUT = 60


def load(path, msg):
    with open(path) as f:
        return json_format.Parse(f.read(), msg)


def main(argv):
    sock = os.environ.get("CRI_SOCK", "/run/containerd/containerd.sock")
    if argv[:1] == ["--sock"]:
        sock, argv = argv[1], argv[2:]
    if not argv:
        sys.exit(__doc__)
    rt = pbg.RuntimeServiceStub(grpc.insecure_channel("unix://" + sock))
    cmd, a = argv[0], argv[1:]
    if cmd == "runp":
        print(rt.RunPodSandbox(pb.RunPodSandboxRequest(config=load(a[0], pb.PodSandboxConfig())), timeout=TIMEOUT).pod_sandbox_id)
    elif cmd == "create":
        req = pb.CreateContainerRequest(pod_sandbox_id=a[0], config=load(a[1], pb.ContainerConfig()),
                                        sandbox_config=load(a[2], pb.PodSandboxConfig()))
        print(rt.CreateContainer(req, timeout=TIMEOUT).container_id)
    elif cmd == "start":
        rt.StartContainer(pb.StartContainerRequest(container_id=a[0]), timeout=TIMEOUT)
    elif cmd == "stop":
        rt.StopContainer(pb.StopContainerRequest(container_id=a[0], timeout=0), timeout=TIMEOUT)
    elif cmd == "rm":
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=a[0]), timeout=TIMEOUT)
    elif cmd == "stopp":
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=a[0]), timeout=TIMEOUT)
    elif cmd == "rmp":
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=a[0]), timeout=TIMEOUT)
    elif cmd == "run":
        pod_cfg, ctr_cfg = load(a[0], pb.PodSandboxConfig()), load(a[1], pb.ContainerConfig())
        handler = a[2] if len(a) > 2 else ""
        pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_cfg, runtime_handler=handler),
                               timeout=TIMEOUT).pod_sandbox_id
        cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ctr_cfg, sandbox_config=pod_cfg),
                                 timeout=TIMEOUT).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=TIMEOUT)
        print(pod, cid)
    elif cmd == "inspect":
        r = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=a[0], verbose=True), timeout=TIMEOUT)
        out = json.loads(json_format.MessageToJson(r.status))
        out["info"] = {k: json.loads(v) for k, v in r.info.items()}
        print(json.dumps(out))
    elif cmd == "ps":
        for c in rt.ListContainers(pb.ListContainersRequest(), timeout=TIMEOUT).containers:
            print(c.id, c.pod_sandbox_id, c.metadata.name, pb.ContainerState.Name(c.state))
    elif cmd == "pods":
        for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=TIMEOUT).items:
            print(p.id, p.metadata.namespace + "/" + p.metadata.name, pb.PodSandboxState.Name(p.state))
    elif cmd == "cleanup":
        for c in rt.ListContainers(pb.ListContainersRequest(), timeout=TIMEOUT).containers:
            rt.StopContainer(pb.StopContainerRequest(container_id=c.id, timeout=0), timeout=TIMEOUT)
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id), timeout=TIMEOUT)
        for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=TIMEOUT).items:
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=TIMEOUT)
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=TIMEOUT)
    elif cmd == "bench":
        pod_cfg, ctr_cfg, n = load(a[0], pb.PodSandboxConfig()), load(a[1], pb.ContainerConfig()), int(a[2])
        pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_cfg), timeout=TIMEOUT).pod_sandbox_id
        for i in range(n):
            ctr_cfg.metadata.name = "bench-%d" % i
            t = time.monotonic()
            cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=ctr_cfg,
                                                               sandbox_config=pod_cfg), timeout=TIMEOUT).container_id
            rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=TIMEOUT)
            print("%.3f" % ((time.monotonic() - t) * 1000), flush=True)
            rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=TIMEOUT)
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=TIMEOUT)
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=TIMEOUT)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=TIMEOUT)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except grpc.RpcError as e:
        sys.exit("cri.py: %s: %s" % (e.code().name, e.details()))
