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

#[test]
fn prometheus_sees_a_containers_execs_and_failed_execs_with_its_labels() {
    let h = harness();
    require_root();
    let mut args: Vec<String> =
        ["trace", "exec", "-o", "json", "--metrics-address", "127.0.0.1:0"].map(String::from).to_vec();
    args.extend(h.runtime_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ig = IgChild::spawn_ready(&args, "tracing started");
    let text = ig.stderr_text();
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("ig: metrics at http://")?.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address: {text}"))
        .to_string();
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
