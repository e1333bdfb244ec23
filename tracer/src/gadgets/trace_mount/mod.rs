//! `ig trace mount`: mount(2) and umount2(2) calls with their arguments,
//! result and latency. Kernel side: program.bpf.c (syscall
//! tracepoints; the new fsopen/fsmount/move_mount API is not traced).

use std::mem::offset_of;

use self::bpf::{IG_MOUNT_FS, IG_MOUNT_STR, IG_MOUNT_UMOUNT, OBJECT, ig_mount_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::Process;
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_mount);

/// Trace mount and umount calls.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceMount {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct MountEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub comm: String,
    pub pid: u32,
    pub tid: u32,
    /// The call as it would be written in C, with its result.
    pub call: String,
    /// `mount` or `umount`.
    pub op: &'static str,
    pub ret: i32,
    /// Nanoseconds the call took.
    pub latency: u64,
    pub fs: String,
    pub src: String,
    pub dst: String,
    pub data: String,
    pub flags: Vec<&'static str>,
    #[serde(rename = "flagsRaw")]
    pub flags_raw: u64,
}

crate::impl_has_common!(MountEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_mount_enter", "sys_enter_mount"),
    Attachment::syscall("ig_mount_exit", "sys_exit_mount"),
    Attachment::syscall("ig_umount_enter", "sys_enter_umount"),
    Attachment::syscall("ig_umount_exit", "sys_exit_umount"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceMount {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceMount {
    type Event = MountEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Mounts are rare outside container starts.
    fn ring_bytes(&self) -> u32 {
        256 << 10
    }

    fn columns(&self) -> Vec<Column<MountEvent>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("comm", 16, |e: &MountEvent| e.comm.as_str().into()),
            Column::new("pid", 7, |e: &MountEvent| e.pid.into()),
            Column::new("tid", 7, |e: &MountEvent| e.tid.into()),
            Column::new("call", 40, |e: &MountEvent| e.call.as_str().into()).max(0),
            Column::new("op", 6, |e: &MountEvent| e.op.into()).hidden(),
            Column::new("ret", 4, |e: &MountEvent| e.ret.into()).hidden().max(6),
            Column::new("latency", 8, |e: &MountEvent| e.latency.into()).hidden().max(12),
            Column::new("fs", 8, |e: &MountEvent| e.fs.as_str().into()).hidden().max(16),
            Column::new("src", 16, |e: &MountEvent| e.src.as_str().into()).hidden().max(64),
            Column::new("dst", 16, |e: &MountEvent| e.dst.as_str().into()).hidden().max(64),
            Column::new("data", 16, |e: &MountEvent| e.data.as_str().into()).hidden().max(64),
            Column::new("flags", 16, |e: &MountEvent| crate::event::Value::Str(e.flags.join("|").into()))
                .hidden()
                .max(64),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<MountEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let (max, fs_max) = (IG_MOUNT_STR as usize, IG_MOUNT_FS as usize);
        let umount = r.u32(offset_of!(E, op)) == IG_MOUNT_UMOUNT;
        let flags = r.u64(offset_of!(E, flags));
        let ret = r.i32(offset_of!(E, retval));
        let (src, dst, fs, data) = (
            r.cstr(offset_of!(E, src), max),
            r.cstr(offset_of!(E, dst), max),
            r.cstr(offset_of!(E, fs), fs_max),
            r.cstr(offset_of!(E, data), max),
        );
        let flag_names = if umount { umount_flag_names(flags) } else { mount_flag_names(flags) };
        let shown_flags = if flag_names.is_empty() { "0".to_string() } else { flag_names.join(" | ") };
        let call = if umount {
            format!("umount({dst:?}, {shown_flags}) = {ret}")
        } else {
            format!("mount({src:?}, {dst:?}, {fs:?}, {shown_flags}, {data:?}) = {ret}")
        };
        // Its JSON has no uid and gid (as the reference's): the ids are not copied.
        let Process { pid, tid, comm, .. } = Process::decode(&r, offset_of!(E, process));
        Ok(MountEvent {
            common: crate::event_common!(r, clock, E, process),
            comm,
            pid,
            tid,
            call,
            op: if umount { "umount" } else { "mount" },
            ret,
            latency: r.u64(offset_of!(E, latency_ns)),
            fs,
            src,
            dst,
            data,
            flags: flag_names,
            flags_raw: flags,
        })
    }
}

const MOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MS_RDONLY"),
    (2, "MS_NOSUID"),
    (4, "MS_NODEV"),
    (8, "MS_NOEXEC"),
    (16, "MS_SYNCHRONOUS"),
    (32, "MS_REMOUNT"),
    (64, "MS_MANDLOCK"),
    (128, "MS_DIRSYNC"),
    (256, "MS_NOSYMFOLLOW"),
    (1024, "MS_NOATIME"),
    (2048, "MS_NODIRATIME"),
    (4096, "MS_BIND"),
    (8192, "MS_MOVE"),
    (16384, "MS_REC"),
    (32768, "MS_SILENT"),
    (1 << 16, "MS_POSIXACL"),
    (1 << 17, "MS_UNBINDABLE"),
    (1 << 18, "MS_PRIVATE"),
    (1 << 19, "MS_SLAVE"),
    (1 << 20, "MS_SHARED"),
    (1 << 21, "MS_RELATIME"),
    (1 << 22, "MS_KERNMOUNT"),
    (1 << 23, "MS_I_VERSION"),
    (1 << 24, "MS_STRICTATIME"),
    (1 << 25, "MS_LAZYTIME"),
];

const UMOUNT_FLAGS: &[(u64, &str)] =
    &[(1, "MNT_FORCE"), (2, "MNT_DETACH"), (4, "MNT_EXPIRE"), (8, "UMOUNT_NOFOLLOW")];

/// Names of the mount(2) flags set. Old callers put the magic 0xC0ED in the
/// high 16 bits; the kernel drops it, and so do we.
pub fn mount_flag_names(flags: u64) -> Vec<&'static str> {
    const MS_MGC_MSK: u64 = 0xffff_0000;
    const MS_MGC_VAL: u64 = 0xc0ed_0000;
    let flags = if flags & MS_MGC_MSK == MS_MGC_VAL { flags & !MS_MGC_MSK } else { flags };
    MOUNT_FLAGS.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect()
}

pub fn umount_flag_names(flags: u64) -> Vec<&'static str> {
    UMOUNT_FLAGS.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_flags() {
        assert_eq!(mount_flag_names(4096 | 16384), ["MS_BIND", "MS_REC"]);
        assert_eq!(mount_flag_names(0xC0ED_0000 | 2), ["MS_NOSUID"], "the old magic is not a flag");
        assert_eq!(umount_flag_names(2), ["MNT_DETACH"]);
    }
}
