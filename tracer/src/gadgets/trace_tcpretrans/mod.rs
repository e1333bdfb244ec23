//! `ig trace tcpretrans`: TCP segments sent again, with the connection's
//! ends, state and congestion state. Kernel side: program.bpf.c (tracepoint
//! tcp/tcp_retransmit_skb; the socket's owner from bpf/sock_owners.h).

use std::mem::offset_of;

use self::bpf::{OBJECT, ig_tcpretrans_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::Process;
use crate::raw::{DecodeError, Raw, ip_string};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_tcpretrans);

/// Trace TCP retransmissions.
///
/// PID and COMM are the socket's owner (the task that connected, listened
/// or accepted it), not the task on the CPU: retransmissions run from
/// timers. A connection made before the gadget started has no known owner
/// (PID 0); it is named after the container owning its network namespace.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceTcpretrans {
    #[command(flatten)]
    pub common: CommonFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpretransEvent {
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
    pub state: &'static str,
    pub tcpflags: String,
    /// `Loss` after a retransmission timeout, `Recovery` in fast retransmit.
    #[serde(rename = "congestionState")]
    pub ca_state: &'static str,
    #[serde(skip)]
    owner_known: bool,
}

crate::impl_has_common!(with_process: TcpretransEvent);
crate::impl_sock_event!(TcpretransEvent);

/// The programs of bpf/sock_owners.h, in every gadget that includes it.
pub const SOCK_OWNER_ATTACHMENTS: [Attachment; 3] = [
    Attachment::tracepoint("ig_owner_state", "sock", "inet_sock_set_state"),
    Attachment::syscall("ig_owner_accept4", "sys_exit_accept4"),
    Attachment::syscall("ig_owner_accept", "sys_exit_accept"),
];

const ATTACHMENTS: &[Attachment] = &[
    Attachment::tracepoint("ig_tcp_retransmit", "tcp", "tcp_retransmit_skb"),
    SOCK_OWNER_ATTACHMENTS[0],
    SOCK_OWNER_ATTACHMENTS[1],
    SOCK_OWNER_ATTACHMENTS[2],
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceTcpretrans {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl Gadget for TraceTcpretrans {
    type Event = TcpretransEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Retransmissions come in bursts on a bad path, not at open-storm rates.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<TcpretransEvent>> {
        let mut cols = container_columns();
        cols.extend(super::sock_event::head());
        cols.extend([
            Column::new("state", 11, |e: &TcpretransEvent| e.state.into()).max(12),
            Column::new("tcpflags", 8, |e: &TcpretransEvent| e.tcpflags.as_str().into()).max(32),
            Column::new("congestionState", 8, |e: &TcpretransEvent| e.ca_state.into()).hidden(),
        ]);
        cols.extend(super::sock_event::tail());
        cols
    }

    fn unowned_netns(&self, e: &TcpretransEvent) -> Option<u64> {
        (!e.owner_known).then_some(e.netnsid)
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<TcpretransEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let v6 = r.u16(offset_of!(E, family)) == libc::AF_INET6 as u16;
        let addr = |off: usize| ip_string(r.bytes(off, 16), v6);
        let byte = |off: usize| r.bytes(off, 1)[0];
        Ok(TcpretransEvent {
            common: crate::event_common!(r, clock, E, process),
            netnsid: r.u64(offset_of!(E, netns_id)),
            process: Process::decode(&r, offset_of!(E, process)),
            ipversion: if v6 { 6 } else { 4 },
            saddr: addr(offset_of!(E, saddr)),
            sport: r.u16(offset_of!(E, sport)),
            daddr: addr(offset_of!(E, daddr)),
            dport: r.u16(offset_of!(E, dport)),
            state: crate::tcp::state_name(byte(offset_of!(E, state))),
            tcpflags: crate::tcp::flags_string(byte(offset_of!(E, tcpflags))),
            ca_state: crate::tcp::ca_state_name(byte(offset_of!(E, ca_state))),
            owner_known: byte(offset_of!(E, owner_known)) != 0,
        })
    }
}
