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
    let mut line = serde_json::to_vec(msg).expect("messages serialize");
    line.push(b'\n');
    let (tx, rx) = channel();
    for path in &sockets {
        let (tx, path, line) = (tx.clone(), path.clone(), line.clone());
        // A thread each: a tracer that never answers must not hold up the others.
        std::thread::spawn(move || {
            let outcome = send_one(&path, &line, deadline);
            let _ = tx.send((path, outcome));
        });
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
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
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

fn timeout_or(e: std::io::Error, what: &str) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Outcome::TimedOut,
        _ => Outcome::Failed(format!("{what}: {e}")),
    }
}
