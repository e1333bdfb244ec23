//! `ig trace tcp`: TCP connections connected (C), accepted (A) and closed
//! (X), with their local (SRC) and remote (DST) ends. Kernel side:
//! program.bpf.c (connect/accept/close syscall tracepoints).

use std::mem::offset_of;

use self::bpf::{IG_TCP_ACCEPT, IG_TCP_CLOSE, OBJECT, ig_tcp_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw, endpoint, ip_string};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_tcp);

/// Trace TCP connections: connect (C), accept (A), close (X).
#[derive(Clone, Debug, clap::Args)]
pub struct TraceTcp {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    /// connect, accept or close.
    pub operation: &'static str,
    #[serde(flatten)]
    pub process: Process,
    pub ipversion: u8,
    pub saddr: String,
    pub sport: u16,
    pub daddr: String,
    pub dport: u16,
}

impl TcpEvent {
    fn t(&self) -> &'static str {
        match self.operation {
            "connect" => "C",
            "accept" => "A",
            _ => "X",
        }
    }
}

crate::impl_has_common!(with_process: TcpEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_connect_enter", "sys_enter_connect"),
    Attachment::syscall("ig_connect_exit", "sys_exit_connect"),
    Attachment::syscall("ig_accept_exit", "sys_exit_accept").optional(),
    Attachment::syscall("ig_accept4_exit", "sys_exit_accept4"),
    Attachment::syscall("ig_close_enter", "sys_enter_close"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceTcp {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceTcp {
    type Event = TcpEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn count(&self, e: &TcpEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        match e.operation {
            "connect" => add(crate::metrics::Count::TcpConnects.into()),
            "accept" => add(crate::metrics::Count::TcpAccepts.into()),
            _ => {}
        }
    }

    // One record per connect, accept and close, not per packet.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<TcpEvent>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("t", 1, |e: &TcpEvent| e.t().into()),
            process::columns::pid(),
            process::columns::comm(),
            Column::new("ip", 2, |e: &TcpEvent| u32::from(e.ipversion).into()),
            Column::new("src", 21, |e: &TcpEvent| {
                Value::Str(endpoint(&e.saddr, e.sport, e.ipversion == 6).into())
            })
            .max(47),
            Column::new("dst", 21, |e: &TcpEvent| {
                Value::Str(endpoint(&e.daddr, e.dport, e.ipversion == 6).into())
            })
            .max(47),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("netns", 10, |e: &TcpEvent| e.netnsid.into()).hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<TcpEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let v6 = r.u16(offset_of!(E, family)) == libc::AF_INET6 as u16;
        let addr = |off: usize| ip_string(r.bytes(off, 16), v6);
        Ok(TcpEvent {
            common: crate::event_common!(r, clock, E, process),
            netnsid: r.u64(offset_of!(E, netns_id)),
            operation: match r.u32(offset_of!(E, op)) {
                IG_TCP_ACCEPT => "accept",
                IG_TCP_CLOSE => "close",
                _ => "connect",
            },
            process: Process::decode(&r, offset_of!(E, process)),
            ipversion: if v6 { 6 } else { 4 },
            saddr: addr(offset_of!(E, saddr)),
            sport: r.u16(offset_of!(E, sport)),
            daddr: addr(offset_of!(E, daddr)),
            dport: r.u16(offset_of!(E, dport)),
        })
    }
}
