//! `ig trace open`: open, openat and openat2 with the descriptor or errno.
//! Kernel side: program.bpf.c (fexit on do_sys_openat2, or the syscall tracepoints).

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_open_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_open);

/// Trace open files (open, openat, openat2).
#[derive(Clone, Debug, clap::Args)]
pub struct TraceOpen {
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

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// The new descriptor; 0 when the open failed.
    pub fd: u32,
    /// The positive errno of a failed open; 0 on success.
    pub err: i32,
    pub path: String,
    pub ret: i32,
    pub flags: Vec<&'static str>,
    pub flags_raw: u32,
    pub mode: String,
    pub mode_raw: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub full_path: String,
}

crate::impl_has_common!(with_process: OpenEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_open_exit", "sys_exit_open").optional(),
    Attachment::syscall("ig_openat_exit", "sys_exit_openat"),
    Attachment::syscall("ig_openat2_exit", "sys_exit_openat2").optional(),
];

/// One program where all three calls end (Linux 5.6+).
const FEXIT: &[Attachment] = &[Attachment::fexit("ig_open_fexit", "do_sys_openat2")];

const VARIANTS: &[Variant] = &[Variant::new("fexit", FEXIT), Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceOpen {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_full_path", Global::Bool(self.full_path)),
            (crate::bpf::IGNORE_ERRORS, Global::Bool(self.ignore_errors)),
        ]
    }
}

impl Gadget for TraceOpen {
    type Event = OpenEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // The busiest gadget: 1,000,000 opens as fast as two cores make them
    // lost nothing with 1 MiB, even beside a CPU hog (the reader is woken
    // per batch); twice that absorbs a longer stall of the reader.
    fn ring_bytes(&self) -> u32 {
        2 << 20
    }

    fn columns(&self) -> Vec<Column<OpenEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("fd", 3, |e: &OpenEvent| e.fd.into()).max(7),
            Column::new("err", 3, |e: &OpenEvent| e.err.into()).max(4),
            Column::new("path", 32, |e: &OpenEvent| e.path.as_str().into()).max(0),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("ret", 4, |e: &OpenEvent| e.ret.into()).hidden().max(7),
            Column::new("flags", 24, |e: &OpenEvent| Value::Str(e.flags.join("|").into())).hidden().max(60),
            Column::new("mode", 10, |e: &OpenEvent| e.mode.as_str().into()).hidden(),
            Column::new("fullPath", 32, |e: &OpenEvent| e.full_path.as_str().into()).hidden().max(0),
        ]);
        cols
    }

    /// The `--prefixes` check, applied to the path as the process gave it.
    fn wants(&self, e: &OpenEvent) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| e.path.starts_with(p.as_str()))
    }

    fn count(&self, e: &OpenEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        add(crate::metrics::Count::FileOpens.into());
        if e.err != 0 {
            add(crate::metrics::Count::FailedFileOpens.into());
        }
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<OpenEvent, DecodeError> {
        let r = Raw::new(bytes, offset_of!(E, path))?;
        let ret = r.i32(offset_of!(E, retval));
        let flags = r.u32(offset_of!(E, flags));
        let mode = r.u32(offset_of!(E, mode));
        let path_size = r.u32(offset_of!(E, path_size)) as usize;
        let full_path_size = r.u32(offset_of!(E, full_path_size)) as usize;
        let creates = flags & (libc::O_CREAT as u32 | libc::O_TMPFILE as u32) != 0;
        Ok(OpenEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            fd: if ret >= 0 { ret as u32 } else { 0 },
            err: if ret < 0 { -ret } else { 0 },
            path: r.cstr(offset_of!(E, path), path_size),
            ret,
            flags: open_flag_names(flags),
            flags_raw: flags,
            mode: if creates { mode_string(mode) } else { String::new() },
            mode_raw: mode,
            full_path: if full_path_size > 0 {
                r.cstr(offset_of!(E, full_path), full_path_size)
            } else {
                String::new()
            },
        })
    }
}

/// Names of the open(2) flags set in `flags`, access mode first.
pub fn open_flag_names(flags: u32) -> Vec<&'static str> {
    const NAMED: &[(i32, &str)] = &[
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_ASYNC, "O_ASYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        (libc::O_LARGEFILE, "O_LARGEFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
    ];
    let mut names = vec![match flags & libc::O_ACCMODE as u32 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    }];
    // O_SYNC and O_TMPFILE include other bits: test them whole, then skip those bits.
    let mut rest = flags & !(libc::O_ACCMODE as u32);
    for (bits, name) in [(libc::O_SYNC, "O_SYNC"), (libc::O_TMPFILE, "O_TMPFILE")] {
        if rest & bits as u32 == bits as u32 {
            names.push(name);
            rest &= !(bits as u32);
        }
    }
    names.extend(NAMED.iter().filter(|(bit, _)| rest & *bit as u32 != 0).map(|(_, n)| *n));
    names
}

/// `ls -l` style permission string of a creation mode, e.g. `-rw-r--r--`.
pub fn mode_string(mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push('-');
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_flags() {
        let f = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC) as u32;
        assert_eq!(open_flag_names(f), vec!["O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"]);
        assert_eq!(open_flag_names(0), vec!["O_RDONLY"]);
        assert_eq!(open_flag_names(libc::O_TMPFILE as u32 | 2), vec!["O_RDWR", "O_TMPFILE"]);
    }

    #[test]
    fn formats_modes() {
        assert_eq!(mode_string(0o644), "-rw-r--r--");
        assert_eq!(mode_string(0o750), "-rwxr-x---");
    }
}
