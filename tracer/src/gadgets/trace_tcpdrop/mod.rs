//! `ig trace tcpdrop`: TCP packets the kernel drops, with its reason.
//! Kernel side: program.bpf.c (tracepoint skb/kfree_skb; the socket's
//! owner from bpf/sock_owners.h); reason names from the running kernel
//! (reasons.rs).

use std::mem::offset_of;
use std::sync::Arc;

use self::bpf::{OBJECT, ig_tcpdrop_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::Process;
use crate::raw::{DecodeError, Raw, ip_string};
use crate::session::{Attachment, GadgetProgram, Variant};

pub mod reasons;

crate::bpf_object!(trace_tcpdrop);

/// Trace TCP packets dropped by the kernel, with the reason.
///
/// SRC and DST are the packet's own (SRC sent it). PID and COMM are its
/// socket's owner (the task that connected, listened or accepted it): a
/// packet for no socket, such as one to a closed port, has none (PID 0) and
/// is named after the container owning the network namespace it was
/// dropped in. REASON is empty on kernels before 5.17 (they give none).
#[derive(Clone, Debug, clap::Args)]
pub struct TraceTcpdrop {
    #[command(flatten)]
    pub common: CommonFlags,

    #[arg(skip)]
    reasons: Arc<std::sync::OnceLock<reasons::DropReasons>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpdropEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    #[serde(flatten)]
    pub process: Process,
    pub ipversion: u8,
    pub saddr: String,
    pub sport: u16,
    pub daddr: String,
    pub dport: u16,
    /// The socket's state; empty for a packet without a socket.
    pub state: &'static str,
    pub tcpflags: String,
    pub reason: String,
    #[serde(skip)]
    owner_known: bool,
}

crate::impl_has_common!(with_process: TcpdropEvent);
crate::impl_sock_event!(TcpdropEvent);

use super::trace_tcpretrans::SOCK_OWNER_ATTACHMENTS;

const ATTACHMENTS: &[Attachment] = &[
    Attachment::tracepoint("ig_kfree_skb", "skb", "kfree_skb"),
    SOCK_OWNER_ATTACHMENTS[0],
    SOCK_OWNER_ATTACHMENTS[1],
    SOCK_OWNER_ATTACHMENTS[2],
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceTcpdrop {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceTcpdrop {
    type Event = TcpdropEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<TcpdropEvent>> {
        let mut cols = container_columns();
        cols.extend(super::sock_event::head());
        cols.extend([
            Column::new("state", 11, |e: &TcpdropEvent| e.state.into()).max(12),
            Column::new("tcpflags", 8, |e: &TcpdropEvent| e.tcpflags.as_str().into()).max(32),
            Column::new("reason", 16, |e: &TcpdropEvent| e.reason.as_str().into()).max(40),
        ]);
        cols.extend(super::sock_event::tail());
        cols
    }

    fn unowned_netns(&self, e: &TcpdropEvent) -> Option<u64> {
        (!e.owner_known).then_some(e.netnsid)
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<TcpdropEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let v6 = r.u16(offset_of!(E, family)) == libc::AF_INET6 as u16;
        let addr = |off: usize| ip_string(r.bytes(off, 16), v6);
        let byte = |off: usize| r.bytes(off, 1)[0];
        let reasons = self.reasons.get_or_init(reasons::DropReasons::load);
        Ok(TcpdropEvent {
            common: crate::event_common!(r, clock, E, process),
            netnsid: r.u64(offset_of!(E, netns_id)),
            process: Process::decode(&r, offset_of!(E, process)),
            ipversion: if v6 { 6 } else { 4 },
            saddr: addr(offset_of!(E, saddr)),
            sport: r.u16(offset_of!(E, sport)),
            daddr: addr(offset_of!(E, daddr)),
            dport: r.u16(offset_of!(E, dport)),
            state: match byte(offset_of!(E, has_sock)) {
                0 => "",
                _ => crate::tcp::state_name(byte(offset_of!(E, state))),
            },
            tcpflags: crate::tcp::flags_string(byte(offset_of!(E, tcpflags))),
            reason: reasons.name(r.u32(offset_of!(E, reason))),
            owner_known: byte(offset_of!(E, owner_known)) != 0,
        })
    }
}
