//! The mount-namespace filter in the kernel: a process in its own mount
//! namespace (`unshare(CLONE_NEWNS)`) is traced only while its namespace is in
//! the filter map; a process outside it never is.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{mntns_of, require_root, unique};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_exec::{ExecEvent, TraceExec};
use tracer::session::{Session, SessionOptions};

/// Drains the session for `period`, returning the args of every exec seen.
async fn execs_for(session: &mut Session, gadget: &TraceExec, period: Duration) -> Vec<ExecEvent> {
    let clock = Clock::now();
    let deadline = Instant::now() + period;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        session.drain(|raw| out.push(gadget.decode(raw, &clock).expect("decodes")));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

fn has_arg(events: &[ExecEvent], marker: &str) -> bool {
    events.iter().any(|e| e.args.iter().any(|a| a == marker))
}

#[tokio::test(flavor = "current_thread")]
async fn only_namespaces_in_the_map_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceExec::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace exec");
    let filter = session.filter();

    let (inside1, inside2, host) = (unique("ig-in"), unique("ig-in-after"), unique("ig-host"));
    // A "container": a shell in a new mount namespace that runs one exec per line it reads.
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("read a; /bin/true {inside1}; read b; /bin/true {inside2}; read c"))
        .stdin(Stdio::piped());
    // SAFETY: unshare is async-signal-safe; nothing else runs between fork and exec.
    tests::in_own_mntns(&mut sh);
    let mut child = sh.spawn().expect("spawn sh");
    let mntns = mntns_of(child.id());
    assert_ne!(mntns, mntns_of(std::process::id()), "the child has its own mount namespace");
    let mut stdin = child.stdin.take().unwrap();

    filter.add(mntns).expect("allow mntns");
    stdin.write_all(b"\n").unwrap();
    Command::new("/bin/true").arg(&host).status().unwrap();
    let seen = execs_for(&mut session, &gadget, Duration::from_secs(2)).await;
    assert!(has_arg(&seen, &inside1), "the exec in the allowed namespace is traced");
    assert!(!has_arg(&seen, &host), "a host exec is not traced while filtering");
    assert!(seen.iter().all(|e| e.common.mntns == mntns), "only the allowed namespace");

    filter.remove(mntns).expect("disallow mntns");
    filter.remove(mntns).expect("removing twice is fine");
    stdin.write_all(b"\n").unwrap();
    let seen = execs_for(&mut session, &gadget, Duration::from_secs(1)).await;
    assert!(!has_arg(&seen, &inside2), "after removal the namespace is not traced");

    stdin.write_all(b"\n").unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_filter_every_namespace_is_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceExec::default();
    let opts = SessionOptions { filter: tracer::session::FilterMode::Off, ..Default::default() };
    let mut session = Session::load(&gadget, &opts).expect("load trace exec");
    let marker = unique("ig-nofilter");
    let mut cmd = Command::new("/bin/true");
    cmd.arg(&marker);
    tests::in_own_mntns(&mut cmd);
    cmd.status().unwrap();
    let seen = execs_for(&mut session, &gadget, Duration::from_secs(1)).await;
    assert!(has_arg(&seen, &marker));
}

/// `--host` with a selection: the map lists the containers left out; those
/// are dropped, the host and every namespace not listed are traced.
#[tokio::test(flavor = "current_thread")]
async fn in_except_mode_only_the_listed_namespaces_are_dropped() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceExec::default();
    let opts = SessionOptions { filter: tracer::session::FilterMode::Except, ..Default::default() };
    let mut session = Session::load(&gadget, &opts).expect("load trace exec");
    let (left_out, other, host) = (unique("ig-left-out"), unique("ig-other"), unique("ig-host"));
    let in_own_ns = |marker: &str| {
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c").arg(format!("read a; /bin/true {marker}")).stdin(Stdio::piped());
        tests::in_own_mntns(&mut sh);
        sh.spawn().expect("spawn sh")
    };
    let (mut listed, mut unlisted) = (in_own_ns(&left_out), in_own_ns(&other));
    session.filter().add(mntns_of(listed.id())).expect("list a namespace");
    for child in [&mut listed, &mut unlisted] {
        child.stdin.take().unwrap().write_all(b"\n").unwrap();
        child.wait().unwrap();
    }
    Command::new("/bin/true").arg(&host).status().unwrap();
    let seen = execs_for(&mut session, &gadget, Duration::from_secs(2)).await;
    assert!(has_arg(&seen, &host), "a host exec is traced");
    assert!(has_arg(&seen, &other), "an exec in a namespace not listed is traced");
    assert!(!has_arg(&seen, &left_out), "the listed namespace is dropped");
}
