//! `ig trace capabilities` against real capability checks: chown to another
//! owner needs CAP_CHOWN, which root has and nobody has not.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root, unique};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_capabilities::{CapabilitiesEvent, TraceCapabilities};
use tracer::session::{Session, SessionOptions};

fn start(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "capabilities", "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

/// Runs `chown 4321 FILE` as `uid` and returns its pid.
fn chown_as(uid: u32, file: &std::path::Path) -> u32 {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", &uid.to_string(), "--regid", "0", "--clear-groups", "chown", "4321"]).arg(file);
    let mut child = c.stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn granted_and_denied_chown_checks_with_their_syscall() {
    let ig = start(&[]);
    let file = std::env::temp_dir().join(unique("igt-cap"));
    std::fs::write(&file, b"x").unwrap();
    let root_pid = chown_as(0, &file);
    let nobody_pid = chown_as(65534, &file);
    let chown_check = |pid: u32| move |v: &serde_json::Value| v["pid"] == pid && v["capName"] == "CAP_CHOWN";
    let granted = ig.wait_json(Duration::from_secs(10), || {}, chown_check(root_pid));
    assert_eq!(granted["verdict"], "Allow", "{granted}");
    assert_eq!(granted["cap"], 0);
    assert_eq!(granted["syscall"], "fchownat");
    assert_eq!(granted["comm"], "chown");
    assert_eq!(granted["uid"], 0);
    let denied = ig.wait_json(Duration::from_secs(10), || {}, chown_check(nobody_pid));
    assert_eq!(denied["verdict"], "Deny", "{denied}");
    assert_eq!(denied["uid"], 65534);
    assert!(denied["audit"].is_null(), "the tracepoint does not say whether it is audited");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn unique_reports_a_process_capability_pair_once() {
    // One chown process, three files: three CAP_CHOWN checks, one report.
    let files: Vec<_> = (0..3).map(|i| std::env::temp_dir().join(unique(&format!("igt-cap-u{i}")))).collect();
    for f in &files {
        std::fs::write(f, b"x").unwrap();
    }
    let run = |ig: &IgChild| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "0", "--clear-groups", "chown", "4321"]).args(&files);
        let mut child = c.stderr(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        ig.collect_json(Duration::from_secs(2))
            .iter()
            .filter(|v| v["pid"] == pid && v["capName"] == "CAP_CHOWN")
            .count()
    };
    assert_eq!(run(&start(&[])), 3, "every check without --unique");
    assert_eq!(run(&start(&["--unique"])), 1, "once with --unique");
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceCapabilities::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace capabilities");
    let filter = session.filter();
    let file = std::env::temp_dir().join(unique("igt-cap-ns"));
    std::fs::write(&file, b"x").unwrap();
    // A "container": a shell in its own mount namespace that chowns a file.
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg(format!("read a; chown 77 {}; read b", file.display())).stdin(Stdio::piped());
    tests::in_own_mntns(&mut sh);
    let mut child = sh.spawn().unwrap();
    let mntns = mntns_of(child.id());
    filter.add(mntns).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    chown_as(0, &file); // on the host: not to be seen

    let clock = Clock::now();
    let mut seen: Vec<CapabilitiesEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !seen.iter().any(|e| e.cap_name == "CAP_CHOWN") {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inside = seen.iter().find(|e| e.cap_name == "CAP_CHOWN").expect("the check in the allowed namespace");
    assert_eq!(inside.verdict, "Allow");
    assert!(seen.iter().all(|e| e.common.mntns == mntns), "nothing from the host");
    stdin.write_all(b"\n").unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&file);
}
