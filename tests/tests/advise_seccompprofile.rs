//! `ig advise seccomp-profile` with real podman containers (runc applies
//! the profiles): the profile recorded from one run lets the same workload
//! run again under it with the same output, and the same profile without
//! one of the syscalls it used makes that call fail with EPERM. Host
//! processes and other containers are not recorded. Through gadgetctl,
//! Ctrl-C stops the run on the daemon and the profile still comes back.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, harness, podman_hooks_dir, require_root, unique};

/// The workload: makes a directory (mkdir), writes and reads a file.
const SCRIPT: &str = "mkdir /tmp/made && echo seccomp-ok > /tmp/made/f && cat /tmp/made/f";

fn podman(hooks: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--hooks-dir")
        .arg(hooks)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podman (run tests/harness/setup-runtimes.sh)")
}

/// Runs the workload in a new container named `name`, with `extra` podman
/// flags.
fn workload(hooks: &Path, name: &str, extra: &[&str]) -> Output {
    let image = harness().image;
    let mut args = vec!["run", "--rm", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&image, "sh", "-c", SCRIPT]);
    podman(hooks, &args)
}

fn advise(args: &[&str]) -> IgChild {
    let mut all = vec!["advise", "seccomp-profile"];
    all.extend_from_slice(args);
    IgChild::spawn_ready(&all, "tracing started")
}

/// Stops a run as Ctrl-C does, so that it writes its report.
fn stop(ig: &IgChild) {
    let pid = nix::unistd::Pid::from_raw(ig.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT to ig");
}

fn allowed(profile: &Value) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .unwrap_or_else(|| panic!("no syscalls: {profile}"))
        .iter()
        .flat_map(|rule| {
            assert_eq!(rule["action"], "SCMP_ACT_ALLOW", "{rule}");
            rule["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn a_recorded_profile_runs_the_workload_again_and_without_mkdir_it_fails_with_eperm() {
    require_root();
    let hooks = podman_hooks_dir();
    let name = unique("igt-seccomp");
    let dir = std::env::temp_dir().join(unique("igt-seccomp-profiles"));
    let to_dir = advise(&["-c", &name, "--output-dir", dir.to_str().unwrap()]);
    let json = advise(&["-c", &name, "-o", "json"]);
    let plain = advise(&["-c", &name]);
    let nobody = advise(&["-c", "igt-nobody"]);

    let first = workload(&hooks, &name, &[]);
    assert!(first.status.success(), "the workload: {}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "seccomp-ok");
    // The host makes a syscall the workload never does, while recording.
    let synced = Command::new("sync").args(["-f", "/tmp"]).status().expect("sync");
    assert!(synced.success());
    for ig in [&to_dir, &json, &plain, &nobody] {
        stop(ig);
    }

    // --output-dir: DIR/<container>.json, told on stderr.
    assert!(to_dir.wait_stderr("profile written to", Duration::from_secs(20)), "{}", to_dir.stderr_text());
    let path = dir.join(format!("{name}.json"));
    let profile: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(profile["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
    let names = allowed(&profile);
    for call in ["execve", "mkdir", "openat", "write", "read"] {
        assert!(names.contains(&call.to_string()), "{call} missing from {names:?}");
    }
    assert!(!names.contains(&"syncfs".to_string()), "the host's syncfs was recorded: {names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "names sorted, each once");

    // -o json: one row per container, its labels and the same profile.
    let row = json.wait_json(Duration::from_secs(20), || {}, |v| v["profile"].is_object());
    assert_eq!(row["runtime"]["containerName"], name.as_str(), "{row}");
    assert_eq!(row["runtime"]["runtimeName"], "podman", "{row}");
    assert_eq!(row["profile"], profile);

    // Columns (the default): the profile alone on stdout, for redirecting.
    let mut text = String::new();
    while let Some(line) = plain.next_line(Duration::from_secs(if text.is_empty() { 20 } else { 2 })) {
        text.push_str(&line);
        text.push('\n');
    }
    let printed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(printed, profile);
    assert!(
        plain.wait_stderr(&format!("container {name}: {} syscalls", names.len()), Duration::from_secs(5))
    );

    assert!(
        nobody.wait_stderr("no syscalls recorded", Duration::from_secs(20)),
        "another container's run recorded something: {}",
        nobody.stderr_text()
    );

    // Run again under the profile: the same.
    let again = workload(
        &hooks,
        &unique("igt-seccomp-again"),
        &["--security-opt", &format!("seccomp={}", path.display())],
    );
    assert!(again.status.success(), "under its own profile: {}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "seccomp-ok");

    // Without mkdir (and mkdirat): mkdir is refused with EPERM.
    let mut strict = profile.clone();
    for rule in strict["syscalls"].as_array_mut().unwrap() {
        rule["names"].as_array_mut().unwrap().retain(|n| n != "mkdir" && n != "mkdirat");
    }
    let strict_path = dir.join("without-mkdir.json");
    std::fs::write(&strict_path, serde_json::to_vec(&strict).unwrap()).unwrap();
    let refused = workload(
        &hooks,
        &unique("igt-seccomp-strict"),
        &["--security-opt", &format!("seccomp={}", strict_path.display())],
    );
    assert!(!refused.status.success(), "mkdir ran without being allowed");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("mkdir") && err.contains("Operation not permitted"), "{err}");
    assert!(refused.stdout.is_empty());

    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&hooks);
}

#[test]
fn rows_and_columns_flags_are_refused() {
    for (args, why) in [
        (&["-F", "pid:1"][..], "-F: a seccomp profile has no rows"),
        (&["-o", "columns=pid"], "has no columns"),
        (&["-o", "folded"], "-o folded"),
    ] {
        let mut all = vec!["advise", "seccomp-profile"];
        all.extend_from_slice(args);
        let out = Command::new(tests::binary("ig")).args(&all).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[test]
fn through_gadgetctl_the_profile_comes_back_to_the_client() {
    require_root();
    let hooks = podman_hooks_dir();
    let daemon = tests::Daemon::start(&[]);
    let name = unique("igt-seccomp-remote");
    let remote =
        daemon.gadgetctl_ready(&["advise", "seccomp-profile", "-c", &name, "-o", "json", "-t", "20"]);
    let run = workload(&hooks, &name, &[]);
    assert!(run.status.success(), "the workload: {}", String::from_utf8_lossy(&run.stderr));
    stop(&remote);
    let row = remote.wait_json(Duration::from_secs(30), || {}, |v| v["profile"].is_object());
    assert_eq!(row["runtime"]["containerName"], name.as_str(), "{row}");
    let names = allowed(&row["profile"]);
    assert!(names.contains(&"mkdir".to_string()) && names.contains(&"execve".to_string()), "{names:?}");
    let _ = std::fs::remove_dir_all(&hooks);
}
