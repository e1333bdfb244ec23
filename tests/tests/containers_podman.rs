//! podman containers with the hooks.d JSON shipped in install/ (through
//! podman's --hooks-dir, pointing at the binary under test).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{IgChild, harness, list_containers, mntns_of, podman_hooks_dir, require_root, unique};

fn podman(hooks: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("podman")
        .arg("--hooks-dir")
        .arg(hooks)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podman (run tests/harness/setup-runtimes.sh)");
    assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_podman_container_is_traced_with_its_name_and_image() {
    let h = harness();
    require_root();
    let hooks = podman_hooks_dir();
    let ig =
        IgChild::spawn_ready(&["trace", "exec", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    let name = unique("igt-podman");
    podman(
        &hooks,
        &["run", "--rm", "--network", "none", "--name", &name, &h.image, "/bin/true", "podman-arg"],
    );
    let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| v["runtime"]["containerName"] == name.as_str());
    assert_eq!(ev["args"], serde_json::json!(["/bin/true", "podman-arg"]));
    assert_eq!(ev["runtime"]["runtimeName"], "podman");
    assert_eq!(ev["runtime"]["containerImageName"], h.image.as_str());
    assert_eq!(ev["runtime"]["containerId"].as_str().unwrap().len(), 64);
    let _ = std::fs::remove_dir_all(&hooks);
}

#[test]
fn a_running_podman_container_is_listed_and_its_removal_watched() {
    let h = harness();
    require_root();
    let hooks = podman_hooks_dir();
    let name = unique("igt-podman-list");
    let out =
        podman(&hooks, &["run", "-d", "--network", "none", "--name", &name, &h.image, "/bin/sleep", "60"]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let list = list_containers();
    let rec = list.iter().find(|r| r["runtime"]["containerName"] == name.as_str()).expect("listed");
    assert_eq!(rec["runtime"]["containerId"], id.as_str());
    let pid = rec["pid"].as_u64().unwrap() as u32;
    assert_eq!(rec["mntns"], mntns_of(pid));

    let watch = IgChild::spawn_ready(&["list-containers", "-w", "-o", "json"], "watching containers");
    let created = watch.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["container"]["runtime"]["containerName"] == name.as_str(),
    );
    assert_eq!(created["event"], "CREATED", "a watch starts with what already runs");
    let removed = Instant::now();
    podman(&hooks, &["rm", "-f", "-t", "0", &name]);
    let deleted = watch.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["container"]["runtime"]["containerName"] == name.as_str(),
    );
    assert_eq!(deleted["event"], "DELETED");
    assert!(removed.elapsed() < Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&hooks);
}

#[test]
fn upperlayer_tells_a_binary_written_in_the_container() {
    let h = harness();
    require_root();
    let hooks = podman_hooks_dir();
    let ig =
        IgChild::spawn_ready(&["trace", "exec", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    let name = unique("igt-upper");
    // /bin/busybox comes from the image (lower layer); the copy is written in
    // the container, so it lives in the overlay's upper layer.
    // (busybox picks its applet from argv[0], hence the name of the copy.)
    let script = "cp /bin/busybox /tmp/true && /tmp/true upper-copy && /bin/true lower-original";
    podman(&hooks, &["run", "--rm", "--network", "none", "--name", &name, &h.image, "/bin/sh", "-c", script]);
    let upper = ig.wait_json(Duration::from_secs(20), || {}, |v| v["args"][1] == "upper-copy");
    assert_eq!(upper["upperlayer"], true, "{upper}");
    let lower = ig.wait_json(Duration::from_secs(20), || {}, |v| v["args"][1] == "lower-original");
    assert_eq!(lower["upperlayer"], false, "{lower}");
    let _ = std::fs::remove_dir_all(&hooks);
}
