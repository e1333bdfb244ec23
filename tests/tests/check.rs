//! `ig check` on this host: every gadget of the registry loads and attaches
//! (but audit seccomp, which needs a kprobe),
//! and the report says how (this kernel has no kprobes: tracepoints, a raw
//! tracepoint for dns, tcprtt, seccomp-profile, network-policy and traceloop,
//! the task iterator, procfs, fsslower's syscall variant, perf events for
//! profile cpu, uprobes for trace ssl).

use std::process::Command;

use tests::{binary, require_root};

#[test]
fn every_gadget_runs_here_and_says_how() {
    require_root();
    let out = Command::new(binary("ig"))
        .args(["check", "-o", "json", "--auto-mount-filesystems"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gadgets = report["gadgets"].as_array().unwrap();
    assert_eq!(gadgets.len(), tracer::gadgets::all().len(), "one line per registered gadget");
    for g in gadgets {
        if g["gadget"] == "audit seccomp" {
            // Its only hook is a kprobe (the kernel matrix runs it): the
            // report says which facility is missing, in one line.
            assert_eq!(g["ok"], false, "{g}");
            let why = g["error"].as_str().unwrap_or_default();
            assert!(
                why.contains("no kprobes in this kernel (CONFIG_KPROBE_EVENTS)") && !why.contains('\n'),
                "{g}"
            );
            continue;
        }
        assert_eq!(g["ok"], true, "{g}");
        let want = match g["gadget"].as_str().unwrap() {
            "trace dns"
            | "profile tcprtt"
            | "advise seccomp-profile"
            | "advise network-policy"
            | "traceloop" => "raw tracepoint",
            "snapshot process" => "iterator",
            "snapshot socket" | "top process" | "top ebpf" => "procfs",
            "profile cpu" => "perf-event",
            "trace ssl" => "uprobe",
            // No kprobes here: the syscall variant.
            "trace fsslower" => "syscall",
            _ => "tracepoint",
        };
        assert_eq!(g["variant"], want, "{g}");
    }
    assert_eq!(report["kernel"]["kprobes"], false, "this host has no kprobes");
    let text = Command::new(binary("ig")).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.starts_with("trace exec") && l.contains("ok")), "{text}");
}
