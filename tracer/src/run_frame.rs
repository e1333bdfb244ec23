//! What every gadget run does around its own work, whatever its kind
//! (trace, top, profile, snapshot): where its output goes (`--output-file`),
//! the exports only trace gadgets have, saying that it started, when it
//! ends (told to stop, or `-t`), and how it ends (the file's last words; a
//! closed pipe, `ig ... | head`, is a normal way to stop).

use std::io::{self, Write};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;

use crate::io::{RunIo, Stop};
use crate::output::file::{OutputFile, redirect};
use crate::run::RunOptions;

/// One run's output and its end.
pub struct Frame {
    /// Events or tables: the terminal, a connection, or the file.
    pub out: Box<dyn Write + Send>,
    /// Messages for the user.
    pub err: Box<dyn Write + Send>,
    pub terminal_width: Option<usize>,
    /// The daemon's own counting run (see [`RunIo::daemon_counter`]).
    pub daemon_counter: bool,
    /// With `--output-file`: the file, whose drops are reported.
    pub file: Option<OutputFile>,
    pub end: End,
    started: Option<Box<dyn FnOnce() + Send>>,
}

/// Why a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Ctrl-C, SIGTERM, a client gone.
    Stopped,
    /// `-t` has passed since the run started.
    TimedOut,
}

/// What ends a run: the stop, or the timeout counted from its start.
pub struct End {
    stop: Stop,
    timeout: Option<Duration>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl End {
    /// Resolves when the run must end, and says why. Cancel-safe: a
    /// `select!` may drop it and ask again.
    pub async fn reached(&mut self) -> Ending {
        let Self { stop, deadline, .. } = self;
        let timed_out = async {
            match deadline {
                Some(d) => d.as_mut().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => Ending::Stopped,
            _ = timed_out => Ending::TimedOut,
        }
    }
}

impl Frame {
    /// The run's output: `io`'s, or the file `--output-file` names (and
    /// `io`'s too for a headless instance).
    pub fn open(opts: &RunOptions, io: RunIo) -> anyhow::Result<Self> {
        let RunIo { out, mut err, terminal_width, stop, started, tee, daemon_counter } = io;
        let (out, file) = redirect(&opts.output_file, &opts.output, out, tee, &mut err)?;
        Ok(Self {
            out,
            err,
            terminal_width,
            daemon_counter,
            file,
            end: End { stop, timeout: opts.timeout, deadline: None },
            started,
        })
    }

    /// For the gadgets that do not export (all but trace): refuses
    /// `--metrics-address` and `--otlp-endpoint` rather than ignore them.
    pub fn refuse_exports(opts: &RunOptions) -> anyhow::Result<()> {
        let asked = [
            (opts.metrics_address.is_some(), "--metrics-address"),
            (opts.otlp.otlp_endpoint.is_some(), "--otlp-endpoint"),
        ];
        match asked.iter().find(|(on, _)| *on) {
            Some((_, flag)) => anyhow::bail!("{flag}: only the trace gadgets export so far"),
            None => Ok(()),
        }
    }

    /// The gadget is attached (or its watch has begun): says so to the log
    /// and to whoever waits for it, and starts the `-t` clock.
    pub fn started(&mut self) {
        tracing::info!("tracing started");
        if let Some(started) = self.started.take() {
            started();
        }
        self.end.deadline = self.end.timeout.map(|t| Box::pin(tokio::time::sleep(t)));
    }

    /// Ends the run with what writing its output gave: the file's last
    /// words, and a closed pipe taken as a normal stop. `what` names the
    /// output in an error ("writing events").
    pub fn finish(mut self, written: anyhow::Result<()>, what: &str) -> anyhow::Result<()> {
        drop(self.out);
        if let Some(file) = self.file.as_mut() {
            finish_file(file, &mut *self.err);
        }
        match written {
            Err(e) if is_broken_pipe(&e) => Ok(()),
            other => other.context(what.to_string()),
        }
    }
}

/// Flushes the file and reports what it had to drop.
pub fn finish_file(file: &mut OutputFile, err: &mut dyn Write) {
    file.finish();
    if let Some((n, why)) = file.new_drops() {
        let _ = writeln!(err, "WARN: {}", file.drop_message(n, &why));
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(timeout: Option<Duration>, stop: Stop) -> Frame {
        Frame {
            out: Box::new(io::sink()),
            err: Box::new(io::sink()),
            terminal_width: None,
            daemon_counter: false,
            file: None,
            end: End { stop, timeout, deadline: None },
            started: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_counts_from_the_start_and_a_stop_comes_first_when_sooner() {
        let mut f = frame(Some(Duration::from_secs(5)), Box::pin(std::future::pending()));
        // Not started: no deadline yet, however long it waits.
        let early = tokio::time::timeout(Duration::from_secs(60), f.end.reached()).await;
        assert!(early.is_err(), "ended before it started");
        f.started();
        let began = tokio::time::Instant::now();
        assert_eq!(f.end.reached().await, Ending::TimedOut);
        assert_eq!(began.elapsed(), Duration::from_secs(5));

        let mut f = frame(Some(Duration::from_secs(5)), Box::pin(tokio::time::sleep(Duration::from_secs(1))));
        f.started();
        assert_eq!(f.end.reached().await, Ending::Stopped);
    }

    #[test]
    fn a_closed_pipe_is_a_normal_end_other_errors_keep_their_context() {
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        let wrapped = anyhow::Error::from(pipe).context("writing the result");
        assert!(frame(None, Box::pin(std::future::pending())).finish(Err(wrapped), "writing").is_ok());
        let full = anyhow::Error::from(io::Error::from(io::ErrorKind::StorageFull));
        let e =
            frame(None, Box::pin(std::future::pending())).finish(Err(full), "writing events").unwrap_err();
        assert_eq!(e.to_string(), "writing events");
    }

    #[test]
    fn only_trace_gadgets_export() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            common: crate::cli::CommonFlags,
        }
        let mut opts = <Flags as clap::Parser>::parse_from(["ig"]).common.run_options();
        assert!(Frame::refuse_exports(&opts).is_ok());
        opts.metrics_address = Some("127.0.0.1:0".parse().unwrap());
        let e = Frame::refuse_exports(&opts).unwrap_err().to_string();
        assert!(e.starts_with("--metrics-address: only the trace gadgets export"), "{e}");
    }
}
