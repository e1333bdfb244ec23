//! `ig-hook`: an OCI runtime hook. At createRuntime/prestart it builds the
//! container's record (OCI state, config.json, /proc), writes it to the
//! spool and hands it to every running tracer, waiting for their
//! acknowledgements, so a running tracer has the container in its filter
//! maps before the container's own process starts. At poststop it says the
//! container is gone. It always exits 0 within its deadline unless told to
//! fail closed: a broken tracer must never break a container.

pub mod input;
pub mod log;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shared::error_chain as chain;
use shared::hookproto::{Message, VERSION};

use crate::log::Log;
use shared::identity::{HostNames, annotations, identify};
use shared::notify::{Outcome, notify_all};
use shared::{oci, record};

/// Default bound on the whole hook run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
pub const DEFAULT_LOG: &str = "/var/log/ig-hook.log";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// createRuntime, createContainer, prestart, startContainer, poststart.
    Create,
    /// poststop.
    Stop,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// None: decided from the state's status.
    pub stage: Option<Stage>,
    pub fail_closed: bool,
    pub log: PathBuf,
    pub timeout: Duration,
    pub root: PathBuf,
}

pub const USAGE: &str = "usage: ig-hook [prestart|createRuntime|createContainer|startContainer|poststart|poststop] \
[--fail-closed] [--log FILE] [--timeout-ms N] [--host-root DIR]  (OCI state on stdin)";

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        stage: None,
        fail_closed: false,
        log: PathBuf::from(DEFAULT_LOG),
        timeout: DEFAULT_TIMEOUT,
        root: shared::hookproto::host_root(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "prestart" | "createRuntime" | "createContainer" | "startContainer" | "poststart" => {
                opts.stage = Some(Stage::Create)
            }
            "poststop" => opts.stage = Some(Stage::Stop),
            "--fail-closed" => opts.fail_closed = true,
            "--log" => opts.log = PathBuf::from(value("--log")?),
            "--host-root" => opts.root = PathBuf::from(value("--host-root")?),
            "--timeout-ms" => {
                let ms: u64 = value("--timeout-ms")?.parse().map_err(|e| format!("--timeout-ms: {e}"))?;
                opts.timeout = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

/// Runs the hook on the OCI state `input`; returns false when a fail-closed
/// hook must fail the container.
pub fn run(opts: &Options, input: Result<Vec<u8>, String>, started: Instant, log: &mut Log) -> bool {
    let deadline = started + opts.timeout;
    let state =
        match input.map_err(|e| e.to_string()).and_then(|b| oci::parse_state(&b).map_err(|e| chain(&e))) {
            Ok(s) => s,
            Err(e) => {
                log.line(&format!("no container record: {e}"));
                return !opts.fail_closed;
            }
        };
    log.set_container(&state.id);
    let stage = opts.stage.unwrap_or(if state.status == "stopped" { Stage::Stop } else { Stage::Create });

    let msg = match stage {
        Stage::Stop => {
            if let Err(e) = shared::spool::remove(&opts.root, &state.id) {
                log.line(&chain(&e));
            }
            Message::Remove { version: VERSION, container_id: state.id.clone() }
        }
        Stage::Create => {
            let config = match oci::read_config(&shared::hookproto::on_host(&opts.root, &state.bundle)) {
                Ok(c) => c,
                Err(e) => {
                    // Annotations in the state are still worth a record.
                    log.line(&format!("{}; using the state alone", chain(&e)));
                    oci::Config::default()
                }
            };
            let annotations = annotations(&state, &config);
            let identity = identify(
                &state,
                &annotations,
                &HostNames { root: &opts.root, start_pid: std::os::unix::process::parent_id() },
            );
            if identity.sandbox {
                log.line("pod sandbox container: not tracked");
                return true;
            }
            let record = match record::build(&opts.root, &state, identity, annotations) {
                Ok(r) => r,
                Err(e) => {
                    log.line(&format!("no container record: {}", chain(&e)));
                    return !opts.fail_closed;
                }
            };
            // The spool first: whatever happens next, a later tracer learns it.
            if let Err(e) = shared::spool::write(&opts.root, &record) {
                log.line(&chain(&e));
            }
            Message::Add { version: VERSION, record: Box::new(record), source: Some("hook".into()) }
        }
    };

    let outcomes = notify_all(&opts.root, &msg, deadline);
    let mut all_acked = true;
    for (path, outcome) in &outcomes {
        match outcome {
            Outcome::Acked | Outcome::Stale => {}
            other => {
                all_acked = false;
                log.line(&format!("tracer {}: {other:?}", path.display()));
            }
        }
    }
    let acked = outcomes.iter().filter(|(_, o)| *o == Outcome::Acked).count();
    // A stale socket is a tracer that died: not one of the tracers.
    let stale = outcomes.iter().filter(|(_, o)| *o == Outcome::Stale).count();
    let cleared = if stale > 0 { format!(" ({stale} stale sockets removed)") } else { String::new() };
    log.line(&format!(
        "{stage:?}: {acked} of {} tracers acknowledged in {:?}{cleared}",
        outcomes.len() - stale,
        started.elapsed()
    ));
    all_acked || !opts.fail_closed
}
