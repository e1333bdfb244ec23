//! Gadgets load against the subset of the kernel BTF they need, placed in a
//! private mount namespace of the loader thread; the host never sees it, and
//! without the privilege for that namespace ig loads against the whole BTF.

use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{IgChild, binary, require_root, wait_exec_ready};

/// Mount points on /sys/kernel/btf in a mountinfo text.
fn btf_mounts(mountinfo: &str) -> Vec<&str> {
    mountinfo.lines().filter(|l| l.split(' ').nth(4) == Some("/sys/kernel/btf")).collect()
}

#[test]
fn loads_against_the_subset_and_leaves_no_mount_behind() {
    require_root();
    let ig = IgChild::spawn_with_log(
        &["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"],
        "debug",
    );
    wait_exec_ready(&ig);
    let log = ig.stderr_text();
    assert!(
        log.contains("BTF subset made") || log.contains("BTF subset read from this boot's cache"),
        "{log}"
    );
    assert!(!log.contains("loading against the whole kernel BTF"), "{log}");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(btf_mounts(&host).is_empty(), "a BTF mount leaked to the host: {host}");
    let ours = std::fs::read_to_string(format!("/proc/{}/mountinfo", ig.child.id())).unwrap();
    assert!(btf_mounts(&ours).is_empty(), "ig's main thread sees the subset: {ours}");
}

#[test]
fn without_cap_sys_admin_the_whole_btf_is_used() {
    require_root();
    let child = Command::new("setpriv")
        .args(["--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"])
        .arg(binary("ig"))
        .args(["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"])
        .env("IG_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let ig = IgChild::from_child(child);
    wait_exec_ready(&ig);
    assert!(
        ig.wait_stderr("loading against the whole kernel BTF", Duration::from_secs(1)),
        "{}",
        ig.stderr_text()
    );
}

/// The debug log of `ig trace signal` until it traces (no other test here
/// runs that gadget, so its cache entry is this test's alone).
fn signal_run_log() -> String {
    let ig = IgChild::spawn_with_log(
        &["trace", "signal", "--host", "-o", "json", "--auto-mount-filesystems"],
        "debug",
    );
    assert!(ig.wait_stderr("tracing started", Duration::from_secs(30)), "{}", ig.stderr_text());
    ig.stderr_text()
}

#[test]
fn the_subset_is_kept_for_the_next_runs_of_this_boot_and_a_bad_one_is_remade() {
    require_root();
    let dir = std::path::Path::new("/run/ig/btf");
    // A damaged cache (every entry garbage) is not used: the subset is made again.
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        std::fs::write(entry.path(), b"garbage").unwrap();
    }
    let first = signal_run_log();
    assert!(first.contains("BTF subset made"), "{first}");
    let second = signal_run_log();
    assert!(second.contains("BTF subset read from this boot's cache"), "{second}");
    assert!(!second.contains("BTF subset made"), "{second}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", entry.path());
    }
}
