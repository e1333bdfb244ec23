//! `ig trace oomkill` against real OOM kills: a process in a memory cgroup
//! limited to 32 MiB allocates 200 MiB.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root, unique};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_oomkill::{OomkillEvent, TraceOomkill};
use tracer::session::{Session, SessionOptions};

/// Debian's interpreter, not whatever a version manager puts first in PATH.
const PYTHON: &str = "/usr/bin/python3";

/// A memory cgroup limited to 32 MiB (v1 where mounted, else v2); removed on drop.
struct SmallCgroup(PathBuf);

impl SmallCgroup {
    fn new() -> Self {
        let limit = (32u64 << 20).to_string();
        let v1 = PathBuf::from("/sys/fs/cgroup/memory");
        let (dir, file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(unique("ig-oom")), "memory.limit_in_bytes")
        } else {
            (PathBuf::from("/sys/fs/cgroup").join(unique("ig-oom")), "memory.max")
        };
        std::fs::create_dir_all(&dir).expect("creating a memory cgroup");
        std::fs::write(dir.join(file), &limit).expect("setting the memory limit");
        Self(dir)
    }

    /// A process that joins the cgroup and allocates until it is killed.
    fn hog(&self) -> Command {
        let procs = self.0.join("cgroup.procs");
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", "a = b'x' * (200 << 20)"]);
        // SAFETY: only raw syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || std::fs::write(&procs, std::process::id().to_string()));
        }
        cmd
    }
}

impl Drop for SmallCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_oom_kill_in_a_memory_cgroup_is_reported() {
    require_root();
    let ig = IgChild::spawn_ready(
        &["trace", "oomkill", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let cg = SmallCgroup::new();
    let mut child = cg.hog().spawn().expect("/usr/bin/python3 (apt: python3)");
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the OOM killer killed it: {status:?}");
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["tpid"] == pid);
    assert_eq!(ev["tcomm"], "python3");
    assert_eq!(ev["kpid"], pid, "in a memory-limited cgroup the allocating task triggers the kill");
    assert_eq!(ev["kcomm"], "python3");
    assert!(ev["pages"].as_u64().unwrap() > 1000, "{ev}");
    assert_eq!(ev["tuid"], 0);
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceOomkill::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace oomkill");
    let cg = SmallCgroup::new();
    // Killed in the host's namespace: not in the map, not reported.
    let mut host = cg.hog().spawn().unwrap();
    let host_pid = host.id();
    host.wait().unwrap();
    // Killed in its own namespace, allowed once it exists.
    let mut cmd = Command::new("/bin/sh");
    let script = format!("read go; exec {PYTHON} -c \"a = b'x' * (200 << 20)\"");
    cmd.args(["-c", &script]).stdin(std::process::Stdio::piped());
    let procs = cg.0.join("cgroup.procs");
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
            std::fs::write(&procs, std::process::id().to_string())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let child_pid = child.id();
    session.filter().add(mntns_of(child_pid)).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"\n").unwrap();
    child.wait().unwrap();

    let clock = Clock::now();
    let mut seen: Vec<OomkillEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !seen.iter().any(|e| e.tpid == child_pid) {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.iter().any(|e| e.tpid == child_pid), "the kill in the allowed namespace: {seen:?}");
    assert!(!seen.iter().any(|e| e.tpid == host_pid), "the host's kill leaked: {seen:?}");
}
