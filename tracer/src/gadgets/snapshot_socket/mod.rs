//! `ig snapshot socket`: the TCP and UDP sockets of each network namespace,
//! as one table. Kernel facility: /proc/<pid>/net/{tcp,tcp6,udp,udp6} read
//! through one process of each namespace (a container's init, or ig itself
//! for the host), so no namespace switching and no eBPF are needed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::CommonFlags;
use crate::event::{EventCommon, Value};
use crate::snapshot::{Scope, SnapshotGadget};

/// List the TCP and UDP sockets that exist now.
#[derive(Clone, Debug, clap::Args)]
pub struct SnapshotSocket {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Which sockets: all, tcp or udp.
    #[arg(long, default_value = "all")]
    pub proto: Protocols,
}

impl SnapshotGadget for SnapshotSocket {
    type Entry = SocketEntry;

    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn columns(&self) -> Vec<Column<SocketEntry>> {
        columns()
    }

    /// One process per network namespace is read: each selected
    /// container's init, and ig itself for the host's namespace.
    fn entries(&self, scope: &Scope<'_>) -> anyhow::Result<Vec<SocketEntry>> {
        // /proc/net says which socket, not which process: rather than a
        // filter that silently does nothing, say so.
        anyhow::ensure!(
            self.common.process.is_empty(),
            "snapshot socket lists a network namespace's sockets, which carry no process: \
             --pid, --tid, --uid, --gid and --comm do not apply (select containers with -c or --k8s-*)"
        );
        let mut namespaces: Vec<(String, u64)> = Vec::new();
        for r in &scope.selected {
            if !namespaces.iter().any(|(_, n)| *n == r.netns) {
                namespaces.push((r.pid.to_string(), r.netns));
            }
        }
        if scope.host {
            let host = shared::procfs::ns_inode(scope.root, std::process::id(), "net")?;
            if !namespaces.iter().any(|(_, n)| *n == host) {
                namespaces.push(("self".into(), host));
            }
        }
        let mut entries = Vec::new();
        for (pid, netns) in &namespaces {
            for mut e in sockets_of(scope.root, pid, *netns, self.proto)? {
                e.common.container = scope.collection.by_netns(*netns).into_iter().next();
                entries.push(e);
            }
        }
        Ok(entries)
    }

    fn probe(&self) -> anyhow::Result<&'static str> {
        let own = std::path::Path::new("/proc/self/net/tcp");
        anyhow::ensure!(own.exists(), "no {}: /proc is not mounted", own.display());
        Ok("procfs")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocols {
    All,
    Tcp,
    Udp,
}

impl std::str::FromStr for Protocols {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "all" => Ok(Self::All),
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            other => Err(format!("unknown protocol {other:?}: use all, tcp or udp")),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SocketEntry {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    pub protocol: &'static str,
    pub src: String,
    pub dst: String,
    pub status: &'static str,
    pub inode: u64,
}

crate::impl_has_common!(SocketEntry);

pub fn columns() -> Vec<Column<SocketEntry>> {
    let mut cols = container_columns();
    cols.extend([
        Column::new("protocol", 8, |e: &SocketEntry| e.protocol.into()),
        Column::new("src", 21, |e: &SocketEntry| e.src.as_str().into()).max(47),
        Column::new("dst", 21, |e: &SocketEntry| e.dst.as_str().into()).max(47),
        Column::new("status", 11, |e: &SocketEntry| e.status.into()),
        Column::new("inode", 10, |e: &SocketEntry| Value::from(e.inode)).hidden(),
        Column::new("netns", 10, |e: &SocketEntry| Value::from(e.netnsid)).hidden(),
    ]);
    cols
}

/// The sockets of the network namespace `pid` lives in.
pub fn sockets_of(
    root: &Path,
    pid: &str,
    netnsid: u64,
    protocols: Protocols,
) -> std::io::Result<Vec<SocketEntry>> {
    let mut out = Vec::new();
    let files: &[(&str, &'static str, bool)] =
        &[("tcp", "TCP", false), ("tcp6", "TCP", true), ("udp", "UDP", false), ("udp6", "UDP", true)];
    for (file, protocol, v6) in files {
        let wanted = match protocols {
            Protocols::All => true,
            Protocols::Tcp => *protocol == "TCP",
            Protocols::Udp => *protocol == "UDP",
        };
        if !wanted {
            continue;
        }
        let path = root.join(format!("proc/{pid}/net/{file}"));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // A kernel without IPv6 has no tcp6/udp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.extend(parse_proc_net(&text, protocol, *v6).into_iter().map(|mut e| {
            e.netnsid = netnsid;
            e.common.mntns = 0;
            e
        }));
    }
    Ok(out)
}

/// Parses one /proc/net/{tcp,udp}[6] table.
pub fn parse_proc_net(text: &str, protocol: &'static str, v6: bool) -> Vec<SocketEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state, inode) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(9)?);
            Some(SocketEntry {
                common: EventCommon::default(),
                netnsid: 0,
                protocol,
                src: endpoint(local, v6)?,
                dst: endpoint(remote, v6)?,
                status: state_name(protocol, u8::from_str_radix(state, 16).ok()?),
                inode: inode.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:1F90` -> `127.0.0.1:8080`. Addresses are 32-bit words printed
/// in the host's byte order.
fn endpoint(field: &str, v6: bool) -> Option<String> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok().map(|w| w.to_ne_bytes());
    if v6 {
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        Some(format!("[{}]:{port}", Ipv6Addr::from(bytes)))
    } else {
        Some(format!("{}:{port}", Ipv4Addr::from(word(0)?)))
    }
}

fn state_name(protocol: &str, state: u8) -> &'static str {
    match (protocol, state) {
        ("UDP", 1) => "ACTIVE",
        ("UDP", 7) => "INACTIVE",
        (_, 1..=11) => crate::tcp::state_name(state),
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1145 1 0 100 0 0 10 0\n";
        let e = &parse_proc_net(tcp, "TCP", false)[0];
        assert_eq!(
            (e.src.as_str(), e.dst.as_str(), e.status, e.inode),
            ("127.0.0.1:8080", "0.0.0.0:0", "LISTEN", 1145)
        );
        let udp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 42 2 0 0\n";
        let e = &parse_proc_net(udp6, "UDP", true)[0];
        assert_eq!((e.src.as_str(), e.status), ("[::1]:53", "INACTIVE"));
        assert!(parse_proc_net("header\ngarbage line\n", "TCP", false).is_empty());
    }
}
