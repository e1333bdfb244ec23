//! `--output-file`: JSON lines in a file, rotated by size, reopened on
//! SIGHUP, and a full disk that drops (and counts) lines without stopping
//! the gadget, then resumes. The events are real opens of a shell's.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{Daemon, IgChild, binary, require_root, unique};

/// A shell that, for each `TAG N` line, tries to open
/// `<prefix>-TAG-0 .. <prefix>-TAG-(N-1)` (missing files: failed opens, one
/// event each) and answers `done`.
struct Opener {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    prefix: String,
}

impl Opener {
    fn start() -> Self {
        let prefix = std::env::temp_dir().join(unique("igt-of")).display().to_string();
        let script = format!(
            "while read tag n; do i=0; while [ $i -lt $n ]; do true 2>/dev/null <\"{prefix}-$tag-$i\"; i=$((i+1)); done; echo done; done"
        );
        let mut child = Command::new("/bin/sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Opener { child, stdin, stdout, prefix }
    }

    fn open(&mut self, tag: &str, n: usize) {
        writeln!(self.stdin, "{tag} {n}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    }

    /// ig's flags for exactly this shell's marker opens.
    fn flags(&self) -> Vec<String> {
        let pid = self.child.id().to_string();
        vec!["--host".into(), "--pid".into(), pid, "-F".into(), format!("path:~{}", self.prefix)]
    }

    /// (tag, i) of an event of ours.
    fn parse(&self, ev: &Value) -> Option<(String, usize)> {
        let rest = ev["path"].as_str()?.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        let (tag, i) = rest.rsplit_once('-')?;
        Some((tag.to_string(), i.parse().ok()?))
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of `path`, each of which must be whole JSON.
fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l:?}", path.display()))
        })
        .collect()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Waits until `done` holds for the events of `files`, read together.
fn wait_for(files: &[PathBuf], timeout: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all: Vec<Value> = files.iter().flat_map(|f| json_lines(f)).collect();
        if done(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "timed out; the files hold {} lines", all.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_ig(opener: &Opener, file: &Path, extra: &[&str]) -> IgChild {
    let mut args: Vec<String> = ["trace", "open"].map(String::from).to_vec();
    args.extend(opener.flags());
    args.extend(["--output-file".into(), file.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    IgChild::spawn_ready(&args, "tracing started")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn events_rotate_by_size_keeping_the_newest_whole_and_in_order() {
    require_root();
    let dir = scratch("igt-rotate");
    let file = dir.join("open.json");
    let mut opener = Opener::start();
    // 30 KB files: a few hundred events fill several.
    let ig = start_ig(&opener, &file, &["--output-max-size-mb", "0.03", "--output-max-backups", "2"]);
    const N: usize = 600;
    opener.open("r", N);
    let files = [with_suffix(&file, ".2"), with_suffix(&file, ".1"), file.clone()];
    wait_for(&files, Duration::from_secs(30), |evs| {
        evs.last().and_then(|e| opener.parse(e)) == Some(("r".into(), N - 1))
    });
    // Read once ig has stopped: a read while it rotates sees a mix.
    assert!(ig.interrupt().success());
    let all: Vec<Value> = files.iter().flat_map(|f| json_lines(f)).collect();
    assert!(!with_suffix(&file, ".3").exists(), "two backups at most");
    let seen: Vec<usize> = all.iter().map(|e| opener.parse(e).expect("only our opens").1).collect();
    let first = seen[0];
    assert!(first > 0, "the oldest events were rotated away: {} kept", seen.len());
    assert_eq!(seen, (first..N).collect::<Vec<_>>(), "contiguous and in order across the files");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len > 0 && len <= 30_000, "{}: {len} bytes", f.display());
    }
    assert_eq!(all.last().unwrap()["err"], 2, "the events are the open gadget's JSON (ENOENT)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_reopens_the_file_after_it_was_moved_and_nothing_is_lost() {
    require_root();
    let dir = scratch("igt-hup");
    let file = dir.join("open.json");
    let moved = dir.join("open.json.moved");
    let mut opener = Opener::start();
    let mut ig = start_ig(&opener, &file, &[]);
    opener.open("a", 5);
    wait_for(std::slice::from_ref(&file), Duration::from_secs(20), |evs| evs.len() == 5);
    // What logrotate does: move the file, then SIGHUP.
    std::fs::rename(&file, &moved).unwrap();
    let pid = nix::unistd::Pid::from_raw(ig.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    // Until the writer has reopened, events still go to the moved file.
    let mut rounds = 0;
    while !file.exists() || json_lines(&file).is_empty() {
        assert!(rounds < 100, "the file was never reopened: {}", ig.stderr_text());
        opener.open(&format!("b{rounds}"), 1);
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let all = [moved.clone(), file.clone()];
    let evs = wait_for(&all, Duration::from_secs(10), |evs| evs.len() == 5 + rounds);
    let mut tags: Vec<String> = evs.iter().map(|e| opener.parse(e).unwrap().0).collect();
    tags.dedup();
    let want: Vec<String> =
        std::iter::once("a".to_string()).chain((0..rounds).map(|r| format!("b{r}"))).collect();
    assert_eq!(tags, want, "each event once, in order, across the two files");
    assert_eq!(json_lines(&moved).len(), 5 + rounds - json_lines(&file).len());
    assert!(ig.child.try_wait().unwrap().is_none(), "SIGHUP does not stop ig");
    drop(ig);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 256 KiB tmpfs mounted for one test, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount() -> Self {
        let dir = scratch("igt-full");
        let st =
            Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "igt-full"]).arg(&dir).status();
        assert!(st.unwrap().success(), "mounting a tmpfs at {}", dir.display());
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_full_disk_drops_and_counts_lines_and_writing_resumes_when_space_returns() {
    require_root();
    let disk = SmallDisk::mount();
    let file = disk.0.join("open.json");
    // Most of the disk taken by something else, to be freed later.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 200 * 1024]).unwrap();
    let mut opener = Opener::start();
    let mut ig = start_ig(&opener, &file, &[]);
    // More than the ~56 KiB left (300 events, ~150 KB), less than the disk:
    // once the filler is gone, there is room for all of it and more.
    opener.open("full", 300);
    assert!(
        ig.wait_stderr("No space left on device", Duration::from_secs(20)),
        "no drop reported: {}",
        ig.stderr_text()
    );
    let text = ig.stderr_text();
    let warn = text.lines().find(|l| l.contains("WARN: dropped")).expect("a WARN line");
    assert!(warn.contains(&file.display().to_string()), "{warn}");
    let kept = json_lines(&file); // whole lines only, despite the full disk
    assert!(!kept.is_empty() && kept.len() < 300, "{} lines kept", kept.len());
    assert!(ig.child.try_wait().unwrap().is_none(), "a full disk does not stop the gadget");

    std::fs::remove_file(&filler).unwrap();
    let mut rounds = 0;
    let resumed = loop {
        opener.open(&format!("after{rounds}"), 1);
        let evs = json_lines(&file);
        if evs.iter().any(|e| opener.parse(e).is_some_and(|(t, _)| t.starts_with("after"))) {
            break evs;
        }
        assert!(rounds < 100, "writing never resumed: {}", ig.stderr_text());
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    // The drops are in the file too, once it takes lines again.
    let evs = wait_for(std::slice::from_ref(&file), Duration::from_secs(10), |evs| {
        evs.iter().any(|e| e["type"] == "warn" && e["lostEvents"].as_u64().is_some_and(|n| n > 0))
    });
    assert!(evs.len() >= resumed.len());
    drop(ig);
}

#[test]
fn output_file_takes_json_lines_only_and_names_a_bad_path() {
    require_root();
    let out = Command::new(binary("ig"))
        .args(["trace", "open", "-o", "yaml", "--output-file", "/tmp/igt-never.json", "-t", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("JSON lines") && err.contains("yaml"), "{err}");
    let out = Command::new(binary("ig"))
        .args(["trace", "open", "--output-file", "/nonexistent-dir/x.json", "-t", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("/nonexistent-dir/x.json"), "{err}");
    let out =
        Command::new(binary("ig")).args(["trace", "open", "--output-max-backups", "3"]).output().unwrap();
    assert!(!out.status.success(), "rotation flags need --output-file");
}

#[test]
fn the_daemon_writes_a_clients_output_file() {
    require_root();
    let dir = scratch("igt-daemon-file");
    let file = dir.join("exec.json");
    let d = Daemon::start(&[]);
    let marker = unique("igt-of-daemon");
    let filter = format!("args:~{marker}");
    let file_arg = file.display().to_string();
    let client = d.gadgetctl_ready(&["trace", "exec", "--host", "--output-file", &file_arg, "-F", &filter]);
    let evs = wait_for(std::slice::from_ref(&file), Duration::from_secs(20), |evs| {
        if evs.is_empty() {
            Command::new("/bin/echo").arg(&marker).output().unwrap();
        }
        !evs.is_empty()
    });
    assert_eq!(evs[0]["args"], serde_json::json!(["/bin/echo", marker]));
    assert!(
        client.collect_json(Duration::from_millis(300)).is_empty(),
        "the events went to the file, not the client"
    );
    drop(client);
    std::fs::remove_dir_all(&dir).unwrap();
}
