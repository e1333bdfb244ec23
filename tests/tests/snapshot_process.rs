//! `ig snapshot process` against the real task list.

use std::process::{Command, Stdio};

use serde_json::Value;
use tests::{binary, mntns_of, require_root};
use tracer::gadgets::snapshot_process::SnapshotProcess;

fn snapshot(args: &[&str]) -> Vec<Value> {
    let out = Command::new(binary("ig"))
        .args(["snapshot", "process", "--auto-mount-filesystems", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

#[test]
fn lists_this_process_and_its_child_with_host() {
    require_root();
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let all = snapshot(&["--host"]);
    let me = std::process::id();
    let entry = all.iter().find(|e| e["pid"] == child.id()).expect("the child is listed");
    assert_eq!(entry["comm"], "sleep");
    assert_eq!(entry["ppid"], me);
    assert_eq!((entry["uid"].as_u64(), entry["gid"].as_u64()), (Some(0), Some(0)));
    assert_eq!(entry["mountnsid"], mntns_of(child.id()));
    assert!(all.iter().any(|e| e["pid"] == me), "this test process is listed");
    assert!(all.iter().all(|e| e["pid"] == e["tid"]), "one entry per process without --threads");

    // This test binary runs several threads: --threads lists them.
    let threads = snapshot(&["--host", "--threads"]);
    let mine = threads.iter().filter(|e| e["pid"] == me).count();
    let in_proc = std::fs::read_dir(format!("/proc/{me}/task")).unwrap().count();
    assert!(mine >= 2 && mine <= in_proc + 2, "{mine} threads listed, /proc has {in_proc}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn without_host_only_container_processes_and_the_kernel_filters_by_mntns() {
    require_root();
    // No container sources here: without --host nothing is listed.
    assert!(
        snapshot(&["-c", "no-such-container"]).is_empty(),
        "a container that does not exist selects nothing"
    );
    let mut inside = Command::new("/bin/sleep");
    inside.arg("30").stdout(Stdio::null());
    tests::in_own_mntns(&mut inside);
    let mut inside = inside.spawn().unwrap();
    let mntns = mntns_of(inside.id());
    let listed = SnapshotProcess::default().take(Some(&[mntns])).expect("snapshot");
    assert_eq!(
        listed.iter().map(|e| e.process.pid).collect::<Vec<_>>(),
        vec![inside.id()],
        "only the allowed namespace"
    );
    inside.kill().unwrap();
    inside.wait().unwrap();
}
