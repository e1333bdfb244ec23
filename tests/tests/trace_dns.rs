//! `ig trace dns` against a DNS server started by the test: in a container's
//! own network namespace (the client is the container's busybox nslookup),
//! and in a private network namespace with --host (IPv6, the server's view).

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::Value;
use tests::dns_server::{self, ANSWER_V6, DnsServer};
use tests::netns::netns_of;
use tests::{IgChild, harness, mntns_of, require_root, unique};

#[test]
fn a_containers_queries_and_answers_in_its_own_netns() {
    require_root();
    let h = harness();
    let ig =
        IgChild::spawn_ready(&["trace", "dns", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    let id = unique("igt-dns");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    // The server is a thread of this (host) process inside the container's
    // network namespace: its side of the exchange is not the container's.
    let _server = DnsServer::start(Some(std::path::Path::new(&format!("/proc/{pid}/ns/net"))), "127.0.0.1");

    let out = bundle.exec_output(&["nslookup", "example.test", "127.0.0.1"]);
    assert!(out.status.success(), "nslookup: {}", String::from_utf8_lossy(&out.stdout));
    let in_container = |v: &Value| v["runtime"]["containerName"] == id.as_str() && v["comm"] == "nslookup";
    // The server is a thread of this host process: none of its packets may show.
    let ours = std::process::id();
    let q = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| in_container(v) && v["qr"] == "Q" && v["qtype"] == "A" && v["name"] == "example.test.",
        |v| v["pid"] == ours,
        Duration::from_millis(100),
    );
    assert_eq!(q["pktType"], "OUTGOING");
    assert_eq!((q["dstIP"].as_str(), q["dstPort"].as_u64()), (Some("127.0.0.1"), Some(53)));
    assert_eq!(q["nameserver"], "127.0.0.1");
    assert_eq!(q["runtime"]["runtimeName"], "runc");
    assert_eq!(q["mountnsid"], mntns_of(pid));
    assert_eq!(q["netnsid"], netns_of(pid));
    assert_eq!(q["protocol"], "UDP");
    assert!(q["pid"].as_u64().unwrap() > 0 && q["rcode"] == "");
    let r = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| in_container(v) && v["qr"] == "R" && v["qtype"] == "A" && v["id"] == q["id"],
        |v| v["pid"] == ours,
        Duration::from_millis(100),
    );
    assert_eq!(r["pktType"], "HOST");
    assert_eq!((r["rcode"].as_str(), r["numAnswers"].as_u64()), (Some("NoError"), Some(1)));
    assert_eq!(r["addresses"], serde_json::json!(["192.0.2.1"]));
    assert_eq!((r["srcPort"].as_u64(), r["dstPort"].as_u64()), (Some(53), q["srcPort"].as_u64()));
    assert!(r["latency"].as_u64().unwrap() > 0, "a response's latency: {r}");
    assert_eq!(r["pid"], q["pid"], "the answer goes to the process that asked");

    // A name that does not exist: nslookup fails, the rcode says why.
    let _ = bundle.exec_output(&["nslookup", "nope.test", "127.0.0.1"]);
    let nx = ig.wait_json_forbidding(
        Duration::from_secs(10),
        || {},
        |v| in_container(v) && v["qr"] == "R" && v["name"] == "nope.test.",
        |v| v["pid"] == ours,
        Duration::from_millis(500),
    );
    assert_eq!((nx["rcode"].as_str(), nx["numAnswers"].as_u64()), (Some("NXDomain"), Some(0)));
    bundle.delete();
}

#[test]
fn host_ipv6_both_sides_of_the_exchange() {
    require_root();
    let ig = IgChild::spawn_ready(
        &["trace", "dns", "--host", "-o", "json", "--auto-mount-filesystems", "-F", "qtype:AAAA"],
        "tracing started",
    );
    let server = DnsServer::start(None, "[::1]");
    let netns = server.netns.clone();
    let client = std::thread::Builder::new()
        .name("dns-client".into())
        .spawn(move || {
            dns_server::join_netns(&netns);
            let s = UdpSocket::bind("[::1]:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.send_to(&dns_server::query(0xbeef, "example.v6.test", 28), "[::1]:53").unwrap();
            let mut buf = [0u8; 512];
            let (n, _) = s.recv_from(&mut buf).expect("the server's answer");
            (nix::unistd::gettid().as_raw() as u32, s.local_addr().unwrap().port(), n)
        })
        .unwrap();
    let (client_tid, client_port, answer_len) = client.join().unwrap();
    assert!(answer_len > 12);
    let ours = std::process::id();
    let seen = |qr: &str, pkt: &str| {
        let (qr, pkt) = (qr.to_string(), pkt.to_string());
        ig.wait_json(
            Duration::from_secs(10),
            || {},
            move |v| v["qr"] == qr.as_str() && v["pktType"] == pkt.as_str() && v["id"] == "beef",
        )
    };
    // The client's query leaving, the server's copy arriving, and the same
    // for the answer: each attributed to the thread that sends or receives it.
    let q_out = seen("Q", "OUTGOING");
    assert_eq!((q_out["pid"].as_u64(), q_out["tid"].as_u64()), (Some(ours.into()), Some(client_tid.into())));
    assert_eq!(q_out["comm"], "dns-client");
    assert_eq!((q_out["srcIP"].as_str(), q_out["dstIP"].as_str()), (Some("::1"), Some("::1")));
    assert_eq!(q_out["srcPort"], client_port);
    assert_eq!(q_out["name"], "example.v6.test.");
    assert_eq!(q_out["runtime"]["containerName"], "", "a host event has no container");
    let q_in = seen("Q", "HOST");
    assert_eq!((q_in["pid"].as_u64(), q_in["tid"].as_u64()), (Some(ours.into()), Some(server.tid.into())));
    let r_out = seen("R", "OUTGOING");
    assert_eq!(r_out["tid"], server.tid);
    let r_in = seen("R", "HOST");
    assert_eq!(r_in["tid"], client_tid);
    assert_eq!(r_in["addresses"], serde_json::json!([ANSWER_V6]));
    assert_eq!(r_in["numAnswers"], 1);
    assert!(r_in["latency"].as_u64().unwrap() >= r_out["latency"].as_u64().unwrap());
}

#[test]
fn columns() {
    require_root();
    let ig = IgChild::spawn_ready(&["trace", "dns", "--host", "--auto-mount-filesystems"], "tracing started");
    let header = ig.next_line(Duration::from_secs(5)).expect("header");
    let names: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        names,
        ["RUNTIME.CONTAINERNAME", "PID", "TID", "COMM", "QR", "TYPE", "QTYPE", "NAME", "RCODE", "NUMANSWERS"]
    );
    let server = DnsServer::start(None, "127.0.0.1");
    let netns = server.netns.clone();
    std::thread::spawn(move || {
        dns_server::join_netns(&netns);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&dns_server::query(7, "nope.columns.test", 1), "127.0.0.1:53").unwrap();
        let _ = s.recv_from(&mut [0u8; 512]);
    })
    .join()
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    while std::time::Instant::now() < deadline {
        let Some(line) = ig.next_line(Duration::from_millis(200)) else { continue };
        if line.contains("nope.columns.test.") && line.contains(" R ") && line.contains("HOST") {
            assert!(line.contains("NXDomain") && line.trim_end().ends_with(" 0"), "{line}");
            return;
        }
        lines.push(line);
    }
    panic!("no response row; lines: {lines:?}");
}
