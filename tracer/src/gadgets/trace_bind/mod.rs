//! `ig trace bind`: IPv4/IPv6 sockets bound to an address and port, with
//! the protocol, the options in effect and the bound interface. Kernel side:
//! program.bpf.c (syscall tracepoints).

use std::mem::offset_of;

use self::bpf::{
    IG_BIND_FREEBIND, IG_BIND_NO_PORT, IG_BIND_REUSEADDR, IG_BIND_REUSEPORT, IG_BIND_TRANSPARENT, OBJECT,
    ig_bind_event as E,
};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw, ip_string};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_bind);

/// Trace sockets bound to an address and port.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceBind {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only these ports (comma-separated).
    #[arg(short = 'P', long, value_delimiter = ',')]
    pub ports: Vec<u16>,

    /// Leave out failed binds (`-i false` shows them).
    #[arg(short = 'i', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ignore_errors: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BindEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// TCP, UDP, or the protocol number.
    pub proto: String,
    pub addr: String,
    pub port: u16,
    /// F(reebind) T(ransparent) N(o port) R(euseaddr) r(euseport), `.` when unset.
    pub opts: String,
    /// The bound interface's name (host namespace), empty when unbound.
    pub interface: String,
    pub ret: i32,
}

crate::impl_has_common!(with_process: BindEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_bind_enter", "sys_enter_bind"),
    Attachment::syscall("ig_bind_exit", "sys_exit_bind"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceBind {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![(crate::bpf::IGNORE_ERRORS, Global::Bool(self.ignore_errors))]
    }
}

impl Gadget for TraceBind {
    type Event = BindEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // Binds come with new servers and UDP clients, not with traffic.
    fn ring_bytes(&self) -> u32 {
        512 << 10
    }

    fn columns(&self) -> Vec<Column<BindEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("proto", 5, |e: &BindEvent| e.proto.as_str().into()).max(8),
            Column::new("addr", 16, |e: &BindEvent| e.addr.as_str().into()).max(39),
            Column::new("port", 5, |e: &BindEvent| u32::from(e.port).into()),
            Column::new("opts", 5, |e: &BindEvent| e.opts.as_str().into()),
            Column::new("if", 8, |e: &BindEvent| e.interface.as_str().into()).max(16),
            Column::new("ret", 4, |e: &BindEvent| e.ret.into()).hidden().max(6),
            process::columns::tid().hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn wants(&self, e: &BindEvent) -> bool {
        self.ports.is_empty() || self.ports.contains(&e.port)
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<BindEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let v6 = r.u16(offset_of!(E, family)) != libc::AF_INET as u16;
        let addr = ip_string(r.bytes(offset_of!(E, addr), 16), v6);
        let opts = u32::from(r.u16(offset_of!(E, opts)));
        let flag = |bit: u32, c: char| if opts & bit != 0 { c } else { '.' };
        Ok(BindEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            proto: match r.u16(offset_of!(E, protocol)) {
                6 => "TCP".into(),
                17 => "UDP".into(),
                p => p.to_string(),
            },
            addr,
            port: r.u16(offset_of!(E, port)),
            opts: [
                flag(IG_BIND_FREEBIND, 'F'),
                flag(IG_BIND_TRANSPARENT, 'T'),
                flag(IG_BIND_NO_PORT, 'N'),
                flag(IG_BIND_REUSEADDR, 'R'),
                flag(IG_BIND_REUSEPORT, 'r'),
            ]
            .iter()
            .collect(),
            interface: interface_name(r.u32(offset_of!(E, bound_dev_if))),
            ret: r.i32(offset_of!(E, retval)),
        })
    }
}

/// The name of interface `index` in this network namespace; empty for 0.
fn interface_name(index: u32) -> String {
    if index == 0 {
        return String::new();
    }
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return index.to_string();
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}
