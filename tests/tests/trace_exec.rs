//! `ig trace exec` against real processes.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, require_root, unique, wait_exec_ready};

fn args_of(v: &Value) -> Vec<String> {
    v["args"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn start() -> IgChild {
    require_root();
    let ig = IgChild::spawn(&["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"]);
    wait_exec_ready(&ig);
    ig
}

#[test]
fn a_successful_exec_has_pid_ppid_comm_and_args() {
    let ig = start();
    let marker = unique("ig-exec");
    let mut child = Command::new("/bin/echo").args([marker.as_str(), "second arg"]).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| args_of(v).contains(&marker));
    assert_eq!(args_of(&ev), vec!["/bin/echo".to_string(), marker.clone(), "second arg".into()]);
    assert_eq!(ev["pid"], pid);
    assert_eq!(ev["ppid"], std::process::id());
    assert_eq!(ev["comm"], "echo");
    assert_eq!(ev["ret"], 0);
    assert_eq!(ev["uid"], 0);
    assert_eq!(ev["type"], "normal");
    assert_eq!(ev["mountnsid"], tests::mntns_of(std::process::id()));
    // a host process: container fields are empty
    assert_eq!(ev["runtime"]["containerName"], "");
}

#[test]
fn a_failed_exec_is_reported_with_minus_errno() {
    let ig = start();
    let path = format!("/nonexistent/{}", unique("ig-missing"));
    assert!(Command::new(&path).arg("x").spawn().is_err());
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| args_of(v).first() == Some(&path));
    assert_eq!(ev["ret"], -libc::ENOENT);
    assert_eq!(args_of(&ev), vec![path, "x".to_string()]);
    assert_eq!(ev["ppid"], std::process::id());
}

/// execveat shares execve's exit program: its failure is reported the same way.
#[test]
fn a_failed_execveat_is_reported_with_minus_errno() {
    let ig = start();
    let marker = unique("ig-execveat");
    // A file without execute permission: execveat(fd, "", AT_EMPTY_PATH) fails with EACCES.
    let file = std::env::temp_dir().join(format!("{marker}.txt"));
    std::fs::write(&file, b"not a program\n").unwrap();
    let fd = std::fs::File::open(&file).unwrap();
    let arg0 = CString::new(marker.clone()).unwrap();
    let argv = [arg0.as_ptr(), c"x".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: valid NUL-terminated argv and envp; execveat fails (not
    // executable), so this process goes on.
    let r = unsafe {
        use std::os::fd::AsRawFd;
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    assert_eq!(r, -1, "execveat of a text file must fail");
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| args_of(v).first() == Some(&marker));
    assert_eq!(ev["ret"], -libc::EACCES);
    assert_eq!(args_of(&ev), vec![marker, "x".to_string()]);
    assert_eq!(ev["pid"], std::process::id());
    let _ = std::fs::remove_file(&file);
}

/// The argument strings sit in a file mapping the child creates right before
/// execve and never touches: reading argv at sys_enter from BPF cannot fault
/// those pages in, so only reading the copy the kernel made works.
#[test]
fn args_in_never_touched_pages_are_complete() {
    let ig = start();
    let marker = unique("ig-untouched");
    let file = std::env::temp_dir().join(format!("{marker}.args"));
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(b"/bin/true\0").unwrap();
    f.write_all(marker.as_bytes()).unwrap();
    f.write_all(b"\0").unwrap();
    drop(f);
    let cpath = CString::new(file.as_os_str().as_bytes()).unwrap();
    let first_len = "/bin/true\0".len();

    // SAFETY: between fork and execve the child only makes raw syscalls.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            let fd = libc::open(cpath.as_ptr(), libc::O_RDONLY);
            let map = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE, fd, 0);
            if fd < 0 || map == libc::MAP_FAILED {
                libc::_exit(111);
            }
            let base = map as *const libc::c_char;
            let argv = [base, base.add(first_len), std::ptr::null()];
            let envp: [*const libc::c_char; 1] = [std::ptr::null()];
            libc::execve(base, argv.as_ptr(), envp.as_ptr());
            libc::_exit(112);
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let _ = std::fs::remove_file(&file);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| v["pid"] == pid);
    assert_eq!(args_of(&ev), vec!["/bin/true".to_string(), marker]);
}

#[test]
fn cwd_is_reported_when_asked() {
    require_root();
    let ig = IgChild::spawn(&["trace", "exec", "--host", "--cwd", "-o", "json", "--auto-mount-filesystems"]);
    wait_exec_ready(&ig);
    let marker = unique("ig-cwd");
    Command::new("/bin/true").arg(&marker).current_dir("/usr/share").status().unwrap();
    let ev = ig.wait_json(Duration::from_secs(10), || {}, |v| args_of(v).contains(&marker));
    assert_eq!(ev["cwd"], "/usr/share");
}

#[test]
fn ignore_errors_drops_failed_execs() {
    require_root();
    let ig = IgChild::spawn(&[
        "trace",
        "exec",
        "--host",
        "--ignore-errors",
        "-o",
        "json",
        "--auto-mount-filesystems",
    ]);
    wait_exec_ready(&ig);
    let missing = format!("/nonexistent/{}", unique("ig-missing"));
    let after = unique("ig-after");
    assert!(Command::new(&missing).spawn().is_err());
    Command::new("/bin/true").arg(&after).status().unwrap();
    // Every event up to the later exec is checked, then a little more.
    let check = |v: &Value| {
        assert_ne!(args_of(v).first(), Some(&missing), "a failed exec came through: {v}");
        assert_eq!(v["ret"], 0, "only successful execs: {v}");
    };
    ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| {
            check(v);
            args_of(v).contains(&after)
        },
    );
    let all = ig.collect_json(Duration::from_millis(300));
    all.iter().for_each(check);
}
