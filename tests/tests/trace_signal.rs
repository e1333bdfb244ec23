//! `ig trace signal` against real signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tests::{IgChild, mntns_of, require_root};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_signal::{SignalEvent, TraceSignal};
use tracer::session::{Session, SessionOptions};

fn start(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "signal", "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

/// A pid no process has: a child that was spawned and reaped.
fn dead_pid() -> i32 {
    let mut c = Command::new("/bin/true").spawn().unwrap();
    let pid = c.id() as i32;
    c.wait().unwrap();
    pid
}

#[test]
fn a_delivered_and_a_failed_signal() {
    let ig = start(&[]);
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let target = child.id() as i32;
    kill(Pid::from_raw(target), Signal::SIGUSR1).unwrap();
    child.wait().unwrap();
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["tpid"] == target);
    assert_eq!(ev["signal"], "SIGUSR1");
    assert_eq!(ev["pid"], std::process::id());
    assert_eq!(ev["ret"], 0);
    assert_eq!(ev["call"], "kill");
    assert_eq!(ev["type"], "normal");

    let gone = dead_pid();
    assert!(kill(Pid::from_raw(gone), Signal::SIGTERM).is_err());
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["tpid"] == gone);
    assert_eq!(ev["ret"], -libc::ESRCH);
    assert_eq!(ev["signal"], "SIGTERM");
}

#[test]
fn signal_and_failed_only_filter_in_the_kernel() {
    let ig = start(&["--signal", "SIGUSR2", "--failed-only"]);
    let gone = dead_pid();
    let _ = kill(Pid::from_raw(gone), Signal::SIGUSR1); // other signal: filtered
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let delivered = child.id();
    kill(Pid::from_raw(delivered as i32), Signal::SIGUSR2).unwrap(); // delivered: filtered
    child.wait().unwrap();
    let _ = kill(Pid::from_raw(gone), Signal::SIGUSR2); // the one to see
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["tpid"] == gone && v["signal"] == "SIGUSR2",
        |v| v["signal"] != "SIGUSR2" || v["ret"] == 0 || v["tpid"] == delivered,
        Duration::from_millis(300),
    );
    assert_eq!(ev["ret"].as_i64(), Some(-(libc::ESRCH as i64)));
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceSignal::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace signal");
    let filter = session.filter();
    // A "container": a shell in its own mount namespace that signals itself.
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", "read a; kill -s WINCH $$; read b"]).stdin(Stdio::piped());
    tests::in_own_mntns(&mut sh);
    let mut child = sh.spawn().unwrap();
    let (sh_pid, mntns) = (child.id() as i32, mntns_of(child.id()));
    filter.add(mntns).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    let host_target = dead_pid();
    let _ = kill(Pid::from_raw(host_target), Signal::SIGWINCH);

    let clock = Clock::now();
    let mut seen: Vec<SignalEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !seen.iter().any(|e| e.tpid == sh_pid) {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inside = seen.iter().find(|e| e.tpid == sh_pid).expect("the signal in the allowed namespace");
    assert_eq!((inside.signal.as_str(), inside.process.pid as i32), ("SIGWINCH", sh_pid));
    assert!(seen.iter().all(|e| e.common.mntns == mntns), "nothing from the host: {seen:?}");
    stdin.write_all(b"\n").unwrap();
    child.wait().unwrap();
}
