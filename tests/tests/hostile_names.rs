//! Hostile names: a container whose names carry terminal escapes,
//! newlines and 64 KiB of text, and a process whose name is not UTF-8.
//! Columns output shows them escaped (no control character reaches the
//! terminal, one line per event), JSON stays valid and keeps them exactly,
//! and list-containers and the gadget keep working.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, binary, harness, require_root, unique};

const EVIL: &str = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\nsecond line\r\u{9b}31m";

fn no_control_but_newlines(text: &str) {
    for (i, line) in text.lines().enumerate() {
        assert!(!line.chars().any(char::is_control), "line {i} carries a control character: {line:?}");
    }
}

#[test]
fn escapes_newlines_and_huge_names_stay_harmless() {
    let h = harness();
    require_root();
    let id = unique("igt-hostile");
    let huge = "x".repeat(64 * 1024);
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "30"], true);
    bundle.edit_config(|cfg| {
        cfg["annotations"] = serde_json::json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": EVIL,
            "io.kubernetes.cri.sandbox-name": huge,
            "io.kubernetes.cri.sandbox-namespace": "ns\u{1b}[1m",
            "io.kubernetes.cri.image-name": EVIL,
        });
    });
    let json = IgChild::spawn_ready(
        &["trace", "exec", "-o", "json", "-c", EVIL, "--auto-mount-filesystems"],
        "tracing started",
    );
    let columns = IgChild::spawn_ready(
        &[
            "trace",
            "exec",
            "-o",
            "columns=runtime.containerName,k8s.podName,k8s.namespace,runtime.containerImageName,comm,args",
            "-c",
            EVIL,
            "--auto-mount-filesystems",
        ],
        "tracing started",
    );
    bundle.run_detached();
    bundle.exec(&["/bin/echo", "hostile-marker"]);

    // JSON: valid, and the names exactly as given.
    let ev = json.wait_json(Duration::from_secs(15), || {}, |v| v["args"][1] == "hostile-marker");
    assert_eq!(ev["runtime"]["containerName"], EVIL);
    assert_eq!(ev["k8s"]["podName"].as_str().map(str::len), Some(64 * 1024));
    assert_eq!(ev["k8s"]["namespace"], "ns\u{1b}[1m");

    // Columns: one line for the event, every control character escaped.
    let line = columns
        .wait_line(Duration::from_secs(15), |l| l.contains("hostile-marker"))
        .expect("the exec in columns");
    no_control_but_newlines(&line);
    assert!(line.contains("evil\\x1b[2J"), "{line:?}");
    assert!(line.contains("\\nsecond"), "the newline is shown, not obeyed: {line:?}");

    // list-containers, both ways.
    let out = Command::new(binary("ig")).args(["list-containers", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("list-containers JSON");
    let mine = list.iter().find(|c| c["runtime"]["containerId"] == id.as_str()).expect("listed");
    assert_eq!(mine["k8s"]["containerName"], EVIL);
    let out = Command::new(binary("ig")).args(["list-containers"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("columns are UTF-8");
    no_control_but_newlines(&text);
    assert!(text.lines().any(|l| l.contains(&id)), "{text}");
    bundle.delete();
}

#[test]
fn a_process_name_that_is_not_utf8_is_shown_safely() {
    require_root();
    let dir = std::env::temp_dir().join(unique("igt-bytes"));
    std::fs::create_dir_all(&dir).unwrap();
    // comm is the file name's first 15 bytes, whatever they are.
    let mut name = b"igt\xff\xfe\x1b[31m".to_vec();
    name.truncate(15);
    let link = dir.join(std::ffi::OsStr::from_bytes(&name));
    std::os::unix::fs::symlink("/bin/true", &link).unwrap();
    let marker = unique("bytes-marker");
    let json = IgChild::spawn_ready(
        &["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let columns = IgChild::spawn_ready(
        &["trace", "exec", "--host", "-o", "columns=comm,args", "--auto-mount-filesystems"],
        "tracing started",
    );
    let ev = json.wait_json(
        Duration::from_secs(15),
        || {
            let _ = Command::new(&link).arg(&marker).status();
        },
        |v| v["args"][1] == marker.as_str(),
    );
    let comm = ev["comm"].as_str().expect("comm is a JSON string");
    assert!(comm.starts_with("igt"), "{comm:?}");
    let line =
        columns.wait_line(Duration::from_secs(15), |l| l.contains(&marker)).expect("the exec in columns");
    no_control_but_newlines(&line);
    assert!(line.starts_with("igt"), "{line:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
