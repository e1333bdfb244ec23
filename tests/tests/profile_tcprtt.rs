//! `ig profile tcprtt` with a real runc container: its nc sends to a server
//! in the container's network namespace (a thread of this host process),
//! and the segments nc receives (the server's ACKs) are counted under the
//! container, per remote address with -B; a run selecting another container
//! or another remote port counts none of them.

use std::time::Duration;

use serde_json::Value;
use tests::netns::reading_server;
use tests::{IgChild, harness, require_root, unique};

const PORT: u16 = 4461;

fn profile(args: &[&str]) -> IgChild {
    let mut all = vec!["profile", "tcprtt", "-o", "json", "-t", "6", "--auto-mount-filesystems"];
    all.extend_from_slice(args);
    IgChild::spawn_ready(&all, "tracing started")
}

fn histograms(ig: &IgChild) -> Vec<Value> {
    let first = ig.wait_json(Duration::from_secs(20), || {}, |v| v["measure"] == "rtt");
    let mut all = vec![first];
    all.extend(ig.collect_json(Duration::from_millis(300)).into_iter().filter(|v| v["measure"] == "rtt"));
    all
}

fn total(h: &Value) -> u64 {
    h["intervals"].as_array().expect("intervals").iter().map(|i| i["count"].as_u64().unwrap()).sum()
}

#[test]
fn a_containers_round_trips_are_counted_under_it_and_filters_keep_others_out() {
    require_root();
    let h = harness();
    let id = unique("igt-rtt");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    reading_server(pid, PORT);

    let by_remote = profile(&["-c", &id, "-B"]);
    let other_port = profile(&["-c", &id, "--rport", "1"]);
    let nobody = profile(&["-c", "igt-nobody"]);
    // A host connection meanwhile: the host's, never the container's.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = std::net::TcpStream::connect(host.local_addr().unwrap()).unwrap();
    std::io::Write::write_all(&mut c, b"host bytes").unwrap();
    let out = bundle.exec_output(&[
        "sh",
        "-c",
        &format!("for i in 1 2 3 4 5; do echo hi; sleep 0.1; done | timeout 2 nc 127.0.0.1 {PORT}"),
    ]);
    let _ = out;

    let hists = histograms(&by_remote);
    assert_eq!(hists.len(), 1, "one remote address: {hists:?}");
    let h = &hists[0];
    assert_eq!((h["address"].as_str(), h["unit"].as_str()), (Some("127.0.0.1"), Some("us")), "{h}");
    // The handshake's SYN-ACK and an ACK for each of the 5 lines, at least.
    assert!(total(h) >= 5, "{h}");
    // Loopback: every round trip is far below a second.
    let intervals = h["intervals"].as_array().unwrap();
    assert!(intervals.len() <= 21, "RTTs of a second or more on loopback: {h}");
    for v in histograms(&other_port).iter().chain(histograms(&nobody).iter()) {
        assert_eq!(total(v), 0, "counted what the filter keeps out: {v}");
    }
    bundle.delete();
}
