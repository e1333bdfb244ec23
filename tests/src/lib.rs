//! Helpers for the integration tests and the bench: finding the built
//! binaries, running `ig` as a child and reading its output line by line,
//! and waiting until a tracer is really attached.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cri;
pub mod dns_server;
pub mod netns;

/// Makes `cmd` start in a mount namespace of its own: a stand-in for a
/// container in the mount-namespace filter tests.
pub fn in_own_mntns(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: unshare(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)
        })
    }
}

/// Moves the calling thread (only it) into the network namespace at `path`.
pub fn join_netns(path: &std::path::Path) {
    use std::os::fd::AsFd;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("setns into {}: {e}", path.display()));
}

/// Where the workspace's binaries of this profile are: next to this
/// executable (the bench), or one level above it (a test, in deps/).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IG_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the path of this executable");
    let dir = exe.parent().expect("a directory").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("the profile directory").to_path_buf()
    } else {
        dir
    }
}

/// Path of a workspace binary; fails with the command that builds it.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace`, same profile as the tests)",
        path.display()
    );
    path
}

/// Fails (never skips) when the tests do not run as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (real eBPF and runtimes); run them as root"
    );
}

/// A unique token for markers, so concurrent tests never see each other's events.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// `ig` running as a child, its stdout and stderr read by threads.
pub struct IgChild {
    pub child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    stderr_seen: std::sync::Mutex<String>,
    /// Lines read ahead (while checking what follows a wanted event), to be
    /// read again by the next wait.
    read_ahead: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl IgChild {
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_log(args, "warn")
    }

    /// Spawns with `IG_LOG=<level>` (info logs "tracing started").
    pub fn spawn_with_log(args: &[&str], level: &str) -> Self {
        Self::spawn_with_env(args, &[("IG_LOG", level)])
    }

    /// Spawns with these environment variables added.
    fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary("ig"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ig");
        let lines = pipe_lines(child.stdout.take().expect("stdout"));
        let stderr = pipe_lines(child.stderr.take().expect("stderr"));
        Self { child, lines, stderr, stderr_seen: Default::default(), read_ahead: Default::default() }
    }

    /// Wraps a child whose stdout and/or stderr are piped (e.g. ig-nri).
    pub fn from_child(mut child: Child) -> Self {
        let (tx, empty) = channel();
        drop(tx);
        let lines = child.stdout.take().map(pipe_lines).unwrap_or(empty);
        let (tx, empty) = channel();
        drop(tx);
        let stderr = child.stderr.take().map(pipe_lines).unwrap_or(empty);
        Self { child, lines, stderr, stderr_seen: Default::default(), read_ahead: Default::default() }
    }

    /// Starts with info logs and waits until the log says `needle` (e.g.
    /// "tracing started": the gadget is attached).
    pub fn spawn_ready(args: &[&str], needle: &str) -> Self {
        Self::spawn_ready_with_env(args, &[], needle)
    }

    /// [`IgChild::spawn_ready`] with these environment variables added.
    pub fn spawn_ready_with_env(args: &[&str], env: &[(&str, &str)], needle: &str) -> Self {
        let env: Vec<(&str, &str)> = std::iter::once(("IG_LOG", "info")).chain(env.iter().copied()).collect();
        let ig = Self::spawn_with_env(args, &env);
        assert!(
            ig.wait_stderr(needle, Duration::from_secs(30)),
            "ig never logged {needle:?}: {}",
            ig.stderr_text()
        );
        ig
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_text().contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.stderr.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(l) => {
                    let mut seen = self.stderr_seen.lock().unwrap();
                    seen.push_str(&l);
                    seen.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return self.stderr_text().contains(needle);
                }
                Err(_) => {}
            }
        }
    }

    /// The next stdout line, or None after `timeout` or at end of output.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        if let Some(line) = self.read_ahead.lock().unwrap().pop_front() {
            return Some(line);
        }
        self.lines.recv_timeout(timeout).ok()
    }

    /// The first stdout line `pred` accepts within `timeout` (the others are
    /// read and dropped), or None.
    pub fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left.min(Duration::from_millis(200))) {
                Some(line) if pred(&line) => return Some(line),
                _ => {}
            }
        }
        None
    }

    /// Reads JSON lines until one satisfies `pred`, running `poke` every
    /// 50 ms meanwhile (e.g. to trigger the event). Panics after `timeout`.
    pub fn wait_json(
        &self,
        timeout: Duration,
        mut poke: impl FnMut(),
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            poke();
            let until = Instant::now() + Duration::from_millis(50);
            while let Some(line) = self.next_line(until.saturating_duration_since(Instant::now())) {
                seen += 1;
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && pred(&v)
                {
                    return v;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no matching event within {timeout:?} ({seen} lines seen); stderr: {}",
                    self.stderr_text()
                );
            }
        }
    }

    /// Like [`wait_json`](Self::wait_json), for tests of what a filter keeps
    /// out: every line read is checked against `forbidden`, and one that
    /// matches fails the test at once; after the wanted event it reads on
    /// for `grace` (events of other CPUs may come a little later).
    pub fn wait_json_forbidding(
        &self,
        timeout: Duration,
        mut poke: impl FnMut(),
        pred: impl Fn(&Value) -> bool,
        forbidden: impl Fn(&Value) -> bool,
        grace: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut found: Option<(Value, Instant)> = None;
        let mut later = Vec::new();
        loop {
            if found.is_none() {
                poke();
            }
            let until = Instant::now() + Duration::from_millis(50);
            while let Some(line) = self.next_line(until.saturating_duration_since(Instant::now())) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                assert!(!forbidden(&v), "an event the filter must keep out: {v}");
                if found.is_some() {
                    later.push(line); // examined, and left for the next wait
                } else if pred(&v) {
                    found = Some((v, Instant::now()));
                }
            }
            match &found {
                Some((_, at)) if at.elapsed() >= grace => {
                    let mut ahead = self.read_ahead.lock().unwrap();
                    for line in later.into_iter().rev() {
                        ahead.push_front(line);
                    }
                    return found.unwrap().0;
                }
                Some(_) => {}
                None if Instant::now() > deadline => {
                    panic!("no matching event within {timeout:?}; stderr: {}", self.stderr_text())
                }
                None => {}
            }
        }
    }

    /// All JSON lines that arrive within `period`.
    pub fn collect_json(&self, period: Duration) -> Vec<Value> {
        let deadline = Instant::now() + period;
        let mut out = Vec::new();
        while let Some(line) = self.next_line(deadline.saturating_duration_since(Instant::now())) {
            if let Ok(v) = serde_json::from_str(&line) {
                out.push(v);
            }
        }
        out
    }

    /// What ig printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        let mut seen = self.stderr_seen.lock().unwrap();
        for l in self.stderr.try_iter() {
            seen.push_str(&l);
            seen.push('\n');
        }
        seen.clone()
    }

    /// Sends SIGINT and waits for the exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        self.child.wait().expect("waiting for ig")
    }
}

impl Drop for IgChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe_lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Whether a `trace exec` JSON event has `marker` among its arguments.
pub fn has_arg(v: &Value, marker: &str) -> bool {
    v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker))
}

/// Runs `/bin/true <marker>` until `ig trace exec` shows it: the tracer is attached.
pub fn wait_exec_ready(ig: &IgChild) {
    let marker = unique("ig-ready");
    ig.wait_json(
        Duration::from_secs(20),
        || {
            let _ = Command::new("/bin/true").arg(&marker).status();
        },
        |v| has_arg(v, &marker),
    );
}

/// Opens a missing `/tmp/<marker>` until `ig trace open` shows it.
pub fn wait_open_ready(ig: &IgChild) {
    let marker = format!("/tmp/{}", unique("ig-ready"));
    ig.wait_json(
        Duration::from_secs(20),
        || {
            let _ = std::fs::File::open(&marker);
        },
        |v| v["path"] == marker.as_str(),
    );
}

/// A hooks dir for podman's --hooks-dir holding install/hooks.d/ig-hook.json with the binary path
/// replaced by the one under test.
pub fn podman_hooks_dir() -> PathBuf {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/hooks.d/ig-hook.json");
    let mut hook: serde_json::Value = serde_json::from_slice(&std::fs::read(&shipped).unwrap()).unwrap();
    let script = hook["hook"]["args"][2].as_str().unwrap().to_string();
    assert!(script.contains("/usr/local/bin/ig-hook"), "the shipped hook runs /usr/local/bin/ig-hook");
    hook["hook"]["args"][2] =
        script.replace("/usr/local/bin/ig-hook", binary("ig-hook").to_str().unwrap()).into();
    let dir = std::env::temp_dir().join(unique("ig-hooks.d"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ig-hook.json"), serde_json::to_vec(&hook).unwrap()).unwrap();
    dir
}

/// Inode of /proc/<pid>/ns/mnt: the mount namespace id the kernel reports.
pub fn mntns_of(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).expect("stat ns/mnt").ino()
}

/// The runtimes set up by tests/harness/setup-runtimes.sh (env.sh).
pub struct Harness {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub runc_root: PathBuf,
    pub image: String,
    /// dockerd's socket (tests/harness/docker.sh).
    pub docker_sock: PathBuf,
    /// podman's API service socket.
    pub podman_sock: PathBuf,
    /// `ctr --address <containerd 1.7>`: program and arguments.
    pub ctr: Vec<String>,
    /// containerd 1.7's gRPC socket.
    pub containerd_sock: PathBuf,
    /// The harness venv's Python (grpcio, opentelemetry-proto).
    pub python: PathBuf,
    /// crun behind the harness's wrapper (tests/harness/crun.sh says why).
    pub crun: PathBuf,
}

/// Reads the harness settings; fails (never skips) when it was not set up.
pub fn harness() -> Harness {
    let dir = std::env::var("IG_HARNESS_DIR").unwrap_or_else(|_| "/var/tmp/ig-harness".into());
    let env = std::fs::read_to_string(PathBuf::from(&dir).join("env.sh")).unwrap_or_else(|e| {
        panic!("the runtime harness is not set up ({dir}/env.sh: {e}): run tests/harness/setup-runtimes.sh (tests/run-all.sh does)")
    });
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} missing from {dir}/env.sh"))
    };
    Harness {
        dir: PathBuf::from(get("IG_HARNESS_DIR")),
        rootfs: PathBuf::from(get("IG_HARNESS_ROOTFS")),
        runc_root: PathBuf::from(get("IG_HARNESS_RUNC_ROOT")),
        image: get("IG_HARNESS_IMAGE"),
        docker_sock: PathBuf::from(get("IG_HARNESS_DOCKER_SOCK")),
        podman_sock: PathBuf::from(get("IG_HARNESS_PODMAN_SOCK")),
        ctr: get("IG_HARNESS_CTR").split_whitespace().map(String::from).collect(),
        containerd_sock: PathBuf::from(get("IG_HARNESS_CONTAINERD_SOCK")),
        python: PathBuf::from(get("IG_HARNESS_PYTHON")),
        crun: PathBuf::from(get("IG_HARNESS_CRUN")),
    }
}

impl Harness {
    /// `docker` against the harness's dockerd.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.docker_sock.display()))
            .stdin(std::process::Stdio::null());
        c
    }

    /// `docker run --rm --network none --name NAME IMAGE /bin/echo MARKER`:
    /// a container that lives a few milliseconds, its entrypoint its only exec.
    pub fn docker_echo(&self, name: &str, marker: &str) {
        run_ok(self.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            name,
            &self.image,
            "/bin/echo",
            marker,
        ]));
    }

    /// `ctr` against the harness's containerd 1.7.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new(&self.ctr[0]);
        c.args(&self.ctr[1..]).stdin(std::process::Stdio::null());
        c
    }

    /// The ig flags that point at the harness's runtime sockets.
    pub fn runtime_flags(&self) -> Vec<String> {
        vec![
            "--docker-socketpath".into(),
            self.docker_sock.display().to_string(),
            "--podman-socketpath".into(),
            self.podman_sock.display().to_string(),
        ]
    }
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A runc bundle made for one test container.
pub struct RuncBundle {
    pub id: String,
    pub dir: PathBuf,
    pub hook_log: PathBuf,
    runc_root: PathBuf,
}

impl Harness {
    /// A bundle running `args` on the shared read-only busybox rootfs, with
    /// ig-hook as prestart and poststop hook when `hooked`.
    pub fn runc_bundle(&self, id: &str, args: &[&str], hooked: bool) -> RuncBundle {
        let dir = self.dir.join("bundles").join(id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hook_log = dir.join("hook.log");
        let template = std::fs::read(self.dir.join("config-template.json")).expect("config template");
        let mut cfg: Value = serde_json::from_slice(&template).unwrap();
        cfg["root"] = serde_json::json!({"path": self.rootfs, "readonly": true});
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(args);
        cfg["hostname"] = id.chars().take(60).collect::<String>().into();
        if hooked {
            let hook = binary("ig-hook");
            let log = hook_log.to_str().unwrap();
            let entry = |stage: &str| serde_json::json!([{"path": hook, "args": ["ig-hook", stage, "--log", log], "timeout": 5}]);
            cfg["hooks"] = serde_json::json!({"prestart": entry("prestart"), "poststop": entry("poststop")});
        }
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        RuncBundle { id: id.to_string(), dir, hook_log, runc_root: self.runc_root.clone() }
    }
}

impl RuncBundle {
    /// Changes the bundle's config.json (its user, annotations, hooks...).
    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let path = self.dir.join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut cfg);
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    }

    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.runc_root);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    /// `runc run` in the foreground: returns when the container has exited.
    pub fn run(&self) {
        let out = self.runc().args(["run", "--bundle"]).arg(&self.dir).arg(&self.id).output().expect("runc");
        assert!(out.status.success(), "runc run {}: {}", self.id, String::from_utf8_lossy(&out.stderr));
    }

    /// `runc run` in the foreground, returning what the container wrote to
    /// its stdout.
    pub fn run_stdout(&self) -> String {
        let out = self
            .runc()
            .stdout(Stdio::piped())
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(&self.id)
            .output();
        let out = out.expect("runc");
        assert!(out.status.success(), "runc run {}: {}", self.id, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// runc with these arguments and the container id, its stderr to a
    /// file: the container inherits runc's stdio, and waiting on a pipe
    /// would wait for the container to exit.
    fn runc_quietly(&self, args: &[&str]) {
        let err_path = self.dir.join("runc.err");
        let err = std::fs::File::create(&err_path).expect("runc.err");
        let status = self.runc().stderr(err).args(args).arg(&self.id).status().expect("runc");
        let msg = std::fs::read_to_string(&err_path).unwrap_or_default();
        assert!(status.success(), "runc {args:?} {}: {msg}", self.id);
    }

    /// `runc create`: the container exists, its process waits for `start`.
    pub fn create(&self) {
        self.runc_quietly(&["create", "--bundle", self.dir.to_str().unwrap()]);
    }

    /// `runc start` of a created container.
    pub fn start(&self) {
        self.runc_quietly(&["start"]);
    }

    /// `runc run -d`: returns once the container runs; yields its init pid.
    pub fn run_detached(&self) -> u32 {
        self.runc_quietly(&["run", "-d", "--bundle", self.dir.to_str().unwrap()]);
        let state =
            self.runc().stdout(Stdio::piped()).args(["state", &self.id]).output().expect("runc state");
        let state: Value = serde_json::from_slice(&state.stdout).expect("runc state JSON");
        let pid = state["pid"].as_u64().expect("pid") as u32;
        // pid 0 would make a later kill(2) hit our whole process group.
        assert!(pid > 1, "runc state of {} has no pid: {state}", self.id);
        pid
    }

    /// `runc exec` of a command inside the running container.
    pub fn exec(&self, args: &[&str]) {
        let out = self.runc().arg("exec").arg(&self.id).args(args).output().expect("runc exec");
        assert!(out.status.success(), "runc exec: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `runc exec` that may fail: its output, whatever the exit status.
    pub fn exec_output(&self, args: &[&str]) -> std::process::Output {
        self.runc().stdout(Stdio::piped()).arg("exec").arg(&self.id).args(args).output().expect("runc exec")
    }

    /// Kills and deletes the container (its poststop hook runs).
    pub fn delete(&self) {
        let _ = self.runc().args(["kill", &self.id, "KILL"]).output();
        for _ in 0..50 {
            let out = self.runc().args(["delete", &self.id]).output().expect("runc delete");
            if out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.runc().args(["delete", "-f", &self.id]).output();
    }

    pub fn hook_log_text(&self) -> String {
        std::fs::read_to_string(&self.hook_log).unwrap_or_default()
    }
}

impl Drop for RuncBundle {
    fn drop(&mut self) {
        let _ = self.runc().args(["delete", "-f", &self.id]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ig list-containers -o json`, parsed.
pub fn list_containers() -> Vec<Value> {
    let out = Command::new(binary("ig"))
        .args(["list-containers", "-o", "json"])
        .output()
        .expect("ig list-containers");
    assert!(out.status.success(), "ig list-containers: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("a JSON array")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A group no user on this machine has: membership is given per process.
pub const GROUP: u32 = 4242;

/// `ig daemon` on a unix socket of its own (group [`GROUP`]), stopped on drop.
pub struct Daemon {
    pub ig: IgChild,
    pub dir: PathBuf,
}

impl Daemon {
    /// A daemon with a socket and a state directory of its own.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_state(None, extra)
    }

    /// A daemon keeping its headless instances in `state` (one that
    /// outlives it, for restarts), or in a directory of its own.
    pub fn start_with_state(state: Option<&std::path::Path>, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(unique("igd"));
        let state = state.map_or_else(|| dir.join("state"), std::path::Path::to_path_buf);
        let mut args =
            vec!["daemon".to_string(), "--auto-mount-filesystems".into(), "-G".into(), GROUP.to_string()];
        args.extend(["-H".into(), format!("unix://{}/ig.sock", dir.display())]);
        args.extend(["--state-dir".into(), state.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(binary("ig"))
            .args(&args)
            .env("IG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ig daemon");
        let ig = IgChild::from_child(child);
        assert!(ig.wait_stderr("daemon ready", Duration::from_secs(30)), "daemon: {}", ig.stderr_text());
        Daemon { ig, dir }
    }

    pub fn address(&self) -> String {
        format!("unix://{}/ig.sock", self.dir.display())
    }

    /// `gadgetctl --remote-address <this daemon> ARGS...` to its end.
    pub fn gadgetctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("gadgetctl"))
            .args(["--remote-address", &self.address()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("gadgetctl")
    }

    /// `gadgetctl --remote-address <this daemon> ARGS...`, once the gadget
    /// is attached (its "tracing started").
    pub fn gadgetctl_ready(&self, args: &[&str]) -> IgChild {
        let child = Command::new(binary("gadgetctl"))
            .args(["--remote-address", &self.address()])
            .args(args)
            .env("IG_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gadgetctl");
        let client = IgChild::from_child(child);
        assert!(client.wait_stderr("tracing started", Duration::from_secs(30)), "{}", client.stderr_text());
        client
    }

    pub fn pid(&self) -> u32 {
        self.ig.child.id()
    }

    /// SIGTERM, as systemd stops it, and wait.
    pub fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.ig.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
