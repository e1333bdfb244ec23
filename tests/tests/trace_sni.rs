//! `ig trace sni` with real TLS clients: busybox's ssl_client in a container
//! (its own mount and network namespaces) and Python's ssl module on the host.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tests::{IgChild, harness, join_netns, mntns_of, require_root, unique};

/// A TCP server on 127.0.0.1:`port` in the network namespace at `netns`
/// (the caller's when None) that reads what one client sends and hangs up:
/// a ClientHello needs nobody to answer it.
fn hello_sink(netns: Option<PathBuf>, port: u16) -> (u16, std::thread::JoinHandle<usize>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        if let Some(path) = &netns {
            join_netns(path);
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the hello sink");
        tx.send(listener.local_addr().unwrap().port()).unwrap();
        let (mut conn, _) = listener.accept().expect("a client");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8192];
        conn.read(&mut buf).unwrap_or(0)
    });
    (rx.recv_timeout(Duration::from_secs(5)).expect("sink listening"), t)
}

/// Python's TLS client asking for `name` at 127.0.0.1:`port`; its pid.
fn python_hello(name: &str, port: u16) -> u32 {
    let script = format!(
        "import socket, ssl\n\
         s = socket.create_connection(('127.0.0.1', {port}))\n\
         try:\n    ssl.create_default_context().wrap_socket(s, server_hostname='{name}')\n\
         except Exception:\n    pass\n"
    );
    let mut child = Command::new("/usr/bin/python3").args(["-c", &script]).spawn().expect("python3");
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

#[test]
fn a_containers_tls_client_and_not_the_hosts() {
    require_root();
    let h = harness();
    let ig =
        IgChild::spawn_ready(&["trace", "sni", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    let id = unique("igt-sni");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let (port, sink) = hello_sink(Some(PathBuf::from(format!("/proc/{pid}/ns/net"))), 8443);
    // busybox nc connects and runs ssl_client on the socket (fd 0).
    let _ = bundle.exec_output(&[
        "nc",
        "-w",
        "5",
        "127.0.0.1",
        &port.to_string(),
        "-e",
        "ssl_client",
        "-s",
        "0",
        "-n",
        "sni.container.test",
    ]);
    assert!(sink.join().unwrap() > 0, "the sink got the hello");
    // A host client at the same time is not a container's.
    let (host_port, host_sink) = hello_sink(None, 0);
    python_hello("sni.host.test", host_port);
    host_sink.join().unwrap();

    let e = ig.wait_json(Duration::from_secs(10), || {}, |v| v["name"] == "sni.container.test");
    assert_eq!(e["runtime"]["containerName"], id.as_str());
    assert_eq!(e["comm"], "ssl_client");
    assert_eq!(e["mountnsid"], mntns_of(pid));
    assert!(e["pid"].as_u64().unwrap() > 0 && e["tid"].as_u64().unwrap() > 0);
    let rest = ig.collect_json(Duration::from_millis(500));
    assert!(rest.iter().all(|v| v["name"] != "sni.host.test"), "a host hello without --host: {rest:?}");
    bundle.delete();
}

#[test]
fn host_client_in_columns() {
    require_root();
    let ig = IgChild::spawn_ready(&["trace", "sni", "--host", "--auto-mount-filesystems"], "tracing started");
    let header = ig.next_line(Duration::from_secs(5)).expect("header");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["RUNTIME.CONTAINERNAME", "PID", "TID", "COMM", "NAME"]
    );
    let (port, sink) = hello_sink(None, 0);
    let pid = python_hello("api.columns.test", port);
    sink.join().unwrap();
    // The other test's host client may show up too: they run in parallel.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        let line = ig.next_line(Duration::from_millis(200)).unwrap_or_default();
        if line.contains("api.columns.test") {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no row for the hello");
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields,
        [pid.to_string().as_str(), &pid.to_string(), "python3", "api.columns.test"],
        "{line:?}"
    );
}
