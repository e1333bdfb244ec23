//! `ig trace exec`: every exec, successful or failed, with its arguments.
//! Kernel side: program.bpf.c (sched_process_exec and the
//! execve/execveat syscall tracepoints).

use std::mem::offset_of;

use self::bpf::{IG_EXEC_ARGS_TRUNCATED, IG_EXEC_UPPER_LAYER, OBJECT, ig_exec_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw, split_args};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_exec);

/// Trace new processes (exec), failed ones too.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceExec {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Show the working directory of each process (cwd column).
    #[arg(long)]
    pub cwd: bool,

    /// Only show execs that succeeded.
    #[arg(long)]
    pub ignore_errors: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExecEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    pub loginuid: u32,
    pub sessionid: u32,
    pub ret: i32,
    pub args: Vec<String>,
    /// True when the arguments did not fit and were cut.
    #[serde(rename = "argsTruncated")]
    pub args_truncated: bool,
    pub upperlayer: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cwd: String,
}

crate::impl_has_common!(with_process: ExecEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_execve_enter", "sys_enter_execve"),
    Attachment::syscall("ig_execve_exit", "sys_exit_execve"),
    Attachment::syscall("ig_execveat_enter", "sys_enter_execveat").optional(),
    // execve's exit program is execveat's too (the same code; one verification fewer at start-up).
    Attachment::syscall("ig_execve_exit", "sys_exit_execveat").optional(),
    Attachment::tracepoint("ig_sched_exec", "sched", "sched_process_exec"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceExec {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_collect_cwd", Global::Bool(self.cwd)),
            (crate::bpf::IGNORE_ERRORS, Global::Bool(self.ignore_errors)),
        ]
    }
}

impl Gadget for TraceExec {
    type Event = ExecEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Execs come at most a few thousand a second even in a fork storm; 1 MiB holds ~125 of its 8 KiB records, several wake-ups' worth.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<ExecEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::ppid(),
            process::columns::comm(),
            Column::new("ret", 3, |e: &ExecEvent| e.ret.into()).max(5),
            Column::new("args", 40, |e: &ExecEvent| Value::List(&e.args)).max(0),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("loginuid", 10, |e: &ExecEvent| e.loginuid.into()).hidden(),
            Column::new("sessionid", 10, |e: &ExecEvent| e.sessionid.into()).hidden(),
            Column::new("upperlayer", 10, |e: &ExecEvent| Value::Bool(e.upperlayer)).hidden(),
            Column::new("cwd", 32, |e: &ExecEvent| e.cwd.as_str().into()).hidden().max(0),
        ]);
        cols
    }

    fn count(&self, e: &ExecEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        add(crate::metrics::Count::Execs.into());
        if e.ret != 0 {
            add(crate::metrics::Count::FailedExecs.into());
        }
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<ExecEvent, DecodeError> {
        let r = Raw::new(bytes, offset_of!(E, args))?;
        let flags = r.u32(offset_of!(E, flags));
        let args_size = r.u32(offset_of!(E, args_size)) as usize;
        let cwd_size = r.u32(offset_of!(E, cwd_size)) as usize;
        Ok(ExecEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode_with_parent(&r, offset_of!(E, process)),
            loginuid: r.u32(offset_of!(E, loginuid)),
            sessionid: r.u32(offset_of!(E, sessionid)),
            ret: r.i32(offset_of!(E, retval)),
            args: split_args(r.bytes(offset_of!(E, args), args_size)),
            args_truncated: flags & IG_EXEC_ARGS_TRUNCATED != 0,
            upperlayer: flags & IG_EXEC_UPPER_LAYER != 0,
            cwd: if cwd_size > 0 { r.cstr(offset_of!(E, cwd), cwd_size) } else { String::new() },
        })
    }
}
