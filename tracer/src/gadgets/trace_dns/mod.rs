//! `ig trace dns`: DNS queries (Q) and responses (R) over UDP, seen as
//! packets in every network namespace, each with the task that sends or
//! receives it. Kernel side: program.bpf.c (net_dev_queue and
//! netif_receive_skb raw tracepoints; the bind syscall tracepoint to know
//! DNS servers). The message itself is read here (message.rs).

pub mod message;

use std::collections::HashMap;
use std::mem::offset_of;
use std::sync::Mutex;
use std::time::Duration;

use self::bpf::{IG_DNS_PKT_OUTGOING, OBJECT, ig_dns_event as E};
use serde::Serialize;

use self::message::{rcode_name, type_name};
use super::{Column, Gadget, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw, ip_string};
use crate::session::{Attachment, GadgetProgram, Variant};

crate::bpf_object!(trace_dns);

/// Queries are remembered this long for the latency of their response.
const QUERY_MEMORY: Duration = Duration::from_secs(10);
/// At most this many queries are remembered (the oldest go first).
const MAX_QUERIES: usize = 16 * 1024;

/// Trace DNS queries and responses (UDP port 53), in every network namespace.
#[derive(Debug, clap::Args)]
pub struct TraceDns {
    #[command(flatten)]
    pub common: CommonFlags,

    #[arg(skip)]
    /// Recent queries, for the latency of their responses.
    queries: Mutex<HashMap<QueryKey, Sighting>>,
}

/// A query and its response share the id, the question, the client's end
/// and the network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct QueryKey {
    netns: u64,
    id: u16,
    name: String,
    qtype: u16,
    client: String,
    client_port: u16,
}

#[derive(Clone, Copy, Debug)]
struct Sighting {
    /// When the query was first seen (ns).
    sent: u64,
    answered: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    #[serde(flatten)]
    pub process: Process,
    /// The message id, 4 hex digits.
    pub id: String,
    /// Q (query) or R (response).
    pub qr: &'static str,
    /// The server's address: the destination of a query, the source of a response.
    pub nameserver: String,
    /// HOST (arriving) or OUTGOING (leaving).
    pub pkt_type: &'static str,
    pub qtype: String,
    pub name: String,
    /// Empty for queries.
    pub rcode: String,
    /// The rcode as a number (for the metrics), 0 for queries.
    #[serde(skip)]
    pub rcode_number: u8,
    /// Nanoseconds from the query to this response; 0 for queries and when
    /// the query was not seen.
    pub latency: u64,
    pub num_answers: u16,
    pub addresses: Vec<String>,
    #[serde(rename = "srcIP")]
    pub src_ip: String,
    #[serde(rename = "dstIP")]
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: &'static str,
    /// The message was longer than what was captured (answers may be missing).
    pub truncated: bool,
}

crate::impl_has_common!(with_process: DnsEvent);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::raw("ig_dns_egress", "net_dev_queue"),
    Attachment::raw("ig_dns_ingress", "netif_receive_skb"),
    Attachment::syscall("ig_dns_bind", "sys_enter_bind"),
];

const VARIANTS: &[Variant] = &[Variant::new("raw tracepoint", ATTACHMENTS)];

impl GadgetProgram for TraceDns {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

/// `1.234ms`, `56µs`; empty when unknown.
fn human(ns: u64) -> String {
    if ns == 0 { String::new() } else { format!("{:?}", Duration::from_nanos(ns)) }
}

impl TraceDns {
    /// Remembers a query's first sighting, or returns the latency of a
    /// response. A query seen again before its response (on loopback it is
    /// seen leaving and arriving) keeps its first time; one answered already
    /// is kept too (the response is seen twice as well) until the same query
    /// is sent again.
    fn latency(&self, key: QueryKey, response: bool, at: u64) -> u64 {
        let mut queries = self.queries.lock().expect("query table lock");
        if response {
            return match queries.get_mut(&key) {
                Some(s) => {
                    s.answered = true;
                    at.saturating_sub(s.sent)
                }
                None => 0,
            };
        }
        if queries.len() >= MAX_QUERIES {
            let horizon = at.saturating_sub(QUERY_MEMORY.as_nanos() as u64);
            queries.retain(|_, s| s.sent >= horizon);
            if queries.len() >= MAX_QUERIES {
                queries.clear();
            }
        }
        let fresh = Sighting { sent: at, answered: false };
        let s = queries.entry(key).or_insert(fresh);
        if s.answered {
            *s = fresh;
        }
        0
    }
}

impl Gadget for TraceDns {
    type Event = DnsEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    // A container's side of its lookups: the queries it sends and the
    // responses it gets (a server's side would count them again).
    fn count(&self, e: &DnsEvent, add: &mut dyn FnMut(crate::metrics::Sample)) {
        use crate::metrics::{Count, Sample};
        match (e.qr, e.pkt_type) {
            ("Q", "OUTGOING") => add(Count::DnsQueries.into()),
            ("R", "HOST") => {
                add(Count::DnsResponses { rcode: e.rcode_number }.into());
                if e.latency > 0 {
                    add(Sample::DnsLatency(e.latency));
                }
            }
            _ => {}
        }
    }

    fn columns(&self) -> Vec<Column<DnsEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::tid(),
            process::columns::comm(),
            Column::new("qr", 2, |e: &DnsEvent| e.qr.into()),
            Column::new("type", 9, |e: &DnsEvent| e.pkt_type.into()),
            Column::new("qtype", 5, |e: &DnsEvent| e.qtype.as_str().into()).max(10),
            Column::new("name", 30, |e: &DnsEvent| e.name.as_str().into()).max(0),
            Column::new("rcode", 8, |e: &DnsEvent| e.rcode.as_str().into()),
            Column::new("numAnswers", 10, |e: &DnsEvent| u32::from(e.num_answers).into()).right(),
            Column::new("id", 4, |e: &DnsEvent| e.id.as_str().into()).hidden(),
            Column::new("nameserver", 15, |e: &DnsEvent| e.nameserver.as_str().into()).hidden().max(39),
            Column::new("srcIP", 15, |e: &DnsEvent| e.src_ip.as_str().into()).hidden().max(39),
            Column::new("dstIP", 15, |e: &DnsEvent| e.dst_ip.as_str().into()).hidden().max(39),
            Column::new("srcPort", 7, |e: &DnsEvent| u32::from(e.src_port).into()).hidden(),
            Column::new("dstPort", 7, |e: &DnsEvent| u32::from(e.dst_port).into()).hidden(),
            Column::new("protocol", 8, |e: &DnsEvent| e.protocol.into()).hidden(),
            Column::new("latency", 10, |e: &DnsEvent| Value::Str(human(e.latency).into())).hidden().max(14),
            Column::new("addresses", 32, |e: &DnsEvent| Value::List(&e.addresses)).hidden().max(0),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
            Column::new("netns", 10, |e: &DnsEvent| e.netnsid.into()).hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<DnsEvent, DecodeError> {
        let header = offset_of!(E, msg);
        let r = Raw::new(bytes, header)?;
        let v6 = r.0[offset_of!(E, ipversion)] == 6;
        let addr = |off: usize| ip_string(r.bytes(off, 16), v6);
        let len = usize::from(r.u16(offset_of!(E, msg_len)));
        let msg = r.bytes(header, len);
        let m = message::parse(msg)
            .map_err(|e| DecodeError::Malformed { what: "DNS message", reason: e.to_string() })?;
        let (src_ip, dst_ip) = (addr(offset_of!(E, saddr)), addr(offset_of!(E, daddr)));
        let (src_port, dst_port) = (r.u16(offset_of!(E, sport)), r.u16(offset_of!(E, dport)));
        let netnsid = r.u64(offset_of!(E, netns_id));
        let common = crate::event_common!(r, clock, E, process);
        let (client, client_port, nameserver) = if m.response {
            (dst_ip.clone(), dst_port, src_ip.clone())
        } else {
            (src_ip.clone(), src_port, dst_ip.clone())
        };
        let key =
            QueryKey { netns: netnsid, id: m.id, name: m.name.clone(), qtype: m.qtype, client, client_port };
        let latency = self.latency(key, m.response, common.timestamp);
        Ok(DnsEvent {
            common,
            netnsid,
            process: Process::decode(&r, offset_of!(E, process)),
            id: format!("{:04x}", m.id),
            qr: if m.response { "R" } else { "Q" },
            nameserver,
            pkt_type: if u32::from(r.0[offset_of!(E, pkt_type)]) == IG_DNS_PKT_OUTGOING {
                "OUTGOING"
            } else {
                "HOST"
            },
            qtype: type_name(m.qtype),
            name: m.name,
            rcode: if m.response { rcode_name(m.rcode) } else { String::new() },
            rcode_number: if m.response { m.rcode } else { 0 },
            latency,
            num_answers: m.answer_count,
            addresses: m.addresses.iter().map(ToString::to_string).collect(),
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            protocol: "UDP",
            truncated: len < usize::from(r.u16(offset_of!(E, msg_total))),
        })
    }
}
