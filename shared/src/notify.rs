//! Handing a message to every running tracer, each on its own socket, all
//! at once and all within one deadline: a hung tracer costs the container
//! start at most the deadline, never more.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use crate::hookproto::{Ack, MAX_LINE, Message, tracers_dir};

/// What happened with one tracer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// The tracer answered with an error.
    Refused(String),
    /// Nobody listens there: a tracer that died; its socket was removed.
    Stale,
    Failed(String),
    TimedOut,
}

/// Sends `msg` to every socket in the tracers directory; returns each outcome
/// by socket path once all answered or the deadline passed.
pub fn notify_all(root: &Path, msg: &Message, deadline: Instant) -> Vec<(PathBuf, Outcome)> {
    let sockets: Vec<PathBuf> = match std::fs::read_dir(tracers_dir(root)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sock"))
            .collect(),
        Err(_) => return Vec::new(),
    };
    let mut line = match serde_json::to_vec(msg) {
        Ok(l) => l,
        // Cannot happen for these types; a hook must still not panic over it.
        Err(e) => {
            return sockets.into_iter().map(|p| (p, Outcome::Failed(format!("encoding: {e}")))).collect();
        }
    };
    line.push(b'\n');
    let (tx, rx) = channel();
    for path in &sockets {
        let (tx2, path2, line2) = (tx.clone(), path.clone(), line.clone());
        // A thread each: a tracer that never answers must not hold up the
        // others. Where the OS refuses a thread (a pids cgroup at its limit,
        // RLIMIT_NPROC), this tracer is served here and now: every step of
        // send_one is bounded by the same deadline, so the bound still holds.
        let spawned = std::thread::Builder::new().spawn(move || {
            let outcome = send_one(&path2, &line2, deadline);
            let _ = tx2.send((path2, outcome));
        });
        if spawned.is_err() {
            let _ = tx.send((path.clone(), send_one(path, &line, deadline)));
        }
    }
    drop(tx);
    let mut outcomes = Vec::new();
    while outcomes.len() < sockets.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(o) => outcomes.push(o),
            Err(_) => break,
        }
    }
    for path in sockets {
        if !outcomes.iter().any(|(p, _)| *p == path) {
            outcomes.push((path, Outcome::TimedOut));
        }
    }
    outcomes
}

fn send_one(path: &Path, line: &[u8], deadline: Instant) -> Outcome {
    let stream = match connect_nonblocking(path) {
        Ok(s) => s,
        // A listener whose backlog is full: it is not accepting, so waiting
        // for it could outlast the deadline.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Outcome::TimedOut,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            // The listener is gone: a tracer that was killed. Clear its socket.
            let _ = std::fs::remove_file(path);
            return Outcome::Stale;
        }
        Err(e) => return Outcome::Failed(format!("connecting: {e}")),
    };
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let _ = stream.set_write_timeout(Some(left));
    let _ = stream.set_read_timeout(Some(left));
    if let Err(e) = (&stream).write_all(line) {
        return timeout_or(e, "sending");
    }
    let mut answer = String::new();
    let mut reader = BufReader::new(&stream).take(MAX_LINE as u64);
    match reader.read_line(&mut answer) {
        Ok(0) => Outcome::Failed("the tracer closed the connection without answering".into()),
        Ok(_) => match serde_json::from_str::<Ack>(&answer) {
            Ok(a) if a.ok => Outcome::Acked,
            Ok(a) => Outcome::Refused(a.error),
            Err(e) => Outcome::Failed(format!("unreadable answer: {e}")),
        },
        Err(e) => timeout_or(e, "reading the answer"),
    }
}

/// connect(2) on a unix stream socket that returns at once: a blocking
/// connect waits, without any timeout, while the listener's backlog is full.
fn connect_nonblocking(path: &Path) -> std::io::Result<UnixStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "socket path too long"));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of at least len bytes.
    let rc = unsafe { libc::connect(raw, (&raw const addr).cast(), len) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn timeout_or(e: std::io::Error, what: &str) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Outcome::TimedOut,
        _ => Outcome::Failed(format!("{what}: {e}")),
    }
}
