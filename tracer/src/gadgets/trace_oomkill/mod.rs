//! `ig trace oomkill`: processes the OOM killer kills. Kernel side:
//! program.bpf.c (tracepoint oom/mark_victim).
//!
//! PAGES is the victim's resident memory in pages: the tracepoint does not
//! carry the size of the OOM domain.

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_oomkill_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_oomkill);

/// Trace processes killed by the OOM killer.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceOomkill {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct OomkillEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub kpid: u32,
    pub kcomm: String,
    pub pages: u64,
    pub tpid: u32,
    pub tcomm: String,
    pub tuid: u32,
    #[serde(rename = "oomScoreAdj")]
    pub oom_score_adj: i32,
}

crate::impl_has_common!(OomkillEvent);

const ATTACHMENTS: &[Attachment] = &[Attachment::tracepoint("ig_mark_victim", "oom", "mark_victim")];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceOomkill {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceOomkill {
    type Event = OomkillEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // OOM kills are rare.
    fn ring_bytes(&self) -> u32 {
        256 << 10
    }

    fn columns(&self) -> Vec<Column<OomkillEvent>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("kpid", 7, |e: &OomkillEvent| e.kpid.into()),
            Column::new("kcomm", 16, |e: &OomkillEvent| e.kcomm.as_str().into()),
            Column::new("pages", 8, |e: &OomkillEvent| e.pages.into()).max(12),
            Column::new("tpid", 7, |e: &OomkillEvent| e.tpid.into()),
            Column::new("tcomm", 16, |e: &OomkillEvent| e.tcomm.as_str().into()),
            Column::new("tuid", 7, |e: &OomkillEvent| e.tuid.into()).hidden().max(10),
            Column::new("oomScoreAdj", 6, |e: &OomkillEvent| e.oom_score_adj.into()).hidden(),
        ]);
        cols
    }

    fn count(&self, e: &OomkillEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        let _ = e;
        add(crate::metrics::Count::OomKills.into());
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<OomkillEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        Ok(OomkillEvent {
            common: crate::event_common!(r, clock, E),
            kpid: r.u32(offset_of!(E, kpid)),
            kcomm: r.cstr(offset_of!(E, kcomm), 16),
            pages: r.u64(offset_of!(E, pages)),
            tpid: r.u32(offset_of!(E, tpid)),
            tcomm: r.cstr(offset_of!(E, tcomm), 16),
            tuid: r.u32(offset_of!(E, tuid)),
            oom_score_adj: r.i32(offset_of!(E, oom_score_adj)),
        })
    }
}
