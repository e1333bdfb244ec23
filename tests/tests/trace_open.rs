//! `ig trace open` against real opens.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tests::{IgChild, require_root, unique, wait_open_ready};

fn start(extra: &[&str]) -> IgChild {
    require_root();
    let mut args = vec!["trace", "open", "--host", "-o", "json", "--auto-mount-filesystems"];
    args.extend_from_slice(extra);
    let ig = IgChild::spawn(&args);
    wait_open_ready(&ig);
    ig
}

fn thread_comm() -> String {
    let tid = unsafe { libc::gettid() };
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap().trim_end().to_string()
}

#[test]
fn a_successful_open_has_fd_path_and_flags() {
    let ig = start(&[]);
    let path = std::env::temp_dir().join(unique("ig-open"));
    std::fs::write(&path, b"x").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let fd = file.as_raw_fd();
    let path = path.to_str().unwrap().to_string();
    // fs::write opened it first (O_WRONLY|O_CREAT): pick the read-only open.
    let ev = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["path"] == path.as_str() && v["flags"][0] == "O_RDONLY",
    );
    assert_eq!(ev["fd"], fd);
    assert_eq!(ev["err"], 0);
    assert_eq!(ev["ret"], fd);
    assert_eq!(ev["pid"], std::process::id());
    assert_eq!(ev["comm"], thread_comm());
    assert_eq!(ev["flags"], serde_json::json!(["O_RDONLY", "O_CLOEXEC"]));
    drop(file);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_failed_open_has_the_positive_errno() {
    let ig = start(&[]);
    let path = format!("/nonexistent-dir/{}", unique("ig-open"));
    assert!(std::fs::File::open(&path).is_err());
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["path"] == path.as_str());
    assert_eq!(ev["err"], libc::ENOENT);
    assert_eq!(ev["ret"], -libc::ENOENT);
    assert_eq!(ev["fd"], 0);
}

#[test]
fn openat2_is_traced() {
    let ig = start(&[]);
    let path = format!("/nonexistent-dir/{}", unique("ig-openat2"));
    let c = CString::new(path.clone()).unwrap();
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how: [u64; 3] = [libc::O_RDONLY as u64, 0, 0];
    let ret = unsafe { libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, c.as_ptr(), how.as_ptr(), 24usize) };
    assert_eq!(ret, -1);
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["path"] == path.as_str());
    assert_eq!(ev["err"], libc::ENOENT);
}

#[test]
fn full_path_resolves_relative_names() {
    let ig = start(&["--full-path"]);
    let dir = std::env::temp_dir().join(unique("ig-fullpath"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"x").unwrap();
    let name = unique("ig-rel");
    // A child changes directory, then opens a relative name that exists and one that does not.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("cd {} && cat ./f > /dev/null && cat {name} 2>/dev/null; true", dir.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let dir = dir.canonicalize().unwrap();
    let ok = ig.wait_json(Duration::from_secs(10), || {}, |v| v["path"] == "./f");
    assert_eq!(ok["fullPath"], dir.join("f").to_str().unwrap());
    let missing = ig.wait_json(Duration::from_secs(10), || {}, |v| v["path"] == name.as_str());
    assert_eq!(missing["fullPath"], dir.join(&name).to_str().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prefixes_keep_only_matching_paths() {
    let prefix = format!("/tmp/{}", unique("ig-prefix"));
    require_root();
    let ig = IgChild::spawn(&[
        "trace",
        "open",
        "--host",
        "-o",
        "json",
        "--auto-mount-filesystems",
        "--prefixes",
        &format!("{prefix},/nonexistent-prefix"),
    ]);
    let inside = format!("{prefix}-in");
    let events = ig.wait_json_forbidding(
        Duration::from_secs(20),
        || {
            let _ = std::fs::File::open("/etc/hostname");
            let _ = std::fs::File::open(&inside);
        },
        |v| v["path"] == inside.as_str(),
        |v| !v["path"].as_str().is_some_and(|p| p.starts_with(&prefix)),
        Duration::from_millis(300),
    );
    assert_eq!(events["path"], inside.as_str());
}
