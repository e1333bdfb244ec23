//! The process filters every gadget takes (`--pid`, `--tid`, `--uid`,
//! `--gid`, `--comm`), applied in the kernel: in each test the process the
//! filter leaves out acts first, and every line ig prints is examined.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, binary, require_root, unique};

fn start(gadget: &str, extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", gadget, "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

fn has_arg(v: &Value, marker: &str) -> bool {
    v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker))
}

#[test]
fn comm_keeps_one_program() {
    let marker = unique("comm");
    let ig = start("exec", &["--comm", "true"]);
    Command::new("/bin/echo").arg(&marker).output().unwrap();
    Command::new("/bin/true").arg(&marker).status().unwrap();
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| has_arg(v, &marker),
        |v| v["comm"] != "true",
        Duration::from_millis(500),
    );
    assert_eq!(ev["args"][0], "/bin/true");
}

#[test]
fn uid_and_gid_keep_one_user() {
    let marker = unique("uid");
    let ig = start("exec", &["--uid", "65534", "--gid", "65534"]);
    // root, then nobody with root's group, then nobody:nogroup.
    Command::new("/bin/true").arg(&marker).status().unwrap();
    let as_user = |group: &str| {
        let status = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", group, "--clear-groups", "/bin/true", &marker])
            .status()
            .unwrap();
        assert!(status.success());
    };
    as_user("0");
    as_user("65534");
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| has_arg(v, &marker) && v["args"][0] == "/bin/true",
        |v| v["uid"] != 65534 || v["gid"] != 65534,
        Duration::from_millis(500),
    );
    assert_eq!((ev["uid"].as_u64(), ev["gid"].as_u64()), (Some(65534), Some(65534)));
}

#[test]
fn pid_keeps_one_process_and_tid_one_thread() {
    let path = std::env::temp_dir().join(unique("pid-open"));
    std::fs::write(&path, b"").unwrap();
    let p = path.to_str().unwrap().to_string();
    // --pid: a shell that opens the file when told, after another process did.
    let mut sh = Command::new("/bin/sh")
        .args(["-c", &format!("read go; exec 3<{p}")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = sh.id().to_string();
    let ig = start("open", &["--pid", &pid]);
    Command::new("/bin/cat").arg(&p).output().unwrap();
    std::io::Write::write_all(sh.stdin.as_mut().unwrap(), b"\n").unwrap();
    sh.wait().unwrap();
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["path"] == p.as_str(),
        |v| v["pid"].as_u64() != Some(u64::from(sh.id())),
        Duration::from_millis(500),
    );
    // The shell itself opened it (a redirection).
    assert_eq!(ev["pid"].as_u64(), Some(u64::from(sh.id())));
    drop(ig);

    // --tid: this process's main thread opens first, then one other thread.
    let (tx, rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let opener = {
        let p = p.clone();
        std::thread::spawn(move || {
            // SAFETY: gettid has no arguments and cannot fail.
            tx.send(unsafe { libc::gettid() }).unwrap();
            go_rx.recv().unwrap();
            std::fs::File::open(&p).unwrap();
        })
    };
    let tid = rx.recv().unwrap();
    let ig = start("open", &["--tid", &tid.to_string()]);
    std::fs::File::open(&p).unwrap();
    go_tx.send(()).unwrap();
    opener.join().unwrap();
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["path"] == p.as_str(),
        |v| v["tid"].as_i64() != Some(i64::from(tid)),
        Duration::from_millis(500),
    );
    assert_eq!(ev["pid"].as_u64(), Some(u64::from(std::process::id())));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn snapshot_process_lists_only_the_filtered_processes() {
    require_root();
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let out = Command::new(binary("ig"))
        .args(["snapshot", "process", "--host", "-o", "json", "--auto-mount-filesystems", "--comm", "sleep"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.iter().any(|r| r["pid"].as_u64() == Some(u64::from(sleeper.id()))), "the sleeper is listed");
    assert!(rows.iter().all(|r| r["comm"] == "sleep"), "only sleep: {rows:?}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
