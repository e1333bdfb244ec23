//! Which pod an address belongs to: the addresses of each pod's network
//! namespace, read from /proc/PID/net of one of its processes (no need to
//! enter the namespace), and the local end of every connection seen in it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use super::connection::PodRef;

/// The addresses of the pods on this node.
#[derive(Default)]
pub struct PodAddresses {
    by_addr: HashMap<IpAddr, PodRef>,
    /// Network namespaces whose addresses were read (once each: a pod's
    /// address is set before its containers start).
    read: HashSet<u64>,
}

impl PodAddresses {
    pub fn pod_of(&self, addr: &IpAddr) -> Option<&PodRef> {
        self.by_addr.get(addr)
    }

    /// `addr` is `pod`'s (the local end of one of its connections).
    pub fn learn(&mut self, addr: IpAddr, pod: &PodRef) {
        if !addr.is_loopback() && !addr.is_unspecified() {
            self.by_addr.insert(addr, pod.clone());
        }
    }

    /// Reads the addresses of netns `netns` through process `pid` under
    /// `root`, unless read already.
    pub fn read_netns(&mut self, root: &Path, netns: u64, pid: u32, pod: &PodRef) {
        if self.read.contains(&netns) {
            return;
        }
        let net = root.join(format!("proc/{pid}/net"));
        let mut found =
            std::fs::read_to_string(net.join("fib_trie")).map(|t| local_v4(&t)).unwrap_or_default();
        found
            .extend(std::fs::read_to_string(net.join("if_inet6")).map(|t| global_v6(&t)).unwrap_or_default());
        if found.is_empty() {
            // Not set up yet, or the process is gone: tried again next time.
            return;
        }
        self.read.insert(netns);
        for addr in found {
            self.learn(addr, pod);
        }
    }
}

/// The local IPv4 addresses in a fib_trie listing: an address line
/// (`|-- 10.0.0.2`) followed by `/32 host LOCAL`; loopback ones left out.
fn local_v4(fib_trie: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL")
            && let Some(a) = last.filter(|a| !a.is_loopback() && !out.contains(a))
        {
            out.push(a);
        }
    }
    out
}

/// The global-scope IPv6 addresses of an if_inet6 listing (32 hex digits,
/// index, prefix length, scope, flags, device).
fn global_v6(if_inet6: &str) -> Vec<IpAddr> {
    if_inet6
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let hex = f.next()?;
            let scope = f.nth(2)?;
            if scope != "00" || hex.len() != 32 {
                return None;
            }
            let bits = u128::from_str_radix(hex, 16).ok()?;
            let addr = IpAddr::V6(std::net::Ipv6Addr::from(bits));
            (!addr.is_loopback()).then_some(addr)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_of_a_fib_trie_and_if_inet6() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 10.89.17.0/24 2 0 2\n        |-- 10.89.17.0\n           /24 link UNICAST\n        |-- 10.89.17.2\n           /32 host LOCAL\n  +-- 127.0.0.0/8 2 0 2\n     |-- 127.0.0.1\n        /32 host LOCAL\nLocal:\n        |-- 10.89.17.2\n           /32 host LOCAL\n";
        assert_eq!(local_v4(trie), vec!["10.89.17.2".parse::<IpAddr>().unwrap()]);
        let v6 = "fd000000000000000000000000000005 02 40 00 80 eth0\nfe80000000000000d8dc18fffee68110 02 40 20 80 eth0\n00000000000000000000000000000001 01 80 10 80 lo\n";
        assert_eq!(global_v6(v6), vec!["fd00::5".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_netns_is_read_once_it_has_addresses() {
        let dir = std::env::temp_dir().join(format!("ig-netpol-addr-{}", std::process::id()));
        let net = dir.join("proc/42/net");
        std::fs::create_dir_all(&net).unwrap();
        let pod = PodRef { namespace: "n".into(), name: "p".into(), labels: Default::default() };
        let mut a = PodAddresses::default();
        a.read_netns(&dir, 7, 42, &pod);
        assert!(!a.read.contains(&7), "nothing there yet: read again later");
        std::fs::write(net.join("fib_trie"), "|-- 10.0.0.3\n /32 host LOCAL\n").unwrap();
        a.read_netns(&dir, 7, 42, &pod);
        assert_eq!(a.pod_of(&"10.0.0.3".parse().unwrap()), Some(&pod));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
