//! Containers run by crun instead of runc: podman with `--runtime crun` (the
//! hooks.d hook; crun writes its own OCI state) and containerd with crun as
//! its runtime binary (`ctr run --runc-binary`, seen by the watcher on
//! /usr/bin/crun), and CRI pods on both containerds with runtime handler
//! "crun" (seen by ig-nri). crun runs behind the harness's wrapper, which
//! gives it the cgroup v2 this hybrid host lacks (tests/harness/crun.sh).

use std::process::{Command, Stdio};
use std::time::Duration;

use tests::cri::{Containerd, Pod, V1_7, V2, start_plugin};
use tests::{
    Harness, IgChild, harness, has_arg, list_containers, mntns_of, podman_hooks_dir, require_root, run_ok,
    unique,
};

/// Containers in a row, each living a few milliseconds: its first exec is
/// its only one, so it is traced only if ig knew the container before it ran.
const IN_A_ROW: usize = 20;

fn podman_crun(h: &Harness, hooks: &std::path::Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--runtime").arg(&h.crun).arg("--hooks-dir").arg(hooks).stdin(Stdio::null());
    c
}

#[test]
fn podman_with_crun_every_short_containers_first_exec_is_named() {
    let h = harness();
    require_root();
    let hooks = podman_hooks_dir();
    let ig =
        IgChild::spawn_ready(&["trace", "exec", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    for i in 0..IN_A_ROW {
        let name = unique(&format!("igt-crun-podman-{i}"));
        let marker = unique("crun-podman-first");
        run_ok(podman_crun(&h, &hooks).args([
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            &h.image,
            "/bin/echo",
            &marker,
        ]));
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(ev["runtime"]["containerName"], name.as_str(), "container {i}: {ev}");
        assert_eq!(ev["runtime"]["runtimeName"], "podman", "container {i}: {ev}");
        assert_eq!(ev["runtime"]["containerImageName"], h.image.as_str(), "container {i}: {ev}");
        assert_eq!(ev["comm"], "echo");
    }
    let _ = std::fs::remove_dir_all(&hooks);
}

#[test]
fn a_running_crun_container_is_listed_with_its_mount_namespace() {
    let h = harness();
    require_root();
    let hooks = podman_hooks_dir();
    let name = unique("igt-crun-list");
    let out = run_ok(podman_crun(&h, &hooks).args([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        &h.image,
        "/bin/sleep",
        "60",
    ]));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let list = list_containers();
    let listed = list.iter().find(|r| r["runtime"]["containerName"] == name.as_str()).cloned();
    // The kernel's truth, read while the container still runs.
    let truth = listed.as_ref().and_then(|r| r["pid"].as_u64()).map(|pid| mntns_of(pid as u32));
    run_ok(Command::new("podman").args(["rm", "-f", "-t", "0", &name]));
    let _ = std::fs::remove_dir_all(&hooks);
    let rec = listed.unwrap_or_else(|| panic!("{name} not listed: {list:?}"));
    assert_eq!(rec["runtime"]["containerId"], id.as_str());
    assert_eq!(rec["mntns"], truth.expect("a pid"), "{rec}");
    assert_ne!(
        rec["mntns"],
        mntns_of(std::process::id()),
        "the container's own mount namespace, not the host's"
    );
}

#[test]
fn containerd_with_crun_every_short_containers_first_exec_is_named() {
    let h = harness();
    require_root();
    let ig = IgChild::spawn_ready(&["trace", "exec", "-o", "json"], "tracing started");
    for i in 0..IN_A_ROW {
        let id = unique(&format!("igt-crun-ctr-{i}"));
        let marker = unique("crun-ctr-first");
        run_ok(h.ctr().args(["-n", "k8s.io", "run", "--rm", "--runc-binary"]).arg(&h.crun).args([
            &h.image,
            &id,
            "/bin/echo",
            &marker,
        ]));
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(ev["runtime"]["runtimeName"], "containerd", "container {i}: {ev}");
        assert_eq!(ev["runtime"]["containerId"], id.as_str(), "container {i}: {ev}");
        assert_eq!(ev["runtime"]["containerName"], id.as_str(), "container {i}: {ev}");
    }
}

/// A CRI pod per container, on runtime handler "crun" (containerd.sh), 20
/// in a row, each container only `echo`: ig-nri must hand each one to the
/// tracer before crun starts its process.
fn cri_pods_on_crun_have_their_first_exec_named(runtime: &'static Containerd) {
    let h = harness();
    let _one = runtime.lock();
    require_root();
    let _plugin = start_plugin(runtime);
    // The runc watcher would see crun's start too and name the container
    // from its bundle: watching only runc, which these pods never run, leaves
    // ig-nri the one source under test.
    let ig = IgChild::spawn_ready_with_env(
        &["trace", "exec", "-o", "json", "--auto-mount-filesystems"],
        &[("RUNTIME_PATH", "/usr/sbin/runc")],
        "tracing started",
    );
    for i in 0..IN_A_ROW {
        let marker = unique("crun-cri-first");
        let pod = Pod::run_on_handler(runtime, &["/bin/echo", &marker], "crun");
        assert_eq!(
            pod.info()["runtimeOptions"]["binary_name"],
            h.crun.to_str().unwrap(),
            "containerd {} ran pod {i} with crun",
            runtime.flavour
        );
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(ev["runtime"]["runtimeName"], "containerd", "pod {i}: {ev}");
        assert_eq!(ev["runtime"]["containerId"], pod.ctr_id.as_str(), "pod {i}: {ev}");
        assert_eq!(ev["k8s"]["podName"], pod.name.as_str(), "pod {i}: {ev}");
        assert_eq!(ev["k8s"]["containerName"], pod.ctr.as_str(), "pod {i}: {ev}");
        assert_eq!(ev["k8s"]["namespace"], pod.ns.as_str(), "pod {i}: {ev}");
        assert_eq!(ev["comm"], "echo");
    }
}

mod cri_v1_7 {
    #[test]
    fn cri_pods_on_crun_have_their_first_exec_named() {
        super::cri_pods_on_crun_have_their_first_exec_named(&super::V1_7)
    }
}

mod cri_v2 {
    #[test]
    fn cri_pods_on_crun_have_their_first_exec_named() {
        super::cri_pods_on_crun_have_their_first_exec_named(&super::V2)
    }
}
