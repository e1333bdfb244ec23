//! `--otlp-endpoint`: events as OTLP logs and the metrics as OTLP metrics,
//! over gRPC, received by a stand-in collector (tests/otlp/receiver.py,
//! OpenTelemetry's own protobuf definitions from PyPI, no collector being
//! packaged here) that decodes real OTLP; then the collector goes away and
//! comes back, and what ig traced meanwhile still arrives.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{IgChild, harness, require_root, unique};

/// The stand-in collector on `port`, appending what it receives to `out`.
struct Receiver {
    child: Child,
}

impl Receiver {
    fn start(python: &Path, port: u16, out: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp/receiver.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string(), "--out", out.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the OTLP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("listening {port}"), "the receiver did not start");
        Receiver { child }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn requests(out: &Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == kind)
        .map(|v| v["request"].clone())
        .collect()
}

/// An attribute list (OTLP's JSON mapping) as (key, value) pairs.
fn attr<'a>(list: &'a Value, key: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

/// The log records of container `name`, with their resource.
fn records_of(out: &Path, name: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for req in requests(out, "logs") {
        for rl in req["resourceLogs"].as_array().into_iter().flatten() {
            let res = &rl["resource"]["attributes"];
            if attr(res, "container.name").and_then(|v| v["stringValue"].as_str()) != Some(name) {
                continue;
            }
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    let mut r = r.clone();
                    r["resource"] = res.clone();
                    found.push(r);
                }
            }
        }
    }
    found
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn events_and_metrics_reach_the_collector_and_survive_its_outage() {
    let h = harness();
    require_root();
    let dir: PathBuf = std::env::temp_dir().join(unique("igt-otlp"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("received.jsonl");
    let port = free_port();
    let receiver = Receiver::start(&h.python, port, &out);
    let (a, b) = (unique("igt-oa"), unique("igt-ob"));
    let endpoint = format!("http://127.0.0.1:{port}");
    let selection = format!("{a},{b}");
    let ig = IgChild::spawn_ready(
        &[
            "trace",
            "exec",
            "-c",
            &selection,
            "-o",
            "json",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-metrics-interval",
            "1s",
            "--auto-mount-filesystems",
        ],
        "tracing started",
    );

    h.runc_bundle(&a, &["/bin/echo", "from-a"], true).run();
    let shown = ig.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == "from-a");
    wait_for("container a's exec as an OTLP log record", Duration::from_secs(20), || {
        !records_of(&out, &a).is_empty()
    });
    let r = &records_of(&out, &a)[0];
    assert_eq!(r["eventName"], "trace exec");
    assert_eq!(r["severityText"], "INFO");
    assert_eq!(attr(&r["attributes"], "comm").unwrap()["stringValue"], "echo");
    assert_eq!(
        attr(&r["attributes"], "pid").unwrap()["intValue"],
        shown["pid"].to_string(),
        "int64 is a JSON string"
    );
    let args: Vec<&str> = attr(&r["attributes"], "args").unwrap()["arrayValue"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["stringValue"].as_str())
        .collect();
    assert_eq!(args, ["/bin/echo", "from-a"]);
    assert_eq!(r["timeUnixNano"], shown["timestamp"].to_string());
    let body: Value = serde_json::from_str(r["body"]["stringValue"].as_str().unwrap()).unwrap();
    assert_eq!(body, shown, "the body is the event as ig prints it");
    assert_eq!(attr(&r["resource"], "container.runtime").unwrap()["stringValue"], "runc");
    assert_eq!(attr(&r["resource"], "service.name").unwrap()["stringValue"], "ig");

    // The metrics, as cumulative sums with the container's labels.
    let execs_of_a = || {
        requests(&out, "metrics").iter().rev().find_map(|req| {
            let metrics = req["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array()?.clone();
            let m = metrics.iter().find(|m| m["name"] == "ig_container_execs")?;
            assert_eq!(m["sum"]["isMonotonic"], true);
            assert_eq!(m["sum"]["aggregationTemporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE");
            let p = m["sum"]["dataPoints"].as_array()?.iter().find(|p| {
                attr(&p["attributes"], "container").and_then(|v| v["stringValue"].as_str()) == Some(&a)
            })?;
            p["asInt"].as_str()?.parse::<u64>().ok()
        })
    };
    wait_for("ig_container_execs for container a", Duration::from_secs(20), || execs_of_a() == Some(1));

    // The collector goes away: tracing goes on, failures are reported...
    drop(receiver);
    h.runc_bundle(&b, &["/bin/echo", "from-b"], true).run();
    ig.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == "from-b");
    let warn = ig.wait_json(Duration::from_secs(20), || {}, |v| v["type"] == "warn");
    let message = warn["message"].as_str().unwrap_or_default();
    assert!(message.contains("exports failed, retrying"), "{warn}");
    assert!(records_of(&out, &b).is_empty());
    // ...and once it is back, the retried batch arrives.
    let _receiver = Receiver::start(&h.python, port, &out);
    wait_for("container b's exec, sent again after the outage", Duration::from_secs(60), || {
        records_of(&out, &b)
            .iter()
            .any(|r| r["body"]["stringValue"].as_str().is_some_and(|s| s.contains("from-b")))
    });
    let status = ig.interrupt();
    assert!(status.success(), "ig ended with {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_endpoint_is_refused_before_tracing() {
    require_root();
    let out = Command::new(tests::binary("ig"))
        .args(["trace", "exec", "--otlp-endpoint", "127.0.0.1:4317", "--auto-mount-filesystems"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected http://HOST:PORT"), "{err}");
    let out = Command::new(tests::binary("ig"))
        .args(["top", "file", "--otlp-endpoint", "http://127.0.0.1:4317", "--auto-mount-filesystems"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("only the trace gadgets export"), "{out:?}");
}

/// The newest value of sum `metric` for container `name` the collector got.
fn latest_sum_of(out: &Path, metric: &str, name: &str) -> Option<u64> {
    requests(out, "metrics").iter().rev().find_map(|req| {
        let metrics = req["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array()?.clone();
        let m = metrics.iter().find(|m| m["name"] == metric)?;
        let p = m["sum"]["dataPoints"].as_array()?.iter().find(|p| {
            attr(&p["attributes"], "container").and_then(|v| v["stringValue"].as_str()) == Some(name)
        })?;
        p["asInt"].as_str()?.parse::<u64>().ok()
    })
}

#[test]
fn the_daemon_exports_its_metrics_with_no_gadget_running() {
    let h = harness();
    require_root();
    let dir: PathBuf = std::env::temp_dir().join(unique("igt-dotlp"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("received.jsonl");
    let port = free_port();
    let receiver = Receiver::start(&h.python, port, &out);
    let endpoint = format!("http://127.0.0.1:{port}");
    let d = tests::Daemon::start(&["--otlp-endpoint", &endpoint, "--otlp-metrics-interval", "1s"]);
    assert!(
        d.ig.wait_stderr("exporting metrics over OTLP", Duration::from_secs(10)),
        "{}",
        d.ig.stderr_text()
    );

    // Four execs (sh, two ls and a missing binary; `true` is a builtin), one failing.
    let id = unique("igt-dotlp");
    let script = "/bin/ls / >/dev/null; /bin/ls /bin >/dev/null; /igt-missing 2>/dev/null; true";
    h.runc_bundle(&id, &["/bin/sh", "-c", script], true).run();
    wait_for("ig_container_execs 4 and failed 1 for the container", Duration::from_secs(30), || {
        latest_sum_of(&out, "ig_container_execs", &id) == Some(4)
            && latest_sum_of(&out, "ig_container_failed_execs", &id) == Some(1)
    });

    // The collector goes away: the daemon says so, and keeps running.
    drop(receiver);
    assert!(
        d.ig.wait_stderr("OTLP metrics exports failed, retrying", Duration::from_secs(30)),
        "{}",
        d.ig.stderr_text()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
