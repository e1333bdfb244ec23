//! ig-hook never blocks or breaks a container: no tracer, a hung tracer,
//! garbage input, a missing bundle, a vanished pid. (Its own test binary: the
//! hung tracer below slows every hook on the machine while it runs.)

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{binary, harness, list_containers, require_root, unique};

/// Tests that depend on which tracer sockets exist must not overlap.
static TRACER_SOCKETS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs ig-hook with `stdin` and its log in a temporary file; returns
/// (exit success, elapsed, log text).
fn run_hook(args: &[&str], stdin: &[u8]) -> (bool, Duration, String) {
    let log = std::env::temp_dir().join(format!("{}.log", unique("ig-hook-test")));
    let started = Instant::now();
    let mut child = Command::new(binary("ig-hook"))
        .args(args)
        .arg("--log")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let ok = child.wait().unwrap().success();
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (ok, elapsed, text)
}

#[test]
fn bad_input_exits_zero_quickly_with_a_clear_log_line() {
    require_root();
    let (ok, took, log) = run_hook(&["prestart"], b"\x00\xff garbage {");
    assert!(ok && took < Duration::from_secs(1), "{took:?}");
    assert!(log.contains("not valid JSON"), "{log}");

    let state = format!(
        r#"{{"ociVersion":"1.0.2","id":"{}","status":"creating","pid":{},"bundle":"/nonexistent/bundle"}}"#,
        unique("c"),
        std::process::id()
    );
    let (ok, _, log) = run_hook(&["prestart"], state.as_bytes());
    assert!(ok);
    assert!(log.contains("/nonexistent/bundle/config.json"), "{log}");

    // A pid that is gone: spawn and reap a process, then use its pid.
    let mut gone = Command::new("/bin/true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let id = unique("c");
    let state =
        format!(r#"{{"ociVersion":"1.0.2","id":"{id}","status":"creating","pid":{pid},"bundle":"/tmp"}}"#);
    let (ok, _, log) = run_hook(&["prestart"], state.as_bytes());
    assert!(ok);
    assert!(log.contains("the container process is gone"), "{log}");
    assert!(list_containers().iter().all(|r| r["runtime"]["containerId"] != id.as_str()));

    // Unknown arguments: still exit 0 (a misconfigured hook must not break containers).
    let (ok, _, _) = run_hook(&["--no-such-flag"], b"{}");
    assert!(ok);
    // Told to fail closed, bad input fails.
    let (ok, _, _) = run_hook(&["prestart", "--fail-closed"], b"garbage");
    assert!(!ok);
}

#[test]
fn no_tracer_running_the_container_starts_and_is_learnt_later() {
    let h = harness();
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let id = unique("igt-notracer");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let started = Instant::now();
    bundle.run_detached();
    let took = started.elapsed();
    let log = bundle.hook_log_text();
    assert!(log.contains("0 of 0 tracers acknowledged"), "{log}");
    assert!(took < Duration::from_secs(2), "runc run -d took {took:?}");
    // A tracer started afterwards knows it.
    assert!(list_containers().iter().any(|r| r["runtime"]["containerId"] == id.as_str()));
    bundle.delete();
}

/// A "tracer" that accepts connections and never answers.
struct HungTracer {
    path: std::path::PathBuf,
}

impl HungTracer {
    fn start() -> Self {
        let dir = std::path::Path::new("/run/ig/tracers");
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{}.sock", unique("hung")));
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn); // keep it open, never answer
            }
        });
        Self { path }
    }
}

impl Drop for HungTracer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn a_hung_tracer_delays_a_start_by_at_most_the_hook_bound() {
    let h = harness();
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let hung = HungTracer::start();
    let id = unique("igt-hung");
    let bundle = h.runc_bundle(&id, &["/bin/true"], true);
    let started = Instant::now();
    bundle.run();
    let took = started.elapsed();
    drop(hung);
    let log = bundle.hook_log_text();
    assert!(log.contains("TimedOut"), "{log}");
    // The bound is 500 ms per hook run (prestart + poststop both meet the hung socket).
    assert!(took < Duration::from_millis(2 * 500 + 700), "runc run took {took:?}");
}

#[test]
fn a_stale_socket_of_a_dead_tracer_is_cleared() {
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::Path::new("/run/ig/tracers");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{}.sock", unique("stale")));
    drop(UnixListener::bind(&path).unwrap()); // bound, then closed: nobody listens
    assert!(path.exists());
    let state =
        format!(r#"{{"ociVersion":"1.0.2","id":"{}","status":"stopped","bundle":"/tmp"}}"#, unique("c"));
    let (ok, _, _) = run_hook(&["poststop"], state.as_bytes());
    assert!(ok);
    assert!(!path.exists(), "the stale socket was removed");
}
