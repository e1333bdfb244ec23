//! Where a command's output goes and what stops it: the terminal and
//! Ctrl-C/SIGTERM for `ig`, a client connection for `ig daemon`. Gadgets
//! write to these and never to the process's own stdout.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;

use tokio::signal::unix::{SignalKind, signal};

use crate::output::columns::stdout_terminal_width;

/// Resolves when the command must stop.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct RunIo {
    /// Events and tables.
    pub out: Box<dyn Write + Send>,
    /// Messages for the user (`WARN: lost N events`, hints).
    pub err: Box<dyn Write + Send>,
    /// Width of the terminal the columns are shown on, if any.
    pub terminal_width: Option<usize>,
    pub stop: Stop,
    /// Called once the gadget is attached (or the watch has begun).
    pub started: Option<Box<dyn FnOnce() + Send>>,
    /// With `--output-file`, events also go to `out` (a headless
    /// instance: its file, and whoever attaches).
    pub tee: bool,
    /// The daemon's own counting run (no output, metrics only): it counts
    /// what every other run leaves to the daemon.
    pub daemon_counter: bool,
}

impl RunIo {
    /// This process's stdout and stderr, stopped by SIGINT or SIGTERM.
    pub fn local() -> Self {
        Self {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            terminal_width: stdout_terminal_width(),
            stop: stop_on_signals(),
            started: None,
            tee: false,
            daemon_counter: false,
        }
    }
}

/// Resolves on SIGINT or SIGTERM (the handlers are installed on first poll,
/// inside the runtime). If they cannot be installed it never resolves.
pub fn stop_on_signals() -> Stop {
    Box::pin(async {
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot install the Ctrl-C handler: {e}");
                std::future::pending::<()>().await
            }
        }
    })
}
