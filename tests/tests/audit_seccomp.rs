//! `ig audit seccomp` on this host. Its hook is a kprobe on audit_seccomp,
//! and this kernel has no kprobes: it must refuse in one line naming the
//! missing facility, and exit non-zero. The decisions themselves (a logged
//! call and a logged denial, named after their container, the host's never
//! shown) are checked on every kernel of the matrix (tests/kernels,
//! kernel-guest's `audit seccomp` row).

use std::process::Command;

use tests::{binary, require_root};

#[test]
fn without_kprobes_it_says_which_facility_is_missing() {
    require_root();
    let kprobes = std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/kprobe_events").exists();
    assert!(
        !kprobes,
        "this host has kprobes now: test audit seccomp here for real (as the kernel matrix does)"
    );
    let out = Command::new(binary("ig"))
        .args(["audit", "seccomp", "-t", "1", "--auto-mount-filesystems"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("no kprobes in this kernel (CONFIG_KPROBE_EVENTS)"), "{err}");
}
