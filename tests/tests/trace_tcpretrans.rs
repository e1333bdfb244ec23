//! `ig trace tcpretrans` with a real runc container: an iptables rule in the
//! container's network namespace drops every segment carrying data on its
//! way in, so the sender sends it again after a timeout. A connection its
//! nc opens is attributed to nc; one opened before ig started (by a thread
//! of this process inside the namespace) has no known owner and is named
//! after the container owning the namespace.

use std::time::Duration;

use tests::netns::{connection_from, iptables, netns_of, reading_server};
use tests::{IgChild, harness, mntns_of, require_root, unique};

const PORT: u16 = 4451;

#[test]
fn retransmissions_name_the_sockets_owner_or_its_netns() {
    require_root();
    let h = harness();
    let id = unique("igt-retrans");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    // Started before ig: ig-hook has no tracer to tell; ig reads the spool.
    let pid = bundle.run_detached();
    let (netns, mntns) = (netns_of(pid), mntns_of(pid));
    reading_server(pid, PORT);
    let early = connection_from(pid, PORT);

    let ig = IgChild::spawn_ready(
        &["trace", "tcpretrans", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let port = PORT.to_string();
    iptables(pid, &["-A", "INPUT", "-p", "tcp", "--dport", &port, "--tcp-flags", "PSH", "PSH", "-j", "DROP"]);

    // The connection from before: no owner known.
    early.send(b"lost on the way\n".to_vec()).unwrap();
    let ours = std::process::id();
    let unowned = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["dport"] == PORT && v["pid"] == 0,
        |v| v["pid"] == ours,
        Duration::from_millis(100),
    );
    assert_eq!(unowned["runtime"]["containerName"], id.as_str(), "named by its netns: {unowned}");
    assert_eq!(unowned["netnsid"], netns);
    assert_eq!(unowned["mountnsid"], mntns);
    assert_eq!(unowned["state"], "ESTABLISHED");
    assert!(unowned["tcpflags"].as_str().unwrap().contains("PSH"), "{unowned}");
    // The first one is the tail loss probe (sent in the Open state); once
    // the timer runs out, the connection is in Loss.
    let sport = unowned["sport"].clone();
    let rto = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| v["sport"] == sport && v["congestionState"] == "Loss",
        |v| v["pid"] == ours,
        Duration::from_millis(100),
    );
    assert_eq!(rto["runtime"]["containerName"], id.as_str());

    // nc in the container connects while ig runs: nc is the owner.
    std::thread::scope(|scope| {
        let client = scope
            .spawn(|| bundle.exec_output(&["sh", "-c", &format!("echo hi | timeout 3 nc 127.0.0.1 {PORT}")]));
        let owned = ig.wait_json_forbidding(
            Duration::from_secs(10),
            || {},
            |v| v["dport"] == PORT && v["comm"] == "nc",
            |v| v["pid"] == ours,
            Duration::from_millis(100),
        );
        assert_eq!(owned["runtime"]["containerName"], id.as_str());
        assert_eq!(owned["mountnsid"], mntns);
        assert!(owned["pid"].as_u64().unwrap() > 0 && owned["tid"] == owned["pid"], "{owned}");
        assert_eq!(
            (owned["saddr"].as_str(), owned["daddr"].as_str()),
            (Some("127.0.0.1"), Some("127.0.0.1"))
        );
        assert!(owned["tcpflags"].as_str().unwrap().contains("PSH"), "{owned}");
        let _ = client.join();
    });
    bundle.delete();
}
