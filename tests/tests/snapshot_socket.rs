//! `ig snapshot socket` against real sockets, on the host and in a container.

use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{binary, harness, require_root, unique};

fn snapshot(args: &[&str]) -> Vec<Value> {
    let out = Command::new(binary("ig"))
        .args(["snapshot", "socket", "--auto-mount-filesystems", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn socket_inode(fd: i32) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let link = link.to_string_lossy();
    link.trim_start_matches("socket:[").trim_end_matches(']').parse().unwrap()
}

#[test]
fn host_sockets_with_their_inodes_and_proto_filter() {
    require_root();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("[::1]:0").unwrap();
    let (tport, uport) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
    let all = snapshot(&["--host"]);
    let t = all.iter().find(|e| e["src"] == format!("127.0.0.1:{tport}").as_str()).expect("the TCP listener");
    assert_eq!((t["protocol"].as_str(), t["status"].as_str()), (Some("TCP"), Some("LISTEN")));
    assert_eq!(t["dst"], "0.0.0.0:0");
    assert_eq!(t["inode"], socket_inode(tcp.as_raw_fd()));
    let u = all.iter().find(|e| e["src"] == format!("[::1]:{uport}").as_str()).expect("the UDP socket");
    assert_eq!((u["protocol"].as_str(), u["status"].as_str()), (Some("UDP"), Some("INACTIVE")));
    // Each filter keeps its own socket and only its protocol (never an empty list).
    let (tsrc, usrc) = (format!("127.0.0.1:{tport}"), format!("[::1]:{uport}"));
    let tcp_only = snapshot(&["--host", "--proto", "tcp"]);
    assert!(tcp_only.iter().any(|e| e["src"] == tsrc.as_str()), "the TCP listener with --proto tcp");
    assert!(tcp_only.iter().all(|e| e["protocol"] == "TCP"), "{tcp_only:?}");
    let udp_only = snapshot(&["--host", "--proto", "udp"]);
    assert!(udp_only.iter().any(|e| e["src"] == usrc.as_str()), "the UDP socket with --proto udp");
    assert!(udp_only.iter().all(|e| e["protocol"] == "UDP"), "{udp_only:?}");
}

#[test]
fn a_container_namespace_is_listed_with_the_container_name() {
    let h = harness();
    require_root();
    let id = unique("igt-sock");
    // runc's default spec gives the container its own network namespace.
    let bundle = h.runc_bundle(&id, &["/bin/nc", "-l", "-p", "7777"], true);
    bundle.run_detached();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let l = snapshot(&["-c", &id]);
        if !l.is_empty() || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let nc = listed
        .iter()
        .find(|e| e["src"].as_str().is_some_and(|s| s.ends_with(":7777")))
        .expect("nc's listener");
    assert_eq!(nc["status"], "LISTEN");
    assert_eq!(nc["runtime"]["containerName"], id.as_str());
    let host_port = format!("127.0.0.1:{}", host.local_addr().unwrap().port());
    assert!(
        listed.iter().all(|e| e["src"] != host_port.as_str()),
        "the host's sockets are not the container's"
    );
    bundle.delete();
}

#[test]
fn process_filters_are_refused_rather_than_ignored() {
    require_root();
    let out = Command::new(binary("ig"))
        .args(["snapshot", "socket", "--auto-mount-filesystems", "--host", "--pid", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a --pid that cannot apply is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--pid, --tid, --uid, --gid and --comm do not apply"), "{err}");
}
