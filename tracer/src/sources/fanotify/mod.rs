//! The fallback container source for managers that run no hook and no NRI
//! (docker, `ctr run`, a containerd without NRI): a fanotify group marks the
//! OCI runtime binaries with FAN_OPEN_EXEC_PERM, so every exec of runc or
//! crun waits for this watcher's answer.
//!
//! `runc create` is let through at once and remembered (bundle, pid file).
//! `runc start` of a remembered container is held until its record is in
//! the collection, and so in every gadget's filter map: until `start`, the
//! container's init process waits inside the runtime, so its first exec is
//! traced. The record is built on a worker thread; this thread answers
//! ALLOW when the worker is done or when the bound runs out, whichever comes
//! first, and on every error path. Closing the group (drop) lets anything
//! still held through.

pub mod argv;
pub mod binaries;
pub mod marks;
pub mod runtime_call;

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyEvent, FanotifyResponse, InitFlags, MaskFlags, Response,
};
use shared::ContainerRecord;
use shared::hookproto::on_host;
use shared::identity::{HostNames, annotations, identify};
use shared::oci::{self, State};

use crate::collection::{Collection, Source};
use marks::Marks;
use runtime_call::RuntimeCall;

/// How long a `runc start` is held at most while its record is built.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(1);
/// How long a `create` is remembered without its `start`.
const CREATE_TTL: Duration = Duration::from_secs(15);
/// Test seam: makes the worker this many milliseconds slow, so a test can
/// show that a stalled watcher holds a container start only for the bound.
pub const TEST_DELAY_ENV: &str = "IG_TEST_FANOTIFY_DELAY_MS";

/// Fills in what only a runtime knows (a docker container's name). Called
/// on the worker thread while `start` is held: it must not call a runtime
/// API that could wait for that same start.
pub type Enricher = Arc<dyn Fn(&mut ContainerRecord) + Send + Sync>;

pub struct Options {
    pub root: PathBuf,
    /// `RUNTIME_PATH`: colon-separated binaries to mark instead of the known list.
    pub runtime_path: Option<String>,
    pub bound: Duration,
    pub enrich: Enricher,
}

#[derive(Debug, thiserror::Error)]
pub enum FanotifyError {
    #[error("fanotify_init")]
    Init(#[source] Errno),
    #[error("starting the fanotify watcher")]
    Setup(#[source] std::io::Error),
}

/// The running watcher; dropping it stops the thread and closes the group.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    wake: Arc<EventFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Marks the runtime binaries and starts the watcher. Ok(None) when there is
/// nothing to watch: no runtime binary, or a kernel without fanotify
/// permission events (said once, as a warning).
pub fn start(opts: Options, collection: Arc<Collection>) -> Result<Option<Watcher>, FanotifyError> {
    let fan = Fanotify::init(
        InitFlags::FAN_CLOEXEC
            | InitFlags::FAN_CLASS_CONTENT
            | InitFlags::FAN_UNLIMITED_QUEUE
            | InitFlags::FAN_UNLIMITED_MARKS
            | InitFlags::FAN_NONBLOCK
            | InitFlags::FAN_REPORT_TID,
        EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
    )
    .map_err(FanotifyError::Init)?;
    let mut marks = Marks::new(&opts.root, binaries::candidates(opts.runtime_path.as_deref()));
    match marks.refresh(&fan) {
        Ok(marked) if marked.is_empty() => tracing::debug!("no OCI runtime binary to watch yet"),
        Ok(marked) => tracing::debug!(binaries = ?marked, "watching runtime execs"),
        Err(e) => {
            tracing::warn!("{e}: containers of docker and `ctr run` are not seen as they start");
            return Ok(None);
        }
    }
    if marks.is_empty() {
        tracing::debug!("no OCI runtime binary or directory to watch");
        return Ok(None);
    }
    let wake = Arc::new(
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| FanotifyError::Setup(e.into()))?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let delay = std::env::var(TEST_DELAY_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let (job_tx, job_rx) = channel::<Job>();
    let (done_tx, done_rx) = channel::<u64>();
    let worker =
        Worker { root: opts.root.clone(), collection: collection.clone(), enrich: opts.enrich, delay };
    let wake_w = wake.clone();
    std::thread::Builder::new()
        .name("ig-fanotify-worker".into())
        .spawn(move || worker.run(job_rx, done_tx, &wake_w))
        .map_err(FanotifyError::Setup)?;
    let mut lp = Loop {
        fan,
        marks,
        root: opts.root,
        bound: opts.bound,
        collection,
        jobs: job_tx,
        done: done_rx,
        held: HashMap::new(),
        creates: HashMap::new(),
        next_seq: 0,
    };
    let (stop2, wake2) = (stop.clone(), wake.clone());
    let thread = std::thread::Builder::new()
        .name("ig-fanotify".into())
        .spawn(move || lp.run(&stop2, &wake2))
        .map_err(FanotifyError::Setup)?;
    Ok(Some(Watcher { stop, wake, thread: Some(thread) }))
}

/// A `create` seen, waiting for its `start`.
struct Create {
    bundle: PathBuf,
    pid_file: Option<PathBuf>,
    at: Instant,
}

/// A `start` held until its record is ready or its deadline.
struct Held {
    event: FanotifyEvent,
    id: String,
    deadline: Instant,
}

struct Job {
    seq: u64,
    id: String,
    create: Create,
    /// The thread that execs `runc start`, and its mount namespace.
    caller: i32,
    caller_mntns: u64,
}

struct Loop {
    fan: Fanotify,
    marks: Marks,
    root: PathBuf,
    bound: Duration,
    collection: Arc<Collection>,
    jobs: Sender<Job>,
    done: Receiver<u64>,
    held: HashMap<u64, Held>,
    creates: HashMap<String, Create>,
    next_seq: u64,
}

impl Loop {
    fn run(&mut self, stop: &AtomicBool, wake: &EventFd) {
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let next = self.held.values().map(|h| h.deadline).min();
            let wait = next.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now));
            let timeout = PollTimeout::from(wait.as_millis().min(1000) as u16);
            let mut fds = vec![
                PollFd::new(self.fan.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            fds.extend(self.marks.inotify_fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!("fanotify watcher: poll: {e}; stopping it");
                    break;
                }
            }
            drop(fds);
            if self.marks.drain() {
                self.remark();
            }
            let _ = wake.read();
            for seq in self.done.try_iter().collect::<Vec<_>>() {
                if let Some(h) = self.held.remove(&seq) {
                    self.allow(h.event);
                }
            }
            self.read_events();
            self.expire();
        }
        for (_, h) in self.held.drain() {
            let _ = self.fan.write_response(FanotifyResponse::new(
                h.event.fd().expect("perm event fd"),
                Response::FAN_ALLOW,
            ));
        }
    }

    /// A file appeared next to a runtime binary: mark what is new.
    fn remark(&mut self) {
        match self.marks.refresh(&self.fan) {
            Ok(marked) => {
                for path in marked {
                    tracing::info!(path = %path.display(), "watching runtime binary");
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn read_events(&mut self) {
        loop {
            let events = match self.fan.read_events() {
                Ok(ev) if ev.is_empty() => return,
                Ok(ev) => ev,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("reading fanotify events: {e}");
                    return;
                }
            };
            for ev in events {
                self.handle(ev);
            }
        }
    }

    fn handle(&mut self, ev: FanotifyEvent) {
        if ev.fd().is_none() {
            tracing::warn!("fanotify queue overflow: a container start may have been missed");
            return;
        }
        if !ev.check_version() || !ev.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM) {
            self.allow(ev);
            return;
        }
        let tid = ev.pid();
        let argv = match argv::of_blocked_exec(&self.root, tid) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("runtime exec by thread {tid}: {}", shared::error_chain(&e));
                self.allow(ev);
                return;
            }
        };
        let cwd =
            std::fs::read_link(self.root.join(format!("proc/{tid}/cwd"))).unwrap_or_else(|_| "/".into());
        match runtime_call::parse(&argv, &cwd) {
            RuntimeCall::Create { id, bundle, pid_file } => {
                tracing::debug!(id, bundle = %bundle.display(), "runtime create");
                self.creates.insert(id, Create { bundle, pid_file, at: Instant::now() });
                self.allow(ev);
            }
            RuntimeCall::Start { id } => {
                let create = self.creates.remove(&id);
                match create {
                    Some(create) if self.collection.by_id(&id).is_none() => {
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        let caller_mntns =
                            shared::procfs::ns_inode(&self.root, tid as u32, "mnt").unwrap_or(0);
                        let job = Job { seq, id: id.clone(), create, caller: tid, caller_mntns };
                        if self.jobs.send(job).is_err() {
                            self.allow(ev);
                            return;
                        }
                        let deadline = Instant::now() + self.bound;
                        self.held.insert(seq, Held { event: ev, id, deadline });
                    }
                    None if self.collection.by_id(&id).is_none() => {
                        // Created before ig watched, or its create could not be read.
                        tracing::warn!(
                            id,
                            "runtime start of a container whose create was not seen: its first events may be missed"
                        );
                        self.allow(ev);
                    }
                    _ => self.allow(ev),
                }
            }
            RuntimeCall::Other => self.allow(ev),
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let late: Vec<u64> = self.held.iter().filter(|(_, h)| h.deadline <= now).map(|(s, _)| *s).collect();
        for seq in late {
            if let Some(h) = self.held.remove(&seq) {
                tracing::warn!(
                    id = h.id,
                    "container record not ready within {:?}: let its start go; its first events may be missed",
                    self.bound
                );
                self.allow(h.event);
            }
        }
        self.creates.retain(|_, c| now.duration_since(c.at) < CREATE_TTL);
    }

    /// Lets the exec go and closes the event's fd (dropping the event).
    fn allow(&self, ev: FanotifyEvent) {
        if let Some(fd) = ev.fd()
            && let Err(e) = self.fan.write_response(FanotifyResponse::new(fd, Response::FAN_ALLOW))
        {
            tracing::warn!("answering a fanotify permission event: {e}");
        }
    }
}

struct Worker {
    root: PathBuf,
    collection: Arc<Collection>,
    enrich: Enricher,
    delay: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("no --pid-file in the create call")]
    NoPidFile,
    #[error("reading the pid file {0}")]
    PidFile(PathBuf, #[source] std::io::Error),
    #[error("the pid file {0} holds no pid")]
    BadPid(PathBuf),
    #[error(transparent)]
    Record(#[from] shared::record::RecordError),
}

impl Worker {
    fn run(self, jobs: Receiver<Job>, done: Sender<u64>, wake: &EventFd) {
        for job in jobs {
            if let Some(d) = self.delay {
                std::thread::sleep(d);
            }
            match self.build(&job) {
                Ok(Some(record)) => {
                    let name = record.runtime.container_name.clone();
                    if self.collection.add_if_absent(record, Source::Fanotify) {
                        tracing::debug!(id = job.id, name, "container from a runtime start");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(id = job.id, "no record for this container: {}", shared::error_chain(&e))
                }
            }
            if done.send(job.seq).is_err() {
                return;
            }
            let _ = wake.write(1);
        }
    }

    fn build(&self, job: &Job) -> Result<Option<ContainerRecord>, BuildError> {
        let pid_file = job.create.pid_file.as_ref().ok_or(BuildError::NoPidFile)?;
        let pid = read_pid_file(&on_host(&self.root, pid_file))?;
        let bundle = &job.create.bundle;
        let config = oci::read_config(&on_host(&self.root, bundle)).unwrap_or_else(|e| {
            tracing::debug!(id = job.id, "{}; using no config", shared::error_chain(&e));
            oci::Config::default()
        });
        let state = State {
            id: job.id.clone(),
            status: "created".into(),
            pid: Some(pid),
            bundle: bundle.to_string_lossy().into_owned(),
            annotations: Default::default(),
        };
        let annotations = annotations(&state, &config);
        let identity =
            identify(&state, &annotations, &HostNames { root: &self.root, start_pid: job.caller as u32 });
        if identity.sandbox {
            return Ok(None);
        }
        let mut record = shared::record::build(&self.root, &state, identity, annotations)?;
        if record.mntns == job.caller_mntns {
            tracing::debug!(id = job.id, "shares its manager's mount namespace: not a container to track");
            return Ok(None);
        }
        (self.enrich)(&mut record);
        Ok(Some(record))
    }
}

/// A runtime's pid file: a decimal pid, nothing else, a few bytes.
fn read_pid_file(path: &Path) -> Result<u32, BuildError> {
    let mut buf = [0u8; 32];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| BuildError::PidFile(path.into(), e))?;
        f.read(&mut buf).map_err(|e| BuildError::PidFile(path.into(), e))?
    };
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&p: &u32| p > 0)
        .ok_or_else(|| BuildError::BadPid(path.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files() {
        let dir = std::env::temp_dir().join(format!("ig-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p");
        std::fs::write(&f, "1234").unwrap();
        assert_eq!(read_pid_file(&f).unwrap(), 1234);
        std::fs::write(&f, "1234\n").unwrap();
        assert_eq!(read_pid_file(&f).unwrap(), 1234);
        for bad in ["", "0", "x", "-1"] {
            std::fs::write(&f, bad).unwrap();
            assert!(matches!(read_pid_file(&f), Err(BuildError::BadPid(_))), "{bad:?}");
        }
        assert!(matches!(read_pid_file(&dir.join("none")), Err(BuildError::PidFile(..))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
