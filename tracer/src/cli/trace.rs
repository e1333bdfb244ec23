//! `ig trace <gadget>`.

use clap::{Args, Subcommand};

use super::CommonFlags;
use std::sync::Arc;

use crate::collection::Collection;
use crate::gadgets::trace_bind::TraceBind;
use crate::gadgets::trace_capabilities::TraceCapabilities;
use crate::gadgets::trace_dns::TraceDns;
use crate::gadgets::trace_exec::TraceExec;
use crate::gadgets::trace_mount::TraceMount;
use crate::gadgets::trace_oomkill::TraceOomkill;
use crate::gadgets::trace_open::TraceOpen;
use crate::gadgets::trace_signal::{TraceSignal, parse_signal};
use crate::gadgets::trace_sni::TraceSni;
use crate::gadgets::trace_tcp::TraceTcp;
use crate::gadgets::trace_tcpconnect::{TraceTcpconnect, parse_min};
use crate::io::RunIo;
use crate::run::run_gadget;

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Trace sockets bound to an address and port.
    Bind(BindArgs),
    /// Trace capability checks and their verdicts.
    Capabilities(CapabilitiesArgs),
    /// Trace DNS queries and responses (UDP port 53), in every network namespace.
    Dns(CommonOnly),
    /// Trace new processes (exec), failed ones too.
    Exec(ExecArgs),
    /// Trace open files (open, openat, openat2).
    Open(OpenArgs),
    /// Trace signals sent with kill, tkill and tgkill.
    Signal(SignalArgs),
    /// Trace the server names (SNI) TLS clients ask for.
    Sni(CommonOnly),
    /// Trace mount and umount calls.
    Mount(CommonOnly),
    /// Trace processes killed by the OOM killer.
    Oomkill(CommonOnly),
    /// Trace TCP connections: connect (C), accept (A), close (X).
    Tcp(CommonOnly),
    /// Trace outgoing TCP connections, optionally with their latency.
    Tcpconnect(TcpconnectArgs),
}

#[derive(Debug, Args)]
pub struct CapabilitiesArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only checks that would be audited. Accepted for compatibility: the
    /// kernel's cap_capable tracepoint does not say which checks are
    /// audited, so every check is shown and AUDIT is `-`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub audit_only: bool,

    /// Report each (process, capability) pair once.
    #[arg(long)]
    pub unique: bool,
}

#[derive(Debug, Args)]
pub struct BindArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only binds by this process.
    #[arg(long)]
    pub pid: Option<u32>,

    /// Only these ports (comma-separated).
    #[arg(short = 'P', long, value_delimiter = ',')]
    pub ports: Vec<u16>,

    /// Leave out failed binds (`-i false` shows them).
    #[arg(short = 'i', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ignore_errors: bool,
}

#[derive(Debug, Args)]
pub struct TcpconnectArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Show the time from connect() to ESTABLISHED (LATENCY column).
    #[arg(long)]
    pub latency: bool,

    /// Only connections that took at least this long (e.g. 5, 5ms, 250us); implies --latency.
    #[arg(long, value_parser = parse_min)]
    pub min: Option<std::time::Duration>,
}

/// Gadgets with only the common flags.
#[derive(Debug, Args)]
pub struct CommonOnly {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only signals sent by this process.
    #[arg(long)]
    pub pid: Option<u32>,

    /// Only this signal (name or number: SIGKILL, KILL, 9).
    #[arg(long, value_parser = parse_signal)]
    pub signal: Option<i32>,

    /// Only signals that could not be sent.
    #[arg(short = 'f', long)]
    pub failed_only: bool,

    /// Only SIGKILL.
    #[arg(short = 'k', long)]
    pub kill_only: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Show the working directory of each process (cwd column).
    #[arg(long)]
    pub cwd: bool,

    /// Only show execs that succeeded.
    #[arg(long)]
    pub ignore_errors: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Show the absolute path of each file (fullPath column).
    #[arg(long)]
    pub full_path: bool,

    /// Only paths starting with one of these prefixes (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub prefixes: Vec<String>,

    /// Only show opens that succeeded.
    #[arg(long)]
    pub ignore_errors: bool,
}

impl TraceCommand {
    pub async fn run(self, collection: &Arc<Collection>, io: RunIo) -> anyhow::Result<()> {
        match self {
            TraceCommand::Bind(a) => {
                let gadget = TraceBind { pid: a.pid, ports: a.ports, ignore_errors: a.ignore_errors };
                run_gadget(gadget, a.common.run_options(), collection, io).await
            }
            TraceCommand::Capabilities(a) => {
                let gadget = TraceCapabilities { unique: a.unique };
                run_gadget(gadget, a.common.run_options(), collection, io).await
            }
            TraceCommand::Exec(a) => {
                let opts = a.common.run_options();
                run_gadget(TraceExec { cwd: a.cwd, ignore_errors: a.ignore_errors }, opts, collection, io)
                    .await
            }
            TraceCommand::Open(a) => {
                let opts = a.common.run_options();
                let gadget = TraceOpen {
                    full_path: a.full_path,
                    ignore_errors: a.ignore_errors,
                    prefixes: a.prefixes,
                };
                run_gadget(gadget, opts, collection, io).await
            }
            TraceCommand::Signal(a) => {
                let opts = a.common.run_options();
                let gadget = TraceSignal {
                    sender_pid: a.pid,
                    signal: a.signal,
                    failed_only: a.failed_only,
                    kill_only: a.kill_only,
                };
                run_gadget(gadget, opts, collection, io).await
            }
            TraceCommand::Mount(a) => run_gadget(TraceMount, a.common.run_options(), collection, io).await,
            TraceCommand::Oomkill(a) => {
                run_gadget(TraceOomkill, a.common.run_options(), collection, io).await
            }
            TraceCommand::Dns(a) => {
                run_gadget(TraceDns::default(), a.common.run_options(), collection, io).await
            }
            TraceCommand::Sni(a) => run_gadget(TraceSni, a.common.run_options(), collection, io).await,
            TraceCommand::Tcp(a) => run_gadget(TraceTcp, a.common.run_options(), collection, io).await,
            TraceCommand::Tcpconnect(a) => {
                let gadget = TraceTcpconnect { latency: a.latency, min: a.min };
                run_gadget(gadget, a.common.run_options(), collection, io).await
            }
        }
    }
}
