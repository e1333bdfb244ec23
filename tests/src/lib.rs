//! Helpers for the integration tests and the bench: finding the built
//! binaries, running `ig` as a child and reading its output line by line,
//! and waiting until a tracer is really attached.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace's target directory for the profile these tests run with.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IG_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // tests/ is one level below the workspace root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    root.join("target").join(profile)
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
}

impl IgChild {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(binary("ig"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ig");
        let lines = pipe_lines(child.stdout.take().expect("stdout"));
        let stderr = pipe_lines(child.stderr.take().expect("stderr"));
        Self { child, lines, stderr }
    }

    /// The next stdout line, or None after `timeout` or at end of output.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
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
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
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

/// Runs `/bin/true <marker>` until `ig trace exec` shows it: the tracer is attached.
pub fn wait_exec_ready(ig: &IgChild) {
    let marker = unique("ig-ready");
    ig.wait_json(
        Duration::from_secs(20),
        || {
            let _ = Command::new("/bin/true").arg(&marker).status();
        },
        |v| v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str())),
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

/// Inode of /proc/<pid>/ns/mnt: the mount namespace id the kernel reports.
pub fn mntns_of(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).expect("stat ns/mnt").ino()
}
