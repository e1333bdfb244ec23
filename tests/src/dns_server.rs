//! A small DNS server for the `trace dns` tests, running on a thread of the
//! test process, in whatever network namespace that thread is moved to.
//! Names starting with "example" resolve (A 192.0.2.1, AAAA 2001:db8::1);
//! every other name is NXDOMAIN.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::join_netns;

pub const ANSWER_V4: [u8; 4] = [192, 0, 2, 1];
pub const ANSWER_V6: &str = "2001:db8::1";

pub struct DnsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The kernel id of the server thread (its events carry it as tid).
    pub tid: u32,
    /// The network namespace the server runs in, as a path any thread can join.
    pub netns: PathBuf,
}

/// Where the network namespace of thread `tid` of this process is.
fn netns_of_thread(tid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/self/task/{tid}/ns/net"))
}

/// Moves the calling thread into a new network namespace and brings its
/// loopback up (127.0.0.1 and ::1).
fn new_netns_with_loopback() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    // SAFETY: a plain socket and two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket for SIOCSIFFLAGS");
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req), 0, "SIOCGIFFLAGS lo");
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req), 0, "SIOCSIFFLAGS lo up");
        libc::close(fd);
    }
}

impl DnsServer {
    /// Serves on port 53 of `addr` in the network namespace at `netns`, or
    /// in a new one when None. Returns once the socket is bound.
    pub fn start(netns: Option<&Path>, addr: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let netns = netns.map(Path::to_path_buf);
        let addr: SocketAddr = format!("{addr}:53").parse().expect("server address");
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dns-server".into())
            .spawn(move || {
                match &netns {
                    Some(path) => join_netns(path),
                    None => new_netns_with_loopback(),
                }
                let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
                socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
                let mut buf = [0u8; 512];
                while !flag.load(Ordering::Relaxed) {
                    let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                    if let Some(reply) = answer(&buf[..n]) {
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            })
            .expect("server thread");
        let tid = rx.recv_timeout(Duration::from_secs(5)).expect("DNS server bound");
        Self { stop, thread: Some(thread), tid, netns: netns_of_thread(tid) }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The response to query `q`, or None when it is not a query we can read.
fn answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut at = 12;
    while *q.get(at)? != 0 {
        at += 1 + usize::from(q[at]);
    }
    let question = q.get(12..at + 5)?;
    let qtype = u16::from_be_bytes([q[at + 1], q[at + 2]]);
    let known = q.get(13..20) == Some(b"example");
    let rdata: Option<Vec<u8>> = match (known, qtype) {
        (true, 1) => Some(ANSWER_V4.to_vec()),
        (true, 28) => Some(ANSWER_V6.parse::<Ipv6Addr>().unwrap().octets().to_vec()),
        _ => None,
    };
    let mut r = Vec::with_capacity(64);
    r.extend_from_slice(&q[..2]);
    let rcode = if known { 0 } else { 3 };
    r.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1, 0, u8::from(rdata.is_some()), 0, 0, 0, 0]);
    r.extend_from_slice(question);
    if let Some(data) = rdata {
        // The answer's name points at the question's (offset 12).
        r.extend_from_slice(&[0xc0, 12]);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    Some(r)
}

/// A query for `name` of type `qtype` with message id `id`.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}
