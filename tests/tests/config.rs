//! The configuration file and IG_* variables, as the real binary reads
//! them: a file under a HOME of the test's own (never /etc, which every
//! other test's ig would read too), `--config FILE`, precedence, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{IgChild, binary, require_root, unique};

fn home_with(config: &str) -> PathBuf {
    let home = std::env::temp_dir().join(unique("ig-home"));
    std::fs::create_dir_all(home.join(".config/ig")).unwrap();
    std::fs::write(home.join(".config/ig/config.yaml"), config).unwrap();
    home
}

fn ig(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(binary("ig"));
    c.args(args).env("HOME", home).env("IG_LOG", "info").envs(env.iter().copied());
    c
}

/// trace exec as configured; the exec of a marker; its first line of output.
fn first_event_line(home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    require_root();
    let child = ig(home, env, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let ig = IgChild::from_child(child);
    assert!(ig.wait_stderr("tracing started", Duration::from_secs(20)), "{}", ig.stderr_text());
    let marker = unique("cfg");
    Command::new("/bin/true").arg(&marker).status().unwrap();
    ig.wait_line(Duration::from_secs(10), |l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no line with the marker: {}", ig.stderr_text()))
}

#[test]
fn the_users_file_and_the_environment_set_what_the_command_line_does_not() {
    // JSON for every gadget, host processes, filesystems mounted; exec's own section on top.
    let home = home_with("output: json\nauto-mount-filesystems: true\ntrace:\n  exec:\n    host: true\n");
    let line = first_event_line(&home, &[], &["trace", "exec"]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON, as the file says");
    assert_eq!(v["comm"], "true");
    // The environment beats the file: columns.
    let line = first_event_line(&home, &[("IG_OUTPUT", "columns")], &["trace", "exec"]);
    assert!(serde_json::from_str::<serde_json::Value>(&line).is_err() && line.contains("true"), "{line}");
    // The command line beats both.
    let line = first_event_line(&home, &[("IG_OUTPUT", "columns")], &["trace", "exec", "-o", "yaml"]);
    assert!(line.trim_start().starts_with("- cfg"), "a YAML list item: {line}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn config_names_a_file_of_its_own_and_view_shows_the_merge() {
    let home = home_with("output: json\n");
    let file = home.join("other.yaml");
    std::fs::write(&file, "trace:\n  open:\n    full-path: true\n").unwrap();
    let out = ig(&home, &[("IG_HOST", "true")], &["--config", file.to_str().unwrap(), "config", "view"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("trace.open.full-path: true"), "{text}");
    assert!(text.contains("host: true    # IG_HOST"), "{text}");
    assert!(!text.contains("output: json"), "--config replaces the user's file: {text}");
    let out = ig(&home, &[], &["config", "default"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("#k8s-selector:") && text.contains("#  exec:\n#    cwd: false"), "{text}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_bad_file_is_a_clear_error_naming_file_line_and_key() {
    let home = home_with("# a comment\nauto-mount-filesystems: true\ntrace:\n  exec:\n    outptu: json\n");
    let out = ig(&home, &[], &["trace", "exec"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = home.join(".config/ig/config.yaml");
    assert!(err.contains(&format!("{}:5: trace.exec.outptu: no such flag", file.display())), "{err}");
    std::fs::write(&file, "trace:\n  exec:\n    output: xml\n").unwrap();
    let err =
        String::from_utf8_lossy(&ig(&home, &[], &["trace", "exec"]).output().unwrap().stderr).to_string();
    assert!(err.contains(":3: trace.exec.output: ") && err.contains("xml"), "{err}");
    std::fs::write(&file, "trace: [unclosed\n").unwrap();
    let err = String::from_utf8_lossy(&ig(&home, &[], &["version"]).output().unwrap().stderr).to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    let missing = ig(&home, &[], &["--config", "/nonexistent/ig.yaml", "version"]).output().unwrap();
    assert!(!missing.status.success(), "a --config file that is not there is an error");
    let _ = std::fs::remove_dir_all(&home);
}
