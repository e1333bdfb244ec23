//! `ig trace tcpconnect`: outgoing TCP connections, with `--latency` the
//! time from connect() to ESTABLISHED. Kernel side: program.bpf.c
//! (connect syscall tracepoints; sock/inet_sock_set_state for non-blocking
//! connects).

use std::mem::offset_of;
use std::time::Duration;

use self::bpf::{OBJECT, ig_tcpconnect_event as E};
use serde::Serialize;

use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw, endpoint, ip_string};
use crate::session::{Attachment, GadgetProgram, Global, Variant};

crate::bpf_object!(trace_tcpconnect);

/// Trace outgoing TCP connections, optionally with their latency.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceTcpconnect {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Show the time from connect() to ESTABLISHED (LATENCY column).
    #[arg(long)]
    pub latency: bool,

    /// Only connections that took at least this long (e.g. 5, 5ms, 250us); implies --latency.
    #[arg(long, value_parser = parse_min)]
    pub min: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpconnectEvent {
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
    /// Nanoseconds from connect() to ESTABLISHED; 0 without --latency.
    pub latency: u64,
}

crate::impl_has_common!(with_process: TcpconnectEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_connect_enter", "sys_enter_connect"),
    Attachment::syscall("ig_connect_exit", "sys_exit_connect"),
    Attachment::tracepoint("ig_sock_set_state", "sock", "inet_sock_set_state"),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

impl TraceTcpconnect {
    fn measuring(&self) -> bool {
        self.latency || self.min.is_some()
    }
}

impl GadgetProgram for TraceTcpconnect {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_latency", Global::Bool(self.measuring())),
            ("gadget_min_latency_ns", Global::U64(self.min.map_or(0, |d| d.as_nanos() as u64))),
        ]
    }
}

/// `1.234ms`, `56µs`: what a person reads in a column.
fn human(ns: u64) -> String {
    format!("{:?}", Duration::from_nanos(ns))
}

impl Gadget for TraceTcpconnect {
    type Event = TcpconnectEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // One record per connection attempt.
    fn ring_bytes(&self) -> u32 {
        1 << 20
    }

    fn columns(&self) -> Vec<Column<TcpconnectEvent>> {
        let mut cols = container_columns();
        let mut latency =
            Column::new("latency", 10, |e: &TcpconnectEvent| Value::Str(human(e.latency).into())).max(14);
        latency.visible = self.measuring();
        cols.extend([
            process::columns::pid(),
            process::columns::comm(),
            Column::new("ip", 2, |e: &TcpconnectEvent| u32::from(e.ipversion).into()),
            Column::new("src", 21, |e: &TcpconnectEvent| {
                Value::Str(endpoint(&e.saddr, e.sport, e.ipversion == 6).into())
            })
            .max(47),
            Column::new("dst", 21, |e: &TcpconnectEvent| {
                Value::Str(endpoint(&e.daddr, e.dport, e.ipversion == 6).into())
            })
            .max(47),
            latency,
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<TcpconnectEvent, DecodeError> {
        let r = Raw::new(bytes, size_of::<E>())?;
        let v6 = r.u16(offset_of!(E, family)) == libc::AF_INET6 as u16;
        let addr = |off: usize| ip_string(r.bytes(off, 16), v6);
        Ok(TcpconnectEvent {
            common: crate::event_common!(r, clock, E, process),
            netnsid: r.u64(offset_of!(E, netns_id)),
            process: Process::decode(&r, offset_of!(E, process)),
            ipversion: if v6 { 6 } else { 4 },
            saddr: addr(offset_of!(E, saddr)),
            sport: r.u16(offset_of!(E, sport)),
            daddr: addr(offset_of!(E, daddr)),
            dport: r.u16(offset_of!(E, dport)),
            latency: r.u64(offset_of!(E, latency_ns)),
        })
    }
}

/// Parses `--min`: milliseconds, or a number with ms/us/s.
pub fn parse_min(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "ms"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => Err(format!("bad unit in {s:?}: use ms, us or s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_min() {
        assert_eq!(parse_min("5"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_min("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_min("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_min("x").is_err() && parse_min("5h").is_err());
    }
}
