//! Containers started by plain runc with ig-hook in the bundle: traced from
//! their first exec, labelled, listed, watched.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{IgChild, harness, list_containers, mntns_of, require_root, unique};

fn name_of(v: &Value) -> &str {
    v["runtime"]["containerName"].as_str().unwrap_or("")
}

fn trace_exec(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "exec", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

#[test]
fn the_entrypoint_of_a_10ms_container_is_traced_and_labelled() {
    let h = harness();
    let ig = trace_exec(&[]);
    let id = unique("igt-short");
    let bundle = h.runc_bundle(&id, &["/bin/true", "entrypoint-arg"], true);
    let started = Instant::now();
    bundle.run();
    let lived = started.elapsed();
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| name_of(v) == id);
    assert_eq!(ev["args"], serde_json::json!(["/bin/true", "entrypoint-arg"]));
    assert_eq!(ev["comm"], "true");
    assert_eq!(ev["runtime"]["runtimeName"], "runc");
    assert_eq!(ev["runtime"]["containerId"], id.as_str());
    assert!(lived < Duration::from_secs(2), "runc run took {lived:?}");
    // Without --host nothing else than containers comes through.
    for v in ig.collect_json(Duration::from_millis(300)) {
        assert!(!name_of(&v).is_empty() || v["type"] != "normal", "host event without --host: {v}");
    }
    assert!(bundle.hook_log_text().contains("acknowledged"), "{}", bundle.hook_log_text());
}

#[test]
fn fifty_short_lived_containers_in_a_row_are_all_attributed() {
    let h = harness();
    let ig = trace_exec(&[]);
    let ids: Vec<String> = (0..50).map(|i| unique(&format!("igt-50-{i}"))).collect();
    for id in &ids {
        h.runc_bundle(id, &["/bin/true"], true).run();
    }
    let mut missing: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !missing.is_empty() && Instant::now() < deadline {
        for v in ig.collect_json(Duration::from_millis(200)) {
            if v["args"] == serde_json::json!(["/bin/true"]) {
                missing.remove(name_of(&v));
            }
        }
    }
    assert!(missing.is_empty(), "first exec not attributed for {} containers: {missing:?}", missing.len());
}

#[test]
fn containername_filters_in_the_kernel() {
    let h = harness();
    let (a, b) = (unique("igt-a"), unique("igt-b"));
    let ig = trace_exec(&["-c", &a]);
    h.runc_bundle(&b, &["/bin/true", "from-b"], true).run();
    h.runc_bundle(&a, &["/bin/true", "from-a"], true).run();
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| name_of(v) == a,
        |v| name_of(v) == b || v["args"][1] == "from-b",
        Duration::from_millis(500),
    );
    assert_eq!(ev["args"][1], "from-a");
}

#[test]
fn containername_lists_and_exclusions() {
    let h = harness();
    let (a, b, c) = (unique("igt-la"), unique("igt-lb"), unique("igt-lc"));
    // a and b, c left out: c runs first, then a and b each in turn.
    let ig = trace_exec(&["-c", &format!("{a},{b}")]);
    h.runc_bundle(&c, &["/bin/true", "from-c"], true).run();
    h.runc_bundle(&a, &["/bin/true", "from-a"], true).run();
    let not_c = |v: &Value| name_of(v) == c || v["args"][1] == "from-c";
    ig.wait_json_forbidding(Duration::from_secs(10), || {}, |v| name_of(v) == a, not_c, Duration::ZERO);
    h.runc_bundle(&b, &["/bin/true", "from-b"], true).run();
    ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| name_of(v) == b,
        not_c,
        Duration::from_millis(500),
    );
    drop(ig);
    // Every container but b.
    let ig = trace_exec(&["-c", &format!("!{b}")]);
    h.runc_bundle(&b, &["/bin/true", "from-b"], true).run();
    h.runc_bundle(&a, &["/bin/true", "from-a"], true).run();
    ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| name_of(v) == a,
        |v| name_of(v) == b || v["args"][1] == "from-b",
        Duration::from_millis(500),
    );
}

#[test]
fn host_with_a_selection_shows_the_host_and_the_selected_containers() {
    let h = harness();
    let (a, b) = (unique("igt-ha"), unique("igt-hb"));
    let marker = unique("host-exec");
    let ig = trace_exec(&["--host", "-c", &a]);
    // b (not selected) first, then a host exec, then a.
    h.runc_bundle(&b, &["/bin/true", "from-b"], true).run();
    std::process::Command::new("/bin/true").arg(&marker).status().unwrap();
    let not_b = |v: &Value| name_of(v) == b || v["args"][1] == "from-b";
    let host = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["args"][1] == marker.as_str(),
        not_b,
        Duration::ZERO,
    );
    assert_eq!(name_of(&host), "", "a host process has no container: {host}");
    h.runc_bundle(&a, &["/bin/true", "from-a"], true).run();
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| name_of(v) == a,
        not_b,
        Duration::from_millis(500),
    );
    assert_eq!(ev["args"][1], "from-a");
}

/// The kernel gives a freed mount namespace number to the next namespace
/// made: a host process that gets a just-removed container's number is not
/// that container, though ig still names the container's late events.
#[test]
fn a_host_process_given_a_gone_containers_namespace_number_is_not_named_as_it() {
    let h = harness();
    let ig = trace_exec(&["--host"]);
    let mut reused = 0;
    for attempt in 0..5 {
        let id = unique("igt-gone");
        let container_ns = h.runc_bundle(&id, &["/bin/readlink", "/proc/self/ns/mnt"], true).run_stdout();
        // runc has run the poststop hook: ig knows the container is gone.
        let marker = unique("igt-after-gone");
        let out = std::process::Command::new("unshare")
            .args(["-m", "/bin/sh", "-c", "readlink /proc/self/ns/mnt; /bin/true \"$0\"", &marker])
            .output()
            .unwrap();
        assert!(out.status.success(), "unshare -m: {out:?}");
        let host_ns = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if host_ns == container_ns.trim() {
            reused += 1;
        }
        let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == marker.as_str());
        assert_eq!(
            name_of(&ev),
            "",
            "attempt {attempt}: a host process (namespace {host_ns}, the container's was {}) named as the gone container: {ev}",
            container_ns.trim()
        );
    }
    // Other tests make namespaces too: the number is not always the same one.
    assert!(reused >= 1, "no host process got the number the container had freed in 5 attempts");
}

#[test]
fn user_and_group_are_named_by_the_containers_own_files() {
    let h = harness();
    require_root();
    let id = unique("igt-names");
    let bundle = h.runc_bundle(&id, &["/bin/true", "as-nobody"], true);
    // uid/gid 65534: "nobody"/"nogroup" on the host, nameless in the image (its files know only root).
    bundle.edit_config(|cfg| cfg["process"]["user"] = serde_json::json!({"uid": 65534, "gid": 65534}));
    let ig = IgChild::spawn_ready(
        &[
            "trace",
            "exec",
            "--host",
            "--auto-mount-filesystems",
            "-o",
            "columns=runtime.containerName,comm,uid,user,group,args",
        ],
        "tracing started",
    );
    let marker = unique("host-nobody");
    let status = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/true", &marker])
        .status()
        .unwrap();
    assert!(status.success());
    bundle.run();
    let mut host_row = None;
    let mut container_row = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (host_row.is_none() || container_row.is_none()) && Instant::now() < deadline {
        if let Some(line) = ig.next_line(Duration::from_millis(200)) {
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            if line.contains(&marker) {
                host_row = Some(words);
            } else if line.contains("as-nobody") && line.starts_with(&id) {
                container_row = Some(words);
            }
        }
    }
    let host = host_row.expect("the host exec");
    assert_eq!(&host[1..4], ["65534", "nobody", "nogroup"], "the host's names: {host:?}");
    let container = container_row.expect("the container's exec");
    assert_eq!(&container[2..5], ["65534", "65534", "65534"], "the image names no such user: {container:?}");
}

#[test]
fn hostile_names_are_escaped_in_columns_and_exact_in_json() {
    let h = harness();
    require_root();
    let id = unique("igt-hostile");
    // Names come from the bundle's annotations (as containerd's CRI writes them): anything at all.
    let container = format!("c\x1b[31mred\nline\u{7}{}", "x".repeat(64 * 1024));
    let pod = "pod\r\nname\u{9b}2J".to_string();
    let image = "img:\x1b]0;title\x07".to_string();
    let bundle = h.runc_bundle(&id, &["/bin/true", "hostile"], true);
    let annotations = serde_json::json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": container,
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": "ns\u{0}zero",
        "io.kubernetes.cri.image-name": image,
    });
    bundle.edit_config(|cfg| cfg["annotations"] = annotations.clone());
    let json = trace_exec(&[]);
    let columns = IgChild::spawn_ready(
        &[
            "trace",
            "exec",
            "--auto-mount-filesystems",
            "-o",
            "columns=runtime.containerName,k8s.podName,k8s.namespace,runtime.containerImageName,args",
        ],
        "tracing started",
    );
    bundle.run();
    let ev = json.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == "hostile");
    assert_eq!(ev["runtime"]["containerName"], container.as_str(), "JSON keeps the name exactly");
    assert_eq!(ev["k8s"]["podName"], pod.as_str());
    assert_eq!(ev["k8s"]["namespace"], "ns\u{0}zero");
    assert_eq!(ev["runtime"]["containerImageName"], image.as_str());
    let row = columns
        .wait_line(Duration::from_secs(10), |l| l.contains("hostile"))
        .expect("a columns row for the hostile container");
    assert!(!row.chars().any(|c| c.is_control()), "a raw control character in {row:?}");
    assert!(row.contains("c\\x1b[31mred\\nline"), "escaped, visibly: {row:?}");
    // list-containers, as columns (escaped, one line per container) and as JSON and YAML (exact).
    let running = h.runc_bundle(&unique("igt-hostile-run"), &["/bin/sleep", "30"], true);
    running.edit_config(|cfg| cfg["annotations"] = annotations.clone());
    running.run_detached();
    let list = |format: &str| {
        let out = std::process::Command::new(tests::binary("ig"))
            .args(["list-containers", "-o", format, "--k8s-podname", &pod])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 output")
    };
    let text = list("columns");
    assert_eq!(text.lines().count(), 2, "a header and one row: {text:?}");
    assert!(!text.lines().any(|l| l.chars().any(|c| c.is_control())), "{text:?}");
    let listed: Vec<Value> = serde_json::from_str(&list("json")).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["runtime"]["containerName"], container.as_str());
    let from_yaml: Value = serde_norway::from_str(list("yaml").trim_start_matches("---\n")).unwrap();
    assert_eq!(from_yaml, Value::Array(listed));
    running.delete();
}

#[test]
fn list_containers_shows_the_record_with_the_real_mntns() {
    let h = harness();
    require_root();
    let id = unique("igt-list");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let list = list_containers();
    let rec = list.iter().find(|r| r["runtime"]["containerId"] == id.as_str()).expect("listed");
    assert_eq!(rec["pid"], pid);
    assert_eq!(rec["mntns"], mntns_of(pid));
    assert_eq!(rec["runtime"]["runtimeName"], "runc");
    assert_eq!(rec["runtime"]["containerName"], id.as_str());
    assert!(rec["netns"].as_u64().unwrap() > 0);
    assert!(rec["cgroupV2"].as_str().is_some());

    let out = std::process::Command::new(tests::binary("ig")).args(["list-containers"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("RUNTIME.RUNTIMENAME RUNTIME.CONTAINERID"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("runc") && l.ends_with(&id)), "{text}");

    bundle.delete();
    assert!(
        list_containers().iter().all(|r| r["runtime"]["containerId"] != id.as_str()),
        "gone after delete"
    );
}

#[test]
fn watch_shows_created_then_deleted() {
    let h = harness();
    require_root();
    let ig = IgChild::spawn_ready(&["list-containers", "-w", "-o", "json"], "watching containers");
    let id = unique("igt-watch");
    h.runc_bundle(&id, &["/bin/true"], true).run();
    let created = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["container"]["runtime"]["containerId"] == id.as_str(),
    );
    assert_eq!(created["event"], "CREATED");
    assert!(created["container"]["mntns"].as_u64().unwrap() > 0);
    let deleted = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["container"]["runtime"]["containerId"] == id.as_str(),
    );
    assert_eq!(deleted["event"], "DELETED");
}

#[test]
fn a_container_exit_is_known_at_once_from_its_pidfd() {
    let h = harness();
    require_root();
    let ig = IgChild::spawn_ready(&["list-containers", "-w", "-o", "json"], "watching containers");
    let id = unique("igt-pidfd");
    // No poststop hook here: only the pidfd can tell the exit.
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    bundle.edit_config(|cfg| {
        cfg["hooks"].as_object_mut().unwrap().remove("poststop");
    });
    let pid = bundle.run_detached();
    ig.wait_json(Duration::from_secs(10), || {}, |v| v["container"]["runtime"]["containerId"] == id.as_str());
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let deleted = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["container"]["runtime"]["containerId"] == id.as_str(),
    );
    assert_eq!(deleted["event"], "DELETED");
    assert!(killed.elapsed() < Duration::from_secs(1), "DELETED took {:?}", killed.elapsed());
}

#[test]
fn a_tracer_started_later_learns_running_containers_from_the_spool() {
    let h = harness();
    require_root();
    let id = unique("igt-spool");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    bundle.run_detached();
    let ig = trace_exec(&[]);
    let marker = unique("igt-exec-in");
    bundle.exec(&["/bin/true", &marker]);
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == marker.as_str());
    assert_eq!(name_of(&ev), id);
    bundle.delete();
}

#[test]
fn every_running_tracer_gets_the_container() {
    let h = harness();
    let (first, second) = (trace_exec(&[]), trace_exec(&[]));
    let id = unique("igt-two");
    let bundle = h.runc_bundle(&id, &["/bin/true", "two-tracers"], true);
    bundle.run();
    for ig in [&first, &second] {
        let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| name_of(v) == id);
        assert_eq!(ev["args"][1], "two-tracers");
    }
    let log = bundle.hook_log_text();
    let line = log.lines().find(|l| l.contains("prestart") && l.contains("acknowledged")).expect("hook log");
    // "... Create: N of M tracers acknowledged in ..."
    let acked: usize =
        line.split("Create: ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(acked >= 2, "both tracers acknowledged: {line}");
}
