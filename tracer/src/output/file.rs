//! `--output-file PATH`: events as JSON lines into a file a log shipper can
//! pick up, rotated by size (`PATH.1` the newest backup), reopened on SIGHUP
//! (after logrotate has moved it away).
//!
//! Writing never blocks the gadget: complete lines are handed to a writer
//! thread of their own, and what cannot be written (a full or failing disk,
//! a writer that fell too far behind) is counted as dropped lines, for the
//! runner to report. Writing resumes by itself when the disk takes it again;
//! a write that failed half-way is cut back so the file holds whole lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use clap::Args;

/// Lines waiting for the writer beyond this are dropped, not queued.
const MAX_QUEUED_BYTES: usize = 32 << 20;
/// A lone line is handed on at the next flush; a run without flushes
/// hands on its lines once this many bytes are pending.
const MAX_PENDING_BYTES: usize = 1 << 20;
/// How often the writer looks for a SIGHUP or a file to reopen when idle.
const IDLE_CHECK: Duration = Duration::from_millis(200);
/// How long a stopping run waits for the writer to write what is queued.
const FINISH_BOUND: Duration = Duration::from_secs(5);

/// Bumped by every SIGHUP: each writer reopens its file when it sees a new value.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);
static SIGHUP_LISTENER: Once = Once::new();

/// The flags of `--output-file`, on every gadget.
#[derive(Clone, Debug, Args)]
pub struct FileFlags {
    /// Write events to this file as JSON lines instead of to stdout.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,

    /// Rotate the output file when it would grow past this many MB (0: never).
    #[arg(long, value_name = "MB", default_value_t = 100.0, requires = "output_file")]
    pub output_max_size_mb: f64,

    /// Rotated files to keep: PATH.1 (the newest) to PATH.N (0: none).
    #[arg(long, value_name = "N", default_value_t = 5, requires = "output_file")]
    pub output_max_backups: u32,
}

/// Where and how an output file is written.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSpec {
    pub path: PathBuf,
    /// 0: never rotate.
    pub max_bytes: u64,
    pub max_backups: u32,
}

impl FileFlags {
    /// None without `--output-file`.
    pub fn spec(&self) -> Result<Option<FileSpec>, FileError> {
        let Some(path) = self.output_file.clone() else { return Ok(None) };
        let mb = self.output_max_size_mb;
        if !mb.is_finite() || mb < 0.0 {
            return Err(FileError::BadSize(mb));
        }
        let max_bytes = (mb * 1_000_000.0) as u64;
        Ok(Some(FileSpec { path, max_bytes, max_backups: self.output_max_backups }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("opening the output file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--output-file writes JSON lines: use -o json (or no -o), not {0}")]
    NotJsonLines(String),
    #[error("--output-max-size-mb must be a number of MB, not {0}")]
    BadSize(f64),
    #[error("starting the output file writer")]
    Thread(#[source] io::Error),
}

/// What the writer has done, shared with the run that reports it.
#[derive(Debug, Default)]
pub struct FileStats {
    pub written_lines: AtomicU64,
    pub dropped_lines: AtomicU64,
    /// Why the last lines were dropped.
    last_error: Mutex<Option<String>>,
    queued_bytes: AtomicUsize,
}

impl FileStats {
    fn dropped(&self, lines: u64, why: String) {
        self.dropped_lines.fetch_add(lines, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The run's side of an output file: the stats and the writer to stop.
pub struct OutputFile {
    pub path: PathBuf,
    pub stats: Arc<FileStats>,
    reported_dropped: u64,
    done: Option<Receiver<()>>,
}

impl OutputFile {
    /// Opens (creating, appending to) `spec.path` now, so a bad path is an
    /// error before the gadget starts, and starts its writer. Returns the
    /// `Write` the runner prints into, which hands complete lines on at
    /// each flush.
    pub fn open(spec: FileSpec) -> Result<(LineSender, Self), FileError> {
        listen_for_sighup();
        let file =
            open_append(&spec.path).map_err(|source| FileError::Open { path: spec.path.clone(), source })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let stats = Arc::new(FileStats::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut writer = Writer {
            spec: spec.clone(),
            file: Some(file),
            size,
            generation: REOPEN_GENERATION.load(Ordering::Relaxed),
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("ig-output-file".into())
            .spawn(move || {
                writer.run(rx);
                let _ = done_tx.send(());
            })
            .map_err(FileError::Thread)?;
        let sender = LineSender { pending: Vec::new(), tx: Some(tx), stats: stats.clone() };
        Ok((sender, Self { path: spec.path, stats, reported_dropped: 0, done: Some(done_rx) }))
    }

    /// Lines dropped since the last call, and why, if any.
    pub fn new_drops(&mut self) -> Option<(u64, String)> {
        let total = self.stats.dropped_lines.load(Ordering::Relaxed);
        if total <= self.reported_dropped {
            return None;
        }
        let n = total - self.reported_dropped;
        self.reported_dropped = total;
        Some((n, self.stats.last_error().unwrap_or_default()))
    }

    /// The warning for `n` dropped lines.
    pub fn drop_message(&self, n: u64, why: &str) -> String {
        let total = self.stats.dropped_lines.load(Ordering::Relaxed);
        format!("dropped {n} lines for {}: {why} (total dropped: {total})", self.path.display())
    }

    /// Waits (within a bound) for the writer to write what is queued. The
    /// `LineSender` must have been dropped first, or the writer never ends.
    pub fn finish(&mut self) {
        if let Some(done) = self.done.take()
            && done.recv_timeout(FINISH_BOUND).is_err()
        {
            tracing::warn!(path = %self.path.display(), "the output file writer did not finish in time");
        }
    }
}

/// Takes the runner's output and hands complete lines to the writer at each
/// flush; never blocks and never fails (what it cannot queue is dropped and
/// counted).
pub struct LineSender {
    pending: Vec<u8>,
    tx: Option<Sender<Vec<u8>>>,
    stats: Arc<FileStats>,
}

impl LineSender {
    fn hand_on(&mut self) {
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else { return };
        let rest = self.pending.split_off(end + 1);
        let batch = std::mem::replace(&mut self.pending, rest);
        let queued = self.stats.queued_bytes.load(Ordering::Relaxed);
        if queued + batch.len() > MAX_QUEUED_BYTES {
            self.stats.dropped(lines(&batch), format!("the writer is {queued} bytes behind"));
            return;
        }
        self.stats.queued_bytes.fetch_add(batch.len(), Ordering::Relaxed);
        let len = batch.len();
        let sent = self.tx.as_ref().map(|tx| tx.send(batch));
        if let Some(Err(std::sync::mpsc::SendError(batch))) = sent {
            self.stats.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.dropped(lines(&batch), "the writer has stopped".into());
        }
    }
}

impl Write for LineSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= MAX_PENDING_BYTES {
            self.hand_on();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_on();
        Ok(())
    }
}

impl Drop for LineSender {
    fn drop(&mut self) {
        if !self.pending.is_empty() && self.pending.last() != Some(&b'\n') {
            self.pending.push(b'\n');
        }
        self.hand_on();
        self.tx = None; // ends the writer once it has written the rest
    }
}

fn lines(batch: &[u8]) -> u64 {
    batch.iter().filter(|&&b| b == b'\n').count() as u64
}

fn open_append(path: &Path) -> io::Result<File> {
    // Events name processes, files and peers: not for every local user.
    let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The writer thread's state.
struct Writer {
    spec: FileSpec,
    /// None after a failure that left no usable file: reopened at the next batch.
    file: Option<File>,
    size: u64,
    generation: u64,
    stats: Arc<FileStats>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Vec<u8>>) {
        loop {
            match rx.recv_timeout(IDLE_CHECK) {
                Ok(batch) => {
                    self.stats.queued_bytes.fetch_sub(batch.len(), Ordering::Relaxed);
                    self.reopen_if_asked();
                    self.write(&batch);
                }
                Err(RecvTimeoutError::Timeout) => self.reopen_if_asked(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(f) = &self.file {
            let _ = f.sync_data();
        }
    }

    fn reopen_if_asked(&mut self) {
        let now = REOPEN_GENERATION.load(Ordering::Relaxed);
        if now != self.generation {
            self.generation = now;
            tracing::info!(path = %self.spec.path.display(), "reopening the output file (SIGHUP)");
            self.file = None;
            self.reopen();
        }
    }

    fn reopen(&mut self) {
        match open_append(&self.spec.path) {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
            }
            Err(e) => {
                tracing::debug!(path = %self.spec.path.display(), "reopening the output file: {e}");
                *self.stats.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("cannot open it: {e}"));
            }
        }
    }

    /// Writes whole lines, rotating between lines as the size limit says.
    fn write(&mut self, mut batch: &[u8]) {
        while !batch.is_empty() {
            let room = self.spec.max_bytes.saturating_sub(self.size) as usize;
            let chunk = if self.spec.max_bytes == 0 || batch.len() <= room {
                batch.len()
            } else {
                // The lines that fit; at least one in a fresh file.
                match batch[..room].iter().rposition(|&b| b == b'\n') {
                    Some(end) => end + 1,
                    None if self.size == 0 => {
                        batch.iter().position(|&b| b == b'\n').map_or(batch.len(), |e| e + 1)
                    }
                    None => 0,
                }
            };
            if chunk == 0 {
                if let Err(e) = self.rotate() {
                    // Keep writing to the file we have: an oversized file loses nothing.
                    tracing::warn!(path = %self.spec.path.display(), "rotating the output file: {e}");
                    self.write_chunk(batch);
                    return;
                }
                continue;
            }
            let (now, rest) = batch.split_at(chunk);
            self.write_chunk(now);
            batch = rest;
        }
    }

    fn write_chunk(&mut self, chunk: &[u8]) {
        if self.file.is_none() {
            self.reopen();
        }
        let Some(file) = self.file.as_mut() else {
            let why = self.stats.last_error().unwrap_or_else(|| "cannot open it".into());
            self.stats.dropped(lines(chunk), why);
            return;
        };
        // Its length now, not as last written: logrotate's copytruncate
        // or a user may have cut it since.
        let before = file.metadata().map_or(self.size, |m| m.len());
        let mut done = 0;
        let failure = loop {
            if done == chunk.len() {
                break None;
            }
            match file.write(&chunk[done..]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        let whole = match failure {
            None => done,
            // Keep the lines that went in whole, cut the one half-written.
            Some(_) => chunk[..done].iter().rposition(|&b| b == b'\n').map_or(0, |e| e + 1),
        };
        self.size = before + whole as u64;
        self.stats.written_lines.fetch_add(lines(&chunk[..whole]), Ordering::Relaxed);
        if let Some(e) = failure {
            if whole < done && file.set_len(self.size).is_err() {
                self.file = None;
            }
            self.stats.dropped(lines(&chunk[whole..]), format!("writing failed: {e}"));
        }
    }

    /// PATH.N-1 → PATH.N, ..., PATH → PATH.1, and a new PATH; with no
    /// backups kept, PATH starts again empty.
    fn rotate(&mut self) -> io::Result<()> {
        let path = &self.spec.path;
        let backup = |i: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.spec.max_backups == 0 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(backup(self.spec.max_backups));
        for i in (1..self.spec.max_backups).rev() {
            match std::fs::rename(backup(i), backup(i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(path, backup(1))?;
        self.file = None;
        self.reopen();
        Ok(())
    }
}

/// On the first output file: SIGHUP asks every writer to reopen its file
/// (and no longer ends the process).
fn listen_for_sighup() {
    SIGHUP_LISTENER.call_once(|| {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no runtime: SIGHUP does not reopen the output file");
            return;
        };
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                handle.spawn(async move {
                    while hup.recv().await.is_some() {
                        REOPEN_GENERATION.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Err(e) => tracing::warn!("cannot listen for SIGHUP: {e}"),
        }
    });
}

/// The output a run prints into: stdout (or the client) as given, or the
/// output file when `--output-file` is set (-o must then be JSON lines),
/// or with `tee` both.
pub fn redirect(
    flags: &FileFlags,
    output: &crate::output::OutputMode,
    out: Box<dyn Write + Send>,
    tee: bool,
    err: &mut dyn Write,
) -> Result<(Box<dyn Write + Send>, Option<OutputFile>), FileError> {
    use crate::output::OutputMode;
    let Some(spec) = flags.spec()? else { return Ok((out, None)) };
    match output {
        // No -o (run_options makes that json already): JSON lines too.
        OutputMode::Json | OutputMode::Columns(None) => {}
        OutputMode::Columns(Some(_)) => return Err(FileError::NotJsonLines("columns".into())),
        OutputMode::JsonPretty => return Err(FileError::NotJsonLines("jsonpretty".into())),
        OutputMode::Yaml => return Err(FileError::NotJsonLines("yaml".into())),
        OutputMode::Folded => return Err(FileError::NotJsonLines("folded".into())),
    }
    let (sender, file) = OutputFile::open(spec)?;
    let _ = writeln!(err, "ig: writing events to {}", file.path.display());
    if tee {
        return Ok((Box::new(Tee { file: sender, also: out }), Some(file)));
    }
    Ok((Box::new(sender), Some(file)))
}

/// The file's writer, and another that gets the same bytes (and whose
/// errors do not stop the file).
struct Tee {
    file: LineSender,
    also: Box<dyn Write + Send>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        let _ = self.also.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.also.flush();
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ig-output-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_lines(sender: &mut LineSender, from: usize, to: usize) {
        for i in from..to {
            writeln!(sender, "{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(80)).unwrap();
            if i % 10 == 9 {
                sender.flush().unwrap();
            }
        }
        sender.flush().unwrap();
    }

    fn numbers(path: &Path) -> Vec<u64> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("whole JSON lines")["n"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn rotates_by_size_keeping_whole_lines_in_order() {
        let dir = temp_dir("rotate");
        let path = dir.join("events.json");
        let spec = FileSpec { path: path.clone(), max_bytes: 4_000, max_backups: 2 };
        let (mut sender, mut file) = OutputFile::open(spec).unwrap();
        write_lines(&mut sender, 0, 200);
        drop(sender);
        file.finish();
        let (b2, b1, cur) =
            (numbers(&dir.join("events.json.2")), numbers(&dir.join("events.json.1")), numbers(&path));
        assert!(!dir.join("events.json.3").exists(), "only two backups");
        let kept: Vec<u64> = b2.iter().chain(&b1).chain(&cur).copied().collect();
        assert_eq!(kept.last(), Some(&199), "the newest line is in the current file");
        let first = kept[0];
        assert!(first > 0, "the oldest lines were rotated away");
        assert_eq!(kept, (first..200).collect::<Vec<_>>(), "contiguous, in order");
        for f in [dir.join("events.json.2"), dir.join("events.json.1"), path.clone()] {
            // Batches are split between lines to keep to the limit.
            assert!(std::fs::metadata(&f).unwrap().len() <= 4_000, "{}", f.display());
        }
        assert_eq!(file.stats.written_lines.load(Ordering::Relaxed), 200);
        assert_eq!(file.new_drops(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_backups_the_file_starts_again() {
        let dir = temp_dir("nobackup");
        let path = dir.join("e.json");
        let (mut sender, mut file) =
            OutputFile::open(FileSpec { path: path.clone(), max_bytes: 2_000, max_backups: 0 }).unwrap();
        write_lines(&mut sender, 0, 100);
        drop(sender);
        file.finish();
        let cur = numbers(&path);
        assert_eq!(cur.last(), Some(&99));
        assert!(cur.len() < 100 && !dir.join("e.json.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_partial_line_is_kept_until_its_end_arrives() {
        let dir = temp_dir("partial");
        let path = dir.join("e.json");
        let (mut sender, mut file) =
            OutputFile::open(FileSpec { path: path.clone(), max_bytes: 0, max_backups: 0 }).unwrap();
        sender.write_all(b"{\"n\":1}\n{\"n\"").unwrap();
        sender.flush().unwrap();
        sender.write_all(b":2}\n").unwrap();
        sender.flush().unwrap();
        drop(sender);
        file.finish();
        assert_eq!(numbers(&path), [1, 2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_path_is_an_error_naming_it() {
        let err = OutputFile::open(FileSpec { path: "/proc/ig-nope/x".into(), max_bytes: 0, max_backups: 0 })
            .err()
            .expect("no such directory");
        assert!(shared::error_chain(&err).contains("/proc/ig-nope/x"), "{}", shared::error_chain(&err));
        let dir = temp_dir("isdir");
        let err = OutputFile::open(FileSpec { path: dir.clone(), max_bytes: 0, max_backups: 0 }).err();
        assert!(err.is_some(), "a directory is not an output file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_writer_too_far_behind_drops_and_counts() {
        let stats = Arc::new(FileStats::default());
        stats.queued_bytes.store(MAX_QUEUED_BYTES, Ordering::Relaxed);
        let (tx, _rx) = std::sync::mpsc::channel();
        let mut sender = LineSender { pending: Vec::new(), tx: Some(tx), stats: stats.clone() };
        sender.write_all(b"{}\n{}\n{}\n").unwrap();
        sender.flush().unwrap();
        assert_eq!(stats.dropped_lines.load(Ordering::Relaxed), 3);
        assert!(stats.last_error().unwrap().contains("behind"));
    }
}
