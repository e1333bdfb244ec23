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
    assert!(log.contains("BTF subset made"), "{log}");
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
