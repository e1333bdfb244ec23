//! `ig audit seccomp`: the decisions of seccomp filters the kernel logs
//! (kills, logged calls, and the errno/trap/trace/notify decisions of
//! filters installed with SECCOMP_FILTER_FLAG_LOG), with the process and
//! container whose syscall was judged. Kernel side: program.bpf.c (a kprobe
//! on audit_seccomp).

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_seccomp_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(audit_seccomp);

/// Trace the syscalls seccomp filters kill, log or (when the filter asks
/// for it) deny, trap, trace or pass to a notifier.
///
/// The kernel logs kills and SECCOMP_RET_LOG always, the other actions
/// only for filters installed with SECCOMP_FILTER_FLAG_LOG (runc and crun
/// set it for profiles with `"flags": ["SECCOMP_FILTER_FLAG_LOG"]`); the
/// actions in /proc/sys/kernel/seccomp/actions_logged are the ones it may
/// log at all. Allowed calls are never logged.
#[derive(Clone, Debug, clap::Args)]
pub struct AuditSeccomp {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeccompEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// Its name (`mkdir`), or its number where this table has none.
    pub syscall: String,
    /// SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_LOG, ...
    /// (the action only: the kernel logs no errno or other data with it).
    pub code: &'static str,
    /// The signal the action sends (SIGSYS for kills and traps), or empty.
    pub signal: String,
    /// The call came from 32-bit code: `syscall` is an ia32 number.
    pub compat: bool,
}

crate::impl_has_common!(with_process: SeccompEvent);

const ATTACHMENTS: &[Attachment] = &[Attachment::kprobe("ig_audit_seccomp", "audit_seccomp")];

const VARIANTS: &[Variant] = &[Variant::new("kprobe", ATTACHMENTS)];

impl GadgetProgram for AuditSeccomp {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

/// The seccomp action of a filter's return value (its top 16 bits; the
/// values of include/uapi/linux/seccomp.h).
pub fn action_name(code: u32) -> &'static str {
    match code & 0xffff_0000 {
        0x8000_0000 => "SECCOMP_RET_KILL_PROCESS",
        0x0000_0000 => "SECCOMP_RET_KILL_THREAD",
        0x0003_0000 => "SECCOMP_RET_TRAP",
        0x0005_0000 => "SECCOMP_RET_ERRNO",
        0x7fc0_0000 => "SECCOMP_RET_USER_NOTIF",
        0x7ff0_0000 => "SECCOMP_RET_TRACE",
        0x7ffc_0000 => "SECCOMP_RET_LOG",
        0x7fff_0000 => "SECCOMP_RET_ALLOW",
        _ => "unknown",
    }
}

impl Gadget for AuditSeccomp {
    type Event = SeccompEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Logged decisions are rare (the kernel rate-limits its own log of them).
    fn ring_bytes(&self) -> u32 {
        256 << 10
    }

    fn columns(&self) -> Vec<Column<SeccompEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("syscall", 16, |e: &SeccompEvent| e.syscall.as_str().into()).max(24),
            Column::new("code", 24, |e: &SeccompEvent| e.code.into()),
            Column::new("signal", 7, |e: &SeccompEvent| e.signal.as_str().into()).hidden(),
            Column::new("compat", 6, |e: &SeccompEvent| Value::Bool(e.compat)).hidden(),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<SeccompEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let code = r.u32(offset_of!(E, code));
        let compat = r.u32(offset_of!(E, compat)) != 0;
        let nr = r.i64(offset_of!(E, syscall));
        let signr = r.i64(offset_of!(E, signr));
        Ok(SeccompEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            // The table names x86-64 numbers only.
            syscall: if compat { nr.to_string() } else { crate::syscalls::name(nr) },
            code: action_name(code),
            signal: match i32::try_from(signr) {
                Ok(0) | Err(_) => String::new(),
                Ok(sig) => super::trace_signal::signal_name(sig),
            },
            compat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::action_name;

    #[test]
    fn names_the_actions_by_their_top_bits() {
        assert_eq!(action_name(0x8000_0000), "SECCOMP_RET_KILL_PROCESS");
        assert_eq!(action_name(0x0005_0001), "SECCOMP_RET_ERRNO");
        assert_eq!(action_name(0x7ffc_0000), "SECCOMP_RET_LOG");
        assert_eq!(action_name(0), "SECCOMP_RET_KILL_THREAD");
        assert_eq!(action_name(0x1234_0000), "unknown");
    }
}
