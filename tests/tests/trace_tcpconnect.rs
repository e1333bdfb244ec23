//! `ig trace tcpconnect` against real connections on loopback.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_tcpconnect::{TcpconnectEvent, TraceTcpconnect};
use tracer::session::{Session, SessionOptions};

fn start(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "tcpconnect", "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

/// A non-blocking connect from Python: connect() returns EINPROGRESS.
fn nonblocking_connect(port: u16) {
    let script = format!(
        "import socket, time\nn = socket.socket(); n.setblocking(False)\ntry: n.connect(('127.0.0.1', {port}))\nexcept BlockingIOError: pass\ntime.sleep(0.2)"
    );
    assert!(Command::new("/usr/bin/python3").args(["-c", &script]).status().unwrap().success());
}

#[test]
fn connections_with_and_without_latency() {
    let plain = start(&[]);
    let timed = start(&["--latency"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let sport = client.local_addr().unwrap().port();

    let ev = plain.wait_json(Duration::from_secs(10), || {}, |v| v["sport"] == sport);
    assert_eq!((ev["daddr"].as_str(), ev["dport"].as_u64()), (Some("127.0.0.1"), Some(port as u64)));
    assert_eq!(ev["latency"], 0, "no latency without --latency");
    assert_eq!(ev["pid"], std::process::id());
    let ev = timed.wait_json(Duration::from_secs(10), || {}, |v| v["sport"] == sport);
    assert!(ev["latency"].as_u64().unwrap() > 0, "{ev}");

    nonblocking_connect(port);
    let ev =
        timed.wait_json(Duration::from_secs(10), || {}, |v| v["comm"] == "python3" && v["dport"] == port);
    assert!(ev["latency"].as_u64().unwrap() > 0, "the non-blocking connect is timed too: {ev}");
}

#[test]
fn min_keeps_only_slow_connections_and_latency_is_a_column() {
    let slow_only = start(&["--min", "10s"]);
    let columns = IgChild::spawn_ready(
        &[
            "trace",
            "tcpconnect",
            "--host",
            "--auto-mount-filesystems",
            "--latency",
            "-o",
            "columns=comm,latency",
        ],
        "tracing started",
    );
    assert_eq!(columns.next_line(Duration::from_secs(5)).unwrap().trim_end(), "COMM             LATENCY");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let line = columns.next_line(Duration::from_secs(10)).expect("a row");
    assert!(line.trim_end().ends_with("µs") || line.trim_end().ends_with("ms"), "{line:?}");
    let fast = slow_only.collect_json(Duration::from_secs(1));
    assert!(fast.iter().all(|v| v["dport"] != port), "a loopback connect is not 10 s slow: {fast:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceTcpconnect::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace tcpconnect");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script =
        format!("import socket, sys; sys.stdin.readline(); socket.create_connection(('127.0.0.1', {port}))");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]).stdin(std::process::Stdio::piped());
    tests::in_own_mntns(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let child_pid = child.id();
    session.filter().add(mntns_of(child_pid)).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let _host_client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    child.wait().unwrap();

    let clock = Clock::now();
    let mut seen: Vec<TcpconnectEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.iter().any(|e| e.process.pid == child_pid && e.dport == port),
        "the allowed namespace: {seen:?}"
    );
    assert!(seen.iter().all(|e| e.process.pid == child_pid), "nothing from the host: {seen:?}");
}
