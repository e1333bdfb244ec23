//! `ig trace bind` against real sockets.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_bind::{BindEvent, TraceBind};
use tracer::session::{Session, SessionOptions};

fn start(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "bind", "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    IgChild::spawn_ready(&args, "tracing started")
}

/// A port free right now on loopback.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn tcp_and_udp_binds_with_options() {
    let ig = start(&[]);
    let (p1, p2) = (free_port(), free_port());
    // std sets SO_REUSEADDR on listeners.
    let _tcp = TcpListener::bind(("127.0.0.1", p1)).unwrap();
    let _udp = UdpSocket::bind(("::1", p2)).unwrap();
    let tcp = ig.wait_json(Duration::from_secs(10), || {}, |v| v["port"] == p1);
    assert_eq!((tcp["proto"].as_str(), tcp["addr"].as_str()), (Some("TCP"), Some("127.0.0.1")));
    assert_eq!(tcp["opts"], "...R.");
    assert_eq!(tcp["pid"], std::process::id());
    assert_eq!(tcp["ret"], 0);
    let udp = ig.wait_json(Duration::from_secs(10), || {}, |v| v["port"] == p2);
    assert_eq!(
        (udp["proto"].as_str(), udp["addr"].as_str(), udp["opts"].as_str()),
        (Some("UDP"), Some("::1"), Some("....."))
    );
}

#[test]
fn failed_binds_only_with_ignore_errors_false() {
    let shown = start(&["-i", "false"]);
    let hidden = start(&[]);
    let port = free_port();
    let first = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    assert!(UdpSocket::bind(("127.0.0.1", port)).is_err());
    drop(first);
    let failed = shown.wait_json(Duration::from_secs(10), || {}, |v| v["port"] == port && v["ret"] != 0);
    assert_eq!(failed["ret"], -libc::EADDRINUSE);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        seen.extend(
            hidden.collect_json(Duration::from_millis(200)).into_iter().filter(|v| v["port"] == port),
        );
    }
    assert_eq!(seen.len(), 1, "only the successful bind by default: {seen:?}");
    assert_eq!(seen[0]["ret"], 0);
}

#[test]
fn ports_filter() {
    let (wanted, other) = (free_port(), free_port());
    let ig = start(&["-P", &wanted.to_string()]);
    let _a = UdpSocket::bind(("127.0.0.1", other)).unwrap();
    let _b = UdpSocket::bind(("127.0.0.1", wanted)).unwrap();
    ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["port"] == wanted,
        |v| v["port"] != wanted,
        Duration::from_millis(300),
    );
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceBind::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace bind");
    let (inside, outside) = (free_port(), free_port());
    let script = format!(
        "import socket, sys; sys.stdin.readline(); socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', {inside}))"
    );
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]).stdin(std::process::Stdio::piped());
    tests::in_own_mntns(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    session.filter().add(mntns_of(child.id())).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let _host = UdpSocket::bind(("127.0.0.1", outside)).unwrap();
    child.wait().unwrap();

    let clock = Clock::now();
    let mut seen: Vec<BindEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !seen.iter().any(|e| e.port == inside) {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.iter().any(|e| e.port == inside), "the bind in the allowed namespace: {seen:?}");
    assert!(!seen.iter().any(|e| e.port == outside), "the host's bind leaked: {seen:?}");
}
