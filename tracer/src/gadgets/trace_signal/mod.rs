//! `ig trace signal`: signals sent with kill, tkill and tgkill, and whether
//! they were delivered. Kernel side: program.bpf.c (syscall
//! tracepoints).

use std::mem::offset_of;

use self::bpf::{IG_SIGNAL_KILL, IG_SIGNAL_TGKILL, IG_SIGNAL_TKILL, OBJECT, ig_signal_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_signal);

/// Trace signals sent with kill, tkill and tgkill.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceSignal {
    #[command(flatten)]
    pub common: CommonFlags,

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

#[derive(Clone, Debug, Serialize)]
pub struct SignalEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// The signal's name, e.g. `SIGKILL` (or its number when unknown).
    pub signal: String,
    pub tpid: i32,
    pub ret: i32,
    /// kill, tkill or tgkill.
    pub call: &'static str,
}

crate::impl_has_common!(with_process: SignalEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_kill_enter", "sys_enter_kill"),
    Attachment::syscall("ig_kill_exit", "sys_exit_kill"),
    Attachment::syscall("ig_tkill_enter", "sys_enter_tkill"),
    Attachment::syscall("ig_tkill_exit", "sys_exit_tkill"),
    Attachment::syscall("ig_tgkill_enter", "sys_enter_tgkill"),
    Attachment::syscall("ig_tgkill_exit", "sys_exit_tgkill"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceSignal {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_signal", Global::I32(self.signal.unwrap_or(0))),
            ("gadget_failed_only", Global::Bool(self.failed_only)),
            ("gadget_kill_only", Global::Bool(self.kill_only)),
        ]
    }
}

impl Gadget for TraceSignal {
    type Event = SignalEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Signal records are small (~100 bytes): 512 KiB holds ~5,000.
    fn ring_bytes(&self) -> u32 {
        512 << 10
    }

    fn columns(&self) -> Vec<Column<SignalEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("signal", 9, |e: &SignalEvent| e.signal.as_str().into()).max(12),
            Column::new("tpid", 7, |e: &SignalEvent| e.tpid.into()),
            Column::new("ret", 4, |e: &SignalEvent| e.ret.into()).max(6),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("call", 6, |e: &SignalEvent| e.call.into()).hidden(),
        ]);
        cols
    }

    fn count(&self, e: &SignalEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        let _ = e;
        add(crate::metrics::Count::Signals.into());
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<SignalEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        Ok(SignalEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            signal: signal_name(r.i32(offset_of!(E, sig))),
            tpid: r.i32(offset_of!(E, tpid)),
            ret: r.i32(offset_of!(E, retval)),
            call: match r.u32(offset_of!(E, call)) {
                IG_SIGNAL_KILL => "kill",
                IG_SIGNAL_TKILL => "tkill",
                IG_SIGNAL_TGKILL => "tgkill",
                _ => "?",
            },
        })
    }
}

const SIGNALS: &[&str] = &[
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGKILL` for 9; real-time signals as `SIGRTMIN+n`; 0 (a probe) as `0`.
pub fn signal_name(sig: i32) -> String {
    match sig {
        1..=31 => SIGNALS[sig as usize - 1].to_string(),
        32..=64 => format!("SIGRTMIN+{}", sig - 32),
        n => n.to_string(),
    }
}

/// Parses `--signal`: `SIGKILL`, `KILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=64).contains(&n) { Ok(n) } else { Err(format!("no signal {n}")) };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    SIGNALS
        .iter()
        .position(|n| *n == name)
        .map(|i| i as i32 + 1)
        .ok_or_else(|| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parses_signals() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(34), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "0");
        assert_eq!(parse_signal("SIGUSR1"), Ok(10));
        assert_eq!(parse_signal("term"), Ok(15));
        assert_eq!(parse_signal("9"), Ok(9));
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
