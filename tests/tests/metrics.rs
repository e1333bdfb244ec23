//! `--metrics-address`: a real Prometheus scrapes ig while a docker
//! container runs a known workload, and a PromQL query over its HTTP API
//! returns the container's counts with its labels.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{IgChild, harness, require_root, unique};

/// `GET path` over HTTP/1.0: (status line, body).
fn http_get(addr: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus on a loopback port of its own, scraping `target` every second.
struct Prometheus {
    child: Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("igt-prometheus"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ig\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        // A free port, asked of the kernel; if another process takes it
        // before Prometheus does, try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let addr = format!("127.0.0.1:{port}");
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
                .spawn()
                .expect("prometheus (install/deps.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if http_get(&addr, "/-/ready").is_ok_and(|(status, _)| status.contains("200")) {
                    return Prometheus { child, addr, dir };
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        panic!("prometheus never became ready: {log}");
    }

    /// The value of an instant PromQL query with one result, once there is one.
    fn query_value(&self, query: &str) -> Option<(Value, f64)> {
        let (_, body) = http_get(&self.addr, &format!("/api/v1/query?query={}", url_encode(query))).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let r = v["data"]["result"].as_array()?.first()?.clone();
        let n = r["value"][1].as_str()?.parse().ok()?;
        Some((r["metric"].clone(), n))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ig trace GADGET -o json --metrics-address 127.0.0.1:0`, tracing, and
/// where it serves its metrics (from its stderr).
fn ig_with_metrics(h: &tests::Harness, gadget: &str) -> (IgChild, String) {
    let mut args: Vec<String> =
        ["trace", gadget, "-o", "json", "--metrics-address", "127.0.0.1:0"].map(String::from).to_vec();
    args.extend(h.runtime_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ig = IgChild::spawn_ready(&args, "tracing started");
    let text = ig.stderr_text();
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("ig: metrics at http://")?.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address: {text}"))
        .to_string();
    (ig, target)
}

#[test]
fn prometheus_sees_a_containers_execs_and_failed_execs_with_its_labels() {
    let h = harness();
    require_root();
    let (ig, target) = ig_with_metrics(&h, "exec");
    let prometheus = Prometheus::start(&target);

    // The entrypoint, 5 execs of /bin/true and 2 of missing programs: 8
    // execs, 2 of them failed.
    let name = unique("igt-metrics");
    let script = "i=0; while [ $i -lt 5 ]; do /bin/true; i=$((i+1)); done; /igt-missing-1 2>/dev/null; /igt-missing-2 2>/dev/null; true";
    let out = h
        .docker()
        .args(["run", "--rm", "--network", "none", "--name", &name, &h.image, "/bin/sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));

    // ig's own endpoint first: the text format, as a scraper reads it.
    let want = format!(
        "ig_container_execs_total{{namespace=\"\",pod=\"\",container=\"{name}\",runtime=\"docker\"}} 8"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get(&target, "/metrics").expect("ig serves /metrics");
        assert!(status.contains("200"), "{status}");
        if body.contains(&want) {
            assert!(body.contains("# TYPE ig_container_execs_total counter"), "{body}");
            assert!(body.contains("ig_gadget_events_lost_total{gadget=\"trace exec\"} 0"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never {want:?} in:\n{body}\nig: {}", ig.stderr_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(http_get(&target, "/nope").unwrap().0.contains("404"));

    // Then Prometheus, through PromQL.
    let selector = format!("{{container=\"{name}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (labels, execs, failed) = loop {
        let execs = prometheus.query_value(&format!("ig_container_execs_total{selector}"));
        let failed = prometheus.query_value(&format!("ig_container_failed_execs_total{selector}"));
        if let (Some((labels, e)), Some((_, f))) = (execs, failed) {
            break (labels, e, f);
        }
        assert!(Instant::now() < deadline, "Prometheus never had the container's counts");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((execs, failed), (8.0, 2.0));
    assert_eq!(labels["runtime"], "docker");
    assert_eq!(labels["job"], "ig");
    let (_, up) = prometheus.query_value("up{job=\"ig\"}").expect("up");
    assert_eq!(up, 1.0);
}

/// Waits until Prometheus's value of each `NAME{container="id"}` equals
/// `want` (what ig served once its counts had settled).
fn prometheus_agrees(prometheus: &Prometheus, id: &str, names: &[&str], want: &[f64]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: Vec<Option<f64>> = names
            .iter()
            .map(|n| prometheus.query_value(&format!("{n}{{container=\"{id}\"}}")).map(|(_, v)| v))
            .collect();
        if got.iter().zip(want).all(|(g, w)| *g == Some(*w)) {
            return;
        }
        assert!(Instant::now() < deadline, "PromQL {names:?}: {got:?}, ig served {want:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Where a daemon serves its metrics, from its log.
fn daemon_metrics_address(d: &tests::Daemon) -> String {
    let text = d.ig.stderr_text();
    text.lines()
        .find_map(|l| {
            let rest = &l[l.find("metrics at http://")? + "metrics at http://".len()..];
            rest.split("/metrics").next().map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no metrics address in the daemon's log: {text}"))
}

/// A headless `trace GADGET` on `d` for container `id`, writing `file`.
fn headless_for(d: &tests::Daemon, gadget: &str, id: &str, file: &std::path::Path) {
    let args = ["run", "--detach", "trace", gadget, "-c", id, "--output-file", file.to_str().unwrap()];
    let out = d.gadgetctl(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The events of container `id` in a JSON lines file a run is still
/// writing: only its whole lines (the writer's buffer may end mid-line).
fn events_of(file: &std::path::Path, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", file.display())))
        .filter(|v: &Value| v["runtime"]["containerName"] == id)
        .collect()
}

/// The value of one sample line, `NAME{labels} VALUE`, in a scrape.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn the_daemon_serves_what_its_instances_count_and_forgets_gone_containers() {
    let h = harness();
    require_root();
    let d = tests::Daemon::start(&["--metrics-address", "127.0.0.1:0", "--metrics-expiry", "3s"]);
    let target = daemon_metrics_address(&d);
    let dir = std::env::temp_dir().join(unique("igt-dmetrics"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("exec.json");
    let id = unique("igt-dm");
    headless_for(&d, "exec", &id, &file);

    let script = "/bin/ls / >/dev/null; /bin/ls /bin >/dev/null; /igt-missing 2>/dev/null; true";
    h.runc_bundle(&id, &["/bin/sh", "-c", script], true).run();

    // The kernel's truth as delivered: the instance's own file.
    let series =
        |name: &str| format!("{name}{{namespace=\"\",pod=\"\",container=\"{id}\",runtime=\"runc\"}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (body, execs, failed) = loop {
        let events = events_of(&file, &id);
        let failed = events.iter().filter(|v| v["ret"].as_i64() != Some(0)).count();
        let (_, body) = http_get(&target, "/metrics").expect("the daemon serves /metrics");
        let shown = (
            sample(&body, &series("ig_container_execs_total")),
            sample(&body, &series("ig_container_failed_execs_total")),
        );
        if events.len() >= 3 && failed >= 1 && shown == (Some(events.len() as f64), Some(failed as f64)) {
            break (body, events.len(), failed);
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never matched the {} events ({failed} failed) of the file: {shown:?}\n{body}",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(execs >= 3 && failed >= 1);
    assert_eq!(sample(&body, "ig_gadget_runs{gadget=\"trace exec\"}"), Some(1.0), "{body}");
    assert_eq!(sample(&body, "ig_gadget_events_lost_total{gadget=\"trace exec\"}"), Some(0.0), "{body}");
    assert!(sample(&body, "ig_container_records_total{source=\"hook\"}").unwrap_or(0.0) >= 1.0, "{body}");
    assert!(sample(&body, "ig_ebpf_programs").unwrap_or(0.0) >= 1.0, "{body}");
    assert!(sample(&body, "ig_ebpf_maps").unwrap_or(0.0) >= 1.0, "{body}");
    assert!(body.contains("# TYPE ig_containers gauge"), "{body}");

    // The container has exited (its poststop told the daemon): its series
    // go once it has been gone for the expiry.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http_get(&target, "/metrics").unwrap();
        if !body.contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "a gone container's series stayed past --metrics-expiry:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel hands a freed mount namespace id to the next namespace made
/// (the lowest free one): a host process's private namespace that counted
/// an exec, then a container under the same id. What the host process did
/// is not the container's.
#[test]
fn a_namespace_id_reused_by_a_container_counts_only_what_the_container_did() {
    let h = harness();
    require_root();
    let d = tests::Daemon::start(&["--metrics-address", "127.0.0.1:0"]);
    let target = daemon_metrics_address(&d);
    let names = ["ig_container_execs_total", "ig_container_failed_execs_total"];
    let mut reused = 0;
    for attempt in 0..5 {
        // One exec (readlink's) in a namespace of its own, freed at its exit.
        let out = Command::new("unshare").args(["-m", "readlink", "/proc/self/ns/mnt"]).output().unwrap();
        assert!(out.status.success(), "unshare -m: {out:?}");
        let host_ns = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Three execs (sh, readlink, a missing binary), one failing.
        let id = unique("igt-reuse");
        let script = "/bin/readlink /proc/self/ns/mnt; /igt-missing 2>/dev/null; true";
        let container_ns = h.runc_bundle(&id, &["/bin/sh", "-c", script], true).run_stdout();
        if container_ns.trim() == host_ns {
            reused += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let counts = container_counts(&target, &id, &names);
            if counts == [3.0, 1.0] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "attempt {attempt} ({host_ns} then {}): the container's execs and failed execs are {counts:?}, not [3, 1]",
                container_ns.trim()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Other tests make namespaces too: the id is not always the same one.
    assert!(reused >= 1, "no container got the id the host process had freed in 5 attempts");
    drop(d);
}

#[test]
fn dns_queries_responses_by_rcode_and_latency_match_the_events() {
    let h = harness();
    require_root();
    let (ig, target) = ig_with_metrics(&h, "dns");
    let id = unique("igt-mdns");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let _server = tests::dns_server::DnsServer::start(
        Some(std::path::Path::new(&format!("/proc/{pid}/ns/net"))),
        "127.0.0.1",
    );
    for name in ["example.test", "example.test", "nope.test"] {
        let _ = bundle.exec_output(&["nslookup", name, "127.0.0.1"]);
    }

    // The kernel's truth as delivered: the events ig printed.
    let l = format!("namespace=\"\",pod=\"\",container=\"{id}\",runtime=\"runc\"");
    let mut events: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        events.extend(ig.collect_json(Duration::from_millis(300)));
        let mine: Vec<&Value> =
            events.iter().filter(|v| v["runtime"]["containerName"] == id.as_str()).collect();
        let queries = mine.iter().filter(|v| v["qr"] == "Q" && v["pktType"] == "OUTGOING").count();
        let by = |rcode: &str| {
            mine.iter().filter(|v| v["qr"] == "R" && v["pktType"] == "HOST" && v["rcode"] == rcode).count()
        };
        let (ok, nx) = (by("NoError"), by("NXDomain"));
        let timed = mine
            .iter()
            .filter(|v| v["qr"] == "R" && v["pktType"] == "HOST" && v["latency"].as_u64() > Some(0))
            .count();
        let (_, body) = http_get(&target, "/metrics").expect("ig serves /metrics");
        let want = [
            (format!("ig_container_dns_queries_total{{{l}}}"), queries),
            (format!("ig_container_dns_responses_total{{{l},rcode=\"NoError\"}}"), ok),
            (format!("ig_container_dns_responses_total{{{l},rcode=\"NXDomain\"}}"), nx),
            (format!("ig_container_dns_latency_seconds_count{{{l}}}"), timed),
            (format!("ig_container_dns_latency_seconds_bucket{{{l},le=\"+Inf\"}}"), timed),
        ];
        let shown: Vec<Option<f64>> = want.iter().map(|(s, _)| sample(&body, s)).collect();
        if ok >= 2
            && nx >= 1
            && timed >= 3
            && want.iter().zip(&shown).all(|((_, n), s)| *s == Some(*n as f64))
        {
            assert!(body.contains("# TYPE ig_container_dns_latency_seconds histogram"), "{body}");
            // Cumulative buckets: never fewer at a larger bound.
            let buckets: Vec<f64> = body
                .lines()
                .filter(|t| t.starts_with(&format!("ig_container_dns_latency_seconds_bucket{{{l}")))
                .filter_map(|t| t.rsplit(' ').next()?.parse().ok())
                .collect();
            assert!(buckets.len() >= 2 && buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never matched the events: want {want:?}, shown {shown:?}\n{body}"
        );
    }
    bundle.delete();
}

#[test]
fn the_daemon_counts_opens_and_tcp_connects_in_the_kernel_once() {
    let h = harness();
    require_root();
    let d = tests::Daemon::start(&["--metrics-address", "127.0.0.1:0"]);
    assert!(
        d.ig.stderr_text().contains(
            "counting in the kernel: execs, file opens, signals, OOM kills, TCP connects and accepts, TCP bytes"
        ),
        "{}",
        d.ig.stderr_text()
    );
    let target = daemon_metrics_address(&d);
    let prometheus = Prometheus::start(&target);
    let dir = std::env::temp_dir().join(unique("igt-kmetrics"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("open.json");
    let id = unique("igt-km");
    // The truth for opens: a trace open of the same container, headless
    // (which must not count them a second time).
    headless_for(&d, "open", &id, &file);
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    // Its loopback up, so that a connect there is refused (not unreachable).
    let up = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["ip", "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success(), "ip link set lo up in the container");

    let series =
        |name: &str| format!("{name}{{namespace=\"\",pod=\"\",container=\"{id}\",runtime=\"runc\"}}");
    let names = [
        "ig_container_file_opens_total",
        "ig_container_failed_file_opens_total",
        "ig_container_tcp_connects_total",
        "ig_container_failed_tcp_connects_total",
        "ig_container_tcp_sent_bytes_total",
        "ig_container_tcp_received_bytes_total",
    ];
    let opens_in_file = || -> (usize, usize) {
        let opens = events_of(&file, &id);
        (opens.len(), opens.iter().filter(|v| v["err"].as_i64() != Some(0)).count())
    };
    let counts = || -> Vec<f64> {
        let (_, body) = http_get(&target, "/metrics").expect("/metrics");
        names.iter().map(|n| sample(&body, &series(n)).unwrap_or(0.0)).collect()
    };
    // Quiet first: both sides settled on what the container's start did
    // (the kernel counts its namespace from its first open, before the
    // container was announced; the gadget from the announcement).
    let settled = |what: &str| {
        let mut last = (counts(), opens_in_file());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(1500));
            let now = (counts(), opens_in_file());
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: never settled");
            last = now;
        }
    };
    let (before, file_before) = settled("before");
    // A server of this (host) process in the container's network
    // namespace: it reads the 6 bytes sent and answers 5; its own side of
    // the exchange is the host's.
    let netns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        tests::join_netns(&netns);
        let listener = std::net::TcpListener::bind("127.0.0.1:7000").unwrap();
        ready_tx.send(()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = [0u8; 6];
        conn.read_exact(&mut got).unwrap();
        conn.write_all(b"pong\n").unwrap();
        got
    });
    ready.recv().unwrap();
    // Known work: a read, a missing file, one connect refused, one that
    // sends "hello\n" and gets "pong\n".
    let out = bundle.exec_output(&[
        "/bin/sh",
        "-c",
        "cat /etc/hostname >/dev/null; cat /igt-nope 2>/dev/null; nc 127.0.0.1 1 </dev/null 2>/dev/null; echo hello | nc 127.0.0.1 7000 >/dev/null; true",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(&server.join().unwrap(), b"hello\n");
    let (after, file_after) = settled("after");
    let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let file_delta = (file_after.0 - file_before.0, file_after.1 - file_before.1);
    assert!(file_delta.1 >= 1 && file_delta.0 > file_delta.1, "trace open saw the work: {file_delta:?}");
    assert_eq!(
        delta,
        [file_delta.0 as f64, file_delta.1 as f64, 2.0, 1.0, 6.0, 5.0],
        "the kernel's counts against trace open's events, two connects (one refused) and their bytes"
    );
    let (_, body) = http_get(&target, "/metrics").unwrap();
    assert_eq!(sample(&body, "ig_kernel_counts_lost_total"), Some(0.0), "{body}");
    // A real Prometheus scraping the daemon returns the same counts.
    prometheus_agrees(&prometheus, &id, &names, &after);
    bundle.delete();
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Samples of the container `id`'s series of these metrics in one scrape (0 where absent).
fn container_counts(target: &str, id: &str, names: &[&str]) -> Vec<f64> {
    let (_, body) = http_get(target, "/metrics").expect("/metrics");
    names
        .iter()
        .map(|n| {
            let series = format!("{n}{{namespace=\"\",pod=\"\",container=\"{id}\",runtime=\"runc\"}}");
            sample(&body, &series).unwrap_or(0.0)
        })
        .collect()
}

#[test]
fn the_daemon_counts_accepts_oom_kills_and_capability_denials_in_the_kernel() {
    let h = harness();
    require_root();
    let d = tests::Daemon::start(&["--metrics-address", "127.0.0.1:0"]);
    let log = d.ig.stderr_text();
    let how = ["fexit", "tracepoint", "kprobe"]
        .into_iter()
        .find(|v| log.contains(&format!("capability denials (by {v})")))
        .unwrap_or_else(|| panic!("the daemon does not count capability denials in the kernel: {log}"));
    let target = daemon_metrics_address(&d);
    let dir = std::env::temp_dir().join(unique("igt-kmetrics2"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capabilities.json");
    let id = unique("igt-km2");
    // The truth for denials: a trace capabilities of the same container,
    // headless (which must not count them a second time).
    headless_for(&d, "capabilities", &id, &file);
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    // 32 MiB of memory: what the OOM killer will enforce below.
    bundle.edit_config(|c| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 32u64 << 20}));
    let pid = bundle.run_detached();
    let up = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["ip", "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success(), "ip link set lo up in the container");
    let names = [
        "ig_container_tcp_accepts_total",
        "ig_container_oom_kills_total",
        "ig_container_capability_denials_total",
    ];
    let denials_in_file = || events_of(&file, &id).iter().filter(|v| v["verdict"] == "Deny").count();
    let settled = |what: &str| {
        let mut last = (container_counts(&target, &id, &names), denials_in_file());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(1500));
            let now = (container_counts(&target, &id, &names), denials_in_file());
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: never settled");
            last = now;
        }
    };
    let (before, denials_before) = settled("before");
    // Known work: one accepted connection (the client retries until the
    // listener is up), a hostname change the container may not make
    // (CAP_SYS_ADMIN), and a tail that grows past the memory limit.
    let out = bundle.exec_output(&[
        "/bin/sh",
        "-c",
        "nc -l -p 7001 >/dev/null & until echo x | nc 127.0.0.1 7001 2>/dev/null; do sleep 0.1; done; wait",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = bundle.exec_output(&["/bin/hostname", "igt-not-allowed"]);
    assert!(!out.status.success(), "hostname without CAP_SYS_ADMIN: {out:?}");
    let out = bundle.exec_output(&["/bin/sh", "-c", "cat /dev/zero | tail; echo $? >&2"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last(),
        Some("137"),
        "tail killed (SIGKILL) by the OOM killer: {out:?}"
    );
    let (after, denials_after) = settled("after");
    let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let denials = (denials_after - denials_before) as f64;
    assert_eq!(delta[..2], [1.0, 1.0], "one accept and one OOM kill: {delta:?}");
    assert!(denials >= 1.0, "trace capabilities saw the hostname denial");
    if how == "tracepoint" {
        // Both see every check through the same tracepoint.
        assert_eq!(delta[2], denials, "the kernel's denials against trace capabilities' events");
    } else {
        // The counters leave out CAP_OPT_NOAUDIT checks; the gadget's
        // tracepoint (where it has one) cannot.
        assert!(delta[2] >= 1.0 && delta[2] <= denials, "{} denials counted, {denials} seen", delta[2]);
    }
    let (_, body) = http_get(&target, "/metrics").unwrap();
    assert_eq!(sample(&body, "ig_kernel_counts_lost_total"), Some(0.0), "{body}");
    bundle.delete();
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_daemon_counts_dns_with_no_gadget_running_and_never_twice() {
    let h = harness();
    require_root();
    let d = tests::Daemon::start(&["--metrics-address", "127.0.0.1:0"]);
    assert!(
        d.ig.stderr_text().contains("counting DNS queries, responses and their latency"),
        "{}",
        d.ig.stderr_text()
    );
    let target = daemon_metrics_address(&d);
    let prometheus = Prometheus::start(&target);
    let id = unique("igt-ddns");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let _server = tests::dns_server::DnsServer::start(
        Some(std::path::Path::new(&format!("/proc/{pid}/ns/net"))),
        "127.0.0.1",
    );
    let l = format!("namespace=\"\",pod=\"\",container=\"{id}\",runtime=\"runc\"");
    let series = [
        format!("ig_container_dns_queries_total{{{l}}}"),
        format!("ig_container_dns_responses_total{{{l},rcode=\"NoError\"}}"),
        format!("ig_container_dns_responses_total{{{l},rcode=\"NXDomain\"}}"),
        format!("ig_container_dns_latency_seconds_count{{{l}}}"),
    ];
    let scraped = || -> Vec<f64> {
        let (_, body) = http_get(&target, "/metrics").expect("/metrics");
        series.iter().map(|s| sample(&body, s).unwrap_or(0.0)).collect()
    };
    let lookups = || {
        for name in ["example.test", "nope.test"] {
            let _ = bundle.exec_output(&["nslookup", name, "127.0.0.1"]);
        }
    };
    // With a client's trace dns attached: its events are the truth, and
    // the daemon's counts must match them once, not twice.
    let client = d.gadgetctl_ready(&["trace", "dns", "-c", &id, "-o", "json"]);
    lookups();
    let mut events: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let once = loop {
        events.extend(client.collect_json(Duration::from_millis(300)));
        let mine: Vec<&Value> =
            events.iter().filter(|v| v["runtime"]["containerName"] == id.as_str()).collect();
        let responses = |rcode: &str| {
            mine.iter().filter(|v| v["qr"] == "R" && v["pktType"] == "HOST" && v["rcode"] == rcode).count()
        };
        let want = [
            mine.iter().filter(|v| v["qr"] == "Q" && v["pktType"] == "OUTGOING").count(),
            responses("NoError"),
            responses("NXDomain"),
            mine.iter()
                .filter(|v| v["qr"] == "R" && v["pktType"] == "HOST" && v["latency"].as_u64() > Some(0))
                .count(),
        ]
        .map(|n| n as f64);
        let shown = scraped();
        if want[1] >= 1.0 && want[2] >= 1.0 && shown == want {
            break want;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon's DNS counts never matched the events: want {want:?}, shown {shown:?}"
        );
    };
    drop(client);
    // Nobody watching now: the same lookups count the same again.
    lookups();
    let twice: Vec<f64> = once.iter().map(|n| n * 2.0).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = scraped();
        if shown == twice {
            break;
        }
        assert!(Instant::now() < deadline, "with no gadget running: want {twice:?}, shown {shown:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // And through a real Prometheus (once it has scraped): the queries and
    // responses by rcode.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = |query: String| prometheus.query_value(&query).map(|(_, v)| v);
        let got = [
            q(format!("ig_container_dns_queries_total{{container=\"{id}\"}}")),
            q(format!("ig_container_dns_responses_total{{container=\"{id}\",rcode=\"NoError\"}}")),
            q(format!("ig_container_dns_responses_total{{container=\"{id}\",rcode=\"NXDomain\"}}")),
            q(format!("ig_container_dns_latency_seconds_count{{container=\"{id}\"}}")),
        ];
        if got.iter().zip(&twice).all(|(g, w)| *g == Some(*w)) {
            assert_eq!(q("up{job=\"ig\"}".to_string()), Some(1.0));
            break;
        }
        assert!(Instant::now() < deadline, "PromQL: {got:?}, ig served {twice:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    bundle.delete();
}
