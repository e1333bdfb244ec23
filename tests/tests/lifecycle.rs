//! Starting and stopping: the timeout and Ctrl-C stop cleanly and leave no
//! program behind; missing filesystems give an error naming the flag.
//! (One binary on its own: it counts the kernel's programs.)

use std::process::Command;
use std::time::{Duration, Instant};

use tests::{IgChild, binary, require_root, wait_exec_ready};

/// Programs loaded by any ig in the kernel, by name (bpftool would truncate
/// names the same way; the kernel keeps 15 characters).
fn ig_programs() -> usize {
    let out =
        Command::new("bpftool").args(["prog", "show", "--json"]).output().expect("bpftool (apt: bpftool)");
    assert!(out.status.success(), "bpftool prog show failed");
    let progs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    progs
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("ig_")))
        .count()
}

#[test]
fn stops_cleanly_and_detaches() {
    require_root();
    let before = ig_programs();

    let start = Instant::now();
    let out = Command::new(binary("ig"))
        .args(["trace", "exec", "--host", "--auto-mount-filesystems", "-t", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("RUNTIME.CONTAINERNAME"));

    let ig = IgChild::spawn(&["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"]);
    wait_exec_ready(&ig);
    assert!(ig_programs() > before, "the gadget's programs are loaded while it runs");
    let status = ig.interrupt();
    assert!(status.success(), "Ctrl-C is a clean stop: {status:?}");
    assert_eq!(ig_programs(), before, "no program left behind");
}

#[test]
fn missing_tracefs_names_the_flag_and_the_flag_mounts_it() {
    require_root();
    let ig = binary("ig");
    // A private mount namespace without tracefs or debugfs.
    let script = format!(
        "umount -l /sys/kernel/debug/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; \
         umount -l /sys/kernel/tracing 2>/dev/null; \
         {ig} trace exec --host -t 1 > /dev/null 2> /tmp/ig-no-tracefs.err; echo \"first=$?\"; \
         {ig} trace exec --host -t 1 --auto-mount-filesystems > /dev/null; echo \"second=$?\"",
        ig = ig.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = std::fs::read_to_string("/tmp/ig-no-tracefs.err").unwrap_or_default();
    assert!(stdout.contains("first=1"), "without tracefs ig fails: {stdout} {err}");
    assert!(err.contains("tracefs") && err.contains("--auto-mount-filesystems"), "{err}");
    assert!(stdout.contains("second=0"), "with the flag it mounts and runs: {stdout}");
}
