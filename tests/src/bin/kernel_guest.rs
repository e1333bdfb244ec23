//! The kernel matrix's program inside each VM (tests/kernels/): for every
//! gadget of `ig check`'s report, starts the gadget as a user would (no
//! `--host`), registers a stand-in container (a process in its own mount
//! namespace) the way ig-hook does, provokes the gadget's event from inside
//! it and from the host, and checks what ig printed: the container's event
//! with the right pid, comm and gadget keys, named after the container, and
//! no host event at all (every line is examined). Then lost-event counting,
//! the container record's cgroup fields, and with runc in the image a real
//! runc container started with ig-hook (first exec traced and named, the
//! upper layer of an overlayfs root seen).
//!
//! Prints one `IGVM-RESULT <name> ok <variant>` or `IGVM-RESULT <name> FAIL
//! <reason>` line per check, and `IGVM-CHECK <json>` with ig check's report.
//! `kernel-guest container <action> <marker>` is the stand-in itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// The host side's TCP listener (connect, SNI and byte-count targets).
const LISTEN_PORT: u16 = 7070;
/// How long a gadget may take to show an event under emulation (TCG).
const EVENT_WAIT: Duration = Duration::from_secs(30);
/// Lines read after the container's event, for a host event that came later.
const GRACE: Duration = Duration::from_secs(2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("container") {
        let code = match stand_in(&args[2], &args[3]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("stand-in {}: {e:#}", args[2]);
                1
            }
        };
        std::process::exit(code);
    }
    // BENCH=open on the kernel command line: the open storm instead of the checks.
    let run = if std::env::var("BENCH").is_ok_and(|b| b == "open") { bench_open } else { run_all };
    if let Err(e) = run() {
        println!("IGVM-RESULT guest FAIL {e:#}");
    }
    println!("IGVM-GUEST-DONE");
}

fn bin(name: &str) -> PathBuf {
    Path::new("/bin").join(name)
}

fn result(name: &str, r: &Result<String>) {
    match r {
        Ok(variant) => println!("IGVM-RESULT {name} ok {variant}"),
        Err(e) => println!("IGVM-RESULT {name} FAIL {}", format!("{e:#}").replace('\n', " | ")),
    }
}

fn run_all() -> Result<()> {
    let only: Option<Vec<String>> =
        std::env::var("ONLY").ok().map(|s| s.split(',').map(String::from).collect());
    let check = Command::new(bin("ig")).args(["check", "-o", "json"]).output().context("ig check")?;
    let report: Value = serde_json::from_slice(&check.stdout)
        .with_context(|| format!("ig check printed no report: {}", String::from_utf8_lossy(&check.stderr)))?;
    println!("IGVM-CHECK {}", serde_json::to_string(&report)?);
    let host_mntns = mntns_of(std::process::id());

    // The host's listener: accepts and reads everything, for the TCP gadgets.
    let listener = TcpListener::bind(("127.0.0.1", LISTEN_PORT)).context("listening")?;
    drain_in_background(listener);

    let gadgets = report["gadgets"].as_array().context("the report lists gadgets")?;
    for (i, g) in gadgets.iter().enumerate() {
        let name = g["gadget"].as_str().unwrap_or_default().to_string();
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| name.replace(' ', "_") == *x)) {
            continue;
        }
        let started = Instant::now();
        let r = test_gadget(&name, i, host_mntns, &[], &[]).and_then(|()| {
            // What ig check claimed must be what happened.
            match (g["ok"].as_bool(), g["variant"].as_str()) {
                (Some(true), Some(v)) => Ok(format!("{v} {:.1}s", started.elapsed().as_secs_f64())),
                _ => bail!("it ran, but ig check said it cannot: {}", g["error"]),
            }
        });
        let r = r.map_err(|e| match g["error"].as_str() {
            Some(why) => e.context(format!("ig check: {why}")),
            None => e,
        });
        result(&name, &r);
    }
    // The path walks (bounded loops) behind --full-path and --cwd.
    for (name, flag, index) in [("trace open", "--full-path", 100), ("trace exec", "--cwd", 101)] {
        if only.as_ref().is_none_or(|o| o.iter().any(|x| name.replace(' ', "_") == *x)) {
            result(
                &format!("{name} {flag}"),
                &test_gadget(name, index, host_mntns, &[flag], &[]).map(|()| "ok".into()),
            );
        }
    }
    // A gadget's variants after the one chosen are what a kernel without
    // it runs: trace open's tracepoints are checked where fexit is chosen.
    let open_variant =
        gadgets.iter().find(|g| g["gadget"] == "trace open").and_then(|g| g["variant"].as_str());
    if open_variant == Some("fexit") && only.as_ref().is_none_or(|o| o.iter().any(|x| x == "trace_open")) {
        let env = [(tracer::session::VARIANT_ENV, "tracepoint")];
        result(
            "trace open tracepoint",
            &test_gadget("trace open", 102, host_mntns, &[], &env).map(|()| "tracepoint".into()),
        );
    }
    // And fsslower's kprobes, what a kernel refusing its trampolines runs
    // (5.10's verifier refuses fentry reading vfs_read's `loff_t *pos`: a
    // pointer to no struct); run again where they are the chosen variant,
    // so that every kernel has the row.
    let fsslower_variant =
        gadgets.iter().find(|g| g["gadget"] == "trace fsslower").and_then(|g| g["variant"].as_str());
    if matches!(fsslower_variant, Some("fentry" | "kprobe"))
        && only.as_ref().is_none_or(|o| o.iter().any(|x| x == "trace_fsslower"))
    {
        let env = [(tracer::session::VARIANT_ENV, "kprobe")];
        result(
            "trace fsslower kprobe",
            &test_gadget("trace fsslower", 103, host_mntns, &[], &env).map(|()| "kprobe".into()),
        );
    }
    if only.is_none() {
        result("process-filters", &process_filters_load(gadgets));
        result("lost-events", &lost_events().map(|n| format!("{n} lost, reported")));
        result("cgroup-fields", &cgroup_fields().map(|p| format!("cgroupPath {p}")));
        let counters = metrics_counters(None);
        result("metrics-counters", &counters);
        // The kprobe variant too, where another was chosen and kprobes exist.
        let chosen_kprobe = counters.as_ref().is_ok_and(|how| how.starts_with("kprobe"));
        if !chosen_kprobe && std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists() {
            result("metrics-counters kprobe", &metrics_counters(Some("kprobe")));
        }
    }
    // RUNC=1 on the kernel command line: this VM's image has runc.
    if std::env::var("RUNC").is_ok_and(|v| v == "1")
        && only.as_ref().is_none_or(|o| o.iter().any(|x| x == "runc"))
    {
        result("runc-hook", &runc_with_hook());
        result("runc-seccomp", &runc_seccomp_audited());
    }
    Ok(())
}

/// Inode of /proc/<pid>/ns/mnt.
fn mntns_of(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino()).unwrap_or(0)
}

/// `ig` running one gadget, its stdout as lines, its stderr collected.
struct Ig {
    child: Child,
    lines: Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Ig {
    fn start(args: &[&str]) -> Result<Self> {
        Self::start_with(args, &[], None)
    }

    /// With more environment, and its output into `out` instead of `lines`.
    fn start_with(args: &[&str], env: &[(&str, &str)], out: Option<std::fs::File>) -> Result<Self> {
        let to_file = out.is_some();
        let mut child = Command::new(bin("ig"))
            .args(args)
            .env("IG_LOG", "info")
            .envs(env.iter().copied())
            .stdout(out.map_or_else(Stdio::piped, Stdio::from))
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning ig")?;
        let (tx, lines) = channel();
        if !to_file {
            let out = child.stdout.take().context("stdout")?;
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().context("stderr")?;
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&l);
                s.push('\n');
            }
        });
        let ig = Ig { child, lines, stderr };
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            let text = ig.stderr_text();
            if text.contains("tracing started") {
                return Ok(ig);
            }
            if let Some(status) = ig.exited() {
                bail!("ig {} exited ({status}): {}", args.join(" "), last_lines(&text));
            }
            ensure!(Instant::now() < deadline, "ig never started tracing: {}", last_lines(&text));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exited(&self) -> Option<String> {
        // waitpid(WNOHANG): whether ig has exited, without blocking.
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(s) => Some(format!("{s:?}")),
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads every line until `want` matches one (then GRACE more); any
    /// line `forbidden` matches fails the check at once.
    fn expect(
        &self,
        want: impl Fn(&Value) -> bool,
        forbidden: impl Fn(&Value) -> Option<String>,
    ) -> Result<Value> {
        let deadline = Instant::now() + EVENT_WAIT;
        let mut found: Option<(Value, Instant)> = None;
        let mut seen = 0;
        let mut last = String::new();
        loop {
            let until = match &found {
                Some((_, at)) => *at + GRACE,
                None => deadline,
            };
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return match found {
                    Some((v, _)) => Ok(v),
                    None => bail!(
                        "no matching event within {EVENT_WAIT:?} ({seen} lines, the last: {last}); ig said: {}",
                        last_lines(&self.stderr_text())
                    ),
                };
            }
            let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(200))) else { continue };
            seen += 1;
            last = line.chars().take(600).collect();
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            for item in v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) {
                if let Some(why) = forbidden(&item) {
                    bail!("{why}: {item}");
                }
                if found.is_none() && want(&item) {
                    found = Some((item, Instant::now()));
                }
            }
        }
    }
}

impl Drop for Ig {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("tracing started")).collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// A stand-in container: `kernel-guest container <action> <marker>` in a
/// mount namespace of its own (and a network namespace for some actions),
/// registered with ig-hook as container `<id>`.
struct StandIn {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    id: String,
    bundle: PathBuf,
    pid: u32,
    /// Its mount namespace, read while it lives (the OOM victim does not).
    mntns: u64,
}

impl StandIn {
    /// `tracing`: an ig runs, so ig-hook must have it acknowledge the record
    /// (a snapshot has none: it reads the spool).
    fn start(action: &str, marker: &str, own_netns: bool, tracing: bool) -> Result<Self> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["container", action, marker])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .current_dir("/tmp");
        // SAFETY: unshare(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut flags = nix::sched::CloneFlags::CLONE_NEWNS;
                if own_netns {
                    flags |= nix::sched::CloneFlags::CLONE_NEWNET;
                }
                nix::sched::unshare(flags).map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().context("spawning the stand-in")?;
        let stdin = child.stdin.take().context("stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        ensure!(line.trim() == "ready", "the stand-in said {line:?}");
        let pid = child.id();
        let id = format!("igvm-{action}-{marker}");
        let bundle = PathBuf::from("/tmp/bundles").join(&id);
        std::fs::create_dir_all(&bundle)?;
        let mut config = serde_json::json!({"ociVersion": "1.0.2", "process": {"args": ["kernel-guest"]}});
        if action == "advise_network-policy" {
            // A pod's container as containerd's CRI writes it: advise
            // network-policy makes policies for pods only.
            config["annotations"] = serde_json::json!({
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.container-name": "app",
                "io.kubernetes.cri.sandbox-name": id,
                "io.kubernetes.cri.sandbox-namespace": POD_NAMESPACE,
                "io.kubernetes.cri.sandbox-uid": format!("uid-{marker}"),
            });
        }
        std::fs::write(bundle.join("config.json"), config.to_string())?;
        let mntns = mntns_of(pid);
        let me = StandIn { child, stdin, stdout, id, bundle, pid, mntns };
        me.hook("prestart", "creating", tracing)?;
        Ok(me)
    }

    /// Runs ig-hook as a runtime would, with this container's state.
    fn hook(&self, stage: &str, status: &str, tracing: bool) -> Result<()> {
        let state = serde_json::json!({
            "ociVersion": "1.0.2", "id": self.id, "status": status,
            "pid": self.pid, "bundle": self.bundle,
        });
        let mut hook = Command::new(bin("ig-hook"))
            .args([stage, "--log", "/tmp/ig-hook.log"])
            .stdin(Stdio::piped())
            .spawn()
            .context("ig-hook")?;
        hook.stdin.take().context("stdin")?.write_all(state.to_string().as_bytes())?;
        let status = hook.wait()?;
        ensure!(status.success(), "ig-hook {stage} failed: {status}");
        let log = std::fs::read_to_string("/tmp/ig-hook.log").unwrap_or_default();
        let last = log.lines().rev().find(|l| l.contains(&self.id)).unwrap_or_default();
        ensure!(!tracing || last.contains("1 of 1 tracers acknowledged"), "ig-hook: {last}");
        Ok(())
    }

    /// Tells it to act; returns what it reports (`key value` lines until `done`).
    fn go(&mut self) -> Result<Vec<(String, String)>> {
        writeln!(self.stdin, "go")?;
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                return Ok(out); // it died (the OOM killer's victim)
            }
            let line = line.trim();
            if line == "done" {
                return Ok(out);
            }
            if let Some((k, v)) = line.split_once(' ') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.hook("poststop", "stopped", false);
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

fn reported(facts: &[(String, String)], key: &str) -> Result<u64> {
    facts
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .with_context(|| format!("the stand-in did not report {key}: {facts:?}"))
}

/// Which event is the one provoked.
type Predicate = Box<dyn Fn(&Value) -> bool>;
/// What that event must hold.
type Checker = Box<dyn Fn(&Value) -> Result<()>>;

/// One gadget: its events (or rows) from inside a stand-in, none from the host.
fn test_gadget(
    gadget: &str,
    index: usize,
    host_mntns: u64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<()> {
    let marker = format!("m{index}x{}", std::process::id());
    let (category, name) = gadget.split_once(' ').unwrap_or(("", gadget));
    let action = gadget.replace(' ', "_");
    let action = action.as_str();
    // The TCP drop and retransmission gadgets: in its own network namespace
    // (their events are named by it when no process owns them).
    let own_netns = matches!(gadget, "snapshot socket" | "trace tcpdrop" | "trace tcpretrans");
    let no_host = move |v: &Value| {
        if v["mountnsid"].as_u64() == Some(0) {
            return Some("an event of no container was shown without --host".to_string());
        }
        (v["mountnsid"].as_u64() == Some(host_mntns) && host_mntns != 0)
            .then(|| "a host event was shown without --host".to_string())
    };

    if category == "snapshot" {
        let mut standin = StandIn::start(action, &marker, own_netns, false)?;
        standin.go()?;
        // The host listens too: that socket must not be listed.
        let _host = TcpListener::bind(("127.0.0.1", LISTEN_PORT + 1))?;
        let out = Command::new(bin("ig")).args([category, name, "-o", "json"]).output()?;
        ensure!(out.status.success(), "ig {gadget}: {}", String::from_utf8_lossy(&out.stderr));
        let rows: Value = serde_json::from_slice(&out.stdout).context("a JSON array")?;
        let rows = rows.as_array().context("a JSON array")?;
        let named = |r: &Value| r["runtime"]["containerName"] == standin.id.as_str();
        let ok = match gadget {
            "snapshot process" => {
                rows.iter().any(|r| named(r) && r["pid"] == standin.pid && r["comm"] == "kernel-guest")
            }
            _ => rows.iter().any(|r| {
                named(r) && r["src"].as_str().is_some_and(|s| s.ends_with(&format!(":{}", LISTEN_PORT + 2)))
            }),
        };
        ensure!(ok, "the stand-in's entry is missing: {}", serde_json::to_string(rows)?);
        if gadget == "snapshot process" {
            ensure!(rows.iter().all(|r| no_host(r).is_none()), "a host process was listed");
        } else {
            let host_port = format!(":{}", LISTEN_PORT + 1);
            ensure!(
                rows.iter().all(|r| !r["src"].as_str().unwrap_or_default().ends_with(&host_port)),
                "a host socket was listed"
            );
        }
        return Ok(());
    }

    if gadget == "traceloop" {
        return test_traceloop(&marker, env, no_host);
    }
    if gadget == "profile cpu" {
        return test_profile_cpu(action, &marker, env, no_host);
    }
    if category == "profile" {
        return test_profile(gadget, action, &marker, env);
    }
    if gadget == "audit seccomp" {
        return test_audit_seccomp(action, &marker, env, no_host);
    }
    if gadget == "advise seccomp-profile" {
        return test_advise_seccomp(action, &marker, env, no_host);
    }
    if gadget == "advise network-policy" {
        return test_advise_networkpolicy(action, &marker, env);
    }

    let mut args = vec![category, name, "-o", "json"];
    args.extend_from_slice(extra);
    let full_path = extra.contains(&"--full-path");
    let cwd = extra.contains(&"--cwd");
    if category == "top" {
        args.extend(["--interval", "1"]);
    }
    // Nothing is slow in a VM without disks: every operation shows with -m 0.
    if gadget == "trace fsslower" {
        args.extend(["-m", "0"]);
    }
    let ig = Ig::start_with(&args, env, None)?;
    let mut standin = StandIn::start(action, &marker, own_netns, true)?;
    let facts = standin.go()?;
    // The same from the host, which must not show.
    let _ = provoke(action, &format!("h{marker}"), &mut Vec::new());
    let pid = standin.pid;
    let named =
        |v: &Value| v["runtime"]["containerName"] == standin.id.as_str() && v["mountnsid"] == standin.mntns;
    let (want, check): (Predicate, Checker) = match gadget {
        "trace exec" => {
            let child = reported(&facts, "child")?;
            (
                Box::new(move |v| {
                    v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str()))
                }),
                Box::new(move |v| {
                    expect_fields(
                        v,
                        &[("pid", child.into()), ("ppid", pid.into()), ("comm", "true".into())],
                    )?;
                    // The stand-in runs in /tmp.
                    if cwd {
                        expect_fields(v, &[("cwd", "/tmp".into())])?;
                    }
                    Ok(())
                }),
            )
        }
        "trace open" => {
            // A relative name, opened in /tmp: --full-path walks /tmp's path.
            let path = marker.clone();
            let full = format!("/tmp/{marker}");
            (
                Box::new(move |v| v["path"] == path.as_str()),
                Box::new(move |v| {
                    expect_fields(
                        v,
                        &[("pid", pid.into()), ("comm", "kernel-guest".into()), ("err", 2.into())],
                    )?;
                    if full_path {
                        expect_fields(v, &[("fullPath", full.as_str().into())])?;
                    }
                    Ok(())
                }),
            )
        }
        "trace signal" => {
            let target = reported(&facts, "target")?;
            (
                Box::new(move |v| v["tpid"] == target),
                Box::new(move |v| expect_fields(v, &[("pid", pid.into()), ("signal", "SIGCONT".into())])),
            )
        }
        "trace mount" => (
            Box::new(move |v| v["call"].as_str().is_some_and(|c| c.contains(marker.as_str()))),
            Box::new(move |v| {
                expect_fields(v, &[("pid", pid.into()), ("comm", "kernel-guest".into()), ("ret", 0.into())])
            }),
        ),
        "trace oomkill" => (
            Box::new(move |v| v["tpid"] == pid),
            Box::new(move |v| expect_fields(v, &[("tcomm", "kernel-guest".into())])),
        ),
        "trace bind" => {
            let port = reported(&facts, "port")?;
            (
                Box::new(move |v| v["port"] == port),
                Box::new(move |v| expect_fields(v, &[("pid", pid.into()), ("proto", "UDP".into())])),
            )
        }
        "trace tcp" => (
            Box::new(move |v| v["operation"] == "connect" && v["dport"] == LISTEN_PORT && v["pid"] == pid),
            Box::new(move |v| {
                expect_fields(v, &[("comm", "kernel-guest".into()), ("daddr", "127.0.0.1".into())])
            }),
        ),
        "trace tcpconnect" => (
            Box::new(move |v| v["dport"] == LISTEN_PORT && v["pid"] == pid),
            Box::new(move |v| {
                expect_fields(v, &[("comm", "kernel-guest".into()), ("daddr", "127.0.0.1".into())])
            }),
        ),
        "trace capabilities" => (
            Box::new(move |v| v["pid"] == pid && v["capName"] == "CAP_SETUID"),
            Box::new(move |v| {
                expect_fields(v, &[("comm", "kernel-guest".into()), ("verdict", "Allow".into())])
            }),
        ),
        "trace dns" => {
            let qname = format!("{marker}.test.");
            (
                Box::new(move |v| v["name"] == qname.as_str() && v["qr"] == "Q"),
                Box::new(move |v| expect_fields(v, &[("pid", pid.into()), ("qtype", "A".into())])),
            )
        }
        // openssl s_client's request, from the stand-in's root's libssl.
        "trace ssl" => {
            let child = reported(&facts, "child")?;
            let request = format!("GET /{marker} HTTP/1.0\\n");
            (
                Box::new(move |v| v["data"] == request.as_str()),
                Box::new(move |v| {
                    expect_fields(
                        v,
                        &[
                            ("pid", child.into()),
                            ("comm", "openssl".into()),
                            ("operation", "SSL_write".into()),
                            ("len", (marker.len() + 15).into()),
                        ],
                    )
                }),
            )
        }
        "trace sni" => {
            let sni = format!("{marker}.test");
            (
                Box::new(move |v| v["name"] == sni.as_str()),
                Box::new(move |v| expect_fields(v, &[("pid", pid.into()), ("comm", "kernel-guest".into())])),
            )
        }
        // A SYN to a closed port: no socket, so no process; named by its netns.
        "trace tcpdrop" => (
            Box::new(move |v| v["dport"] == LISTEN_PORT + 3 && v["tcpflags"] == "SYN"),
            Box::new(move |v| {
                expect_fields(v, &[("pid", 0.into()), ("daddr", "127.0.0.1".into()), ("state", "".into())])?;
                // The reasons came with 5.17.
                ensure!(v["reason"] == "NO_SOCKET" || v["reason"] == "", "reason: {v}");
                Ok(())
            }),
        ),
        // Data a socket filter drops on arrival: sent again by its owner.
        "trace tcpretrans" => {
            let port = reported(&facts, "port")?;
            (
                Box::new(move |v| v["dport"] == port && v["pid"] == pid),
                Box::new(move |v| {
                    expect_fields(v, &[("comm", "kernel-guest".into()), ("state", "ESTABLISHED".into())])?;
                    ensure!(v["tcpflags"].as_str().is_some_and(|f| f.contains("PSH")), "tcpflags: {v}");
                    Ok(())
                }),
            )
        }
        "trace fsslower" => (
            Box::new(move |v| v["file"] == marker.as_str() && v["op"] == "W"),
            Box::new(move |v| {
                expect_fields(
                    v,
                    &[("pid", pid.into()), ("comm", "kernel-guest".into()), ("bytes", 1000.into())],
                )?;
                ensure!(v["filesystem"] == "tmpfs", "filesystem: {v}");
                Ok(())
            }),
        ),
        // A row may hold part of the bytes when the interval ends between writes.
        "top file" => (
            Box::new(move |v| v["file"] == marker.as_str()),
            Box::new(move |v| {
                expect_fields(v, &[("pid", pid.into()), ("comm", "kernel-guest".into())])?;
                ensure!(v["wbytes"].as_u64().is_some_and(|b| b > 0 && b <= 3000), "wbytes: {v}");
                Ok(())
            }),
        ),
        // Direct reads of a loop device: the row may hold part of them
        // when the interval ends between reads.
        "top block-io" => {
            let (major, minor) = loop_device()?.1;
            (
                Box::new(move |v| v["pid"] == pid && v["major"] == major && v["minor"] == minor),
                Box::new(move |v| {
                    expect_fields(v, &[("comm", "kernel-guest".into()), ("write", false.into())])?;
                    let bytes = v["bytes"].as_u64().unwrap_or(0);
                    ensure!(bytes > 0 && bytes <= DIRECT_READS * 4096 && bytes % 4096 == 0, "bytes: {v}");
                    Ok(())
                }),
            )
        }
        // The stand-in's own tracer: its programs are the container's.
        "top ebpf" => {
            let holder = reported(&facts, "holder")?;
            (
                Box::new(move |v| v["pid"] == holder),
                Box::new(move |v| {
                    expect_fields(v, &[("comm", "ig".into()), ("progType", "tracepoint".into())])?;
                    ensure!(v["mapMemory"].as_u64().is_some_and(|b| b > 0), "mapMemory: {v}");
                    Ok(())
                }),
            )
        }
        // From /proc: the stand-in itself, alive and idle.
        "top process" => (
            Box::new(move |v| v["pid"] == pid),
            Box::new(move |v| {
                expect_fields(v, &[("comm", "kernel-guest".into()), ("threads", 1.into())])?;
                ensure!(v["rss"].as_u64().is_some_and(|b| b > 0), "rss: {v}");
                Ok(())
            }),
        ),
        "top tcp" => (
            Box::new(move |v| v["pid"] == pid && v["dst"] == format!("127.0.0.1:{LISTEN_PORT}").as_str()),
            Box::new(move |v| {
                expect_fields(v, &[("comm", "kernel-guest".into())])?;
                ensure!(v["sent"].as_u64().is_some_and(|b| b > 0 && b <= 5000), "sent: {v}");
                Ok(())
            }),
        ),
        other => bail!("no test for {other}"),
    };
    let event = ig.expect(|v| want(v), |v| no_host(v))?;
    ensure!(named(&event), "the event is not named after its container: {event}");
    check(&event)?;
    drop(standin);
    Ok(())
}

/// A profile gadget: the stand-in's requests, and only those, in its
/// histogram (the host makes the same ones meanwhile).
fn test_profile(gadget: &str, action: &str, marker: &str, env: &[(&str, &str)]) -> Result<()> {
    let (category, name) = gadget.split_once(' ').context("a gadget is `category name`")?;
    // The least it must count, and whether exactly that: the ACKs a
    // connection gets depend on timing, its requests do not.
    let (want, exact) = match gadget {
        "profile block-io" => (DIRECT_READS, true),
        "profile tcprtt" => (1, false),
        other => bail!("no test for {other}"),
    };
    // Long enough for the stand-in to start and act under TCG.
    let ig = Ig::start_with(&[category, name, "-o", "json", "-t", "10"], env, None)?;
    let mut standin = StandIn::start(action, marker, false, true)?;
    standin.go()?;
    provoke(action, &format!("h{marker}"), &mut Vec::new())?;
    let hist = ig.expect(|v| v["measure"].is_string(), |_| None)?;
    let total: u64 = hist["intervals"]
        .as_array()
        .context("intervals")?
        .iter()
        .map(|i| i["count"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        total == want || (!exact && total > want),
        "{total} measured instead of the stand-in's {want}: {hist}"
    );
    Ok(())
}

/// The stand-in spins in `spin_for`: a row of its samples names that
/// function innermost in its user stack (its symbols read through its own
/// maps; matrix.sh keeps kernel-guest's symbol table); the host spinning
/// the same meanwhile never shows.
fn test_profile_cpu(
    action: &str,
    marker: &str,
    env: &[(&str, &str)],
    no_host: impl Fn(&Value) -> Option<String>,
) -> Result<()> {
    let ig = Ig::start_with(&["profile", "cpu", "-o", "json", "-t", "10"], env, None)?;
    let mut standin = StandIn::start(action, marker, false, true)?;
    standin.go()?;
    provoke(action, &format!("h{marker}"), &mut Vec::new())?;
    let (pid, id) = (standin.pid, standin.id.clone());
    let spun = |v: &Value| {
        v["pid"] == pid
            && v["runtime"]["containerName"] == id.as_str()
            && v["userStack"][0].as_str().is_some_and(|f| f.contains("spin_for"))
    };
    let row = ig.expect(spun, no_host)?;
    // 49 Hz for the 2 s it spun; TCG makes the guest slow, not its clock.
    ensure!(row["count"].as_u64().unwrap_or(0) >= 10, "too few samples of the spin: {row}");
    Ok(())
}

/// The stand-in runs under a filter of its own that logs getpriority and
/// denies sysinfo with EPERM, logged (SECCOMP_FILTER_FLAG_LOG): both
/// decisions show, named after it; the host doing the same never shows.
fn test_audit_seccomp(
    action: &str,
    marker: &str,
    env: &[(&str, &str)],
    no_host: impl Fn(&Value) -> Option<String>,
) -> Result<()> {
    let ig = Ig::start_with(&["audit", "seccomp", "-o", "json"], env, None)?;
    let mut standin = StandIn::start(action, marker, false, true)?;
    let facts = standin.go()?;
    ensure!(reported(&facts, "sysinfo_errno")? == libc::EPERM as u64, "sysinfo was not denied: {facts:?}");
    provoke(action, &format!("h{marker}"), &mut Vec::new())?;
    let (pid, id) = (standin.pid, standin.id.clone());
    let logged = std::cell::Cell::new(false);
    let mine = |v: &Value| v["pid"] == pid && v["runtime"]["containerName"] == id.as_str();
    let denied = ig.expect(
        |v| mine(v) && v["syscall"] == "sysinfo",
        |v| {
            if mine(v) && v["syscall"] == "getpriority" && v["code"] == "SECCOMP_RET_LOG" {
                logged.set(true);
            }
            no_host(v)
        },
    )?;
    expect_fields(&denied, &[("code", "SECCOMP_RET_ERRNO".into()), ("comm", "kernel-guest".into())])?;
    ensure!(logged.get(), "the logged getpriority did not show before the denied sysinfo");
    Ok(())
}

/// Installs, on the calling thread only, a seccomp filter that logs
/// getpriority, denies sysinfo with EPERM and allows the rest, with
/// SECCOMP_FILTER_FLAG_LOG so that the denial is logged too.
fn install_logging_filter() -> Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_LOG: u32 = 0x7ffc_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // struct seccomp_data: nr at 0, arch at 4.
    let mut prog = [
        stmt(load, 4),
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, RET_ALLOW),
        stmt(load, 0),
        jeq(libc::SYS_getpriority as u32, 0, 1),
        stmt(ret, RET_LOG),
        jeq(libc::SYS_sysinfo as u32, 0, 1),
        stmt(ret, RET_ERRNO | libc::EPERM as u32),
        stmt(ret, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: prctl with integer arguments only.
    ensure!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0, "no_new_privs");
    // SAFETY: fprog points at prog, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_LOG,
            &fprog as *const libc::sock_fprog,
        )
    };
    ensure!(r == 0, "seccomp(SECCOMP_SET_MODE_FILTER): {}", std::io::Error::last_os_error());
    Ok(())
}

/// The stand-in calls getpriority, the host sysinfo meanwhile: the
/// stand-in's profile allows the first, not the second, and no profile is
/// written for the host.
fn test_advise_seccomp(
    action: &str,
    marker: &str,
    env: &[(&str, &str)],
    no_host: impl Fn(&Value) -> Option<String>,
) -> Result<()> {
    let ig = Ig::start_with(&["advise", "seccomp-profile", "-o", "json", "-t", "10"], env, None)?;
    let mut standin = StandIn::start(action, marker, false, true)?;
    standin.go()?;
    provoke(action, &format!("h{marker}"), &mut Vec::new())?;
    let id = standin.id.clone();
    let row = ig.expect(|v| v["runtime"]["containerName"] == id.as_str(), no_host)?;
    let names: Vec<&str> = row["profile"]["syscalls"]
        .as_array()
        .context("profile.syscalls")?
        .iter()
        .flat_map(|r| r["names"].as_array().into_iter().flatten().filter_map(Value::as_str))
        .collect();
    ensure!(names.contains(&"getpriority"), "the stand-in's getpriority is not allowed: {row}");
    // It reads its `go` and writes its report after it is registered.
    ensure!(
        names.contains(&"read") && names.contains(&"write"),
        "its reads and writes are not allowed: {row}"
    );
    ensure!(!names.contains(&"sysinfo"), "the host's sysinfo was recorded: {row}");
    ensure!(row["profile"]["defaultAction"] == "SCMP_ACT_ERRNO", "{row}");
    Ok(())
}

/// The stand-in is a pod here (CRI annotations, its own network namespace,
/// a veth to the host at HOST_ADDR): it connects to the host and the host
/// connects to it; its policy allows exactly those two, the host as a /32
/// ipBlock, and there is no other policy (the host is no pod).
fn test_advise_networkpolicy(action: &str, marker: &str, env: &[(&str, &str)]) -> Result<()> {
    if Path::new("/modules/veth.ko").exists() {
        // EEXIST when it is loaded already: fine.
        let _ = Command::new("/bin/insmod").arg("/modules/veth.ko").output()?;
    }
    let dir = PathBuf::from(format!("/tmp/netpol-{marker}"));
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("connections.jsonl");
    let printed = dir.join("policies.json");
    let log_arg = log.to_string_lossy().into_owned();
    let ig = Ig::start_with(
        &["advise", "network-policy", "-o", "json", "--connections", &log_arg],
        env,
        Some(std::fs::File::create(&printed)?),
    )?;
    let mut standin = StandIn::start(action, marker, true, true)?;
    let host_dev = "npol0";
    let veth = Veth::new(host_dev, standin.pid)?;
    let host = TcpListener::bind((HOST_ADDR, LISTEN_PORT + 4))?;
    drain_in_background(host);
    standin.go()?;
    let to_pod = std::net::SocketAddr::from(([10, 77, 0, 2], LISTEN_PORT + 5));
    TcpStream::connect_timeout(&to_pod, Duration::from_secs(5))
        .with_context(|| format!("connecting to the pod at {to_pod}"))?
        .write_all(b"from the host")?;
    // Both connections in the log, then ig stops and prints the policies.
    let port_of = |l: &Value, dir: &str| (l["pktType"] == dir).then(|| l["port"].as_u64()).flatten();
    let deadline = Instant::now() + EVENT_WAIT;
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let out = lines.iter().any(|l| port_of(l, "OUTGOING") == Some(u64::from(LISTEN_PORT + 4)));
        let inc = lines.iter().any(|l| port_of(l, "HOST") == Some(u64::from(LISTEN_PORT + 5)));
        if out && inc {
            break lines;
        }
        ensure!(
            Instant::now() < deadline,
            "the connections never both came: {text}; ig said: {}",
            last_lines(&ig.stderr_text())
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = ig.stderr_text();
    drop(ig);
    drop(veth);
    let text = std::fs::read_to_string(&printed)?;
    let policies: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .with_context(|| format!("ig printed no JSON policies: {text}; {}", last_lines(&stderr)))?;
    let [policy] = &policies[..] else {
        bail!("{} policies, not the pod's one: {text}; the log: {lines:?}", policies.len());
    };
    ensure!(policy["metadata"]["namespace"] == POD_NAMESPACE, "{policy}");
    let host_block = serde_json::json!([{"ipBlock": {"cidr": format!("{HOST_ADDR}/32")}}]);
    let tcp = |port: u16| serde_json::json!([{"port": port, "protocol": "TCP"}]);
    ensure!(
        policy["spec"]["egress"] == serde_json::json!([{"to": host_block, "ports": tcp(LISTEN_PORT + 4)}]),
        "the egress is not the one connection to the host: {policy}"
    );
    ensure!(
        policy["spec"]["ingress"] == serde_json::json!([{"from": host_block, "ports": tcp(LISTEN_PORT + 5)}]),
        "the ingress is not the host's one connection: {policy}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The pod network's two ends: the host's and the stand-in's.
const HOST_ADDR: &str = "10.77.0.1";
const POD_ADDR: &str = "10.77.0.2";
/// The Kubernetes namespace of the stand-in pod.
const POD_NAMESPACE: &str = "igvm";

/// A veth pair: `host` stays here with HOST_ADDR, its peer goes into the
/// network namespace of `pid`; deleted on drop.
struct Veth(String);

impl Veth {
    fn new(host: &str, pid: u32) -> Result<Self> {
        let ip = |args: &[&str]| -> Result<String> {
            let out = Command::new("/bin/ip").args(args).output()?;
            ensure!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        ip(&["link", "add", host, "type", "veth"])?;
        let me = Veth(host.to_string());
        // The peer the kernel named: the line `N: vethM@<host>: ...`.
        let links = ip(&["-o", "link"])?;
        let peer = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .find_map(|n| n.strip_suffix(&format!("@{host}")))
            .with_context(|| format!("no peer of {host}: {links}"))?
            .to_string();
        ip(&["link", "set", &peer, "netns", &pid.to_string()])?;
        ip(&["addr", "add", &format!("{HOST_ADDR}/24"), "dev", host])?;
        ip(&["link", "set", host, "up"])?;
        Ok(me)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("/bin/ip").args(["link", "del", &self.0]).output();
    }
}

/// The stand-in's child, the first process of a pid namespace of its own,
/// opens a missing file and exits 1: ig shows the container's last calls
/// then (not at its stop), the open with ENOENT among them; the host's
/// child doing the same is never shown.
fn test_traceloop(
    marker: &str,
    env: &[(&str, &str)],
    no_host: impl Fn(&Value) -> Option<String>,
) -> Result<()> {
    let ig = Ig::start_with(&["traceloop", "-o", "json"], env, None)?;
    let mut standin = StandIn::start("traceloop", marker, false, true)?;
    let facts = standin.go()?;
    ensure!(reported(&facts, "exit_status")? == 1, "the child's exit: {facts:?}");
    provoke("traceloop", &format!("h{marker}"), &mut Vec::new())?;
    let id = standin.id.clone();
    let file = format!("\"/tmp/missing-{marker}\"");
    let open = ig.expect(
        |v| {
            v["runtime"]["containerName"] == id.as_str()
                && v["parameters"].as_str().is_some_and(|p| p.contains(&file))
        },
        |v| {
            no_host(v).or_else(|| {
                v["parameters"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!("missing-h{marker}")))
                    .then(|| format!("the host's call was shown: {v}"))
            })
        },
    )?;
    ensure!(open["ret"] == -2 && open["error"] == "ENOENT", "{open}");
    ensure!(open["duration"].as_u64().is_some_and(|d| d > 0), "{open}");
    let err = ig.stderr_text();
    ensure!(err.contains("exited with code 1"), "no dump at the exit: {}", last_lines(&err));
    Ok(())
}

/// Busy on the CPU for `d`, in a function of its own (profile cpu's test).
/// The clock is read rarely: a guest without a stable TSC reads it by a
/// syscall, which would otherwise take most of the samples.
#[inline(never)]
fn spin_for(d: Duration) -> u64 {
    let until = Instant::now() + d;
    let mut n = 0u64;
    while Instant::now() < until {
        for _ in 0..1_000_000 {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    n
}

fn expect_fields(v: &Value, fields: &[(&str, Value)]) -> Result<()> {
    for (k, want) in fields {
        ensure!(v[*k] == *want, "{k} is {} instead of {want}: {v}", v[*k]);
    }
    Ok(())
}

/// The stand-in: says ready, waits for `go`, acts, reports, says done, then
/// waits for its stdin to close.
fn stand_in(action: &str, marker: &str) -> Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let mut facts = Vec::new();
    provoke(action, marker, &mut facts)?;
    for (k, v) in &facts {
        writeln!(out, "{k} {v}")?;
    }
    writeln!(out, "done")?;
    out.flush()?;
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    Ok(())
}

/// Does what `action`'s gadget must see, with `marker` in it where it can
/// carry one; `facts` gets what the checker needs to know (pids, ports).
fn provoke(action: &str, marker: &str, facts: &mut Vec<(String, String)>) -> Result<()> {
    match action {
        "trace_exec" => {
            let mut child = Command::new("/bin/true").arg(marker).spawn()?;
            facts.push(("child".into(), child.id().to_string()));
            child.wait()?;
        }
        "trace_open" => {
            let _ = std::fs::File::open(marker);
        }
        "trace_signal" => {
            let mut target = Command::new("/bin/sleep").arg("30").spawn()?;
            let pid = nix::unistd::Pid::from_raw(target.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT)?;
            facts.push(("target".into(), target.id().to_string()));
            let _ = target.kill();
            let _ = target.wait();
        }
        "trace_mount" => {
            let dir = format!("/tmp/{marker}");
            std::fs::create_dir_all(&dir)?;
            nix::mount::mount(
                Some("tmpfs"),
                dir.as_str(),
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )?;
            let _ = nix::mount::umount(dir.as_str());
        }
        "trace_oomkill" => {
            if marker.starts_with('h') {
                return Ok(()); // no OOM kill on the host
            }
            let cg = PathBuf::from("/sys/fs/cgroup").join(format!("ig-oom-{marker}"));
            std::fs::create_dir_all(&cg)?;
            std::fs::write(cg.join("memory.max"), "16M")?;
            let _ = std::fs::write(cg.join("memory.swap.max"), "0");
            std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string())?;
            let mut hog: Vec<Vec<u8>> = Vec::new();
            for _ in 0..64 {
                hog.push(vec![1u8; 1 << 20]);
            }
            bail!("not killed with {} MiB in a 16M cgroup", hog.len());
        }
        "trace_bind" => {
            // A port of its own (bind reports the port asked for, not one given).
            let port = 20_000 + (std::process::id() % 40_000) as u16;
            let _sock = UdpSocket::bind(("127.0.0.1", port))?;
            facts.push(("port".into(), port.to_string()));
        }
        "trace_tcp" | "trace_tcpconnect" => {
            let s = TcpStream::connect(("127.0.0.1", LISTEN_PORT))?;
            drop(s);
        }
        "trace_capabilities" => {
            // setuid(0) as root still asks for CAP_SETUID (audited).
            nix::unistd::setuid(nix::unistd::Uid::from_raw(0))?;
        }
        "trace_dns" => {
            let sock = UdpSocket::bind(("127.0.0.1", 0))?;
            let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in [marker, "test"] {
                q.push(label.len() as u8);
                q.extend_from_slice(label.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            sock.send_to(&q, ("127.0.0.1", 53))?;
        }
        "trace_sni" => {
            let mut s = TcpStream::connect(("127.0.0.1", LISTEN_PORT))?;
            s.write_all(&client_hello(&format!("{marker}.test")))?;
        }
        "trace_ssl" => {
            let pid = tls_exchange(marker)?;
            facts.push(("child".into(), pid.to_string()));
        }
        "trace_fsslower" => {
            let mut f = std::fs::File::create(format!("/tmp/{marker}"))?;
            f.write_all(&[0u8; 1000])?;
            f.sync_all()?;
        }
        "top_file" => {
            let mut f = std::fs::File::create(format!("/tmp/{marker}"))?;
            for _ in 0..3 {
                f.write_all(&[0u8; 1000])?;
            }
            f.sync_all()?;
        }
        "top_tcp" => {
            let mut s = TcpStream::connect(("127.0.0.1", LISTEN_PORT))?;
            s.write_all(&[0u8; 5000])?;
        }
        "trace_tcpdrop" => {
            lo_up()?;
            let refused = TcpStream::connect(("127.0.0.1", LISTEN_PORT + 3));
            ensure!(refused.is_err(), "something listens on {}", LISTEN_PORT + 3);
        }
        "trace_tcpretrans" => {
            lo_up()?;
            let listener = TcpListener::bind(("127.0.0.1", 0))?;
            let port = listener.local_addr()?.port();
            let mut client = TcpStream::connect(("127.0.0.1", port))?;
            let (server, _) = listener.accept()?;
            drop_everything_arriving(&server)?;
            client.write_all(b"sent again and again")?;
            facts.push(("port".into(), port.to_string()));
            // Kept open: the kernel sends the data again while they live.
            let keep = (listener, client, server);
            if marker.starts_with('h') {
                std::thread::sleep(Duration::from_secs(1));
            } else {
                std::mem::forget(keep);
            }
        }
        "profile_tcprtt" => {
            // Each write is ACKed by the host's listener: segments received.
            let mut s = TcpStream::connect(("127.0.0.1", LISTEN_PORT))?;
            for _ in 0..3 {
                s.write_all(b"round trip")?;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        "top_block-io" | "profile_block-io" => {
            let (dev, _) = loop_device()?;
            direct_reads(&dev, DIRECT_READS)?;
        }
        "snapshot_process" | "top_process" => {}
        "profile_cpu" => {
            spin_for(Duration::from_secs(2));
        }
        "audit_seccomp" => {
            // On a thread of its own: the filter stays with the thread.
            let errno = std::thread::spawn(|| -> Result<i32> {
                install_logging_filter()?;
                // SAFETY: no pointers; PRIO_PROCESS 0 is this process.
                let _ = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
                // SAFETY: struct sysinfo is plain integers: all zero is valid.
                let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
                // SAFETY: info is a valid, writable struct sysinfo.
                let r = unsafe { libc::sysinfo(&mut info) };
                Ok(if r == 0 { 0 } else { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the filtered thread panicked"))??;
            facts.push(("sysinfo_errno".into(), errno.to_string()));
        }
        "advise_seccomp-profile" => {
            // A syscall each side alone makes (the checker's test).
            if marker.starts_with('h') {
                // SAFETY: struct sysinfo is plain integers: all zero is valid.
                let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
                // SAFETY: info is a valid, writable struct sysinfo.
                ensure!(unsafe { libc::sysinfo(&mut info) } == 0, "sysinfo failed");
            } else {
                // SAFETY: no pointers; PRIO_PROCESS 0 is this process.
                let _ = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            }
        }
        "traceloop" => {
            // A child unshares a pid namespace (the caller's own later
            // children stay in its own) and forks its first process, in
            // this mount namespace, which opens a missing file and exits 1.
            let path = std::ffi::CString::new(format!("/tmp/missing-{marker}"))?;
            // SAFETY: after fork, only raw syscalls (no allocation, no locks).
            let child = unsafe { libc::fork() };
            ensure!(child >= 0, "fork: {}", std::io::Error::last_os_error());
            if child == 0 {
                // SAFETY: as above; every path ends in _exit.
                unsafe {
                    if libc::unshare(libc::CLONE_NEWPID) != 0 {
                        libc::_exit(100);
                    }
                    let first = libc::fork();
                    if first == 0 {
                        libc::open(path.as_ptr(), libc::O_RDONLY);
                        libc::_exit(1);
                    }
                    let mut status = 0;
                    if first < 0 || libc::waitpid(first, &mut status, 0) != first {
                        libc::_exit(101);
                    }
                    libc::_exit(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 102 });
                }
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            ensure!(unsafe { libc::waitpid(child, &mut status, 0) } == child, "waitpid");
            ensure!(libc::WIFEXITED(status), "the child: status {status}");
            facts.push(("exit_status".into(), libc::WEXITSTATUS(status).to_string()));
        }
        "top_ebpf" => {
            let pid = tracer_child()?;
            facts.push(("holder".into(), pid.to_string()));
            if marker.starts_with('h') {
                // The host's, for two intervals: it must never show.
                std::thread::sleep(Duration::from_millis(2500));
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
            }
        }
        "advise_network-policy" => {
            // The pod's end of the veth the host moved in (named by the
            // kernel: busybox's ip ignores a peer name).
            lo_up()?;
            let links = Command::new("/bin/ip").args(["-o", "link"]).output()?;
            let links = String::from_utf8_lossy(&links.stdout);
            let dev = links
                .lines()
                .filter_map(|l| l.split(": ").nth(1))
                .map(|n| n.split('@').next().unwrap_or(n))
                .find(|n| *n != "lo")
                .with_context(|| format!("no veth in the pod's namespace: {links}"))?
                .to_string();
            for args in
                [&["addr", "add", &format!("{POD_ADDR}/24"), "dev", &dev][..], &["link", "set", &dev, "up"]]
            {
                let status = Command::new("/bin/ip").args(args).status()?;
                ensure!(status.success(), "ip {}: {status}", args.join(" "));
            }
            // Accepts the host's connection (after `done`: the process lives on).
            let listener = TcpListener::bind((POD_ADDR, LISTEN_PORT + 5))?;
            drain_in_background(listener);
            // Opens one to the host (the link may take a moment to come up).
            let to = std::net::SocketAddr::from(([10, 77, 0, 1], LISTEN_PORT + 4));
            let deadline = Instant::now() + EVENT_WAIT;
            let mut conn = loop {
                match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => bail!("connecting to {to}: {e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            conn.write_all(marker.as_bytes())?;
        }
        "snapshot_socket" => {
            // In its own network namespace: bring loopback up, listen.
            lo_up()?;
            let l = TcpListener::bind(("127.0.0.1", LISTEN_PORT + 2))?;
            std::mem::forget(l);
        }
        other => bail!("no action {other}"),
    }
    Ok(())
}

/// Reads `top block-io` provokes: 4 KiB each.
const DIRECT_READS: u64 = 64;

/// A loop device on a 4 MiB file, made once (loop.ko loaded when it is a
/// module): its path and (major, minor).
fn loop_device() -> Result<(String, (u64, u64))> {
    let saved = Path::new("/tmp/igvm-loop");
    if !saved.exists() {
        if Path::new("/modules/loop.ko").exists() {
            // EEXIST when it is loaded already: fine.
            let _ = Command::new("/bin/insmod").arg("/modules/loop.ko").output()?;
        }
        std::fs::File::create("/tmp/igvm-loop.img")?.set_len(4 << 20)?;
        // busybox's losetup: -f names the next free device, then it is bound.
        let free = Command::new("/bin/losetup").arg("-f").output()?;
        ensure!(free.status.success(), "losetup -f: {}", String::from_utf8_lossy(&free.stderr));
        let dev = String::from_utf8(free.stdout)?.trim().to_string();
        let out = Command::new("/bin/losetup").args([dev.as_str(), "/tmp/igvm-loop.img"]).output()?;
        ensure!(out.status.success(), "losetup {dev}: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(saved, &dev)?;
    }
    let dev = std::fs::read_to_string(saved)?;
    let minor: u64 = dev.trim_start_matches("/dev/loop").parse().with_context(|| format!("device {dev}"))?;
    Ok((dev, (7, minor)))
}

/// `count` reads of 4 KiB with O_DIRECT: each one a request to the device.
fn direct_reads(dev: &str, count: u64) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(dev)?;
    let layout = std::alloc::Layout::from_size_align(4096, 4096)?;
    // SAFETY: a non-zero size; freed below with the same layout.
    let buf = unsafe { std::alloc::alloc(layout) };
    ensure!(!buf.is_null(), "allocating an aligned buffer");
    // SAFETY: buf holds 4096 bytes for as long as the slice lives.
    let slice = unsafe { std::slice::from_raw_parts_mut(buf, 4096) };
    let result = (0..count).try_for_each(|_| f.read_exact(slice).map_err(anyhow::Error::from));
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(buf, layout) };
    result
}

/// An `ig trace exec --host` started from here, tracing (it holds eBPF
/// programs), that dies with this process; its pid.
fn tracer_child() -> Result<u32> {
    let mut cmd = Command::new(bin("ig"));
    cmd.args(["trace", "exec", "--host", "-o", "json"])
        .env("IG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: prctl(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("spawning a tracer")?;
    let err = BufReader::new(child.stderr.take().context("stderr")?);
    for line in err.lines() {
        if line?.contains("tracing started") {
            let pid = child.id();
            std::mem::forget(child); // it runs as long as this process
            return Ok(pid);
        }
    }
    bail!("the tracer never started: {:?}", child.wait())
}

/// Brings loopback up in a network namespace of its own (down when made).
/// Accepts every connection to `listener` and reads each to its end, each
/// in a thread of its own, for as long as the process lives.
fn drain_in_background(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
            });
        }
    });
}

fn lo_up() -> Result<()> {
    let status = Command::new("/bin/ip").args(["link", "set", "lo", "up"]).status()?;
    ensure!(status.success(), "ip link set lo up: {status}");
    Ok(())
}

/// A classic socket filter that accepts nothing: every segment arriving
/// for `sock` is dropped before TCP sees it, so the peer never gets an ACK.
fn drop_everything_arriving(sock: &TcpStream) -> Result<()> {
    use std::os::fd::AsRawFd;
    // BPF_RET | BPF_K with k = 0: keep 0 bytes.
    let mut code = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0 }];
    let prog = libc::sock_fprog { len: 1, filter: code.as_mut_ptr() };
    // SAFETY: prog points at one valid instruction for the call's duration.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    ensure!(r == 0, "SO_ATTACH_FILTER: {}", std::io::Error::last_os_error());
    Ok(())
}

/// A ClientHello record asking for `name`.
fn client_hello(name: &str) -> Vec<u8> {
    use tracer::gadgets::trace_sni::hello::{hello, sni};
    hello(&[sni(name)])
}

/// `trace open` with the smallest ring buffer and a burst of opens: the
/// events it could not queue are reported as lost, and with what it got
/// they account for every open.
/// Every gadget with all five process filters set loads here: the checks
/// the verifier drops when they are unset are all there then.
fn process_filters_load(gadgets: &[Value]) -> Result<String> {
    let mut loaded = 0;
    // The procfs gadgets load no program, so no verifier to satisfy; they
    // filter in userspace and refuse what does not apply (snapshot socket
    // all of them, top process and top ebpf --tid: tested on the host).
    for g in gadgets.iter().filter(|g| g["ok"].as_bool() == Some(true) && g["variant"] != "procfs") {
        let name = g["gadget"].as_str().unwrap_or_default();
        // `trace exec`, or one word (`traceloop`).
        let words: Vec<&str> = name.split(' ').collect();
        let filters = ["--pid", "1", "--tid", "1", "--uid", "0", "--gid", "0", "--comm", "kernel-guest"];
        if words[0] == "snapshot" {
            let out = Command::new(bin("ig")).args(&words).args(["-o", "json"]).args(filters).output()?;
            ensure!(out.status.success(), "{name}: {}", last_lines(&String::from_utf8_lossy(&out.stderr)));
        } else {
            let mut args = words.clone();
            args.extend(["-o", "json"]);
            args.extend(filters);
            Ig::start(&args).with_context(|| format!("{name} with every process filter"))?;
        }
        loaded += 1;
    }
    Ok(format!("{loaded} gadgets"))
}

fn lost_events() -> Result<u64> {
    let ig = Ig::start(&["trace", "open", "--host", "-o", "json", "--ring-buffer-size", "4096"])?;
    let marker = format!("/tmp/lost-{}", std::process::id());
    let count = 20_000u64;
    for _ in 0..count {
        let _ = std::fs::File::open(&marker);
    }
    let (mut got, mut lost) = (0u64, 0u64);
    let deadline = Instant::now() + EVENT_WAIT;
    while got + lost < count && Instant::now() < deadline {
        let Ok(line) = ig.lines.recv_timeout(Duration::from_millis(500)) else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        if v["path"] == marker.as_str() {
            got += 1;
        } else if v["type"] == "warn" {
            lost += v["lostEvents"].as_u64().unwrap_or(0);
        }
    }
    ensure!(lost > 0, "no loss reported with a 4 KiB ring buffer ({got} of {count} delivered)");
    // Lost events are counted over every process (host noise included).
    ensure!(got + lost >= count, "{got} delivered + {lost} lost < {count} opens");
    Ok(lost)
}

/// `ig daemon --metrics-address`'s in-kernel counters load on this kernel
/// and count what the guest does: execs, opens (failed ones too), a TCP
/// connect and a refused one, accepts, an OOM kill and a capability
/// denial. `variant` forces one of their variants (IG_GADGET_VARIANT);
/// returns the one the daemon used.
fn metrics_counters(variant: Option<&str>) -> Result<String> {
    const PORT: u16 = 7071;
    let mut cmd = Command::new(bin("ig"));
    cmd.args(["daemon", "-H", "unix:///tmp/igvm-daemon.sock", "--state-dir", "/tmp/igvm-state"])
        .args(["--metrics-address", &format!("127.0.0.1:{PORT}")])
        .env("IG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(v) = variant {
        cmd.env(tracer::session::VARIANT_ENV, v);
    }
    let mut daemon = cmd.spawn().context("ig daemon")?;
    let err = daemon.stderr.take().context("stderr")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let outcome = (|| -> Result<String> {
        let deadline = Instant::now() + EVENT_WAIT;
        let mut log = String::new();
        while !log.contains("daemon ready") {
            ensure!(Instant::now() < deadline, "the daemon never got ready: {}", last_lines(&log));
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                log.push_str(&l);
                log.push('\n');
            }
        }
        ensure!(log.contains("counting in the kernel"), "the counters did not load: {}", last_lines(&log));
        let how = ["fexit", "tracepoint", "kprobe"]
            .into_iter()
            .find(|v| log.contains(&format!("capability denials (by {v})")))
            .with_context(|| format!("capability denials not counted: {}", last_lines(&log)))?;
        if let Some(v) = variant {
            ensure!(how == v, "{v} asked for, {how} used");
        }
        let scrape = || -> Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", PORT))?;
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        };
        let host = |text: &str, name: &str| -> u64 {
            let series = format!("{name}{{namespace=\"\",pod=\"\",container=\"\",runtime=\"\"}} ");
            text.lines().find_map(|l| l.strip_prefix(&series)?.parse().ok()).unwrap_or(0)
        };
        let before = scrape()?;
        for _ in 0..5 {
            Command::new("/bin/true").status()?;
        }
        let _ = std::fs::File::open("/igvm-no-such-file");
        // Accepted by this process's drain thread.
        drop(TcpStream::connect(("127.0.0.1", LISTEN_PORT))?);
        ensure!(TcpStream::connect(("127.0.0.1", 1)).is_err(), "port 1 answered");
        // A denied CAP_SETUID (audited): nobody asking to be root again.
        let mut denied = Command::new("/bin/true");
        // SAFETY: only raw syscalls between fork and exec.
        unsafe {
            denied.pre_exec(|| {
                if libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let _ = libc::setuid(0);
                Ok(())
            });
        }
        ensure!(denied.status().context("a child running as nobody")?.success(), "the denied child");
        // An OOM kill: a stand-in that allocates in a 16M cgroup.
        let mut hog = Command::new(bin("kernel-guest"))
            .args(["container", "trace_oomkill", "cmetrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("the OOM stand-in")?;
        let mut ready = String::new();
        BufReader::new(hog.stdout.take().context("stdout")?).read_line(&mut ready)?;
        hog.stdin.take().context("stdin")?.write_all(b"go\n")?;
        let status = hog.wait()?;
        ensure!(status.signal() == Some(libc::SIGKILL), "the hog was not OOM-killed: {status:?}");
        let _ = std::fs::remove_dir("/sys/fs/cgroup/ig-oom-cmetrics");
        let after = scrape()?;
        let delta = |name: &str| host(&after, name).saturating_sub(host(&before, name));
        // The scrapes are connects too, and the host does other things.
        let (execs, failed_opens) =
            (delta("ig_container_execs_total"), delta("ig_container_failed_file_opens_total"));
        let (connects, refused) =
            (delta("ig_container_tcp_connects_total"), delta("ig_container_failed_tcp_connects_total"));
        let (accepts, ooms, denials) = (
            delta("ig_container_tcp_accepts_total"),
            delta("ig_container_oom_kills_total"),
            delta("ig_container_capability_denials_total"),
        );
        ensure!(execs >= 5, "{execs} execs counted for 5");
        ensure!(failed_opens >= 1, "{failed_opens} failed opens counted for 1");
        ensure!(
            connects >= 2 && refused >= 1,
            "{connects} connects and {refused} refused counted for 2 and 1"
        );
        // Ours, and the daemon's of the second scrape.
        ensure!(accepts >= 2, "{accepts} accepts counted for 2");
        ensure!(ooms == 1, "{ooms} OOM kills counted for 1");
        ensure!(denials >= 1, "{denials} capability denials counted for 1");
        Ok(format!(
            "{how}: {execs} execs, {connects} connects ({refused} refused), {accepts} accepts, {ooms} OOM kill, {denials} denials"
        ))
    })();
    let _ = daemon.kill();
    let _ = daemon.wait();
    outcome
}

/// A container in a cgroup of its own (cgroup v2 unified here): its record
/// says so (path, v2 path and id, the cgroup directory's inode).
fn cgroup_fields() -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let cg = PathBuf::from("/sys/fs/cgroup/igvm-record");
    std::fs::create_dir_all(&cg)?;
    let _ig = Ig::start(&["trace", "exec", "-o", "json"])?;
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("30");
    let procs = cg.join("cgroup.procs");
    let mut child = cmd.spawn()?;
    std::fs::write(&procs, child.id().to_string())?;
    let standin = StandInPid { pid: child.id(), id: "igvm-cgroup".into() };
    standin.hook("prestart", "creating")?;
    let out = Command::new(bin("ig")).args(["list-containers", "-o", "json"]).output()?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    let record = list
        .as_array()
        .and_then(|a| a.iter().find(|r| r["runtime"]["containerId"] == "igvm-cgroup"))
        .cloned()
        .context("the container is not listed")?;
    let _ = standin.hook("poststop", "stopped");
    let _ = child.kill();
    let _ = child.wait();
    ensure!(record["cgroupPath"] == "/sys/fs/cgroup/igvm-record", "cgroupPath: {record}");
    ensure!(record["cgroupV2"] == "/igvm-record", "cgroupV2: {record}");
    let ino = std::fs::metadata(&cg)?.ino();
    ensure!(record["cgroupID"] == ino, "cgroupID is not the cgroup's inode {ino}: {record}");
    let _ = std::fs::remove_dir(&cg);
    Ok("/igvm-record".into())
}

/// A process registered as a container by pid alone.
struct StandInPid {
    pid: u32,
    id: String,
}

impl StandInPid {
    fn hook(&self, stage: &str, status: &str) -> Result<()> {
        let bundle = PathBuf::from("/tmp/bundles").join(&self.id);
        std::fs::create_dir_all(&bundle)?;
        std::fs::write(bundle.join("config.json"), r#"{"ociVersion":"1.0.2"}"#)?;
        let state = serde_json::json!({"ociVersion": "1.0.2", "id": self.id, "status": status, "pid": self.pid, "bundle": bundle});
        let mut hook = Command::new(bin("ig-hook"))
            .args([stage, "--log", "/tmp/ig-hook.log"])
            .stdin(Stdio::piped())
            .spawn()?;
        hook.stdin.take().context("stdin")?.write_all(state.to_string().as_bytes())?;
        ensure!(hook.wait()?.success(), "ig-hook {stage}");
        Ok(())
    }
}

/// A runc container under an OCI seccomp profile (applied by runc and
/// libseccomp) that denies mkdir with EPERM and logs it
/// (SECCOMP_FILTER_FLAG_LOG): audit seccomp shows the denial, named after
/// the container. Runs after runc_with_hook (the overlay root it leaves).
fn runc_seccomp_audited() -> Result<String> {
    let base = PathBuf::from("/tmp/runc-seccomp");
    let rootfs = base.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    let name = "igvm-seccomp";
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
            "args": ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /tmp/made && /bin/busybox uname"], "env": ["PATH=/bin"]},
        "root": {"path": rootfs, "readonly": false},
        "hostname": name,
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
            }
        },
        "hooks": {
            "prestart": [{"path": "/bin/ig-hook", "args": ["ig-hook", "prestart", "--log", "/tmp/ig-hook.log"]}],
            "poststop": [{"path": "/bin/ig-hook", "args": ["ig-hook", "poststop", "--log", "/tmp/ig-hook.log"]}]
        }
    });
    std::fs::write(base.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let ig = Ig::start(&["audit", "seccomp", "-o", "json"])?;
    let out = Command::new(bin("runc"))
        .args(["--root", "/tmp/runc-state", "run", "--no-pivot", "--bundle"])
        .arg(&base)
        .arg(name)
        .stdin(Stdio::null())
        .output()
        .context("runc")?;
    ensure!(!out.status.success(), "uname was not killed: {}", String::from_utf8_lossy(&out.stderr));
    let mine = |v: &Value| v["runtime"]["containerName"] == name && v["runtime"]["runtimeName"] == "runc";
    let killed = ig.expect(
        |v| mine(v) && v["syscall"] == "uname",
        |v| (!mine(v)).then(|| "an event of something else".to_string()),
    )?;
    expect_fields(
        &killed,
        &[
            ("code", "SECCOMP_RET_KILL_PROCESS".into()),
            ("signal", "SIGSYS".into()),
            ("comm", "busybox".into()),
        ],
    )?;
    Ok("runc's profile: uname killed, logged, named".into())
}

/// Debian's runc with ig-hook as its prestart/poststop hook, the bundle's
/// root an overlayfs (overlay.ko loaded when it is a module): the first
/// exec of the container is traced and named, and upperlayer tells a
/// binary written into the upper layer from one of the lower layer.
fn runc_with_hook() -> Result<String> {
    if Path::new("/modules/overlay.ko").exists() {
        let out = Command::new("/bin/insmod").arg("/modules/overlay.ko").output()?;
        ensure!(
            out.status.success() || String::from_utf8_lossy(&out.stderr).contains("exists"),
            "insmod overlay.ko: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let base = PathBuf::from("/tmp/runc");
    let (lower, upper, work, rootfs) =
        (base.join("lower"), base.join("upper"), base.join("work"), base.join("rootfs"));
    for d in [&lower, &upper, &work, &rootfs] {
        std::fs::create_dir_all(d)?;
    }
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(lower.join(d))?;
    }
    std::fs::copy("/bin/busybox", lower.join("bin/busybox"))?;
    let opts =
        format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .context("mounting the overlayfs root")?;
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
            "args": ["/bin/busybox", "sh", "-c", "/bin/busybox cp /bin/busybox /bin/upper; /bin/upper true upper-marker; /bin/busybox true lower-marker"],
            "env": ["PATH=/bin"]},
        "root": {"path": rootfs, "readonly": false},
        "hostname": "igvm-runc",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]},
        "hooks": {
            "prestart": [{"path": "/bin/ig-hook", "args": ["ig-hook", "prestart", "--log", "/tmp/ig-hook.log"]}],
            "poststop": [{"path": "/bin/ig-hook", "args": ["ig-hook", "poststop", "--log", "/tmp/ig-hook.log"]}]
        }
    });
    std::fs::write(base.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let ig = Ig::start(&["trace", "exec", "-o", "json"])?;
    let out = Command::new(bin("runc"))
        // --no-pivot: the VM's root is the initramfs, which pivot_root(2) refuses.
        .args(["--root", "/tmp/runc-state", "run", "--no-pivot", "--bundle"])
        .arg(&base)
        .arg("igvm-runc")
        .stdin(Stdio::null())
        .output()
        .context("runc")?;
    ensure!(out.status.success(), "runc run: {}", String::from_utf8_lossy(&out.stderr));
    let named =
        |v: &Value| v["runtime"]["containerName"] == "igvm-runc" && v["runtime"]["runtimeName"] == "runc";
    let has = |v: &Value, arg: &str| v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == arg));
    // The container's three execs, in order: its entrypoint, then the two markers.
    let mut execs: Vec<Value> = Vec::new();
    let deadline = Instant::now() + EVENT_WAIT;
    while !execs.iter().any(|v| has(v, "lower-marker")) && Instant::now() < deadline {
        if let Ok(line) = ig.lines.recv_timeout(Duration::from_millis(200))
            && let Ok(v) = serde_json::from_str::<Value>(&line)
        {
            execs.push(v);
        }
    }
    let find = |arg: &str| {
        execs.iter().find(|v| has(v, arg)).cloned().with_context(|| format!("no exec with {arg}: {execs:?}"))
    };
    let first = find("sh")?;
    ensure!(named(&first), "the first exec is not named: {first}");
    let upper_ev = find("upper-marker")?;
    let lower_ev = find("lower-marker")?;
    ensure!(
        upper_ev["upperlayer"] == true,
        "a binary written in the container is not in the upper layer: {upper_ev}"
    );
    ensure!(lower_ev["upperlayer"] == false, "an image binary is in the upper layer: {lower_ev}");
    let _ = nix::mount::umount(&rootfs);
    Ok("first exec named, upperlayer right".into())
}

/// trace open's variants against no tracer, interleaved round by round:
/// with `--host` (every open sent to ig) and without (no container runs,
/// so every open is dropped by the in-kernel filter: the hook's own cost,
/// the common case on a node). Each run times a storm of open+close in this
/// thread and one of getppid, a syscall no variant traces (what the rest of
/// the node pays), by wall time and this thread's system time (where the
/// programs run; the reader's time is not in it); ig's output goes to a
/// file. Under TCG absolute times mean little: the ratios are compared.
/// BENCH_COUNT (100000) opens, twice as many getppid, BENCH_ROUNDS (3).
fn bench_open() -> Result<()> {
    let number =
        |key: &str, default: u64| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (count, rounds) = (number("BENCH_COUNT", 100_000), number("BENCH_ROUNDS", 3));
    let target = format!("/tmp/bench-open-{}", std::process::id());
    std::fs::write(&target, b"")?;
    // (name, the variant and --host), no tracer first.
    let configs: [(&str, Option<(&str, bool)>); 5] = [
        ("none", None),
        ("fexit --host", Some(("fexit", true))),
        ("tracepoint --host", Some(("tracepoint", true))),
        ("fexit filtered", Some(("fexit", false))),
        ("tracepoint filtered", Some(("tracepoint", false))),
    ];
    // Per config: (open wall, open system, getppid wall, getppid system).
    let mut samples: Vec<Vec<[f64; 4]>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        for (i, (name, config)) in configs.iter().enumerate() {
            let out_path = format!("/tmp/bench-out-{i}");
            let ig = match config {
                Some((variant, host)) => {
                    let mut args = vec!["trace", "open", "-o", "json"];
                    if *host {
                        args.push("--host");
                    }
                    let env = [(tracer::session::VARIANT_ENV, *variant)];
                    Some(Ig::start_with(&args, &env, Some(std::fs::File::create(&out_path)?))?)
                }
                None => None,
            };
            let (open_wall, open_sys) = timed(|| open_storm(&target, count))?;
            let (other_wall, other_sys) = timed(|| {
                for _ in 0..2 * count {
                    // SAFETY: getppid has no arguments and cannot fail.
                    unsafe { libc::getppid() };
                }
                Ok(())
            })?;
            let (mut delivered, mut lost) = (0, 0);
            if let Some(ig) = ig {
                // Let the reader catch up before it is stopped.
                std::thread::sleep(Duration::from_secs(2));
                drop(ig);
                let text = std::fs::read_to_string(&out_path)?;
                delivered = text.lines().filter(|l| l.contains(target.as_str())).count();
                lost = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter_map(|v| v["lostEvents"].as_u64())
                    .sum::<u64>();
                std::fs::remove_file(&out_path)?;
            }
            println!(
                "IGVM-BENCH round {round} {name}: open+close wall {open_wall:.2} s system {open_sys:.2} s, \
                 getppid wall {other_wall:.2} s system {other_sys:.2} s, delivered {delivered} of {count}, lost {lost}"
            );
            samples[i].push([open_wall, open_sys, other_wall, other_sys]);
        }
    }
    let median = |runs: &[[f64; 4]], k: usize| {
        let mut v: Vec<f64> = runs.iter().map(|r| r[k]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (i, (name, _)) in configs.iter().enumerate().skip(1) {
        let ratio = |k: usize| median(&samples[i], k) / median(&samples[0], k);
        let per_open = (median(&samples[i], 1) - median(&samples[0], 1)) * 1e6 / count as f64;
        println!(
            "IGVM-BENCH {name}: open+close wall {:.2}x, system {:.2}x ({per_open:.2} us more each); \
             getppid wall {:.2}x, system {:.2}x",
            ratio(0),
            ratio(1),
            ratio(2),
            ratio(3)
        );
    }
    Ok(())
}

/// The wall time and this thread's system time of `f`.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<(f64, f64)> {
    let sys_time = || -> f64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the rusage it is given.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
        // SAFETY: zeroed, then filled by the kernel.
        let t = unsafe { usage.assume_init() }.ru_stime;
        t.tv_sec as f64 + t.tv_usec as f64 / 1e6
    };
    let (started, sys0) = (Instant::now(), sys_time());
    f()?;
    Ok((started.elapsed().as_secs_f64(), sys_time() - sys0))
}

/// `count` open+close of `path`.
fn open_storm(path: &str, count: u64) -> Result<()> {
    let c_path = std::ffi::CString::new(path)?;
    for _ in 0..count {
        // SAFETY: a NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_RDONLY) };
        ensure!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just opened here.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Debian's openssl, in the image with its libraries (matrix.sh).
const OPENSSL: &str = "/usr/bin/openssl";

/// A TLS server of this side's own (the image's certificate, made by
/// matrix.sh) and `openssl s_client` sending it `GET /<marker> HTTP/1.0`;
/// the client's pid.
fn tls_exchange(marker: &str) -> Result<u32> {
    let port: u16 = if marker.starts_with('h') { 7401 } else { 7400 };
    let (key, cert) = ("/etc/tls/key.pem", "/etc/tls/cert.pem");
    let mut server = Command::new(OPENSSL)
        .args(["s_server", "-accept", &port.to_string(), "-cert", cert, "-key", key, "-www", "-quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("openssl s_server")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = server.kill();
            bail!("openssl s_server never listened on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut client = Command::new(OPENSSL)
        .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("openssl s_client")?;
    let pid = client.id();
    client.stdin.take().context("stdin")?.write_all(format!("GET /{marker} HTTP/1.0\n").as_bytes())?;
    let status = client.wait()?;
    let _ = server.kill();
    let _ = server.wait();
    ensure!(status.success(), "openssl s_client: {status}");
    Ok(pid)
}
