//! `ig trace tcp` against real connections on loopback.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_tcp::{TcpEvent, TraceTcp};
use tracer::session::{Session, SessionOptions};

#[test]
fn connect_accept_and_close_with_both_ends() {
    require_root();
    let ig = IgChild::spawn_ready(
        &["trace", "tcp", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let (_server_side, _) = listener.accept().unwrap();

    let c = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["operation"] == "connect" && v["dport"] == server_port,
    );
    assert_eq!((c["saddr"].as_str(), c["daddr"].as_str()), (Some("127.0.0.1"), Some("127.0.0.1")));
    assert_eq!(c["sport"], client_port);
    assert_eq!(c["ipversion"], 4);
    assert_eq!(c["pid"], std::process::id());
    assert!(c["netnsid"].as_u64().unwrap() > 0);
    let a = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["operation"] == "accept" && v["sport"] == server_port,
    );
    assert_eq!(a["dport"], client_port, "an accepted connection's remote end is the client");
    drop(client);
    let x = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["operation"] == "close" && v["sport"] == client_port,
    );
    assert_eq!(x["dport"], server_port);
}

#[test]
fn ipv6_and_columns() {
    require_root();
    let ig = IgChild::spawn_ready(
        &["trace", "tcp", "--host", "--auto-mount-filesystems", "-o", "columns=t,ip,src,dst", "-F", "ip:6"],
        "tracing started",
    );
    assert_eq!(ig.next_line(Duration::from_secs(5)).unwrap().trim_end(), "T IP SRC                   DST");
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("::1", port)).unwrap();
    let line = ig.next_line(Duration::from_secs(10)).expect("a line for the IPv6 connect");
    let want = format!("C 6  [::1]:{}", client.local_addr().unwrap().port());
    assert!(line.starts_with(&want) && line.trim_end().ends_with(&format!("[::1]:{port}")), "{line:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceTcp::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace tcp");
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
    let (_accepted, _) = listener.accept().unwrap(); // in the host namespace: not traced
    let _host_client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    child.wait().unwrap();

    let clock = Clock::now();
    let mut seen: Vec<TcpEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.iter().any(|e| e.operation == "connect" && e.process.pid == child_pid),
        "the allowed namespace: {seen:?}"
    );
    assert!(seen.iter().all(|e| e.process.pid == child_pid), "nothing from the host: {seen:?}");
}
