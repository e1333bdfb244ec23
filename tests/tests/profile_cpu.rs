//! `ig profile cpu` with a real runc container running a program that
//! spins in a known function (tests/profile_cpu/spin.c, built here with
//! frame pointers and bind-mounted in): its stacks are on top, symbolized
//! from the container's own binary, in JSON, folded and in the flame graph;
//! the same program spinning on the host is never counted, and a run
//! selecting another container counts nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, binary, harness, require_root, unique};

/// The spinner, statically linked (the busybox rootfs has no libc) and
/// unoptimized (every function keeps its frame, so the walk finds callers).
fn build_spinner(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("profile_cpu/spin.c");
    let out = dir.join("spin");
    let built = Command::new("cc")
        .args(["-static", "-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cc (gcc and libc6-dev's static libc build the spinner): {e}"));
    assert!(built.status.success(), "cc {}: {}", src.display(), String::from_utf8_lossy(&built.stderr));
    out
}

const SECONDS: &str = "5";

/// A host process killed when the test ends, passed or not (a spinner left
/// behind would hold the CPU and the test's output pipe).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn profile(args: &[&str]) -> IgChild {
    let mut all = vec!["profile", "cpu", "-t", SECONDS];
    all.extend_from_slice(args);
    IgChild::spawn_ready(&all, "tracing started")
}

/// Every JSON row one run printed when it stopped.
fn rows(ig: &IgChild) -> Vec<Value> {
    let first = ig.wait_json(Duration::from_secs(30), || {}, |v| v["count"].is_u64());
    let mut all = vec![first];
    all.extend(ig.collect_json(Duration::from_millis(500)));
    all
}

fn frames(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {v}"))
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_containers_spinning_function_tops_its_stacks_folded_and_in_the_flame_graph() {
    require_root();
    let h = harness();
    let id = unique("igt-cpu");
    let bin_dir = h.dir.join("bundles").join(format!("{id}-bin"));
    std::fs::create_dir_all(&bin_dir).unwrap();
    let spin = build_spinner(&bin_dir);
    let bundle = h.runc_bundle(&id, &["/tmp/spin"], true);
    bundle.edit_config(|cfg| {
        let mount = serde_json::json!({"destination": "/tmp", "type": "bind", "source": bin_dir, "options": ["rbind", "ro"]});
        cfg["mounts"].as_array_mut().expect("mounts").push(mount);
    });
    // The same program on the host, under another name: never counted.
    let host_copy = bin_dir.join("hostspin");
    std::fs::copy(&spin, &host_copy).unwrap();
    let _host = Killed(Command::new(&host_copy).spawn().unwrap());
    let svg_path = bin_dir.join("flame.svg");

    let json = profile(&["-c", &id, "-o", "json"]);
    let folded = profile(&["-c", &id, "-o", "folded", "--flamegraph", svg_path.to_str().unwrap()]);
    let kernel_only = profile(&["-c", &id, "-K", "-o", "json"]);
    let nobody = profile(&["-c", "igt-nobody", "-o", "json"]);
    let _pid = bundle.run_detached();

    let all = rows(&json);
    for r in &all {
        assert_eq!(r["runtime"]["containerName"], id.as_str(), "a row of another process: {r}");
        assert_ne!(r["comm"], "hostspin", "the host's spinner was counted: {r}");
    }
    let top = &all[0];
    assert_eq!(top["comm"], "spin", "{all:?}");
    let user = frames(top, "userStack");
    assert_eq!(user[..3], ["ig_busy_leaf", "ig_busy_caller", "main"], "{top}");
    let total: u64 = all.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    let spun = top["count"].as_u64().unwrap();
    // 49 Hz for the seconds it ran, and nearly all the container did.
    assert!(spun >= 50, "{spun} samples of the spin: {all:?}");
    assert!(spun * 10 >= total * 9, "{spun} of {total} samples in the spin: {all:?}");

    let mut lines = Vec::new();
    while let Some(l) = folded.next_line(Duration::from_secs(if lines.is_empty() { 30 } else { 1 })) {
        lines.push(l);
    }
    let want = format!("{id};spin;");
    let line = lines
        .iter()
        .find(|l| l.starts_with(&want) && l.contains(";main;ig_busy_caller;ig_busy_leaf "))
        .unwrap_or_else(|| panic!("no folded stack of the spin: {lines:?}"));
    let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 50, "{line}");

    assert!(folded.wait_stderr("flame graph written", Duration::from_secs(5)), "{}", folded.stderr_text());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let at = svg.find("<title>ig_busy_leaf (").unwrap_or_else(|| panic!("no ig_busy_leaf box: {svg}"));
    let rest = &svg[at..];
    let share: f64 = rest[rest.find(", ").unwrap() + 2..rest.find("%)").unwrap()].parse().unwrap();
    assert!(share >= 90.0, "ig_busy_leaf has {share}% of the graph");
    let width = &rest[rest.find("width=\"").unwrap() + 7..];
    let width: f64 = width[..width.find('"').unwrap()].parse().unwrap();
    assert!(width >= 0.9 * 1180.0, "its box is {width} px of 1180");

    let k = rows(&kernel_only);
    assert!(k.iter().any(|r| r["comm"] == "spin"), "{k:?}");
    assert!(k.iter().all(|r| frames(r, "userStack").is_empty()), "user frames with -K: {k:?}");

    let none = nobody.collect_json(Duration::from_secs(2));
    assert!(none.is_empty(), "counted for a container that does not exist: {none:?}");
    assert!(nobody.wait_stderr("tracing stopped", Duration::from_secs(10)), "{}", nobody.stderr_text());

    bundle.delete();
}

#[test]
fn folded_output_is_refused_where_there_are_no_stacks() {
    for args in [
        &["trace", "exec", "-o", "folded"][..],
        &["top", "file", "-o", "folded"],
        &["profile", "tcprtt", "-o", "folded"],
    ] {
        let out = Command::new(binary("ig")).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("-o folded: only profile cpu"), "{args:?}: {err}");
    }
}
