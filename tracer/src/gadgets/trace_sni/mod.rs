//! `ig trace sni`: the server name each TLS client asks for. Kernel side:
//! program.bpf.c (write/writev/sendto/sendmsg syscall tracepoints
//! copy ClientHello records); the name is read here (hello.rs).

pub mod hello;

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_sni_event as E};
use serde::Serialize;

use self::hello::server_name;
use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_sni);

/// Trace the server names (SNI) TLS clients ask for.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceSni {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct SniEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    #[serde(flatten)]
    pub process: Process,
    pub name: String,
}

crate::impl_has_common!(with_process: SniEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_sni_write", "sys_enter_write"),
    Attachment::syscall("ig_sni_writev", "sys_enter_writev"),
    Attachment::syscall("ig_sni_sendto", "sys_enter_sendto"),
    Attachment::syscall("ig_sni_sendmsg", "sys_enter_sendmsg"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceSni {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceSni {
    type Event = SniEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // One record per TLS handshake.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<SniEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::tid(),
            process::columns::comm(),
            Column::new("name", 30, |e: &SniEvent| e.name.as_str().into()).max(0),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("netns", 10, |e: &SniEvent| e.netnsid.into()).hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<SniEvent, DecodeError> {
        let header = offset_of!(E, hello);
        let r = Raw::new(bytes, header)?;
        let len = r.u32(offset_of!(E, hello_len)) as usize;
        let name = server_name(r.bytes(header, len))
            .map_err(|e| DecodeError::Malformed { what: "TLS ClientHello", reason: e.to_string() })?;
        Ok(SniEvent {
            common: crate::event_common!(r, clock, E, process),
            netnsid: r.u64(offset_of!(E, netns_id)),
            process: Process::decode(&r, offset_of!(E, process)),
            name: name.unwrap_or_default(),
        })
    }

    /// A hello without a server name (a client that connects by address)
    /// names nothing: it is not shown.
    fn wants(&self, e: &SniEvent) -> bool {
        !e.name.is_empty()
    }
}
