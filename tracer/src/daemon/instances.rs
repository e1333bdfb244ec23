//! Headless gadget instances: gadget runs the daemon keeps going with no
//! client attached (`gadgetctl run --detach`), writing JSON lines to their
//! `--output-file`, counting into the daemon's metrics, and streaming to any
//! `gadgetctl attach`. Each is persisted as `<state-dir>/instances/NAME.json`
//! and started again when the daemon starts; `gadgetctl delete` stops it
//! and removes the file. One that ends by itself (`--timeout`, a failure)
//! stays listed with its status but is not resumed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde::{Deserialize, Serialize};
use shared::daemonproto::Kind;
use tokio::sync::{broadcast, oneshot, watch};

use super::RemoteCli;
use crate::cli::GadgetCommand;
use crate::collection::Collection;
use crate::io::RunIo;
use crate::metrics::Metrics;
use crate::output::OutputMode;

/// Version of the files in the instances directory.
const SPEC_VERSION: u32 = 1;
/// Output chunks kept for an attached client that reads slowly; beyond
/// them it is told how many it missed.
const ATTACH_BACKLOG: usize = 1024;
/// A line longer than this is passed on in pieces.
const MAX_PARTIAL_LINE: usize = 1 << 20;
/// How long a new instance has to load and attach before `run --detach`
/// answers (the gadget's own errors come back to the client).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping instance has to detach and flush its file.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What is persisted of an instance: enough to start it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub version: u32,
    pub name: String,
    /// The command line as given, e.g. `["trace", "exec", "--output-file", "/var/log/exec.json"]`.
    pub args: Vec<String>,
    /// Seconds since the epoch.
    pub created_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    /// Ended: stopped, deleted, or its `--timeout` passed.
    Stopped,
    Failed(String),
}

impl State {
    fn ended(&self) -> bool {
        matches!(self, State::Stopped | State::Failed(_))
    }

    fn label(&self) -> String {
        match self {
            State::Starting => "starting".into(),
            State::Running => "running".into(),
            State::Stopped => "stopped".into(),
            State::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// A piece of an instance's output: whole lines, stdout or stderr.
pub type Chunk = (Kind, Arc<[u8]>);

pub struct Instance {
    pub spec: Spec,
    output: broadcast::Sender<Chunk>,
    state: watch::Sender<State>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Instance {
    /// Output from now on, and the state to know when it ends.
    pub fn subscribe(&self) -> (broadcast::Receiver<Chunk>, watch::Receiver<State>) {
        (self.output.subscribe(), self.state.subscribe())
    }

    fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    async fn ended(&self) {
        let mut state = self.state.subscribe();
        let _ = tokio::time::timeout(STOP_TIMEOUT, state.wait_for(State::ended)).await;
    }
}

/// One row of `gadgetctl list -o json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub name: String,
    pub gadget: String,
    pub args: Vec<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "{0:?} is not a valid name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("an instance named {0:?} already exists")]
    Exists(String),
    #[error("no instance named {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Command(String),
    #[error(
        "only trace, top and traceloop gadgets run headless (a snapshot or list ends at once: run it attached)"
    )]
    NotHeadless,
    #[error("a headless instance writes JSON lines (its file, `gadgetctl attach`): drop -o {0} / --fields")]
    Output(String),
    #[error("persisting the instance in {path}")]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Start(String),
}

/// Everything a new run needs from the daemon.
#[derive(Clone)]
pub struct Runner {
    pub root: PathBuf,
    pub collection: Arc<Collection>,
    pub metrics: Option<Arc<Metrics>>,
}

pub struct Instances {
    dir: PathBuf,
    runner: Runner,
    all: Mutex<BTreeMap<String, Arc<Instance>>>,
    /// Set while the daemon stops: instances that end then stay persisted.
    shutting_down: AtomicBool,
}

impl Instances {
    /// The instances of `state_dir`, every persisted one started again.
    pub async fn resume(state_dir: &Path, runner: Runner) -> io::Result<Arc<Self>> {
        let dir = state_dir.join("instances");
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::set_permissions(state_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let this =
            Arc::new(Self { dir, runner, all: Mutex::default(), shutting_down: AtomicBool::new(false) });
        let mut resumed = Vec::new();
        for spec in this.read_specs() {
            let name = spec.name.clone();
            match prepare(&spec.args) {
                Ok(command) => {
                    let instance = this.start(spec, command);
                    this.lock().insert(name.clone(), instance.clone());
                    resumed.push(instance);
                }
                Err(e) => {
                    // Kept on disk: a daemon that can run it again (an
                    // upgrade undone) still finds it.
                    tracing::warn!(instance = name, "not resumed: {e}");
                    let instance = this.start_failed(spec, e.to_string());
                    this.lock().insert(name, instance);
                }
            }
        }
        // Ready means tracing: each resumed instance is attached (or has
        // failed) before the daemon says it is ready.
        for instance in resumed {
            let mut state = instance.state.subscribe();
            let _ = tokio::time::timeout(START_TIMEOUT, state.wait_for(|s| *s != State::Starting)).await;
            let status = instance.state.borrow().label();
            tracing::info!(instance = instance.spec.name, "resumed: {status}");
        }
        Ok(this)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Instance>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spec_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn read_specs(&self) -> Vec<Spec> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut specs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let spec = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Spec>(&b).map_err(|e| e.to_string()));
            match spec {
                Ok(s)
                    if s.version == SPEC_VERSION
                        && valid_name(&s.name)
                        && self.spec_path(&s.name) == path =>
                {
                    specs.push(s)
                }
                Ok(s) => tracing::warn!(
                    file = %path.display(),
                    "skipping an instance file: version {} or name {:?} does not fit",
                    s.version,
                    s.name
                ),
                Err(e) => tracing::warn!(file = %path.display(), "skipping an unreadable instance file: {e}"),
            }
        }
        specs.sort_by_key(|s| (s.created_at, s.name.clone()));
        specs
    }

    /// Starts a new instance; answers once it traces (or failed to start:
    /// then nothing is kept).
    pub async fn create(
        self: &Arc<Self>,
        name: Option<String>,
        args: Vec<String>,
    ) -> Result<String, InstanceError> {
        let command = prepare(&args)?;
        let name = match name {
            Some(n) if !valid_name(&n) => return Err(InstanceError::BadName(n)),
            Some(n) => n,
            None => generated_name(&args),
        };
        let spec = Spec { version: SPEC_VERSION, name: name.clone(), args, created_at: unix_now() };
        let instance = {
            let mut all = self.lock();
            if all.contains_key(&name) {
                return Err(InstanceError::Exists(name));
            }
            self.persist(&spec)?;
            let instance = self.start(spec, command);
            all.insert(name.clone(), instance.clone());
            instance
        };
        let mut state = instance.state.subscribe();
        let outcome =
            match tokio::time::timeout(START_TIMEOUT, state.wait_for(|s| *s != State::Starting)).await {
                Ok(Ok(s)) => s.clone(),
                _ => State::Failed(format!("not tracing after {START_TIMEOUT:?}")),
            };
        match outcome {
            State::Running => {
                tracing::info!(instance = name, args = ?instance.spec.args, "instance started");
                Ok(name)
            }
            State::Failed(e) => {
                self.forget(&name).await;
                Err(InstanceError::Start(e))
            }
            other => {
                self.forget(&name).await;
                Err(InstanceError::Start(format!("ended before tracing ({})", other.label())))
            }
        }
    }

    fn persist(&self, spec: &Spec) -> Result<(), InstanceError> {
        let path = self.spec_path(&spec.name);
        let tmp = self.dir.join(format!(".{}.tmp", spec.name));
        let write = || -> io::Result<()> {
            let mut f =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode_0600().open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(spec).map_err(io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            InstanceError::Persist { path, source }
        })
    }

    /// Runs the command on a thread of its own, its output going to
    /// whoever attaches (stderr also to the daemon's log).
    fn start(self: &Arc<Self>, spec: Spec, command: GadgetCommand) -> Arc<Instance> {
        let (output, _) = broadcast::channel(ATTACH_BACKLOG);
        let (state, _) = watch::channel(State::Starting);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let instance = Arc::new(Instance { spec, output, state, stop: Mutex::new(Some(stop_tx)) });
        let running = instance.clone();
        let io = RunIo {
            out: Box::new(Lines::new(Kind::Stdout, instance.output.clone(), None)),
            err: Box::new(Lines::new(
                Kind::Stderr,
                instance.output.clone(),
                Some(instance.spec.name.clone()),
            )),
            terminal_width: None,
            stop: Box::pin(async move {
                let _ = stop_rx.await;
            }),
            started: Some(Box::new(move || {
                running.state.send_replace(State::Running);
            })),
            tee: true,
            daemon_counter: false,
        };
        let this = self.clone();
        let ending = instance.clone();
        let spawned = super::spawn_command(
            command,
            &self.runner,
            io,
            "ig-instance",
            Box::new(move |result| {
                let state = match result {
                    Ok(()) => State::Stopped,
                    Err(e) => State::Failed(e),
                };
                tracing::info!(instance = ending.spec.name, "instance ended: {}", state.label());
                this.ended_by_itself(&ending);
                ending.state.send_replace(state);
            }),
        );
        if let Err(e) = spawned {
            instance.state.send_replace(State::Failed(format!("daemon: {e}")));
        }
        instance
    }

    fn start_failed(&self, spec: Spec, error: String) -> Arc<Instance> {
        let (output, _) = broadcast::channel(1);
        let (state, _) = watch::channel(State::Failed(error));
        Arc::new(Instance { spec, output, state, stop: Mutex::new(None) })
    }

    /// An instance that ended while still listed and not while the daemon
    /// stops (its timeout, a failure) is not resumed.
    fn ended_by_itself(&self, instance: &Instance) {
        let listed = self.lock().get(&instance.spec.name).is_some_and(|i| std::ptr::eq(&**i, instance));
        if listed && !self.shutting_down.load(Ordering::SeqCst) {
            let _ = std::fs::remove_file(self.spec_path(&instance.spec.name));
        }
    }

    /// Stops and forgets an instance.
    pub async fn delete(&self, name: &str) -> Result<(), InstanceError> {
        if !self.lock().contains_key(name) {
            return Err(InstanceError::NotFound(name.to_string()));
        }
        self.forget(name).await;
        tracing::info!(instance = name, "instance deleted");
        Ok(())
    }

    async fn forget(&self, name: &str) {
        let removed = self.lock().remove(name);
        if let Some(instance) = removed {
            let _ = std::fs::remove_file(self.spec_path(name));
            instance.stop();
            instance.ended().await;
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Instance>> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Listed> {
        self.lock()
            .values()
            .map(|i| {
                let state = i.state.borrow().clone();
                let (status, error) = match state {
                    State::Starting => ("starting", None),
                    State::Running => ("running", None),
                    State::Stopped => ("stopped", None),
                    State::Failed(e) => ("failed", Some(e)),
                };
                Listed {
                    name: i.spec.name.clone(),
                    gadget: gadget_words(&i.spec.args).join(" "),
                    args: i.spec.args.iter().skip(2).cloned().collect(),
                    status,
                    error,
                    created_at: i.spec.created_at,
                }
            })
            .collect()
    }

    /// Stops every instance and waits for them (files flushed, programs
    /// detached); their files stay, so the next daemon resumes them.
    pub async fn stop_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let all: Vec<_> = self.lock().values().cloned().collect();
        for i in &all {
            i.stop();
        }
        for i in &all {
            i.ended().await;
        }
    }
}

/// Parses an instance's command line as the daemon runs it: a trace, top
/// or traceloop gadget, JSON lines.
pub fn prepare(args: &[String]) -> Result<GadgetCommand, InstanceError> {
    let cli = RemoteCli::try_parse_from(std::iter::once("ig".to_string()).chain(args.iter().cloned()))
        .map_err(|e| InstanceError::Command(e.render().to_string().trim_end().to_string()))?;
    let mut command = cli.command;
    // traceloop too: a flight recorder left running, its dumps (a
    // container that failed, and all of them when stopped) in its file.
    if !matches!(
        command,
        GadgetCommand::Trace { .. } | GadgetCommand::Top { .. } | GadgetCommand::Traceloop(_)
    ) {
        return Err(InstanceError::NotHeadless);
    }
    let flags = command.common_mut().ok_or(InstanceError::NotHeadless)?;
    if flags.fields.is_some() {
        return Err(InstanceError::Output("columns".into()));
    }
    match &flags.output {
        OutputMode::Json => {}
        OutputMode::Columns(None) => flags.output = OutputMode::Json,
        OutputMode::Columns(Some(_)) => return Err(InstanceError::Output("columns".into())),
        OutputMode::JsonPretty => return Err(InstanceError::Output("jsonpretty".into())),
        OutputMode::Yaml => return Err(InstanceError::Output("yaml".into())),
        OutputMode::Folded => return Err(InstanceError::Output("folded".into())),
    }
    Ok(command)
}

/// Names are file names in the instances directory.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() < 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The gadget's words of a command line (`trace exec`, `traceloop`), not
/// its flags.
fn gadget_words(args: &[String]) -> Vec<&str> {
    args.iter().take(2).take_while(|a| !a.starts_with('-')).map(String::as_str).collect()
}

/// `trace-exec-1a2b3c` for `trace exec ...`.
fn generated_name(args: &[String]) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    let words = gadget_words(args);
    format!("{}-{:06x}", words.join("-"), h.finish() & 0xff_ffff)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// An instance's stdout or stderr: complete lines go to the attached
/// clients as one chunk per write (nothing is copied when none is
/// attached); stderr lines also go to the daemon's log.
struct Lines {
    kind: Kind,
    tx: broadcast::Sender<Chunk>,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// For stderr: the instance to name in the log.
    log_as: Option<String>,
}

impl Lines {
    fn new(kind: Kind, tx: broadcast::Sender<Chunk>, log_as: Option<String>) -> Self {
        Self { kind, tx, partial: Vec::new(), log_as }
    }

    fn emit(&mut self, lines: &[u8]) {
        if let Some(name) = &self.log_as {
            let all = [&self.partial[..], lines].concat();
            for line in all.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line = String::from_utf8_lossy(line);
                match line.strip_prefix("WARN: ") {
                    Some(warning) => tracing::warn!(instance = name, "{warning}"),
                    None => tracing::info!(instance = name, "{line}"),
                }
            }
        }
        if self.tx.receiver_count() > 0 {
            let mut chunk = std::mem::take(&mut self.partial);
            chunk.extend_from_slice(lines);
            let _ = self.tx.send((self.kind, chunk.into()));
        }
        self.partial.clear();
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                self.emit(&buf[..=end]);
                self.partial.extend_from_slice(&buf[end + 1..]);
            }
            None => {
                self.partial.extend_from_slice(buf);
                if self.partial.len() > MAX_PARTIAL_LINE {
                    self.emit(&[]);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `gadgetctl list`: a table, widths from the contents.
pub fn table(rows: &[Listed], now: u64) -> String {
    // STATUS last: a failure's message is the longest cell.
    let mut cells = vec![["NAME", "GADGET", "AGE", "ARGS", "STATUS"].map(String::from).to_vec()];
    for r in rows {
        let status = match &r.error {
            Some(e) => format!("{}: {}", r.status, e.lines().next().unwrap_or("")),
            None => r.status.to_string(),
        };
        cells.push(vec![
            r.name.clone(),
            r.gadget.clone(),
            age(now.saturating_sub(r.created_at)),
            r.args.join(" "),
            status,
        ]);
    }
    let widths: Vec<usize> =
        (0..5).map(|i| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i < 4 {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn names_are_file_names() {
        for good in ["web-exec", "a", "A.b_c-1", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", ".hidden", "a/b", "a b", "../x", &"x".repeat(64), "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let name = generated_name(&v("trace exec --host"));
        assert!(name.starts_with("trace-exec-") && valid_name(&name), "{name}");
    }

    #[test]
    fn headless_runs_are_trace_or_top_gadgets_in_json() {
        let json = |c: GadgetCommand| {
            let mut c = c;
            c.common_mut().map(|f| f.output.clone())
        };
        assert_eq!(json(prepare(&v("trace exec")).unwrap()), Some(OutputMode::Json));
        assert_eq!(json(prepare(&v("top file -o json")).unwrap()), Some(OutputMode::Json));
        assert!(matches!(prepare(&v("snapshot process")), Err(InstanceError::NotHeadless)));
        assert!(matches!(prepare(&v("list-containers")), Err(InstanceError::NotHeadless)));
        assert!(matches!(prepare(&v("trace exec -o yaml")), Err(InstanceError::Output(_))));
        assert!(matches!(prepare(&v("trace exec -o columns=pid")), Err(InstanceError::Output(_))));
        assert!(matches!(prepare(&v("trace exec --fields pid")), Err(InstanceError::Output(_))));
        let Err(InstanceError::Command(e)) = prepare(&v("trace exec --bogus")) else { panic!() };
        assert!(e.contains("--bogus"), "{e}");
    }

    #[test]
    fn lines_pass_whole_lines_to_attached_clients_only() {
        let (tx, _) = broadcast::channel(16);
        let mut w = Lines::new(Kind::Stdout, tx.clone(), None);
        w.write_all(b"nobody sees this\nnor the st").unwrap();
        let mut rx = tx.subscribe();
        w.write_all(b"art of this\n{\"a\":1}\n{\"b\"").unwrap();
        w.write_all(b":2}\n").unwrap();
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| rx.try_recv().ok()).map(|(_, c)| c.to_vec()).collect();
        assert_eq!(got, [b"nor the start of this\n{\"a\":1}\n".to_vec(), b"{\"b\":2}\n".to_vec()]);
    }

    #[test]
    fn the_table_has_one_row_per_instance() {
        let rows = vec![
            Listed {
                name: "a".into(),
                gadget: "trace exec".into(),
                args: v("--host"),
                status: "running",
                error: None,
                created_at: 1000,
            },
            Listed {
                name: "longer-name".into(),
                gadget: "top file".into(),
                args: vec![],
                status: "failed",
                error: Some("starting the gadget: no\nmore".into()),
                created_at: 0,
            },
        ];
        let t = table(&rows, 1090);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME         GADGET      AGE  ARGS    STATUS");
        assert_eq!(lines[1], "a            trace exec  90s  --host  running");
        assert_eq!(lines[2], "longer-name  top file    18m          failed: starting the gadget: no");
    }
}
