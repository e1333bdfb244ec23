//! Container churn with faults: short containers from four sources in turn
//! (runc with the OCI hook, podman with its hooks.d hook, `ctr run` seen by
//! the runc watcher, CRI pods told by ig-nri) while the tracer is killed with
//! SIGKILL and started again every few containers and containerd restarts
//! once under ig-nri; then `ig daemon` is restarted under a connected
//! gadgetctl. Nothing may be lost:
//! - every container started while a tracer was up has its first (and only)
//!   exec attributed to it, by name;
//! - after each restart, the long-running containers of every source are
//!   listed with their name and the kernel's mount namespace, and the new
//!   tracer attributes an exec inside each of them;
//! - no fd grows with the containers a tracer sees, and once the tracers are
//!   gone no BPF program or map of theirs is left.
//!
//! 60 containers here; `IG_CHURN_CONTAINERS=300 cargo test --test churn` is
//! the soak (its figures on stderr with --nocapture).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::cri::{Pod, V1_7, start_plugin};
use tests::{Harness, IgChild, harness, has_arg, mntns_of, podman_hooks_dir, require_root, run_ok, unique};

/// The two tests one after the other: the first counts the machine's BPF
/// programs and maps, which the second's daemon would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Containers between two SIGKILLs of the tracer.
const PER_TRACER: usize = 15;

#[derive(Clone, Copy, Debug)]
enum Source {
    RuncHook,
    Podman,
    CtrWatcher,
    /// A CRI pod on containerd 1.7, told by ig-nri.
    CriNri,
}

const SOURCES: [Source; 4] = [Source::RuncHook, Source::Podman, Source::CtrWatcher, Source::CriNri];

/// BPF programs and maps loaded on the machine (ours are named ig_*; maps
/// are counted whole: a leaked map of ours has no reliable name prefix).
/// ig's eBPF programs (all named `ig_*`) and the maps they use or that ig
/// names (`gadget_*`), host-wide. Only ig's: other users come and go on
/// their own (systemd attaches device and firewall programs with their maps
/// to a podman container's scope, and removes them some time after it stops).
fn bpf_objects() -> (usize, usize) {
    let show = |what: &str| -> Vec<Value> {
        let out =
            Command::new("bpftool").args([what, "show", "--json"]).output().expect("bpftool (apt: bpftool)");
        assert!(out.status.success(), "bpftool {what} show failed");
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().cloned().unwrap_or_default()
    };
    let progs: Vec<Value> = show("prog")
        .into_iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("ig_")))
        .collect();
    let used: std::collections::HashSet<u64> = progs
        .iter()
        .flat_map(|p| p["map_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_u64())
        .collect();
    let maps = show("map")
        .into_iter()
        .filter(|m| {
            m["id"].as_u64().is_some_and(|id| used.contains(&id))
                || m["name"].as_str().is_some_and(|n| n.starts_with("gadget_"))
        })
        .count();
    (progs.len(), maps)
}

/// For a failure message: ig's programs still loaded (id, name, the links
/// that hold them) and every process holding an eBPF program, map or link,
/// or a perf event (pid, name, how many fds).
fn bpf_holders() -> String {
    let json = |args: &[&str]| -> Vec<Value> {
        Command::new("bpftool")
            .args(args)
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let links = json(&["link", "show", "--json"]);
    let progs: Vec<String> = json(&["prog", "show", "--json"])
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("ig_")))
        .map(|p| {
            let held_by: Vec<String> = links
                .iter()
                .filter(|l| l["prog_id"] == p["id"])
                .map(|l| format!("link {} ({})", l["id"], l["type"].as_str().unwrap_or("?")))
                .collect();
            format!("prog {} {} [{}]", p["id"], p["name"].as_str().unwrap_or("?"), held_by.join(", "))
        })
        .collect();
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| {
                    let l = l.to_string_lossy();
                    l.starts_with("anon_inode:bpf") || l == "anon_inode:[perf_event]"
                })
            })
            .count();
        if held > 0 {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            holders.push(format!("{pid} {} ({held} fds)", comm.trim()));
        }
    }
    format!("{}; processes: {}", progs.join("; "), holders.join(", "))
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).expect("the tracer's /proc/<pid>/fd")
}

/// Where the harness's runtimes answer: a (re)started tracer asks them what
/// already runs (the `ctr run` sleeper has no hook to tell it).
fn runtime_flags(h: &Harness) -> Vec<String> {
    let mut flags = h.runtime_flags();
    flags.extend(["--containerd-socketpath".into(), h.containerd_sock.display().to_string()]);
    flags
}

fn tracer(h: &Harness) -> IgChild {
    let mut args: Vec<String> =
        ["trace", "exec", "-o", "json", "--auto-mount-filesystems"].iter().map(|s| s.to_string()).collect();
    args.extend(runtime_flags(h));
    IgChild::spawn_ready(&args.iter().map(String::as_str).collect::<Vec<_>>(), "tracing started")
}

fn list_containers(h: &Harness) -> (Vec<Value>, String) {
    let out = run_ok(
        Command::new(tests::binary("ig")).args(["list-containers", "-o", "json"]).args(runtime_flags(h)),
    );
    let list = serde_json::from_slice::<Value>(&out.stdout)
        .expect("a JSON array")
        .as_array()
        .cloned()
        .unwrap_or_default();
    (list, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A short container of `source` whose only exec is `/bin/echo marker`;
/// the name ig must give it, and its CRI pod (removed when dropped).
fn short_container(
    h: &Harness,
    hooks: &std::path::Path,
    source: Source,
    name: &str,
    marker: &str,
) -> (String, Option<Pod>) {
    match source {
        Source::RuncHook => h.runc_bundle(name, &["/bin/echo", marker], true).run(),
        Source::Podman => {
            run_ok(
                Command::new("podman")
                    .arg("--hooks-dir")
                    .arg(hooks)
                    .args(["run", "--rm", "--network", "none", "--name", name, &h.image, "/bin/echo", marker])
                    .stdin(Stdio::null()),
            );
        }
        Source::CtrWatcher => {
            run_ok(h.ctr().args(["-n", "k8s.io", "run", "--rm", &h.image, name, "/bin/echo", marker]));
        }
        Source::CriNri => {
            let pod = Pod::run(&V1_7, &["/bin/echo", marker]);
            return (pod.ctr.clone(), Some(pod));
        }
    }
    (name.to_string(), None)
}

/// A container that runs for the whole test, one per source.
struct Sleeper {
    source: Source,
    name: String,
    pid: u32,
    /// runc's bundle: dropping it deletes the container.
    bundle: Option<tests::RuncBundle>,
    /// The CRI pod: dropping it removes the pod.
    _pod: Option<Pod>,
}

fn start_sleeper(h: &Harness, hooks: &std::path::Path, source: Source) -> Sleeper {
    let name = unique(&format!("igt-churn-long-{source:?}").to_lowercase());
    let mut bundle = None;
    let mut pod = None;
    let pid = match source {
        Source::RuncHook => {
            let b = h.runc_bundle(&name, &["/bin/sleep", "900"], true);
            let pid = b.run_detached();
            bundle = Some(b);
            pid
        }
        Source::Podman => {
            run_ok(
                Command::new("podman")
                    .arg("--hooks-dir")
                    .arg(hooks)
                    .args(["run", "-d", "--network", "none", "--name", &name, &h.image, "/bin/sleep", "900"])
                    .stdin(Stdio::null()),
            );
            let out = run_ok(Command::new("podman").args(["inspect", "-f", "{{.State.Pid}}", &name]));
            String::from_utf8_lossy(&out.stdout).trim().parse().expect("podman's pid")
        }
        Source::CtrWatcher => {
            run_ok(h.ctr().args(["-n", "k8s.io", "run", "-d", &h.image, &name, "/bin/sleep", "900"]));
            let out = run_ok(h.ctr().args(["-n", "k8s.io", "task", "ls"]));
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.first() == Some(&name.as_str())).then(|| f[1].parse().ok()).flatten()
                })
                .expect("ctr task ls lists the sleeper with its pid")
        }
        Source::CriNri => {
            let p = Pod::run(&V1_7, &["/bin/sleep", "900"]);
            let pid = p.pid();
            let ctr = p.ctr.clone();
            pod = Some(p);
            return Sleeper { source, name: ctr, pid, bundle, _pod: pod };
        }
    };
    Sleeper { source, name, pid, bundle, _pod: pod }
}

fn exec_in(h: &Harness, s: &Sleeper, marker: &str) {
    match s.source {
        Source::RuncHook => run_ok(Command::new("runc").arg("--root").arg(&h.runc_root).args([
            "exec",
            &s.name,
            "/bin/echo",
            marker,
        ])),
        Source::Podman => run_ok(Command::new("podman").args(["exec", &s.name, "/bin/echo", marker])),
        Source::CtrWatcher => run_ok(h.ctr().args([
            "-n",
            "k8s.io",
            "task",
            "exec",
            "--exec-id",
            &unique("x"),
            &s.name,
            "/bin/echo",
            marker,
        ])),
        // No CRI exec in the harness's client: into its mount namespace.
        Source::CriNri => {
            run_ok(Command::new("nsenter").args(["-t", &s.pid.to_string(), "-m", "/bin/echo", marker]))
        }
    };
}

fn stop_sleeper(h: &Harness, s: &Sleeper) {
    match s.source {
        Source::RuncHook => {
            if let Some(bundle) = &s.bundle {
                bundle.delete();
            }
        }
        Source::Podman => {
            let _ = Command::new("podman").args(["rm", "-f", "-t", "0", &s.name]).output();
        }
        Source::CtrWatcher => {
            let _ = h.ctr().args(["-n", "k8s.io", "task", "kill", "-s", "KILL", &s.name]).output();
            std::thread::sleep(Duration::from_millis(300));
            let _ = h.ctr().args(["-n", "k8s.io", "task", "rm", "-f", &s.name]).output();
            let _ = h.ctr().args(["-n", "k8s.io", "container", "rm", &s.name]).output();
        }
        Source::CriNri => {} // the pod goes with the Sleeper
    }
}

/// What a (re)started tracer must know: every sleeper, listed with its name
/// and the kernel's mount namespace, and an exec in each attributed to it.
fn check_sleepers(h: &Harness, ig: &IgChild, sleepers: &[Sleeper], round: usize) {
    let (listed, said) = list_containers(h);
    let by_name: HashMap<&str, &Value> =
        listed.iter().filter_map(|r| Some((r["runtime"]["containerName"].as_str()?, r))).collect();
    for s in sleepers {
        let rec = by_name
            .get(s.name.as_str())
            .unwrap_or_else(|| panic!("round {round}: {} not listed; list-containers said: {said}", s.name));
        assert_eq!(rec["mntns"], mntns_of(s.pid), "round {round}: {}'s mount namespace", s.name);
        let marker = unique("churn-inside");
        exec_in(h, s, &marker);
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(
            ev["runtime"]["containerName"],
            s.name.as_str(),
            "round {round}: an exec in {}: {ev}",
            s.name
        );
    }
}

#[test]
fn nothing_is_lost_while_tracers_are_killed_and_containers_churn() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = harness();
    require_root();
    let total: usize = std::env::var("IG_CHURN_CONTAINERS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let _containerd = V1_7.lock();
    let hooks = podman_hooks_dir();
    // No ig runs now (this binary's tests take turns; test binaries run one
    // after another), so any ig object left belongs to a process that has
    // exited: the kernel releases those asynchronously, seconds later at
    // times (a CI run started this test with the previous binary's 4
    // programs and 12 maps still loaded and held by no process). Start from
    // none, so that what is left at the end is this test's.
    let settled = wait_for_no_ig_objects();
    assert_eq!(settled.1, (0, 0), "ig objects left by earlier tests: {}", bpf_holders());
    let nri = start_plugin(&V1_7);
    // No CRI pod among them: in this harness a containerd restart ends its
    // pods (their shims disconnect); CRI's short containers run on both sides of it.
    let sleepers: Vec<Sleeper> = SOURCES
        .iter()
        .filter(|s| !matches!(s, Source::CriNri))
        .map(|&s| start_sleeper(&h, &hooks, s))
        .collect();
    let started = Instant::now();

    let mut attributed = 0;
    let mut restarts = 0;
    let mut fd_growth = Vec::new();
    let mut ig = tracer(&h);
    check_sleepers(&h, &ig, &sleepers, 0);
    let mut fds_at_start = fds_of(ig.child.id());
    for i in 0..total {
        if i > 0 && i % PER_TRACER == 0 {
            fd_growth.push(fds_of(ig.child.id()) as i64 - fds_at_start as i64);
            ig.child.kill().expect("SIGKILL the tracer");
            let _ = ig.child.wait();
            restarts += 1;
            ig = tracer(&h);
            check_sleepers(&h, &ig, &sleepers, restarts);
            fds_at_start = fds_of(ig.child.id());
        }
        if i == total / 2 {
            // containerd restarts under ig-nri, which registers again.
            V1_7.restart();
            let deadline = Instant::now() + Duration::from_secs(30);
            while nri.stderr_text().matches("registered with the runtime").count() < 2 {
                assert!(Instant::now() < deadline, "ig-nri did not register again: {}", nri.stderr_text());
                std::thread::sleep(Duration::from_millis(200));
            }
            check_sleepers(&h, &ig, &sleepers, restarts);
        }
        let source = SOURCES[i % SOURCES.len()];
        let name = unique(&format!("igt-churn-{i}"));
        let marker = unique("churn-first");
        let (expected, pod) = short_container(&h, &hooks, source, &name, &marker);
        let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| has_arg(v, &marker));
        assert_eq!(ev["runtime"]["containerName"], expected.as_str(), "container {i} ({source:?}): {ev}");
        drop(pod);
        attributed += 1;
    }
    fd_growth.push(fds_of(ig.child.id()) as i64 - fds_at_start as i64);
    let _ = ig.child.kill();
    let _ = ig.child.wait();
    for s in &sleepers {
        stop_sleeper(&h, s);
    }
    drop(sleepers);
    drop(nri);
    let _ = std::fs::remove_dir_all(&hooks);
    eprintln!(
        "churn: {attributed}/{total} first execs attributed, {restarts} SIGKILL restarts, fd growth per tracer {fd_growth:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(attributed, total);
    // A tracer's fds do not grow with the containers it sees (a few
    // come and go with the work in flight: none per container).
    assert!(fd_growth.iter().all(|&g| g < 5), "fd growth per tracer: {fd_growth:?}");
    // The killed tracers' programs and maps went with them: once the kernel
    // has released them (asynchronously, see the start; 2 programs and 7
    // maps were still loaded 10 s after on a loaded machine), none is left.
    let (waited, after) = wait_for_no_ig_objects();
    eprintln!(
        "churn: ig's objects released {:.1} s after the last tracer was reaped (settled {:.1} s at the start)",
        waited.as_secs_f64(),
        settled.0.as_secs_f64()
    );
    assert_eq!(after, (0, 0), "ig's (programs, maps) 60 s after its tracers are gone; {}", bpf_holders());
}

/// Waits up to 60 s for ig's programs and maps to be gone (no ig process
/// runs while it waits); how long it took and what is left.
fn wait_for_no_ig_objects() -> (Duration, (usize, usize)) {
    let started = Instant::now();
    let mut left = bpf_objects();
    while left != (0, 0) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        left = bpf_objects();
    }
    (started.elapsed(), left)
}

/// `ig daemon` restarts under a connected gadgetctl: the client ends with a
/// message that says the daemon went away, and a client of the restarted
/// daemon sees a container started after the restart.
#[test]
fn a_daemon_restart_under_a_connected_client() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = harness();
    require_root();
    let state = std::env::temp_dir().join(unique("igt-churn-state"));
    let mut d = tests::Daemon::start_with_state(Some(&state), &[]);
    let client = d.gadgetctl_ready(&["trace", "exec", "-o", "json"]);
    d.stop();
    let mut client = client;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = client.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gadgetctl outlived its daemon by 20 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "the client's run did not end well: {status:?}");
    let said = client.stderr_text();
    assert!(said.to_lowercase().contains("daemon"), "the client says what went away: {said}");

    let d2 = tests::Daemon::start_with_state(Some(&state), &[]);
    let client2 = d2.gadgetctl_ready(&["trace", "exec", "-o", "json"]);
    let id = unique("igt-churn-after");
    h.runc_bundle(&id, &["/bin/echo", "after-restart"], true).run();
    let ev =
        client2.wait_json(Duration::from_secs(20), || {}, |v| v["runtime"]["containerName"] == id.as_str());
    assert_eq!(ev["args"][1], "after-restart");
    drop(client2);
    drop(d2);
    let _ = std::fs::remove_dir_all(&state);
}
