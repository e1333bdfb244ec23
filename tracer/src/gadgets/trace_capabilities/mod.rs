//! `ig trace capabilities`: every capability check (commoncap's
//! cap_capable) and its verdict. Kernel side: program.bpf.c
//! (the capability/cap_capable tracepoint, Linux 6.14+).

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_capabilities_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_capabilities);

/// Trace capability checks and their verdicts.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceCapabilities {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only checks that would be audited. Where the kernel's
    /// capability/cap_capable tracepoint is used, it cannot say which checks
    /// are: every check is shown and AUDIT is `-`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub audit_only: bool,

    /// Report each (process, capability) pair once.
    #[arg(long)]
    pub unique: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// The syscall the check was made in (`-` outside one).
    pub syscall: String,
    pub cap: i32,
    pub cap_name: String,
    /// Whether the check would be audited; None where the tracepoint is used (it does not say).
    pub audit: Option<u32>,
    /// `Allow` or `Deny`.
    pub verdict: &'static str,
}

crate::impl_has_common!(with_process: CapabilitiesEvent);

const ATTACHMENTS: &[Attachment] =
    &[Attachment::tracepoint("ig_cap_capable", "capability", "cap_capable").since("6.16")];

/// Where the tracepoint is missing: cap_capable() itself.
const KPROBES: &[Attachment] = &[
    Attachment::kprobe("ig_cap_capable_entry", "cap_capable"),
    Attachment::kretprobe("ig_cap_capable_exit", "cap_capable"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS), Variant::new("kprobe", KPROBES)];

impl GadgetProgram for TraceCapabilities {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_unique", Global::Bool(self.unique)),
            ("gadget_audit_only", Global::Bool(self.audit_only)),
        ]
    }
}

impl Gadget for TraceCapabilities {
    type Event = CapabilitiesEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn count(&self, e: &CapabilitiesEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        if e.verdict == "Deny" {
            add(crate::metrics::Count::CapabilityDenials.into());
        }
    }

    fn columns(&self) -> Vec<Column<CapabilitiesEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("syscall", 12, |e: &CapabilitiesEvent| e.syscall.as_str().into()).max(20),
            Column::new("cap", 4, |e: &CapabilitiesEvent| e.cap.into()),
            Column::new("capName", 16, |e: &CapabilitiesEvent| e.cap_name.as_str().into()).max(24),
            Column::new("audit", 5, |e: &CapabilitiesEvent| match e.audit {
                Some(a) => a.into(),
                None => Value::from("-"),
            }),
            Column::new("verdict", 7, |e: &CapabilitiesEvent| e.verdict.into()),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<CapabilitiesEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let cap = r.i32(offset_of!(E, cap));
        Ok(CapabilitiesEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            syscall: crate::syscalls::name(r.u64(offset_of!(E, syscall)) as i64),
            cap,
            cap_name: cap_name(cap),
            audit: u32::try_from(r.i32(offset_of!(E, audit))).ok(),
            verdict: if r.i32(offset_of!(E, ret)) == 0 { "Allow" } else { "Deny" },
        })
    }
}

/// Capability names by number (linux/capability.h).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `CAP_SYS_ADMIN` for 21; the number for one this table does not know.
pub fn cap_name(cap: i32) -> String {
    usize::try_from(cap).ok().and_then(|i| CAPS.get(i)).map_or_else(|| cap.to_string(), |n| (*n).to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_capabilities() {
        assert_eq!(super::cap_name(0), "CAP_CHOWN");
        assert_eq!(super::cap_name(21), "CAP_SYS_ADMIN");
        assert_eq!(super::cap_name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(super::cap_name(63), "63");
    }
}
