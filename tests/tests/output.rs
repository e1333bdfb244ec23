//! What users read: JSON keys, columns, escaping, -F filters.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{IgChild, require_root, unique, wait_exec_ready};

#[test]
fn exec_json_carries_the_documented_keys() {
    require_root();
    let ig = IgChild::spawn(&["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"]);
    wait_exec_ready(&ig);
    let marker = unique("ig-keys");
    Command::new("/bin/true").arg(&marker).status().unwrap();
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["args"][1] == marker.as_str());
    for key in ["runtime", "k8s", "timestamp", "type", "mountnsid"] {
        assert!(ev.get(key).is_some(), "missing {key} in {ev}");
    }
    for key in ["runtimeName", "containerId", "containerName", "containerImageName"] {
        assert!(ev["runtime"].get(key).is_some(), "missing runtime.{key}");
    }
    for key in ["namespace", "podName", "containerName", "podUID", "podLabels"] {
        assert!(ev["k8s"].get(key).is_some(), "missing k8s.{key}");
    }
    for key in ["pid", "ppid", "comm", "ret", "args", "uid", "gid", "loginuid", "sessionid", "upperlayer"] {
        assert!(ev.get(key).is_some(), "missing {key} in {ev}");
    }
    assert!(ev["args"].is_array());
    // the timestamp is wall-clock nanoseconds, close to now
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
    let ts = ev["timestamp"].as_u64().unwrap() as i128;
    assert!((now - ts).abs() < 60_000_000_000, "timestamp {ts} vs now {now}");
}

#[test]
fn open_json_carries_the_documented_keys() {
    require_root();
    let ig = IgChild::spawn(&["trace", "open", "--host", "-o", "json", "--auto-mount-filesystems"]);
    tests::wait_open_ready(&ig);
    let path = format!("/tmp/{}", unique("ig-keys"));
    let _ = std::fs::File::open(&path);
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["path"] == path.as_str());
    for key in
        ["pid", "comm", "fd", "err", "path", "uid", "gid", "ret", "flags", "mode", "mountnsid", "timestamp"]
    {
        assert!(ev.get(key).is_some(), "missing {key} in {ev}");
    }
}

/// A process named with a terminal escape: columns output shows it escaped,
/// and no raw control byte reaches the terminal.
#[test]
fn control_characters_in_names_are_escaped_in_columns() {
    require_root();
    let dir = std::env::temp_dir().join(unique("ig-esc"));
    std::fs::create_dir_all(&dir).unwrap();
    let evil = dir.join("x\x1b[31mred");
    std::os::unix::fs::symlink("/bin/true", &evil).unwrap();
    let ig = IgChild::spawn(&[
        "trace",
        "exec",
        "--host",
        "--auto-mount-filesystems",
        "-o",
        "columns=comm,args",
        "-F",
        "comm:~red",
    ]);
    let header = ig.next_line(Duration::from_secs(20)).expect("header");
    assert_eq!(header.trim_end(), "COMM             ARGS");
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        Command::new(&evil).status().unwrap();
        if let Some(l) = ig.next_line(Duration::from_millis(200)) {
            break l;
        }
        assert!(Instant::now() < deadline, "no event for the escaped name");
    };
    assert!(line.starts_with("x\\x1b[31mred"), "{line:?}");
    assert!(!line.bytes().any(|b| b < 0x20 || b == 0x7f), "raw control byte in {line:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn filters_select_events() {
    require_root();
    let marker = unique("ig-filter");
    let ig = IgChild::spawn(&[
        "trace",
        "exec",
        "--host",
        "-o",
        "json",
        "--auto-mount-filesystems",
        "-F",
        &format!("args:~{marker}"),
        "-F",
        "comm:!echo",
    ]);
    let has_marker = |v: &Value| v["args"].as_array().is_some_and(|a| a.iter().any(|x| x == marker.as_str()));
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(20),
        || {
            Command::new("/bin/echo").arg(&marker).stdout(std::process::Stdio::null()).status().unwrap();
            Command::new("/bin/true").arg(&marker).status().unwrap();
            // No marker: args:~ keeps it out.
            Command::new("/bin/true").arg("unmarked").status().unwrap();
        },
        |v| v["comm"] == "true" && has_marker(v),
        |v| v["comm"] == "echo" || !has_marker(v),
        Duration::from_millis(300),
    );
    assert_eq!(ev["comm"], "true");
}

#[test]
fn bad_flags_get_clear_errors() {
    let out = Command::new(tests::binary("ig")).args(["trace", "exec", "-o", "xml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown output mode"));
    require_root();
    let out = Command::new(tests::binary("ig"))
        .args(["trace", "exec", "--host", "--auto-mount-filesystems", "-F", "nosuchcol:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchcol") && err.contains("available"), "{err}");
}

#[test]
fn an_unprivileged_user_gets_a_clear_error() {
    require_root();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps",
            "-all",
            "--bounding-set",
            "-all",
        ])
        .arg(tests::binary("ig"))
        .args(["trace", "exec", "--host"])
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing privileges") && err.contains("CAP_BPF"), "{err}");
}

/// Each ig converts boot time to wall time from its own start: a few µs apart.
fn without_timestamp(mut v: Value) -> Value {
    v.as_object_mut().map(|o| o.remove("timestamp"));
    v
}

#[test]
fn yaml_reads_back_as_the_json_of_the_same_event() {
    require_root();
    let json = IgChild::spawn_ready(
        &["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let yaml = IgChild::spawn_ready(
        &["trace", "exec", "--host", "-o", "yaml", "--auto-mount-filesystems"],
        "tracing started",
    );
    // Arguments YAML would read as other types if written bare.
    let marker = unique("ig-yaml");
    Command::new("/bin/true")
        .args([marker.as_str(), "true", "1.5", "a: b", "- x", "", "é\u{1b}"])
        .status()
        .unwrap();
    let from_json = without_timestamp(json.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["args"][1] == marker.as_str(),
    ));
    // Documents until the one with the marker.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let from_yaml = loop {
        assert!(Instant::now() < deadline, "no YAML document with the marker: {text}");
        if let Some(line) = yaml.next_line(Duration::from_millis(200)) {
            if line == "---" {
                text.clear();
            }
            text.push_str(&line);
            text.push('\n');
        } else {
            continue;
        }
        if !text.contains(&marker) {
            continue;
        }
        // The document is whole when its last key (uid/gid/...) arrived: parse until it does.
        if let Ok(v) =
            serde_norway::from_str::<Value>(text.trim_start_matches("---\n")).map(without_timestamp)
            && v == from_json
        {
            break v;
        }
    };
    assert_eq!(from_yaml["args"][2], "true", "a string, not a boolean");
    assert_eq!(from_yaml["args"][3], "1.5", "a string, not a number");
}

#[test]
fn fields_picks_columns_as_o_columns_does() {
    require_root();
    let header = |args: &[&str]| {
        let mut all = vec!["trace", "open", "--host", "--auto-mount-filesystems"];
        all.extend_from_slice(args);
        let ig = IgChild::spawn(&all);
        ig.next_line(Duration::from_secs(20)).expect("header").trim_end().to_string()
    };
    assert_eq!(header(&["--fields", "pid,path"]), header(&["-o", "columns=pid,path"]));
    assert_eq!(header(&["--fields", "pid,path"]).split_whitespace().collect::<Vec<_>>(), ["PID", "PATH"]);
    assert_eq!(header(&["--fields", "+uid,-err"]), header(&["-o", "columns=+uid,-err"]));
    assert!(header(&["--fields", "+uid,-err"]).contains("UID"));
}
