//! ig-hook never blocks or breaks a container: no tracer, a hung tracer,
//! garbage input, a missing bundle, a vanished pid. (Its own test binary: the
//! hung tracer below slows every hook on the machine while it runs.)

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{binary, harness, list_containers, require_root, run_ok, unique};

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

/// How long each hook run in `log` took by its own account
/// ("... acknowledged in 500.2ms").
fn hook_times(log: &str) -> Vec<Duration> {
    log.lines()
        .filter_map(|l| {
            let figure = l.split(" acknowledged in ").nth(1)?.split_whitespace().next()?;
            let digits = figure.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
            let value: f64 = digits.parse().ok()?;
            let secs = match &figure[digits.len()..] {
                "s" => value,
                "ms" => value / 1e3,
                "µs" => value / 1e6,
                "ns" => value / 1e9,
                unit => panic!("a duration in {unit}? {l}"),
            };
            Some(Duration::from_secs_f64(secs))
        })
        .collect()
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
fn a_panic_exits_zero_unless_told_to_fail_closed() {
    require_root();
    let state = format!(
        r#"{{"ociVersion":"1.0.2","id":"{}","status":"creating","pid":{},"bundle":"/tmp"}}"#,
        unique("c"),
        std::process::id()
    );
    for (args, status) in [(&["prestart"][..], 0), (&["prestart", "--fail-closed"][..], 1)] {
        let (code, _, log) = run_hook_with(args, state.as_bytes(), |c| {
            c.env("IG_HOOK_TEST_PANIC", "1");
        });
        assert_eq!(code, status, "{args:?}: {log}");
        assert!(log.contains("internal error (panic): ") && log.contains("IG_HOOK_TEST_PANIC"), "{log}");
    }
}

#[test]
fn no_tracer_running_the_container_starts_and_is_learnt_later() {
    let h = harness();
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let id = unique("igt-notracer");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    bundle.run_detached();
    let log = bundle.hook_log_text();
    assert!(log.contains("0 of 0 tracers acknowledged"), "{log}");
    // With no tracer the hook waits on nothing. Its own figure: runc's
    // start-up is not the hook's, and on a loaded machine it varies.
    let times = hook_times(&log);
    assert!(!times.is_empty() && times.iter().all(|t| *t < Duration::from_secs(1)), "{log}");
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
    bundle.run(); // asserts that the container ran: the hung tracer did not fail it
    drop(hung);
    let log = bundle.hook_log_text();
    // Both runs (prestart and poststop) met the hung socket and gave up on
    // it at the 500 ms bound: the container waited that long, not longer
    // (the slack is for a loaded machine's scheduling; runc's own start-up
    // is not the hook's and is left out).
    assert_eq!(log.matches("TimedOut").count(), 2, "{log}");
    let times = hook_times(&log);
    assert_eq!(times.len(), 2, "{log}");
    let bound = Duration::from_millis(500);
    for t in times {
        assert!(t >= bound && t < bound + Duration::from_secs(1), "a hook run took {t:?}:\n{log}");
    }
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

/// A stand-in container: a process in a mount namespace of its own, and a
/// bundle directory holding `config` as config.json.
struct StandIn {
    child: std::process::Child,
    bundle: std::path::PathBuf,
}

impl StandIn {
    fn start() -> Self {
        let child = tests::in_own_mntns(Command::new("/bin/sleep").arg("60")).spawn().unwrap();
        let bundle = std::env::temp_dir().join(unique("bundle"));
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("config.json"), br#"{"ociVersion":"1.0.2","process":{"args":["sleep"]}}"#)
            .unwrap();
        StandIn { child, bundle }
    }

    fn state(&self, id: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","id":"{id}","status":"creating","pid":{},"bundle":"{}"}}"#,
            self.child.id(),
            self.bundle.display()
        )
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// A pids cgroup of its own (v1 `pids` hierarchy or the v2 unified one)
/// whose pids.max is `max`.
struct PidsCgroup {
    dir: std::path::PathBuf,
}

impl PidsCgroup {
    fn new(max: u32) -> Self {
        let v1 = std::path::Path::new("/sys/fs/cgroup/pids");
        let parent = if v1.join("cgroup.procs").exists() {
            v1.to_path_buf()
        } else {
            let v2 = std::path::PathBuf::from("/sys/fs/cgroup");
            let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
            assert!(controllers.contains("pids"), "no pids cgroup controller on this machine (v1 or v2)");
            let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+pids");
            v2
        };
        let dir = parent.join(unique("ig-hook-pids"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("pids.max"), max.to_string()).unwrap();
        PidsCgroup { dir }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs ig-hook with `stdin`, `setup` applied to its Command; returns
/// (exit code, elapsed, log text).
fn run_hook_with(args: &[&str], stdin: &[u8], setup: impl FnOnce(&mut Command)) -> (i32, Duration, String) {
    let log = std::env::temp_dir().join(format!("{}.log", unique("ig-hook-test")));
    let mut cmd = Command::new(binary("ig-hook"));
    cmd.args(args).arg("--log").arg(&log).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    setup(&mut cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (code, elapsed, text)
}

/// Starts `ig trace exec` (a real tracer with its hook socket) and waits
/// until it traces.
fn real_tracer() -> tests::IgChild {
    let ig = tests::IgChild::spawn_ready(
        &["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    tests::wait_exec_ready(&ig);
    ig
}

#[test]
fn in_a_pids_cgroup_at_its_limit_the_hook_still_tells_the_tracer() {
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let ig = real_tracer();
    let standin = StandIn::start();
    let cg = PidsCgroup::new(1);
    let procs = cg.dir.join("cgroup.procs");
    let id = unique("c-pids");
    let (code, _, log) = run_hook_with(&["prestart"], standin.state(&id).as_bytes(), |cmd| {
        use std::os::unix::process::CommandExt;
        let procs = std::ffi::CString::new(procs.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: open/write/close only (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    });
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("1 of 1 tracers acknowledged"), "{log}");
    // The cgroup really refuses a second task: a thread in it fails.
    let refused = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo $$ > {}; /bin/true || exit 1; exit 0", cg.dir.join("cgroup.procs").display()))
        .status()
        .unwrap();
    assert!(!refused.success(), "a fork inside a pids.max=1 cgroup succeeded: the test proves nothing");
    // Stopped, not killed: a killed tracer leaves its socket for the next hook to find stale.
    ig.interrupt();
}

#[test]
fn broken_pipes_and_closed_stdio_never_change_the_exit_status() {
    require_root();
    // stderr a pipe whose reader is gone: a bad flag's usage message hits EPIPE.
    for (args, on_stdout) in [(vec!["--no-such-flag"], false), (vec!["--help"], true)] {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let mut cmd = Command::new(binary("ig-hook"));
        cmd.args(&args).stdin(Stdio::null());
        if on_stdout {
            cmd.stdout(Stdio::from(w)).stderr(Stdio::null());
        } else {
            cmd.stderr(Stdio::from(w)).stdout(Stdio::null());
        }
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?} with a broken pipe: {status:?}");
    }
    // stdout and stderr closed, no environment at all.
    let state =
        format!(r#"{{"ociVersion":"1.0.2","id":"{}","status":"stopped","bundle":"/tmp"}}"#, unique("c"));
    let (code, _, log) = run_hook_with(&["poststop"], state.as_bytes(), |cmd| {
        use std::os::unix::process::CommandExt;
        cmd.env_clear();
        // SAFETY: close(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::close(1);
                libc::close(2);
                Ok(())
            });
        }
    });
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("tracers acknowledged"), "{log}");
}

#[test]
fn hostile_bundles_and_inputs_end_within_the_bound() {
    require_root();
    let standin = StandIn::start();
    let config = standin.bundle.join("config.json");
    let bound = Duration::from_millis(300);
    let args = ["prestart", "--timeout-ms", "300"];
    // What a loaded machine may add to the hook's own bound: starting a process.
    let slack = Duration::from_secs(2);

    // (what, how to prepare the bundle, stdin, what the log must say)
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, Vec<u8>, &'a str);
    let mut cases: Vec<Case> = Vec::new();
    cases.push((
        "config.json a FIFO",
        Box::new(|| {
            let _ = std::fs::remove_file(&config);
            run_ok(Command::new("mkfifo").arg(&config));
        }),
        standin.state(&unique("c-fifo")).into_bytes(),
        "not a regular file",
    ));
    cases.push((
        "config.json a symlink loop",
        Box::new(|| {
            let _ = std::fs::remove_file(&config);
            std::os::unix::fs::symlink(&config, &config).unwrap();
        }),
        standin.state(&unique("c-loop")).into_bytes(),
        "config.json",
    ));
    cases.push((
        "a 100 MB config.json",
        Box::new(|| {
            let _ = std::fs::remove_file(&config);
            std::fs::File::create(&config).unwrap().set_len(100 << 20).unwrap();
        }),
        standin.state(&unique("c-big")).into_bytes(),
        "is larger than",
    ));
    let mut huge = standin.state(&unique("c-huge")).into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 5 << 20));
    cases.push(("a 5 MB state", Box::new(|| {}), huge, "larger than"));
    let mut deep = br#"{"id":"x","annotations":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 1 << 20));
    cases.push(("a deeply nested state", Box::new(|| {}), deep, "not valid JSON"));

    for (what, prepare, stdin, expect) in &cases {
        prepare();
        let (code, took, log) = run_hook_with(&args, stdin, |_| {});
        assert_eq!(code, 0, "{what}: {log}");
        assert!(took < bound + slack, "{what}: took {took:?}");
        assert!(log.contains(expect), "{what}: {log}");
    }
}

#[test]
fn a_read_only_spool_still_tells_the_tracers() {
    require_root();
    let _only_us = TRACER_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let ig = real_tracer();
    let standin = StandIn::start();
    let id = unique("c-rospool");
    std::fs::create_dir_all("/run/ig/containers").unwrap();
    // The hook alone sees /run/ig/containers read-only: a mount namespace
    // of its own with a read-only tmpfs there (a full or read-only /run).
    let (code, _, log) = run_hook_with(&["prestart"], standin.state(&id).as_bytes(), |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: unshare(2) and mount(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                use nix::mount::{MsFlags, mount};
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
                mount(Some("tmpfs"), "/run/ig/containers", Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)?;
                Ok(())
            });
        }
    });
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("writing /run/ig/containers"), "the spool write failed: {log}");
    assert!(log.contains("1 of 1 tracers acknowledged"), "{log}");
    assert!(!std::path::Path::new(&format!("/run/ig/containers/{id}.json")).exists());
    ig.interrupt();
}
