//! `ig trace fsslower`: file reads, writes, opens and fsyncs slower than
//! `--min`. Kernel side: program.bpf.c (fentry/fexit on the VFS where BPF
//! trampolines are allowed, else kprobes there, else the syscall
//! tracepoints).

use std::mem::offset_of;

use self::bpf::{IG_FS_NAME_LEN, IG_FSSLOWER_NAME_LEN, OBJECT, ig_fsslower_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_fsslower);

/// Trace file reads, writes, opens and fsyncs slower than --min.
///
/// Where the kernel has BPF trampolines or kprobes (ig check: fentry,
/// kprobe) they are timed at the VFS (vfs_read, vfs_write, vfs_open,
/// vfs_fsync_range): every way into a filesystem. Without either (ig
/// check: syscall) the read, write, pread64,
/// pwrite64, openat, fsync and fdatasync syscalls are timed instead; readv,
/// writev and io_uring are not seen then.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceFsslower {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only operations that took at least this many milliseconds (0: all).
    #[arg(short = 'm', long = "min", default_value_t = 10)]
    pub min_ms: u64,

    /// Only files of this filesystem type (ext4, xfs, btrfs, nfs, fuse, ...).
    #[arg(short = 'f', long, value_parser = parse_fs)]
    pub filesystem: Option<String>,
}

fn parse_fs(s: &str) -> Result<String, String> {
    match s.len() {
        1..16 if s.bytes().all(|b| b.is_ascii_graphic()) => Ok(s.to_string()),
        _ => Err(format!("{s:?}: a filesystem type is 1 to 15 characters")),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FsslowerEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// R, W, O (open) or F (fsync).
    pub op: String,
    pub bytes: i64,
    pub offset: i64,
    /// Nanoseconds.
    pub latency: u64,
    pub file: String,
    pub filesystem: String,
}

crate::impl_has_common!(with_process: FsslowerEvent);

const TRAMPOLINES: &[Attachment] = &[
    Attachment::fentry("ig_vfs_read_fentry", "vfs_read"),
    Attachment::fexit("ig_vfs_read_fexit", "vfs_read"),
    Attachment::fentry("ig_vfs_write_fentry", "vfs_write"),
    Attachment::fexit("ig_vfs_write_fexit", "vfs_write"),
    Attachment::fentry("ig_vfs_open_fentry", "vfs_open"),
    Attachment::fexit("ig_vfs_open_fexit", "vfs_open"),
    Attachment::fentry("ig_vfs_fsync_fentry", "vfs_fsync_range"),
    Attachment::fexit("ig_vfs_fsync_fexit", "vfs_fsync_range"),
];

const KPROBES: &[Attachment] = &[
    Attachment::kprobe("ig_vfs_read", "vfs_read"),
    Attachment::kretprobe("ig_vfs_read_ret", "vfs_read"),
    Attachment::kprobe("ig_vfs_write", "vfs_write"),
    Attachment::kretprobe("ig_vfs_write_ret", "vfs_write"),
    Attachment::kprobe("ig_vfs_open", "vfs_open"),
    Attachment::kretprobe("ig_vfs_open_ret", "vfs_open"),
    Attachment::kprobe("ig_vfs_fsync", "vfs_fsync_range"),
    Attachment::kretprobe("ig_vfs_fsync_ret", "vfs_fsync_range"),
];

const SYSCALLS: &[Attachment] = &[
    Attachment::syscall("ig_sys_read", "sys_enter_read"),
    Attachment::syscall("ig_sys_read_ret", "sys_exit_read"),
    Attachment::syscall("ig_sys_pread", "sys_enter_pread64"),
    Attachment::syscall("ig_sys_pread_ret", "sys_exit_pread64"),
    Attachment::syscall("ig_sys_write", "sys_enter_write"),
    Attachment::syscall("ig_sys_write_ret", "sys_exit_write"),
    Attachment::syscall("ig_sys_pwrite", "sys_enter_pwrite64"),
    Attachment::syscall("ig_sys_pwrite_ret", "sys_exit_pwrite64"),
    Attachment::syscall("ig_sys_openat", "sys_enter_openat"),
    Attachment::syscall("ig_sys_openat_ret", "sys_exit_openat"),
    Attachment::syscall("ig_sys_fsync", "sys_enter_fsync"),
    Attachment::syscall("ig_sys_fsync_ret", "sys_exit_fsync"),
    Attachment::syscall("ig_sys_fdatasync", "sys_enter_fdatasync"),
    Attachment::syscall("ig_sys_fdatasync_ret", "sys_exit_fdatasync"),
];

const VARIANTS: &[Variant] = &[
    Variant::new("fentry", TRAMPOLINES),
    Variant::new("kprobe", KPROBES),
    Variant::new("syscall", SYSCALLS),
];

impl GadgetProgram for TraceFsslower {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        let mut g = vec![
            ("gadget_min_ns", Global::U64(self.min_ms.saturating_mul(1_000_000))),
            ("gadget_fs_set", Global::Bool(self.filesystem.is_some())),
        ];
        let mut name = [0u8; 16];
        if let Some(fs) = &self.filesystem {
            name[..fs.len()].copy_from_slice(fs.as_bytes());
        }
        g.push(("gadget_fs", Global::Bytes16(name)));
        g
    }
}

impl Gadget for TraceFsslower {
    type Event = FsslowerEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Only slow operations are sent: few, unless --min 0.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<FsslowerEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("t", 1, |e: &FsslowerEvent| e.op.as_str().into()),
            Column::new("bytes", 8, |e: &FsslowerEvent| Value::Int(e.bytes)).max(14).right(),
            Column::new("offset", 8, |e: &FsslowerEvent| Value::Int(e.offset)).max(16).right(),
            Column::new("lat", 8, |e: &FsslowerEvent| {
                Value::Str(format!("{:.3}", e.latency as f64 / 1e6).into())
            })
            .max(12)
            .right(),
            Column::new("file", 24, |e: &FsslowerEvent| e.file.as_str().into()).max(0),
            Column::new("filesystem", 8, |e: &FsslowerEvent| e.filesystem.as_str().into()).hidden(),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<FsslowerEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let op = char::from_u32(r.u32(offset_of!(E, op))).unwrap_or('?');
        Ok(FsslowerEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            op: op.to_string(),
            bytes: r.u64(offset_of!(E, bytes)) as i64,
            offset: r.u64(offset_of!(E, offset)) as i64,
            latency: r.u64(offset_of!(E, latency_ns)),
            file: r.cstr(offset_of!(E, file), IG_FSSLOWER_NAME_LEN as usize),
            filesystem: r.cstr(offset_of!(E, fs), IG_FS_NAME_LEN as usize),
        })
    }
}
