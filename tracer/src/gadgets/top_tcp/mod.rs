//! `ig top tcp`: bytes sent and received per process and TCP connection,
//! every interval. Kernel side: program.bpf.c (the sock_send_length
//! and sock_recv_length tracepoints, counters summed in a hash map).

use std::mem::{offset_of, size_of};

use self::bpf::{OBJECT, ig_toptcp_key as K, ig_toptcp_value as V};
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::TopFlags;
use crate::event::EventCommon;
use crate::raw::{Raw, endpoint, ip_string};
use crate::session::{Attachment, GadgetProgram, SessionError, Variant};
use crate::top::TopGadget;

crate::bpf_object!(top_tcp);

/// Bytes sent and received per TCP connection.
#[derive(Clone, Debug, clap::Args)]
pub struct TopTcp {
    #[command(flatten)]
    pub top: TopFlags,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpRow {
    #[serde(flatten)]
    pub common: EventCommon,
    pub pid: u32,
    pub comm: String,
    /// 4 or 6.
    pub ip: u8,
    pub src: String,
    pub dst: String,
    pub sent: u64,
    pub recv: u64,
}

crate::impl_has_common!(TcpRow);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::tracepoint("ig_tcp_send", "sock", "sock_send_length").since("6.3"),
    Attachment::tracepoint("ig_tcp_recv", "sock", "sock_recv_length").since("6.3"),
];

/// Before Linux 6.3: the TCP send and receive paths themselves.
const KPROBES: &[Attachment] = &[
    Attachment::kprobe("ig_tcp_sendmsg_entry", "tcp_sendmsg"),
    Attachment::kretprobe("ig_tcp_sendmsg_exit", "tcp_sendmsg"),
    Attachment::kprobe("ig_tcp_cleanup_rbuf", "tcp_cleanup_rbuf"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS), Variant::new("kprobe", KPROBES)];

impl GadgetProgram for TopTcp {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl TopGadget for TopTcp {
    type Row = TcpRow;

    fn program(&self) -> Option<&dyn GadgetProgram> {
        Some(self)
    }

    fn top(&self) -> &TopFlags {
        &self.top
    }

    fn columns(&self) -> Vec<Column<TcpRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("pid", 7, |r: &TcpRow| r.pid.into()),
            Column::new("comm", 16, |r: &TcpRow| r.comm.as_str().into()),
            Column::new("ip", 2, |r: &TcpRow| u32::from(r.ip).into()),
            Column::new("src", 21, |r: &TcpRow| r.src.as_str().into()).max(47),
            Column::new("dst", 21, |r: &TcpRow| r.dst.as_str().into()).max(47),
            Column::new("sent", 8, |r: &TcpRow| r.sent.into()).max(14).right(),
            Column::new("recv", 8, |r: &TcpRow| r.recv.into()).max(14).right(),
        ]);
        cols
    }

    fn default_sort(&self) -> &'static str {
        "-sent,-recv"
    }

    fn collect(&self, source: &mut crate::top::Source<'_>, now: u64) -> Result<Vec<TcpRow>, SessionError> {
        let session = source.session()?;
        let entries = session.take_entries::<{ size_of::<K>() }, { size_of::<V>() }>("tcp_stats")?;
        Ok(entries
            .iter()
            .filter_map(|(k, v)| {
                let k = Raw::new(k, size_of::<K>()).ok()?;
                let v = Raw::new(v, size_of::<V>()).ok()?;
                let v6 = k.u16(offset_of!(K, family)) == libc::AF_INET6 as u16;
                let addr = |off: usize| ip_string(k.bytes(off, 16), v6);
                Some(TcpRow {
                    common: EventCommon {
                        container: None,
                        timestamp: now,
                        mntns: v.u64(offset_of!(V, mntns_id)),
                        names: None,
                    },
                    pid: k.u32(offset_of!(K, pid)),
                    comm: v.cstr(offset_of!(V, comm), 16),
                    ip: if v6 { 6 } else { 4 },
                    src: endpoint(&addr(offset_of!(K, saddr)), k.u16(offset_of!(K, sport)), v6),
                    dst: endpoint(&addr(offset_of!(K, daddr)), k.u16(offset_of!(K, dport)), v6),
                    sent: v.u64(offset_of!(V, sent)),
                    recv: v.u64(offset_of!(V, received)),
                })
            })
            .collect())
    }
}
