//! `ig trace ssl`: the plaintext of TLS reads and writes. Kernel side:
//! program.bpf.c (uprobes on libssl's and libgnutls's read and write
//! functions); placed per container on the libraries of its own root
//! (libraries.rs, probes.rs).

pub mod libraries;
mod overlay;
pub mod probes;

use std::mem::offset_of;

use self::bpf::{IG_SSL_MAX_DATA, OBJECT, ig_ssl_event as E};
use serde::Serialize;

use super::{Column, Gadget, PerContainer, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::event_process::{self as process, Process};
use crate::raw::{DecodeError, Raw};
use crate::session::{Attachment, GadgetProgram, Global, Session, SessionError, Variant};

crate::bpf_object!(trace_ssl);

/// Trace the plaintext of TLS reads and writes (OpenSSL, GnuTLS).
///
/// Uprobes on SSL_read, SSL_write, SSL_read_ex, SSL_write_ex,
/// gnutls_record_recv and gnutls_record_send of every libssl and libgnutls
/// in a selected container's own root (and the host's, with --host), in
/// the directories the dynamic loader searches. TLS linked into a program
/// (Go's crypto/tls, rustls, a static BoringSSL) is not seen.
#[derive(Clone, Debug, clap::Args)]
pub struct TraceSsl {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Plaintext bytes shown per call, at most (0 to 8192).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(0..=IG_SSL_MAX_DATA as i64))]
    pub max_bytes: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct SslEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub process: Process,
    /// The function: SSL_write, gnutls_record_recv, ...
    pub operation: &'static str,
    /// "openssl" or "gnutls".
    pub library: &'static str,
    /// "read" or "write".
    pub direction: &'static str,
    /// Plaintext bytes the call moved.
    pub len: u64,
    /// Nanoseconds in the call.
    pub latency: u64,
    /// Its first bytes (--max-bytes): printable ASCII as is, \n \r \t \\
    /// escaped, any other byte as \xNN.
    pub data: String,
    /// len is more than the bytes in data.
    pub truncated: bool,
}

crate::impl_has_common!(with_process: SslEvent);

/// (operation, library, direction) by enum ig_ssl_op.
const OPS: &[(&str, &str, &str)] = &[
    ("SSL_read", "openssl", "read"),
    ("SSL_write", "openssl", "write"),
    ("SSL_read_ex", "openssl", "read"),
    ("SSL_write_ex", "openssl", "write"),
    ("gnutls_record_recv", "gnutls", "read"),
    ("gnutls_record_send", "gnutls", "write"),
];

const ATTACHMENTS: &[Attachment] = &[
    Attachment::uprobe("ig_ssl_read_enter", "SSL_read"),
    Attachment::uprobe("ig_ssl_write_enter", "SSL_write"),
    Attachment::uprobe("ig_ssl_read_ex_enter", "SSL_read_ex"),
    Attachment::uprobe("ig_ssl_write_ex_enter", "SSL_write_ex"),
    Attachment::uprobe("ig_gnutls_recv_enter", "gnutls_record_recv"),
    Attachment::uprobe("ig_gnutls_send_enter", "gnutls_record_send"),
    Attachment::uretprobe(probes::RETURN_PROGRAM),
];

const VARIANTS: &[Variant] = &[Variant::new("uprobe", ATTACHMENTS)];

impl GadgetProgram for TraceSsl {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![("gadget_max_bytes", Global::U32(self.max_bytes))]
    }
}

/// Bytes as text that keeps every byte: see [`SslEvent::data`].
pub fn escape(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

impl Gadget for TraceSsl {
    type Event = SslEvent;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn columns(&self) -> Vec<Column<SslEvent>> {
        let mut cols = container_columns();
        cols.extend([
            process::columns::pid(),
            process::columns::tid().hidden(),
            process::columns::comm(),
            Column::new("operation", 18, |e: &SslEvent| e.operation.into()),
            Column::new("len", 7, |e: &SslEvent| e.len.into()).max(12).right(),
            Column::new("data", 40, |e: &SslEvent| e.data.as_str().into()).max(0),
            Column::new("library", 7, |e: &SslEvent| e.library.into()).hidden(),
            Column::new("direction", 5, |e: &SslEvent| e.direction.into()).hidden(),
            Column::new("latency", 10, |e: &SslEvent| e.latency.into()).hidden().right(),
            Column::new("truncated", 5, |e: &SslEvent| Value::Bool(e.truncated)).hidden(),
            process::columns::uid().hidden(),
            process::columns::gid().hidden(),
        ]);
        cols
    }

    fn decode(&self, bytes: &[u8], clock: &Clock) -> Result<SslEvent, DecodeError> {
        let header = offset_of!(E, data);
        let r = Raw::new(bytes, header)?;
        let op = r.u32(offset_of!(E, op)) as usize;
        let &(operation, library, direction) = OPS.get(op).ok_or_else(|| DecodeError::Malformed {
            what: "TLS call",
            reason: format!("operation {op} is none of trace ssl's"),
        })?;
        let copied = r.u32(offset_of!(E, data_len)) as usize;
        let len = r.u64(offset_of!(E, len));
        Ok(SslEvent {
            common: crate::event_common!(r, clock, E, process),
            process: Process::decode(&r, offset_of!(E, process)),
            operation,
            library,
            direction,
            len,
            latency: r.u64(offset_of!(E, latency_ns)),
            data: escape(r.bytes(header, copied)),
            truncated: len > copied as u64,
        })
    }

    fn per_container(&self, session: &Session) -> Result<Option<Box<dyn PerContainer>>, SessionError> {
        Ok(Some(Box::new(probes::Probes::new(session)?)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_keeps_every_byte_and_only_printable_ascii_as_is() {
        assert_eq!(
            super::escape(b"GET / HTTP/1.1\r\nHost: a\\b\t\x00\xff"),
            "GET / HTTP/1.1\\r\\nHost: a\\\\b\\t\\x00\\xff"
        );
    }

    #[test]
    fn each_operation_the_kernel_names_is_the_function_its_entry_program_is_placed_on() {
        use super::bpf::*;
        use super::libraries::Kind;
        let ops = [
            IG_SSL_OP_SSL_READ,
            IG_SSL_OP_SSL_WRITE,
            IG_SSL_OP_SSL_READ_EX,
            IG_SSL_OP_SSL_WRITE_EX,
            IG_SSL_OP_GNUTLS_RECV,
            IG_SSL_OP_GNUTLS_SEND,
        ];
        assert_eq!(ops.len(), super::OPS.len());
        for op in ops {
            let (name, library, _) = super::OPS[op as usize];
            let kind = if library == "openssl" { Kind::OpenSsl } else { Kind::GnuTls };
            let placed = super::probes::functions(kind).iter().find(|(f, _)| *f == name).map(|(_, p)| *p);
            assert_eq!(placed, Some(super::probes::ENTRY_PROGRAMS[op as usize]), "{name}");
        }
    }
}
