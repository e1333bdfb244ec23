//! Pins what users see of every gadget: the column names (visible ones
//! marked), in order, and the JSON keys of one event, against golden.txt.
//! A change here is a user-visible change: regenerate the file with
//! `IG_UPDATE_GOLDEN=1 cargo test -p tracer golden` only when it is meant.

use serde::Serialize;

use super::Column;
use crate::event::EventCommon;
use crate::event_process::Process;
use std::mem::offset_of;

fn column_line<E>(cols: &[Column<E>]) -> String {
    cols.iter()
        .map(|c| if c.visible { c.name.to_uppercase() } else { c.name.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every key of the JSON object, nested ones as `a.b`, sorted.
fn json_keys<T: Serialize>(value: &T) -> String {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.push(key.clone());
                walk(&key, v, out);
            }
        }
    }
    let text = serde_json::to_string(value).expect("events serialize");
    let KeyCount(written) = serde_json::from_str(&text).expect("an object");
    let object = serde_json::from_str::<serde_json::Value>(&text).expect("an object");
    // A field named like a common key (flattened) would be written twice,
    // and a reader would keep one of them.
    assert_eq!(written, object.as_object().map_or(0, |m| m.len()), "a key written twice: {text}");
    let mut keys = Vec::new();
    walk("", &object, &mut keys);
    keys.sort();
    keys.join(" ")
}

/// How many top-level keys a JSON object holds, duplicates included.
struct KeyCount(usize);

impl<'de> serde::Deserialize<'de> for KeyCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = KeyCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KeyCount, A::Error> {
                let mut n = 0;
                while map.next_entry::<String, serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(KeyCount(n))
            }
        }
        d.deserialize_map(Counter)
    }
}

fn common() -> EventCommon {
    EventCommon::default()
}

/// A DNS event carrying a query for `a.` (type A).
fn dns_raw() -> Vec<u8> {
    use super::trace_dns::bpf::ig_dns_event as E;
    let msg = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
    let mut raw = vec![0u8; offset_of!(E, msg)];
    raw[offset_of!(E, msg_len)..][..2].copy_from_slice(&(msg.len() as u16).to_ne_bytes());
    raw[offset_of!(E, msg_total)..][..2].copy_from_slice(&(msg.len() as u16).to_ne_bytes());
    raw.extend_from_slice(&msg);
    raw
}

/// An SNI event carrying a ClientHello for `a.test`.
fn sni_raw() -> Vec<u8> {
    use super::trace_sni::bpf::ig_sni_event as E;
    use super::trace_sni::hello::{hello as client_hello, sni};
    let hello = client_hello(&[sni("a.test")]);
    let mut raw = vec![0u8; offset_of!(E, hello)];
    raw[offset_of!(E, hello_len)..][..4].copy_from_slice(&(hello.len() as u32).to_ne_bytes());
    raw.extend_from_slice(&hello);
    raw
}

/// One line per gadget: `<name> columns: ...` and `<name> json: ...`.
fn current() -> String {
    use super::*;
    use crate::gadgets::Gadget;
    use crate::snapshot::SnapshotGadget;
    use crate::top::TopGadget;
    let clock = Clock::now();
    let mut out = String::new();
    let mut trace = |name: &str, cols: String, json: String| {
        out.push_str(&format!("{name} columns: {cols}\n{name} json: {json}\n"));
    };
    macro_rules! trace_gadget {
        ($name:literal, $g:expr, $size:expr) => {{
            let g = $g;
            let raw: Vec<u8> = $size;
            let json = match g.decode(&raw, &clock) {
                Ok(e) => json_keys(&e),
                Err(e) => format!("(no event from zeroes: {e})"),
            };
            trace($name, column_line(&g.columns()), json);
        }};
    }
    trace_gadget!("trace bind", trace_bind::TraceBind::default(), vec![0u8; 4096]);
    trace_gadget!("trace capabilities", trace_capabilities::TraceCapabilities::default(), vec![0u8; 4096]);
    trace_gadget!("trace dns", trace_dns::TraceDns::default(), dns_raw());
    trace_gadget!("trace exec", trace_exec::TraceExec::default(), vec![0u8; 16384]);
    trace_gadget!("trace fsslower", trace_fsslower::TraceFsslower::default(), vec![0u8; 4096]);
    trace_gadget!("trace mount", trace_mount::TraceMount::default(), vec![0u8; 16384]);
    trace_gadget!("trace oomkill", trace_oomkill::TraceOomkill::default(), vec![0u8; 4096]);
    trace_gadget!("trace open", trace_open::TraceOpen::default(), vec![0u8; 16384]);
    trace_gadget!("trace signal", trace_signal::TraceSignal::default(), vec![0u8; 4096]);
    trace_gadget!("trace sni", trace_sni::TraceSni::default(), sni_raw());
    trace_gadget!("trace ssl", trace_ssl::TraceSsl::default(), vec![0u8; 4096]);
    trace_gadget!("trace tcp", trace_tcp::TraceTcp::default(), vec![0u8; 4096]);
    trace_gadget!("trace tcpconnect", trace_tcpconnect::TraceTcpconnect::default(), vec![0u8; 4096]);
    trace_gadget!("trace tcpdrop", trace_tcpdrop::TraceTcpdrop::default(), vec![0u8; 4096]);
    trace_gadget!("trace tcpretrans", trace_tcpretrans::TraceTcpretrans::default(), vec![0u8; 4096]);

    let file = top_file::FileRow {
        common: common(),
        pid: 0,
        tid: 0,
        comm: String::new(),
        reads: 0,
        writes: 0,
        rbytes: 0,
        wbytes: 0,
        t: String::new(),
        file: String::new(),
    };
    trace("top file", column_line(&top_file::TopFile::default().columns()), json_keys(&file));
    let bio = top_blockio::BlockioRow {
        common: common(),
        pid: 0,
        comm: String::new(),
        write: false,
        major: 0,
        minor: 0,
        bytes: 0,
        us: 0,
        io: 0,
    };
    trace("top block-io", column_line(&top_blockio::TopBlockio::default().columns()), json_keys(&bio));
    let process = top_process::ProcessRow {
        common: common(),
        pid: 0,
        ppid: 0,
        comm: String::new(),
        cpu: 0.0,
        mem: 0.0,
        rss: 0,
        vsize: 0,
        threads: 0,
        state: String::new(),
        uid: 0,
        gid: 0,
    };
    trace("top process", column_line(&top_process::TopProcess::default().columns()), json_keys(&process));
    let prog = top_ebpf::EbpfRow {
        common: common(),
        progid: 0,
        kind: String::new(),
        name: String::new(),
        pid: 0,
        comm: String::new(),
        runtime: 0,
        runcount: 0,
        mapmemory: 0,
        mapcount: 0,
    };
    trace("top ebpf", column_line(&top_ebpf::TopEbpf::default().columns()), json_keys(&prog));
    // A profile prints bars, not columns; its JSON is the histogram.
    let hist = crate::profile::Histogram::new("latency", "us", &[(1, 1)]);
    trace("profile block-io", "(bars)".into(), json_keys(&hist));
    let by_addr = crate::profile::Histogram { address: "127.0.0.1".into(), ..hist };
    trace("profile tcprtt", "(bars)".into(), json_keys(&by_addr));
    let by_disk = crate::profile::Histogram { disk: "sda".into(), address: String::new(), ..by_addr };
    trace("profile block-io --per-disk", "(bars)".into(), json_keys(&by_disk));
    let cpu = profile_cpu::CpuRow {
        common: common(),
        comm: String::new(),
        pid: 0,
        count: 0,
        user_stack: Vec::new(),
        kernel_stack: Vec::new(),
    };
    trace("profile cpu", column_line(&profile_cpu::ProfileCpu::default().columns()), json_keys(&cpu));
    let seccomp = audit_seccomp::SeccompEvent {
        common: common(),
        process: Process::default(),
        syscall: String::new(),
        code: "",
        signal: String::new(),
        compat: false,
    };
    trace(
        "audit seccomp",
        column_line(&audit_seccomp::AuditSeccomp::default().columns()),
        json_keys(&seccomp),
    );
    // A seccomp profile prints the profile itself, not columns.
    let mut set = advise_seccompprofile::profile::SyscallSet::default();
    set.insert(0);
    let advice = advise_seccompprofile::Advice {
        common: common(),
        profile: advise_seccompprofile::profile::SeccompProfile::allowing(&set).0,
    };
    trace("advise seccomp-profile", "(profile)".into(), json_keys(&advice));
    let call = traceloop::Call {
        common: common(),
        cpu: 0,
        pid: 0,
        tid: 0,
        comm: String::new(),
        syscall: String::new(),
        parameters: String::new(),
        ret: Some(-2),
        error: "ENOENT".into(),
        duration: Some(1),
        unfinished: false,
    };
    trace("traceloop", column_line(&traceloop::columns()), json_keys(&call));
    let tcp = top_tcp::TcpRow {
        common: common(),
        pid: 0,
        comm: String::new(),
        ip: 4,
        src: String::new(),
        dst: String::new(),
        sent: 0,
        recv: 0,
    };
    trace("top tcp", column_line(&top_tcp::TopTcp::default().columns()), json_keys(&tcp));
    let process = snapshot_process::ProcessEntry {
        common: common(),
        // As the iterator's records decode: with the parent.
        process: Process { ppid: Some(0), ..Process::default() },
    };
    let threads = snapshot_process::SnapshotProcess { threads: true, ..Default::default() };
    trace(
        "snapshot process",
        column_line(&snapshot_process::SnapshotProcess::default().columns()),
        json_keys(&process),
    );
    trace("snapshot process --threads", column_line(&threads.columns()), json_keys(&process));
    let socket = snapshot_socket::parse_proc_net(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 10 0\n",
        "TCP",
        false,
    );
    trace(
        "snapshot socket",
        column_line(&snapshot_socket::SnapshotSocket::default().columns()),
        json_keys(&socket[0]),
    );
    out
}

#[test]
fn columns_and_json_keys_are_as_pinned() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gadgets/golden.txt");
    let now = current();
    if std::env::var_os("IG_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(now, pinned, "a gadget's columns or JSON keys changed (see {})", path.display());
}
