//! `ig top file`: reads and writes per thread and file, every interval.
//! Kernel side: program.bpf.c (read/write syscall tracepoints,
//! counters summed in a hash map).

use std::mem::{offset_of, size_of};

use self::bpf::{IG_TOPFILE_NAME_LEN, OBJECT, ig_topfile_key as K, ig_topfile_value as V};
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::TopFlags;
use crate::event::EventCommon;
use crate::raw::Raw;
use crate::session::{Attachment, GadgetProgram, Global, SessionError, Variant};
use crate::top::TopGadget;

crate::bpf_object!(top_file);

/// Reads and writes per file (regular files; -a for all).
#[derive(Clone, Debug, clap::Args)]
pub struct TopFile {
    #[command(flatten)]
    pub top: TopFlags,

    /// Also sockets, pipes and devices, not only regular files.
    #[arg(short = 'a', long)]
    pub all_files: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileRow {
    #[serde(flatten)]
    pub common: EventCommon,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub reads: u64,
    pub writes: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    /// R: regular file, S: socket, O: other.
    pub t: String,
    /// The file's name (its last path component).
    pub file: String,
}

crate::impl_has_common!(FileRow);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_read_exit", "sys_exit_read"),
    Attachment::syscall("ig_pread_exit", "sys_exit_pread64"),
    Attachment::syscall("ig_readv_exit", "sys_exit_readv"),
    Attachment::syscall("ig_write_exit", "sys_exit_write"),
    Attachment::syscall("ig_pwrite_exit", "sys_exit_pwrite64"),
    Attachment::syscall("ig_writev_exit", "sys_exit_writev"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TopFile {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![("gadget_all_files", Global::Bool(self.all_files))]
    }
}

impl TopGadget for TopFile {
    type Row = FileRow;

    fn program(&self) -> Option<&dyn GadgetProgram> {
        Some(self)
    }

    fn top(&self) -> &TopFlags {
        &self.top
    }

    fn columns(&self) -> Vec<Column<FileRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("pid", 7, |r: &FileRow| r.pid.into()),
            Column::new("tid", 7, |r: &FileRow| r.tid.into()).hidden(),
            Column::new("comm", 16, |r: &FileRow| r.comm.as_str().into()),
            Column::new("reads", 6, |r: &FileRow| r.reads.into()).max(12).right(),
            Column::new("writes", 6, |r: &FileRow| r.writes.into()).max(12).right(),
            Column::new("rbytes", 8, |r: &FileRow| r.rbytes.into()).max(14).right(),
            Column::new("wbytes", 8, |r: &FileRow| r.wbytes.into()).max(14).right(),
            Column::new("t", 1, |r: &FileRow| r.t.as_str().into()),
            Column::new("file", 24, |r: &FileRow| r.file.as_str().into()).max(0),
        ]);
        cols
    }

    fn default_sort(&self) -> &'static str {
        "-reads,-writes,-rbytes,-wbytes"
    }

    fn collect(&self, source: &mut crate::top::Source<'_>, now: u64) -> Result<Vec<FileRow>, SessionError> {
        let session = source.session()?;
        let entries = session.take_entries::<{ size_of::<K>() }, { size_of::<V>() }>("file_stats")?;
        Ok(entries
            .iter()
            .filter_map(|(k, v)| {
                let k = Raw::new(k, size_of::<K>()).ok()?;
                let v = Raw::new(v, size_of::<V>()).ok()?;
                Some(FileRow {
                    common: EventCommon {
                        container: None,
                        timestamp: now,
                        mntns: v.u64(offset_of!(V, mntns_id)),
                        names: None,
                    },
                    pid: k.u32(offset_of!(K, pid)),
                    tid: k.u32(offset_of!(K, tid)),
                    comm: v.cstr(offset_of!(V, comm), 16),
                    reads: v.u64(offset_of!(V, reads)),
                    writes: v.u64(offset_of!(V, writes)),
                    rbytes: v.u64(offset_of!(V, rbytes)),
                    wbytes: v.u64(offset_of!(V, wbytes)),
                    t: char::from_u32(v.u32(offset_of!(V, type_))).unwrap_or('?').to_string(),
                    file: v.cstr(offset_of!(V, name), IG_TOPFILE_NAME_LEN as usize),
                })
            })
            .collect())
    }
}
