//! Network namespaces of containers in the tests: their ids, iptables
//! rules inside them, and TCP peers that are threads of the test process
//! moved into them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;

/// Inode of /proc/<pid>/ns/net.
pub fn netns_of(pid: u32) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("netns link");
    let text = link.to_string_lossy();
    text.trim_start_matches("net:[").trim_end_matches(']').parse().expect("netns id")
}

/// Runs iptables with `args` inside the network namespace of `pid`.
pub fn iptables(pid: u32, args: &[&str]) {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("iptables")
        .args(args)
        .output()
        .expect("nsenter iptables (the harness installs iptables)");
    assert!(out.status.success(), "iptables {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A TCP server on 127.0.0.1:`port` in the network namespace of `pid`, on
/// a thread of this (host) process: it accepts connections and reads
/// everything they send. Lives as long as the test process.
pub fn reading_server(pid: u32, port: u16) {
    let (ready, listening) = mpsc::channel();
    std::thread::spawn(move || {
        crate::join_netns(std::path::Path::new(&format!("/proc/{pid}/ns/net")));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("listening in the container's netns");
        ready.send(()).unwrap();
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    listening.recv().expect("the server started");
}

/// A connection to 127.0.0.1:`port` opened now from the network namespace
/// of `pid` by a thread of this process; each line sent on the returned
/// channel is written to it.
pub fn connection_from(pid: u32, port: u16) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (ready, connected) = mpsc::channel();
    std::thread::spawn(move || {
        crate::join_netns(std::path::Path::new(&format!("/proc/{pid}/ns/net")));
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting in the container's netns");
        ready.send(s.local_addr().unwrap().port()).unwrap();
        for bytes in rx {
            let _ = s.write_all(&bytes);
        }
    });
    connected.recv().expect("connected");
    tx
}
