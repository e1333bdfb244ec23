//! Headless instances on `ig daemon`: `gadgetctl run --detach` keeps a
//! gadget running with no client, writing its file; it survives a daemon
//! restart and sees containers started after it; `attach` streams it and
//! detaching leaves it running; `delete` stops it and frees its programs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{Daemon, harness, require_root, unique};

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "gadgetctl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "gadgetctl should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn listed(d: &Daemon) -> Vec<Value> {
    serde_json::from_str(&ok(d.gadgetctl(&["list", "-o", "json"]))).expect("list -o json is JSON")
}

/// Waits until the only instance has `status`; returns its row.
fn wait_status(d: &Daemon, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = listed(d);
        assert_eq!(rows.len(), 1, "{rows:?}");
        if rows[0]["status"] == status {
            return rows[0].clone();
        }
        assert!(Instant::now() < deadline, "never {status}: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The events in an output file; every line must be whole JSON.
fn events_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

/// Waits until `path` holds the exec of `/bin/echo MARKER` in `container`.
fn wait_for_exec(path: &Path, container: &str, marker: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = events_in(path).into_iter().find(|v| v["args"][1] == marker);
        if let Some(v) = found {
            assert_eq!(v["runtime"]["containerName"], container, "{v}");
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no exec of {marker} in {}: {:?}",
            path.display(),
            events_in(path)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bpf_programs_of(pid: u32) -> usize {
    let mut ids = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            ids.extend(
                text.lines().filter_map(|l| l.strip_prefix("prog_id:")).map(|id| id.trim().to_string()),
            );
        }
    }
    ids.len()
}

#[test]
fn an_instance_survives_a_restart_sees_new_containers_and_is_deleted() {
    let h = harness();
    require_root();
    let dir = std::env::temp_dir().join(unique("igt-instances"));
    std::fs::create_dir_all(&dir).unwrap();
    let (state, file) = (dir.join("state"), dir.join("exec.json"));
    let (a, b, c) = (unique("igt-ia"), unique("igt-ib"), unique("igt-ic"));
    let name = unique("exec");

    let mut d = Daemon::start_with_state(Some(&state), &[]);
    let idle = bpf_programs_of(d.pid());
    let out = d.gadgetctl(&[
        "run",
        "--detach",
        "--name",
        &name,
        "trace",
        "exec",
        "-c",
        &format!("{a},{b},{c}"),
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(ok(out).trim(), name, "run --detach answers with the name");
    let rows = listed(&d);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], name.as_str());
    assert_eq!(rows[0]["gadget"], "trace exec");
    assert_eq!(rows[0]["status"], "running");
    assert!(bpf_programs_of(d.pid()) > idle, "the instance's programs are loaded with no client");

    h.runc_bundle(&a, &["/bin/echo", "from-a"], true).run();
    wait_for_exec(&file, &a, "from-a");

    // A restart: the instance is persisted and resumed.
    d.stop();
    assert!(state.join("instances").join(format!("{name}.json")).exists(), "kept across the stop");
    let before = events_in(&file).len();
    let d = Daemon::start_with_state(Some(&state), &[]);
    let row = wait_status(&d, "running");
    assert_eq!(row["name"], name.as_str());
    h.runc_bundle(&b, &["/bin/echo", "from-b"], true).run();
    wait_for_exec(&file, &b, "from-b");
    let events = events_in(&file);
    assert!(events.len() > before, "the resumed instance appends to the same file");
    assert_eq!(events.iter().filter(|v| v["args"][1] == "from-a").count(), 1, "nothing written twice");

    // attach streams it; leaving does not stop it.
    let attach = d.gadgetctl_ready(&["attach", &name]);
    let mut ran = false;
    let ev = attach.wait_json(
        Duration::from_secs(20),
        || {
            if !std::mem::replace(&mut ran, true) {
                h.runc_bundle(&c, &["/bin/echo", "from-c"], true).run();
            }
        },
        |v| v["args"][1] == "from-c",
    );
    assert_eq!(ev["runtime"]["containerName"], c.as_str());
    drop(attach);
    wait_for_exec(&file, &c, "from-c");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(listed(&d)[0]["status"], "running", "detaching left it running");

    // delete stops it, frees its programs and forgets it.
    assert_eq!(ok(d.gadgetctl(&["delete", &name])).trim(), name);
    assert!(listed(&d).is_empty());
    assert!(!state.join("instances").join(format!("{name}.json")).exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while bpf_programs_of(d.pid()) > idle && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bpf_programs_of(d.pid()), idle, "the instance's programs are gone");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_instances_are_refused_with_a_reason_and_kept_nowhere() {
    require_root();
    let d = Daemon::start(&[]);
    let out = d.gadgetctl(&["run", "--detach", "trace", "exec", "--comm"]);
    assert_eq!(out.status.code(), Some(2), "checked by gadgetctl first: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--comm"), "{out:?}");
    let err = failed(d.gadgetctl(&["run", "--detach", "trace", "exec", "-o", "yaml"]));
    assert!(err.contains("JSON lines"), "{err}");
    let err = failed(d.gadgetctl(&["run", "--detach", "snapshot", "process"]));
    assert!(err.contains("only trace, top and traceloop gadgets run headless"), "{err}");
    let err = failed(d.gadgetctl(&["run", "--detach", "--name", "../x", "trace", "exec"]));
    assert!(err.contains("not a valid name"), "{err}");
    let err = failed(d.gadgetctl(&["run", "--detach", "trace", "exec", "--output-file", "/proc/igt/nope"]));
    assert!(err.contains("/proc/igt/nope"), "the gadget's own start error comes back: {err}");
    assert!(listed(&d).is_empty(), "nothing kept of what failed: {:?}", listed(&d));

    let name =
        ok(d.gadgetctl(&["run", "--detach", "--name", "twice", "trace", "open", "--comm", "igt-none"]));
    assert_eq!(name.trim(), "twice");
    let err = failed(d.gadgetctl(&["run", "--detach", "--name", "twice", "trace", "exec"]));
    assert!(err.contains("already exists"), "{err}");
    let err = failed(d.gadgetctl(&["attach", "nosuch"]));
    assert!(err.contains("no instance named \"nosuch\""), "{err}");
    let err = failed(d.gadgetctl(&["delete", "nosuch", "twice"]));
    assert!(err.contains("no instance named \"nosuch\""), "{err}");
    assert!(listed(&d).is_empty(), "the other name was still deleted");

    // A generated name, and the table.
    let name = ok(d.gadgetctl(&["run", "--detach", "top", "file", "--comm", "igt-none"]));
    assert!(name.starts_with("top-file-"), "{name}");
    let table = ok(d.gadgetctl(&["list"]));
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "GADGET", "AGE", "ARGS", "STATUS"]
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with(name.trim()) && row.contains("top file") && row.ends_with("running"), "{table}");
}

#[test]
fn an_instance_that_ends_by_itself_is_listed_but_not_resumed() {
    require_root();
    let dir = std::env::temp_dir().join(unique("igt-instances"));
    let state = dir.join("state");
    let mut d = Daemon::start_with_state(Some(&state), &[]);
    ok(d.gadgetctl(&[
        "run", "--detach", "--name", "short", "trace", "exec", "--comm", "igt-none", "-t", "1",
    ]));
    wait_status(&d, "stopped");
    assert!(!state.join("instances/short.json").exists(), "its -t passed: not resumed");
    d.stop();
    let d = Daemon::start_with_state(Some(&state), &[]);
    assert!(listed(&d).is_empty(), "{:?}", listed(&d));
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
