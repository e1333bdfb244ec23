//! `ig trace tcpdrop` with a real runc container: a SYN to a closed port in
//! the container's own network namespace (no socket: named by its netns),
//! and data its nc sends dropped by an iptables rule in that namespace
//! (the socket's owner: nc). The same drops on the host must not show, nor
//! in a run selecting another container.

use std::time::Duration;

use tests::netns::{iptables, netns_of, reading_server};
use tests::{IgChild, harness, mntns_of, require_root, unique};

const CLOSED_PORT: u16 = 4441;
const SERVER_PORT: u16 = 4442;

#[test]
fn drops_in_a_container_carry_the_kernels_reason_and_the_container() {
    require_root();
    let h = harness();
    let id = unique("igt-drop");
    let ig = IgChild::spawn_ready(
        &["trace", "tcpdrop", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let other = IgChild::spawn_ready(
        &["trace", "tcpdrop", "-o", "json", "-c", "igt-nobody", "--auto-mount-filesystems"],
        "tracing started",
    );
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let (netns, mntns) = (netns_of(pid), mntns_of(pid));
    let host_netns = netns_of(std::process::id());

    // The host's own SYN to a closed port: a host drop, never shown.
    let _ = std::net::TcpStream::connect(("127.0.0.1", CLOSED_PORT));
    let out = bundle.exec_output(&["nc", "127.0.0.1", &CLOSED_PORT.to_string()]);
    assert!(!out.status.success(), "nothing listens on {CLOSED_PORT} in the container");
    let syn = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["dport"] == CLOSED_PORT && v["netnsid"] == netns,
        |v| v["netnsid"] == host_netns,
        Duration::from_millis(200),
    );
    assert_eq!(syn["runtime"]["containerName"], id.as_str(), "named by its netns: {syn}");
    assert_eq!(syn["mountnsid"], mntns, "the container's, as its other events: {syn}");
    assert_eq!(syn["reason"], "NO_SOCKET");
    assert_eq!(syn["tcpflags"], "SYN");
    assert_eq!((syn["daddr"].as_str(), syn["saddr"].as_str()), (Some("127.0.0.1"), Some("127.0.0.1")));
    // No socket, so no process: said as such, not guessed.
    assert_eq!((syn["pid"].as_u64(), syn["state"].as_str()), (Some(0), Some("")));

    // Data nc sends, dropped on its way out: the socket is nc's.
    reading_server(pid, SERVER_PORT);
    let port = SERVER_PORT.to_string();
    iptables(
        pid,
        &["-A", "OUTPUT", "-p", "tcp", "--dport", &port, "--tcp-flags", "PSH", "PSH", "-j", "DROP"],
    );
    let _ = bundle.exec_output(&["sh", "-c", &format!("echo hi | timeout 1 nc 127.0.0.1 {port}")]);
    let data = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["dport"] == SERVER_PORT && v["reason"] == "NETFILTER_DROP",
        |v| v["netnsid"] == host_netns,
        Duration::from_millis(200),
    );
    assert_eq!(data["runtime"]["containerName"], id.as_str());
    assert_eq!(data["mountnsid"], mntns, "the owner's mount namespace: {data}");
    assert_eq!(data["comm"], "nc");
    assert!(data["pid"].as_u64().unwrap() > 0);
    assert!(data["tcpflags"].as_str().unwrap().contains("PSH"), "{data}");
    assert_eq!(data["state"], "ESTABLISHED");
    assert_eq!(data["netnsid"], netns);

    // The run selecting another container saw none of it (every line read).
    let seen = other.collect_json(Duration::from_millis(500));
    assert!(seen.iter().all(|v| v["netnsid"] != netns && v["mountnsid"] != mntns), "{seen:?}");
    bundle.delete();
}
