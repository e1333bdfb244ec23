//! Containers whose manager runs no hook and no NRI: dockerd and `ctr run`
//! on containerd, seen through the fanotify watcher on runc; and the runtime
//! APIs asked at start-up for what already runs (docker, podman).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{Harness, IgChild, binary, harness, has_arg, mntns_of, require_root, run_ok, unique};

fn trace_exec(h: &Harness, env: &[(&str, &str)]) -> IgChild {
    let mut args: Vec<String> =
        ["trace", "exec", "-o", "json", "--auto-mount-filesystems"].iter().map(|s| s.to_string()).collect();
    args.extend(h.runtime_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    IgChild::spawn_ready_with_env(&args, env, "tracing started")
}

/// `ctr -n k8s.io run --rm IMAGE ID /bin/echo MARKER` (the images live in k8s.io).
fn ctr_run(h: &Harness, id: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = h.ctr();
    cmd.args(["-n", "k8s.io", "run", "--rm", &h.image, id]).args(args);
    run_ok(&mut cmd)
}

#[test]
fn a_docker_containers_first_exec_carries_its_name() {
    let h = harness();
    require_root();
    let ig = trace_exec(&h, &[]);
    let name = unique("igt-docker");
    let marker = unique("docker-first");
    // A container that lives a few milliseconds: its entrypoint is its only exec.
    h.docker_echo(&name, &marker);
    let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
    assert_eq!(ev["runtime"]["containerName"], name.as_str(), "{ev}");
    assert_eq!(ev["runtime"]["runtimeName"], "docker");
    assert_eq!(ev["runtime"]["containerImageName"], h.image.as_str());
    assert_eq!(ev["runtime"]["containerId"].as_str().unwrap().len(), 64);
    assert_eq!(ev["comm"], "echo");
}

#[test]
fn a_ctr_run_container_is_seen_through_fanotify() {
    let h = harness();
    require_root();
    let ig = trace_exec(&h, &[]);
    let id = unique("igt-ctr");
    let marker = unique("ctr-first");
    ctr_run(&h, &id, &["/bin/echo", &marker]);
    let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
    assert_eq!(ev["runtime"]["runtimeName"], "containerd", "{ev}");
    assert_eq!(ev["runtime"]["containerId"], id.as_str());
    assert_eq!(ev["runtime"]["containerName"], id.as_str());
}

#[test]
fn containers_running_before_ig_are_listed_from_the_docker_and_podman_apis() {
    let h = harness();
    require_root();
    let dname = unique("igt-docker-pre");
    let pname = unique("igt-podman-pre");
    run_ok(h.docker().args([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &dname,
        &h.image,
        "/bin/sleep",
        "60",
    ]));
    // No hooks dir: podman's container is known only through its API.
    run_ok(Command::new("podman").args([
        "--hooks-dir",
        "/nonexistent",
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &pname,
        &h.image,
        "/bin/sleep",
        "60",
    ]));
    let out =
        run_ok(Command::new(binary("ig")).args(["list-containers", "-o", "json"]).args(h.runtime_flags()));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let find = |n: &str| list.iter().find(|r| r["runtime"]["containerName"] == n).cloned();
    let d = find(&dname).unwrap_or_else(|| panic!("{dname} not listed: {list:?}"));
    let p = find(&pname).unwrap_or_else(|| panic!("{pname} not listed: {list:?}"));
    assert_eq!(d["runtime"]["runtimeName"], "docker");
    assert_eq!(d["runtime"]["containerImageName"], h.image.as_str());
    assert_eq!(p["runtime"]["runtimeName"], "podman");
    for r in [&d, &p] {
        assert_eq!(r["mntns"], mntns_of(r["pid"].as_u64().unwrap() as u32), "{r}");
    }
    let _ = h.docker().args(["rm", "-f", &dname]).output();
    let _ = Command::new("podman").args(["rm", "-f", "-t", "0", &pname]).output();
}

#[test]
fn a_stalled_watcher_holds_a_container_start_only_for_its_bound() {
    let h = harness();
    require_root();
    // The record builder sleeps 30 s; the start is released after the 1 s bound.
    let ig = trace_exec(&h, &[("IG_TEST_FANOTIFY_DELAY_MS", "30000")]);
    let started = Instant::now();
    let id = unique("igt-stalled");
    let marker = unique("stalled");
    let out = ctr_run(&h, &id, &["/bin/echo", &marker]);
    let took = started.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), marker, "the container ran");
    assert!(took < Duration::from_secs(15), "the container took {took:?} with the watcher stalled for 30 s");
    assert!(
        ig.wait_stderr("not ready within", Duration::from_secs(5)),
        "ig says it let the start go without the record: {}",
        ig.stderr_text()
    );
}

/// The open descriptors of a live process; a dead one fails the test (a
/// count of 0 would pass a leak check).
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("ig (pid {pid}) is not running: {e}"))
        .count()
}

#[test]
fn a_hundred_containers_in_a_row_leak_no_fds_and_each_first_exec_is_seen() {
    let h = harness();
    require_root();
    let ig = trace_exec(&h, &[]);
    let pid = ig.child.id();
    let tag = unique("igt-100");
    // One container first, so whatever ig opens lazily is open before counting.
    ctr_run(&h, &format!("{tag}-warm"), &["/bin/echo", &format!("{tag}-warm")]);
    ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &format!("{tag}-warm")));
    std::thread::sleep(Duration::from_millis(500));
    let before = fd_count(pid);

    let n = 100;
    for i in 0..n {
        ctr_run(&h, &format!("{tag}-{i}"), &["/bin/echo", &format!("{tag}-m{i}")]);
    }
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < n && Instant::now() < deadline {
        for v in ig.collect_json(Duration::from_millis(200)) {
            if let Some(arg) = v["args"][1].as_str()
                && let Some(i) = arg.strip_prefix(&format!("{tag}-m"))
            {
                assert_eq!(v["runtime"]["containerName"], format!("{tag}-{i}"), "{v}");
                seen.insert(i.to_string());
            }
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(&i.to_string())).collect();
    assert!(missing.is_empty(), "first execs not seen: {missing:?}; stderr: {}", ig.stderr_text());
    // Exits are noticed by pidfd; give the last ones a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = fd_count(pid);
    while after > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = fd_count(pid);
    }
    assert!(after <= before, "ig had {before} fds before {n} containers and {after} after");
}

/// A copy of the system's runc at `path`, written next to it and renamed
/// over it, as a package upgrade does (a new inode every time).
fn install_runc(path: &std::path::Path) {
    let staged = path.with_extension("new");
    std::fs::copy("/usr/sbin/runc", &staged).expect("copying /usr/sbin/runc");
    std::fs::rename(&staged, path).expect("renaming the runtime into place");
}

#[test]
fn a_runtime_installed_or_replaced_after_start_is_watched() {
    let h = harness();
    require_root();
    let dir = h.dir.join(unique("runtimes"));
    std::fs::create_dir_all(&dir).unwrap();
    let runc = dir.join("runc");
    // Not there yet when ig starts: only its directory is.
    let ig = trace_exec(&h, &[("RUNTIME_PATH", runc.to_str().unwrap())]);
    let log = format!("watching runtime binary path={}", runc.display());
    for step in ["installed", "replaced"] {
        let before = ig.stderr_text().matches(&log).count();
        install_runc(&runc);
        let deadline = Instant::now() + Duration::from_secs(10);
        while ig.stderr_text().matches(&log).count() == before {
            assert!(Instant::now() < deadline, "{step}: not marked: {}", ig.stderr_text());
            // Reads more of ig's log (a needle that never comes: a 100 ms wait).
            ig.wait_stderr("\u{0}never", Duration::from_millis(100));
        }
        let id = unique("igt-newrunc");
        let marker = unique(step);
        let mut cmd = h.ctr();
        cmd.args(["-n", "k8s.io", "run", "--rm", "--runc-binary", runc.to_str().unwrap(), &h.image, &id])
            .args(["/bin/echo", &marker]);
        run_ok(&mut cmd);
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(ev["runtime"]["containerId"], id.as_str(), "{step}: {ev}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Kills and removes a `ctr` container of namespace `ns` when dropped.
struct CtrContainer<'a> {
    h: &'a Harness,
    ns: String,
    id: String,
}

impl Drop for CtrContainer<'_> {
    fn drop(&mut self) {
        let ctr = |args: &[&str]| {
            let _ = self.h.ctr().args(["-n", &self.ns]).args(args).output();
        };
        ctr(&["task", "kill", "-s", "KILL", &self.id]);
        std::thread::sleep(Duration::from_millis(300));
        ctr(&["task", "rm", "-f", &self.id]);
        ctr(&["container", "rm", &self.id]);
    }
}

#[test]
fn containers_of_another_containerd_namespace_are_listed_from_containerds_own_api() {
    let h = harness();
    require_root();
    let ns = unique("igt-ns");
    let id = unique("igt-nsctr");
    // No image in that namespace: the harness's rootfs directly.
    let rootfs = h.rootfs.to_str().unwrap().to_string();
    run_ok(h.ctr().args(["-n", &ns, "run", "-d", "--rootfs", &rootfs, &id, "/bin/sleep", "60"]));
    let _guard = CtrContainer { h: &h, ns: ns.clone(), id: id.clone() };
    let sock = h.containerd_sock.display().to_string();
    let out = run_ok(Command::new(binary("ig")).args([
        "list-containers",
        "-o",
        "json",
        "--containerd-socketpath",
        &sock,
        "--containerd-namespace",
        &ns,
    ]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let rec = list.iter().find(|r| r["runtime"]["containerId"] == id.as_str()).expect("listed");
    assert_eq!(rec["runtime"]["runtimeName"], "containerd");
    assert_eq!(rec["runtime"]["containerName"], id.as_str());
    let pid = rec["pid"].as_u64().unwrap() as u32;
    assert_eq!(rec["mntns"], mntns_of(pid));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep", "the pid is the container's init");
}

#[test]
fn a_start_whose_create_came_before_ig_is_reported_not_silent() {
    let h = harness();
    require_root();
    let id = unique("igt-late");
    let bundle = h.runc_bundle(&id, &["/bin/true"], false);
    bundle.create();
    let ig = trace_exec(&h, &[]);
    bundle.start();
    assert!(
        ig.wait_stderr("create was not seen", Duration::from_secs(20)),
        "no warning for {id}: {}",
        ig.stderr_text()
    );
    assert!(ig.stderr_text().contains(&id), "the warning names the container: {}", ig.stderr_text());
}
