//! `ig traceloop` with real runc containers: a container that opens a
//! missing file and exits 1 has its last calls shown when it exits (named,
//! with the file's name and ENOENT, its exit_group last), the host's own
//! missing open never among them; a running container's calls are shown
//! when ig stops, its sleep still in progress; a run selecting nobody shows
//! nothing; and through gadgetctl the daemon sends the dump to its client.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{Daemon, IgChild, harness, require_root, unique};

fn is_call_of(v: &Value, id: &str) -> bool {
    v["runtime"]["containerName"] == id && v["syscall"].is_string()
}

/// The calls of one dump: every line is checked against `forbidden`.
fn dump(ig: &IgChild, id: &str, forbidden: impl Fn(&Value) -> bool) -> Vec<Value> {
    let first = ig.wait_json_forbidding(
        Duration::from_secs(30),
        || {},
        |v| is_call_of(v, id),
        &forbidden,
        Duration::from_millis(100),
    );
    let mut calls = vec![first];
    for v in ig.collect_json(Duration::from_secs(1)) {
        assert!(!forbidden(&v), "a call the filter must keep out: {v}");
        calls.push(v);
    }
    calls
}

fn a_missing_open<'a>(calls: &'a [Value], file: &str) -> Option<&'a Value> {
    calls.iter().find(|c| {
        matches!(c["syscall"].as_str(), Some("openat" | "open"))
            && c["parameters"].as_str().unwrap_or("").contains(&format!("\"{file}\""))
    })
}

/// A host process opening its own missing file, so that a leak of host
/// calls into a container's dump would show.
fn host_missing_open(file: &str) {
    let _ = Command::new("cat").arg(file).output();
}

#[test]
fn a_failing_container_shows_its_last_calls_when_it_exits() {
    require_root();
    let h = harness();
    let id = unique("igt-loop");
    let missing = format!("/igt-missing-{id}");
    let host_missing = format!("/tmp/igt-host-missing-{id}");
    let ig = IgChild::spawn_ready(&["traceloop", "-c", &id, "-o", "json"], "tracing started");
    let script = format!("cat {missing}; exit 1");
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", &script], true);
    host_missing_open(&host_missing);
    bundle.create();
    bundle.start();
    let calls = dump(&ig, &id, |v| {
        v["parameters"].as_str().is_some_and(|p| p.contains(&host_missing))
            || (v["syscall"].is_string() && v["runtime"]["containerName"] != id.as_str())
    });
    bundle.delete();

    let open = a_missing_open(&calls, &missing).unwrap_or_else(|| panic!("no open of {missing}: {calls:#?}"));
    assert_eq!(open["ret"], -2, "{open}");
    assert_eq!(open["error"], "ENOENT", "{open}");
    assert!(open["duration"].as_u64().is_some_and(|d| d > 0), "{open}");
    let last = calls.last().unwrap();
    assert_eq!(last["syscall"], "exit_group", "the first process's exit is the last call: {calls:#?}");
    assert!(last["parameters"].as_str().unwrap().ends_with("=1"), "{last}");
    assert!(last["ret"].is_null(), "{last}");
    assert!(calls.len() <= 64 + 4, "at most the ring's 64 and the calls in progress: {}", calls.len());
    let err = ig.stderr_text();
    assert!(err.contains(&format!("container {id} (its first process")), "{err}");
    assert!(err.contains("exited with code 1"), "{err}");
}

#[test]
fn when_stopped_a_running_containers_calls_show_its_sleep_in_progress() {
    require_root();
    let h = harness();
    let id = unique("igt-loop");
    let missing = format!("/igt-stop-{id}");
    let ig = IgChild::spawn_ready(&["traceloop", "-c", &id, "-o", "json", "-t", "6"], "tracing started");
    let nobody =
        IgChild::spawn_ready(&["traceloop", "-c", "igt-nobody", "-o", "json", "-t", "6"], "tracing started");
    let script = format!("cat {missing}; exec sleep 1000");
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", &script], true);
    bundle.run_detached();
    let calls = dump(&ig, &id, |v| v["syscall"].is_string() && v["runtime"]["containerName"] != id.as_str());
    bundle.delete();

    assert!(a_missing_open(&calls, &missing).is_some(), "no open of {missing}: {calls:#?}");
    let sleeping = calls
        .iter()
        .find(|c| c["unfinished"] == true)
        .unwrap_or_else(|| panic!("no call in progress: {calls:#?}"));
    assert!(matches!(sleeping["syscall"].as_str(), Some("clock_nanosleep" | "nanosleep")), "{sleeping}");
    assert_eq!(sleeping["comm"], "sleep", "{sleeping}");
    assert!(sleeping["ret"].is_null(), "{sleeping}");
    assert!(!ig.stderr_text().contains("exited with code"), "{}", ig.stderr_text());

    // Nobody selected: its run ends with nothing recorded.
    let status = nobody.wait_stderr("no syscalls recorded", Duration::from_secs(30));
    assert!(status, "{}", nobody.stderr_text());
    assert!(nobody.collect_json(Duration::from_millis(300)).is_empty());
}

#[test]
fn through_gadgetctl_the_daemon_sends_a_failing_containers_calls() {
    require_root();
    let h = harness();
    let daemon = Daemon::start(&[]);
    let id = unique("igt-loop");
    let missing = format!("/igt-remote-{id}");
    let client = daemon.gadgetctl_ready(&["traceloop", "-c", &id, "-o", "json"]);
    let script = format!("cat {missing}; exit 1");
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", &script], true);
    bundle.create();
    bundle.start();
    let calls =
        dump(&client, &id, |v| v["syscall"].is_string() && v["runtime"]["containerName"] != id.as_str());
    bundle.delete();
    let open = a_missing_open(&calls, &missing).unwrap_or_else(|| panic!("no open of {missing}: {calls:#?}"));
    assert_eq!(open["error"], "ENOENT", "{open}");
    assert!(client.stderr_text().contains("exited with code 1"), "{}", client.stderr_text());
}

#[test]
fn left_running_in_the_daemon_it_writes_a_failing_containers_calls_to_its_file() {
    require_root();
    let h = harness();
    let dir = std::env::temp_dir().join(unique("igt-loop-headless"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("loop.json");
    let daemon = Daemon::start_with_state(Some(&dir.join("state")), &[]);
    let id = unique("igt-loop");
    let missing = format!("/igt-headless-{id}");
    let out = daemon.gadgetctl(&[
        "run",
        "--detach",
        "traceloop",
        "-c",
        &id,
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(name.starts_with("traceloop-"), "a name from the gadget's words: {name}");
    let script = format!("cat {missing}; exit 1");
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", &script], true);
    bundle.create();
    bundle.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let calls: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        if a_missing_open(&calls, &missing).is_some() {
            break calls;
        }
        assert!(std::time::Instant::now() < deadline, "no dump in {}: {text}", file.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    bundle.delete();
    assert!(calls.iter().all(|c| c["runtime"]["containerName"] == id.as_str()), "{calls:#?}");
    assert!(daemon.gadgetctl(&["delete", &name]).status.success());
}
