//! `ig top block-io`: block device I/O per process and device, every
//! interval. Kernel side: program.bpf.c (block_rq_issue/complete
//! tracepoints, counters summed in a hash map).

use std::mem::{offset_of, size_of};

use self::bpf::{OBJECT, ig_topblockio_key as K, ig_topblockio_value as V};
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::TopFlags;
use crate::event::EventCommon;
use crate::raw::Raw;
use crate::session::{Attachment, GadgetProgram, SessionError, Variant};
use crate::top::TopGadget;

crate::bpf_object!(top_blockio);

/// Show block device I/O per process and device: bytes, requests and the
/// time they took (issue to completion). The process is the one that issued
/// the request: the program itself for direct and synchronous I/O, a kernel
/// worker for writeback.
#[derive(Clone, Debug, clap::Args)]
pub struct TopBlockio {
    #[command(flatten)]
    pub top: TopFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlockioRow {
    #[serde(flatten)]
    pub common: EventCommon,
    pub pid: u32,
    pub comm: String,
    /// Whether the requests wrote.
    pub write: bool,
    pub major: u32,
    pub minor: u32,
    pub bytes: u64,
    /// Summed time from issue to completion, in microseconds.
    pub us: u64,
    pub io: u64,
}

crate::impl_has_common!(BlockioRow);

/// The programs of bpf/block.h and the gadget's own completion program
/// (each block-io gadget names it so).
pub const BLOCK_ATTACHMENTS: &[Attachment] = &[
    Attachment::tracepoint("ig_block_rq_issue", "block", "block_rq_issue"),
    Attachment::tracepoint("ig_block_rq_complete", "block", "block_rq_complete"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", BLOCK_ATTACHMENTS)];

impl GadgetProgram for TopBlockio {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

/// The kernel's internal dev_t: 12 bits of major, 20 of minor.
const MINOR_BITS: u32 = 20;

impl TopGadget for TopBlockio {
    type Row = BlockioRow;

    fn program(&self) -> Option<&dyn GadgetProgram> {
        Some(self)
    }

    fn top(&self) -> &TopFlags {
        &self.top
    }

    fn columns(&self) -> Vec<Column<BlockioRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("pid", 7, |r: &BlockioRow| r.pid.into()),
            Column::new("comm", 16, |r: &BlockioRow| r.comm.as_str().into()),
            Column::new("r/w", 3, |r: &BlockioRow| if r.write { "W" } else { "R" }.into()),
            Column::new("major", 5, |r: &BlockioRow| r.major.into()).right(),
            Column::new("minor", 5, |r: &BlockioRow| r.minor.into()).right(),
            Column::new("bytes", 10, |r: &BlockioRow| r.bytes.into()).max(16).right(),
            Column::new("us", 10, |r: &BlockioRow| r.us.into()).max(16).right(),
            Column::new("io", 6, |r: &BlockioRow| r.io.into()).max(12).right(),
        ]);
        cols
    }

    fn default_sort(&self) -> &'static str {
        "-bytes,-io"
    }

    fn collect(
        &self,
        source: &mut crate::top::Source<'_>,
        now: u64,
    ) -> Result<Vec<BlockioRow>, SessionError> {
        let session = source.session()?;
        let entries = session.take_entries::<{ size_of::<K>() }, { size_of::<V>() }>("io_stats")?;
        Ok(entries
            .iter()
            .filter_map(|(k, v)| {
                let k = Raw::new(k, size_of::<K>()).ok()?;
                let v = Raw::new(v, size_of::<V>()).ok()?;
                let dev = k.u32(offset_of!(K, dev));
                Some(BlockioRow {
                    common: EventCommon {
                        container: None,
                        timestamp: now,
                        mntns: v.u64(offset_of!(V, mntns_id)),
                        names: None,
                    },
                    pid: k.u32(offset_of!(K, pid)),
                    comm: v.cstr(offset_of!(V, comm), 16),
                    write: k.u32(offset_of!(K, write)) != 0,
                    major: dev >> MINOR_BITS,
                    minor: dev & ((1 << MINOR_BITS) - 1),
                    bytes: v.u64(offset_of!(V, bytes)),
                    us: v.u64(offset_of!(V, ns)) / 1000,
                    io: v.u64(offset_of!(V, ios)),
                })
            })
            .collect())
    }
}
